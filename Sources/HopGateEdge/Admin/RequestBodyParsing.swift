import FoundationEssentials

/// A member of a request's JSON object. The admin API reads only strings; any other value is kept as "not a string",
/// so the caller can say which member it needed.
enum JSONMember: Decodable {
    case string(String)
    case other

    init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer()
        self = (try? value.decode(String.self)).map(JSONMember.string) ?? .other
    }

    var string: String? {
        if case .string(let text) = self { text } else { nil }
    }
}

/// `text` with its %XX escapes decoded (a path segment), or nil for a bad escape or bytes that are not UTF-8.
func percentDecoded(_ text: String) -> String? {
    var bytes: [UInt8] = []
    var input = text.utf8.makeIterator()
    while let byte = input.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = input.next().flatMap(hexValue), let low = input.next().flatMap(hexValue) else { return nil }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ digit: UInt8) -> UInt8? {
    switch digit {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
    default: nil
    }
}
