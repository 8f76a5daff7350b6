extension String {
    /// Whether this names a header field that describes one connection rather than the message, and so is never
    /// forwarded (RFC 9110 §7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
    /// Upgrade, Proxy-Authenticate and Proxy-Authorization, in any case.
    ///
    /// By length first: every field of every request and response is asked, and comparing each against the whole
    /// list was 63 comparisons for one response at the edge (callgrind); this is one or two.
    @inlinable
    public var isHopByHopFieldName: Bool {
        switch utf8.count {
        case 2: return equalsLowercaseASCII("te")
        case 7: return equalsLowercaseASCII("trailer") || equalsLowercaseASCII("upgrade")
        case 10: return equalsLowercaseASCII("connection") || equalsLowercaseASCII("keep-alive")
        case 16: return equalsLowercaseASCII("proxy-connection")
        case 17: return equalsLowercaseASCII("transfer-encoding")
        case 18: return equalsLowercaseASCII("proxy-authenticate")
        case 19: return equalsLowercaseASCII("proxy-authorization")
        default: return false
        }
    }
}
