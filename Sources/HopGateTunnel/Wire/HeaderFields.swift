import HopGateCore
import NIOCore

/// A head's header fields, in order. Made of strings where a head is built by hand, or of bytes where a parser
/// reads them (`build(capacity:_:)`); read off the wire, they can stay the bytes they came in
/// (`TunnelFrame(decoding:keepingFieldBytes:)`), checked as they were read (lengths, limits, UTF-8), until someone
/// asks for them as strings. Each end of the tunnel writes the HTTP/1 heads it forwards straight from those bytes
/// (`forEachFieldBytes`): making strings of the fields at one end, and copying them out again at the other, cost
/// about 4.5k instructions a request at the edge and 7k at the client (callgrind).
public struct HeaderFields: Sequence, Equatable, Sendable, ExpressibleByArrayLiteral, HeaderFieldBytes {
    enum Storage: Sendable {
        case strings([HeaderField])
        /// Each field's name and value, each behind its 16-bit length, as the wire has them.
        case wire(ByteBuffer)
    }

    let storage: Storage
    public let count: Int

    public init(_ fields: [HeaderField]) {
        storage = .strings(fields)
        count = fields.count
    }

    public init(arrayLiteral fields: HeaderField...) {
        self.init(fields)
    }

    /// Fields of name and value pairs, such as NIO's `HTTPHeaders`.
    public init(pairs: some Sequence<(name: String, value: String)>) {
        self.init(pairs.map { HeaderField($0.name, $0.value) })
    }

    /// `count` fields as the wire has them, already checked (`read(count:from:limits:)`) or built.
    private init(wire: ByteBuffer, count: Int) {
        storage = .wire(wire)
        self.count = count
    }

    public var isEmpty: Bool { count == 0 }
    public var underestimatedCount: Int { count }

    /// The fields as strings: those they were made of, or strings made now of the bytes.
    public var array: [HeaderField] {
        if case .strings(let fields) = storage { return fields }
        var fields: [HeaderField] = []
        fields.reserveCapacity(count)
        for field in self { fields.append(field) }
        return fields
    }

