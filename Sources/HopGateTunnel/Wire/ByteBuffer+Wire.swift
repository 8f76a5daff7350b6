import HopGateCore
import NIOCore

/// The wire's primitives: big-endian integers, and strings and byte strings behind a 16-bit length.
extension ByteBuffer {
    mutating func writeShortString(_ text: String) throws {
        let bytes = text.utf8.count
        guard bytes <= UInt16.max else { throw TunnelWireError("a string of \(bytes) bytes is longer than 65535") }
        writeInteger(UInt16(bytes))
        writeString(text)
    }

    mutating func writeShortBytes(_ bytes: [UInt8]) throws {
        guard bytes.count <= UInt16.max else { throw TunnelWireError("\(bytes.count) bytes are more than 65535") }
        writeInteger(UInt16(bytes.count))
        writeBytes(bytes)
    }

    mutating func readWireInteger<T: FixedWidthInteger>(_ what: String, as: T.Type = T.self) throws -> T {
        guard let value = readInteger(as: T.self) else { throw TunnelWireError("truncated before \(what)") }
        return value
    }

    /// Refuses invalid UTF-8 rather than repairing it: a repaired string is not what the peer sent.
    /// Read in place: header names and values are nearly always ASCII, which is UTF-8 as it is, so only other text
    /// takes the generic validation. That one costs an array and runtime type lookups per string, and with the
    /// strings of every request and response head it was 7% of the edge's instructions (callgrind).
    mutating func readShortString(_ what: String) throws -> String {
        try readShortString(what) { String(decoding: $0, as: UTF8.self) }
    }

    /// The same, finding an ASCII string among `recent` when its bytes were read before.
    mutating func readShortString(_ what: String, recent: inout RecentStrings) throws -> String {
        try readShortString(what) { recent.string($0) }
    }

    @inline(__always)
    private mutating func readShortString(
        _ what: String,
        ascii: (UnsafeRawBufferPointer) -> String
    ) throws -> String {
        let length = Int(try readWireInteger(what, as: UInt16.self))
        guard readableBytes >= length else { throw TunnelWireError("truncated inside \(what)") }
        let text = withUnsafeReadableBytes { raw -> String? in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[..<length])
            if isASCII(bytes) { return ascii(bytes) }
            return String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self)
        }
        moveReaderIndex(forwardBy: length)
        guard let text else { throw TunnelWireError("\(what) is not UTF-8") }
        return text
    }

    /// A header name: one of the common ones as the string made once (see `CommonFieldNames`), any other as
    /// `readShortString` reads it, among `recent`.
    mutating func readFieldName(_ what: String, recent: inout RecentStrings) throws -> String {
        guard let length = getInteger(at: readerIndex, as: UInt16.self), readableBytes >= 2 + Int(length) else {
            return try readShortString(what)  // which says what is missing
        }
        let common = withUnsafeReadableBytes { raw in
            CommonFieldNames.name(UnsafeRawBufferPointer(rebasing: raw[2..<(2 + Int(length))]))
        }
        guard let common else { return try readShortString(what, recent: &recent) }
        moveReaderIndex(forwardBy: 2 + Int(length))
        return common
    }

    mutating func readShortBytes(_ what: String) throws -> [UInt8] {
        let length = Int(try readWireInteger(what, as: UInt16.self))
        guard let bytes = readBytes(length: length) else { throw TunnelWireError("truncated inside \(what)") }
        return bytes
    }

    /// Fails when bytes are left over: a message is exactly its fields, so extra bytes mean a different format.
    func expectFullyRead(_ what: String) throws {
        guard readableBytes == 0 else { throw TunnelWireError("\(readableBytes) unexpected bytes after \(what)") }
    }
}

/// Whether every byte is below 0x80, eight at a time: a byte at a time was most of `readShortString`'s own cost,
/// with every name and value of every head (callgrind).
@inline(__always)
func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    var high: UInt64 = 0
    while index + 8 <= bytes.count {
        high |= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < bytes.count {
        high |= UInt64(bytes[index])
        index += 1
    }
    return high & 0x8080_8080_8080_8080 == 0
}
