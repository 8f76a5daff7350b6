extension String {
    /// Whether this names a header field that describes one connection rather than the message, and so is never
    /// forwarded (RFC 9110 §7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
    /// Upgrade, Proxy-Authenticate and Proxy-Authorization, in any case.
    @inlinable
    public var isHopByHopFieldName: Bool {
        var name = self
        return name.withUTF8 { HopGateCore.isHopByHopFieldName(UnsafeRawBufferPointer($0)) }
    }
}

/// Whether `name` is a hop-by-hop field's (see `String.isHopByHopFieldName`), as bytes.
///
/// By length first: every field of every request and response is asked, and comparing each against the whole
/// list was 63 comparisons for one response at the edge (callgrind); this is one or two.
@inlinable
public func isHopByHopFieldName(_ name: UnsafeRawBufferPointer) -> Bool {
    switch name.count {
    case 2: return equalsLowercaseASCII(name, "te")
    case 7: return equalsLowercaseASCII(name, "trailer") || equalsLowercaseASCII(name, "upgrade")
    case 10: return equalsLowercaseASCII(name, "connection") || equalsLowercaseASCII(name, "keep-alive")
    case 16: return equalsLowercaseASCII(name, "proxy-connection")
    case 17: return equalsLowercaseASCII(name, "transfer-encoding")
    case 18: return equalsLowercaseASCII(name, "proxy-authenticate")
    case 19: return equalsLowercaseASCII(name, "proxy-authorization")
    default: return false
    }
}
