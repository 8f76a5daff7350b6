import HopGateCore
import NIOHTTP1

/// The `close` and `keep-alive` options of a message's Connection fields, and whether its connection stays open
/// after it (RFC 9112 §9.3): HTTP/1.1 keeps it unless told `close`, HTTP/1.0 closes it unless told `keep-alive`.
///
/// Read as bytes: splitting the value and trimming each option as Characters cost about 7k instructions a response
/// (callgrind), more than the rest of the response's head.
struct ConnectionOptions {
    private(set) var close = false
    private(set) var keepAlive = false

    /// Reads one Connection field's value: a comma-separated list of options, in any case.
    mutating func read(_ value: String) {
        var value = value
        value.withUTF8 { read(UnsafeRawBufferPointer($0)) }
    }

    /// The same for a value as bytes.
    mutating func read(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.count
            var first = start
            var last = end
            while first < last && isHTTPWhitespaceByte(bytes[first]) { first += 1 }
            while last > first && isHTTPWhitespaceByte(bytes[last - 1]) { last -= 1 }
            let option = UnsafeRawBufferPointer(rebasing: bytes[first..<last])
            if equalsLowercaseASCII(option, "close") {
                close = true
            } else if equalsLowercaseASCII(option, "keep-alive") {
                keepAlive = true
            }
            start = end + 1
        }
    }

    func keepsAlive(version: HTTPVersion) -> Bool {
        guard !close else { return false }
        return version.major > 1 || (version.major == 1 && version.minor >= 1) || keepAlive
    }

}
