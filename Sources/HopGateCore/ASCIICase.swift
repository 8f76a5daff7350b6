extension String {
    /// Whether this equals `lowercase` (ASCII, lowercase) but for the case of ASCII letters, as HTTP header names
    /// compare, without making a lowercased copy: a header pass over every request and response does this often.
    /// On `String`, not `StringProtocol`: a generic one runs unspecialized from other modules, at several times
    /// the cost; inlinable, since it runs for every header name against every name it is compared with.
    @inlinable
    public func equalsLowercaseASCII(_ lowercase: String) -> Bool {
        guard utf8.count == lowercase.utf8.count else { return false }
        return zip(utf8, lowercase.utf8).allSatisfy { byte, expected in
            (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) == expected
        }
    }
}

extension String {
    /// Whether this is a token (RFC 9110 §5.6.2), as a method or a header field name must be.
    @inlinable
    public var isHTTPToken: Bool {
        !isEmpty
            && utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"),
                    UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
                    UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"),
                    UInt8(ascii: "|"), UInt8(ascii: "~"):
                    return true
                default:
                    return false
                }
            }
    }

    /// Whether this may be a header field value: anything but control characters (a horizontal tab aside), since a
    /// CR or LF would end the field and let what follows pass for another one.
    @inlinable
    public var isHTTPFieldValue: Bool {
        utf8.allSatisfy { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }
    }
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
