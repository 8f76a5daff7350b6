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