    public static func == (lhs: HeaderFields, rhs: HeaderFields) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs)
    }

    public func makeIterator() -> Iterator { Iterator(storage) }

    public struct Iterator: IteratorProtocol {
        private let storage: Storage
        private var index = 0
        /// Where the next field starts in the wire bytes.
        private var offset = 0

        init(_ storage: Storage) { self.storage = storage }

        public mutating func next() -> HeaderField? {
            switch storage {
            case .strings(let fields):
                guard index < fields.count else { return nil }
                index += 1
                return fields[index - 1]
            case .wire(let bytes):
                guard offset < bytes.readableBytes else { return nil }
                return bytes.withUnsafeReadableBytes { raw in
                    let name = HeaderFields.string(at: &offset, in: raw)
                    // A common name is the string made once for it, as the string path reads it.
                    let nameString = CommonFieldNames.name(name) ?? String(decoding: name, as: UTF8.self)
                    return HeaderField(
                        nameString,
                        String(decoding: HeaderFields.string(at: &offset, in: raw), as: UTF8.self)
                    )
                }
            }
        }
    }

    /// Calls `body` with each field's name and value as bytes, in order, without making strings of wire bytes.
    public func forEachFieldBytes(
        _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        switch storage {
        case .strings(let fields):
            for field in fields { try withUTF8(of: field.name, field.value, body) }
        case .wire(let bytes):
            try bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let name = Self.string(at: &offset, in: raw)
                    try body(name, Self.string(at: &offset, in: raw))
                }
            }
        }
    }

    /// The string behind the 16-bit length at `offset` in checked wire bytes, moving `offset` past it.
    static func string(at offset: inout Int, in raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let length = Int(raw[offset]) << 8 | Int(raw[offset + 1])
        defer { offset += 2 + length }
        return UnsafeRawBufferPointer(rebasing: raw[(offset + 2)..<(offset + 2 + length)])
    }

    /// Fields put together as the wire has them by `body`, which appends them to the writer it is given: for a
    /// parser that reads them as bytes, so that no strings are made of them on their way to the tunnel. The fields
    /// must fit `capacity` bytes, with two more for each name and each value.
    public static func build(capacity: Int, _ body: (inout Writer) throws -> Void) throws -> HeaderFields {
        var bytes = ByteBufferAllocator().buffer(capacity: capacity)
        var count = 0
        // One write of the buffer for them all: a write of each field checked the buffer's capacity and uniqueness
        // each time, about 150 instructions a field (callgrind).
        try bytes.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
            var writer = Writer(out: out)
            try body(&writer)
            count = writer.count
            return writer.offset
        }
        return HeaderFields(wire: bytes, count: count)
    }

    /// Where `build(capacity:_:)` puts the fields.
    public struct Writer {
        fileprivate let out: UnsafeMutableRawBufferPointer
        fileprivate var offset = 0
        public private(set) var count = 0

        fileprivate init(out: UnsafeMutableRawBufferPointer) { self.out = out }

        /// Appends a field. Text that is not UTF-8 is repaired, as a string made of it would be: the far end takes
        /// only UTF-8.
        public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
            guard count < Int(UInt16.max) else { throw TunnelWireError("more than 65535 header fields") }
            guard isUTF8(name) && isUTF8(value) else {
                let repaired = HeaderField(
                    String(decoding: name, as: UTF8.self),
                    String(decoding: value, as: UTF8.self)
                )
                return try withUTF8(of: repaired.name, repaired.value) { try append(name: $0, value: $1) }
            }
            guard name.count <= Int(UInt16.max), value.count <= Int(UInt16.max) else {
                throw TunnelWireError("a string of \(Swift.max(name.count, value.count)) bytes is longer than 65535")
            }
            guard offset + 4 + name.count + value.count <= out.count else {
                throw TunnelWireError("the fields are larger than the room made for them")
            }
            put(name)
            put(value)
            count += 1
        }

        /// Writes `text` behind its 16-bit length.
        private mutating func put(_ text: UnsafeRawBufferPointer) {
            out[offset] = UInt8(truncatingIfNeeded: text.count >> 8)
            out[offset + 1] = UInt8(truncatingIfNeeded: text.count)
            offset += 2
            copyBytes(of: text, into: out, at: &offset)
        }
    }

    // MARK: - Wire

    public var byteCountBound: Int { wireSize }

    /// The bytes `TunnelFrame` writes for the fields after their count: each name and value behind its length.
    var wireSize: Int {
        switch storage {
        case .strings(let fields): return fields.reduce(0) { $0 + 4 + $1.name.utf8.count + $1.value.utf8.count }
        case .wire(let bytes): return bytes.readableBytes
        }
    }

    /// Reads `count` fields behind their lengths off `buffer`, checking what the string path checks (lengths, the
    /// limits, a name, UTF-8) but keeping the bytes.
    static func read(count: Int, from buffer: inout ByteBuffer, limits: FrameLimits) throws -> HeaderFields {
        let length = try buffer.withUnsafeReadableBytes { raw -> Int in
            var offset = 0
            var total = 0
            for _ in 0..<count {
                let name = try checkedString(at: &offset, in: raw, "a header name")
                let value = try checkedString(at: &offset, in: raw, "a header value")
                total += name + value + 4
                guard total <= limits.maximumHeaderBytes else { throw TunnelFrame.tooLarge(total, limits) }
                guard name > 0 else { throw TunnelWireError("an empty header name") }
            }
            return offset
        }
        return HeaderFields(wire: buffer.readSlice(length: length)!, count: count)
    }

    /// Checks the string behind the 16-bit length at `offset`, moving `offset` past it; returns its length.
    private static func checkedString(
        at offset: inout Int,
        in raw: UnsafeRawBufferPointer,
        _ what: String
    ) throws
        -> Int
    {
        guard offset + 2 <= raw.count else { throw TunnelWireError("truncated before \(what)") }
        let length = Int(raw[offset]) << 8 | Int(raw[offset + 1])
        guard offset + 2 + length <= raw.count else { throw TunnelWireError("truncated inside \(what)") }
        let bytes = UnsafeRawBufferPointer(rebasing: raw[(offset + 2)..<(offset + 2 + length)])
        guard isUTF8(bytes) else { throw TunnelWireError("\(what) is not UTF-8") }
        offset += 2 + length
        return length
    }
}

/// Header fields as an HTTP/1 encoder reads them: each name and value as bytes, in order, whether they are strings
/// or the tunnel's bytes.
public protocol HeaderFieldBytes {
    /// No fewer bytes than the fields' names and values with four more each: room for them as `name: value\r\n`.
    var byteCountBound: Int { get }

    func forEachFieldBytes(
        _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
    ) rethrows
}

/// Whether `text` is UTF-8: ASCII (nearly always, and checked eight bytes at a time), or text that validates.
private func isUTF8(_ text: UnsafeRawBufferPointer) -> Bool {
    isASCII(text) || String(validating: text.bindMemory(to: UInt8.self), as: UTF8.self) != nil
}
