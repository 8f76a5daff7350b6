/// A session's open exchanges by stream id: an array indexed by the stream rather than a dictionary. Streams are
/// small numbers (at most the count both ends agreed on), and a request looks its exchange up some twenty times,
/// each a hash of the key in a dictionary (2% of the instructions of a request, callgrind).
struct ExchangeTable {
    typealias Entry = (sequence: UInt32, machine: ExchangeStateMachine)

    private var slots: [Entry?] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    subscript(stream: UInt16) -> Entry? {
        get {
            let index = Int(stream)
            return index < slots.count ? slots[index] : nil
        }
        set {
            let index = Int(stream)
            if index >= slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(nil, count: index + 1 - slots.count))
            }
            switch (slots[index] == nil, newValue == nil) {
            case (true, false): count += 1
            case (false, true): count -= 1
            default: break
            }
            slots[index] = newValue
        }
    }

    mutating func removeAll() {
        slots.removeAll()
        count = 0
    }

    /// The open exchanges' streams and sequence numbers, in stream order.
    var ids: [ExchangeID] {
        slots.indices.compactMap { index in
            slots[index].map { ExchangeID(stream: UInt16(index), sequence: $0.sequence) }
        }
    }
}
