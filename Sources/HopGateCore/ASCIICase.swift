extension String {
    /// Whether this equals `lowercase` (ASCII, lowercase) but for the case of ASCII letters, as HTTP header names
    /// compare, without making a lowercased copy: a header pass over every request and response does this often.
    /// On `String`, not `StringProtocol`: a generic one runs unspecialized from other modules, at several times
    /// the cost; inlinable, since it runs for every header name against every name it is compared with.
    ///
    /// The bytes are compared in place when both strings have them contiguous (nearly always: native strings and
    /// literals): stepping through two UTF-8 views with `zip` cost about 335 instructions a call at the edge, in
    /// place about 60 (callgrind).
    ///
    /// The lengths are compared inline, where most comparisons end; only names of the same length make a call.
    @inlinable
    @inline(__always)
    public func equalsLowercaseASCII(_ lowercase: String) -> Bool {
        utf8.count == lowercase.utf8.count && sameLengthEqualsLowercaseASCII(lowercase)
    }

    @usableFromInline
    func sameLengthEqualsLowercaseASCII(_ lowercase: String) -> Bool {
        let count = utf8.count
        let inPlace = utf8.withContiguousStorageIfAvailable { mine in
            lowercase.utf8.withContiguousStorageIfAvailable { expected in
                for index in 0..<count where foldedASCII(mine[index]) != expected[index] { return false }
                return true
            }
        }
        if let inPlace, let equal = inPlace { return equal }
        return zip(utf8, lowercase.utf8).allSatisfy { byte, expected in foldedASCII(byte) == expected }
    }
}

extension String {
    /// Whether this is a token (RFC 9110 §5.6.2), as a method or a header field name must be.
    ///
    /// Both checks read the bytes in place when the string has them contiguous (nearly always): stepping through a
    /// String's UTF-8 view costs a dozen instructions a byte, and with every field of every forwarded request the
    /// checks were 5% of the client's instructions per request (callgrind).
    @inlinable
    public var isHTTPToken: Bool {
        guard !isEmpty else { return false }
        return utf8.withContiguousStorageIfAvailable { HopGateCore.isHTTPToken(UnsafeRawBufferPointer($0)) }
            ?? utf8.allSatisfy(isTokenByte)
    }

    /// Whether this may be a header field value: anything but control characters (a horizontal tab aside), since a
    /// CR or LF would end the field and let what follows pass for another one.
    @inlinable
    public var isHTTPFieldValue: Bool {
        utf8.withContiguousStorageIfAvailable { isFieldValue(UnsafeRawBufferPointer($0)) }
            ?? utf8.allSatisfy(isFieldValueByte)
    }
}

/// Whether `bytes` spell `lowercase` (ASCII, lowercase) but for the case of ASCII letters: for names and options
/// compared where they lie, in the bytes they arrived in.
@inlinable
public func equalsLowercaseASCII(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
    for index in 0..<bytes.count where foldedASCII(bytes[index]) != expected[index] { return false }
    return true
}

/// The same against a lowercase string made at run time, such as a name a Connection field lists. (Its own label:
/// as an overload, it would take every literal from the `StaticString` one, at several times the cost.)
public func equalsLowercaseASCII(_ bytes: UnsafeRawBufferPointer, string lowercase: String) -> Bool {
    guard bytes.count == lowercase.utf8.count else { return false }
    var index = 0
    for expected in lowercase.utf8 {
        guard foldedASCII(bytes[index]) == expected else { return false }
        index += 1
    }
    return true
}

/// Whether `bytes` are a token (see `String.isHTTPToken`), each byte looked up in a table: testing a byte's range
/// and bit made every name of every head cost about 13 instructions a byte, and the names were 2% of the client's
/// instructions (callgrind).
@inlinable
public func isHTTPToken(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard !bytes.isEmpty else { return false }
    return tokenBytes.withUnsafeBufferPointer { table in
        for byte in bytes where !table[Int(byte)] { return false }
        return true
    }
}

/// Whether each of the 256 byte values is a token's (`isTokenByte`).
@usableFromInline
let tokenBytes: [Bool] = (0..<256).map { isTokenByte(UInt8($0)) }

