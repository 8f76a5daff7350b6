import COpenSSL

/// Empties this thread's OpenSSL error queue into one line ("" when empty). OpenSSL reports failures there, and
/// a stale entry would be blamed on the next, unrelated call.
func drainOpenSSLErrors() -> String {
    var reasons: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        reasons.append(String(cBuffer: buffer))
    }
    return reasons.joined(separator: "; ")
}

extension String {
    /// The NUL-terminated text in a C buffer that OpenSSL filled.
    init(cBuffer: [CChar]) {
        self.init(decoding: cBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