/// Why a header field may not be written in an HTTP/1 head, or nil when it may: its name must be a token and its
/// value free of control characters, since a CR or LF would end it and let what follows pass for another field
/// (request or response splitting).
@inlinable
public func fieldProblem(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> String? {
    guard isHTTPToken(name) else { return "the header name \(String(decoding: name, as: UTF8.self)) is not a token" }
    guard isFieldValue(value) else {
        return "the value of \(String(decoding: name, as: UTF8.self)) has a control character"
    }
    return nil
}

/// The last coding a Transfer-Encoding value lists, without the space around it: the last run of bytes between
/// commas, as `split(separator: ",").last` finds it. Nil when the value lists none (only commas, or nothing).
@inlinable
public func lastTransferCoding(_ value: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
    var end = value.count
    while end > 0 && value[end - 1] == UInt8(ascii: ",") { end -= 1 }
    guard end > 0 else { return nil }
    var start = end
    while start > 0 && value[start - 1] != UInt8(ascii: ",") { start -= 1 }
    while start < end && isHTTPWhitespaceByte(value[start]) { start += 1 }
    while end > start && isHTTPWhitespaceByte(value[end - 1]) { end -= 1 }
    return UnsafeRawBufferPointer(rebasing: value[start..<end])
}

/// An ASCII capital as its lowercase letter; any other byte as it is.
@inlinable
@inline(__always)
public func foldedASCII(_ byte: UInt8) -> UInt8 {
    byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
}

/// A space or a horizontal tab: the whitespace HTTP allows around a field's value and a list's elements (OWS).
@inlinable
public func isHTTPWhitespaceByte(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
}

/// A token's characters: letters, digits and ``!#$%&'*+-.^_`|~``, as bits of two masks (bytes 0-63 and 64-127).
@inlinable
public func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case 0..<64: return (0x03FF_6CFA_0000_0000 as UInt64) >> byte & 1 == 1
    case 64..<128: return (0x57FF_FFFF_C7FF_FFFE as UInt64) >> (byte - 64) & 1 == 1
    default: return false
    }
}

/// A byte a header field value may have: anything but a control character, a horizontal tab aside.
@inlinable
public func isFieldValueByte(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F)
}

/// Whether every byte may be in a header field value, eight at a time: a word with no byte below 0x20 and none
/// 0x7F passes with a few operations, and only one that has either (a tab, most likely) is looked at byte by byte.
/// A byte at a time cost about seven instructions a byte, with every value of every head at both ends (callgrind).
@inlinable
public func isFieldValue(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highBits: UInt64 = 0x8080_8080_8080_8080
    var index = 0
    while index + 8 <= bytes.count {
        let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        // A byte's high bit is set where it is below 0x20 (the "has less" test) or equal to 0x7F (the "has zero"
        // test on the word xor 0x7F...): exact for whether the word has one, which is all that is asked of it.
        let belowSpace = (word &- ones &* 0x20) & ~word & highBits
        let delete = word ^ (ones &* 0x7F)
        let isDelete = (delete &- ones) & ~delete & highBits
        if belowSpace | isDelete != 0 {
            for offset in index..<(index + 8) where !isFieldValueByte(bytes[offset]) { return false }
        }
        index += 8
    }
    while index < bytes.count {
        guard isFieldValueByte(bytes[index]) else { return false }
        index += 1
    }
    return true
}

extension String {
    /// Whether a client's path prefix serves this request path: `/admin` serves `/admin`, `/admin/x` and
    /// `/admin?q`, but not `/administrator`; a prefix ending in `/` serves everything under it. Compared as UTF-8
    /// bytes, as URL paths are: counting characters would segment graphemes for every request.
    public func isUnderPathPrefix(_ prefix: String) -> Bool {
        guard utf8.starts(with: prefix.utf8) else { return false }
        if prefix.utf8.last == UInt8(ascii: "/") || utf8.count == prefix.utf8.count { return true }
        let next = utf8[utf8.index(utf8.startIndex, offsetBy: prefix.utf8.count)]
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?")
    }
}
