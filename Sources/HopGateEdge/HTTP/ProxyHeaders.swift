import HopGateCore
import NIOHTTP1

/// The header rewriting a reverse proxy owes both sides (RFC 9110 §7.6.1, RFC 7239), as pure functions.
public enum ProxyHeaders {
    /// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// What to do with X-Forwarded-For and Forwarded that a client sent.
    public enum Trust: String, Sendable, CaseIterable {
        /// Replace them: the edge is the first proxy, and whatever came in is the client's claim (the default).
        case none
        /// Append to them: the edge sits behind a proxy or load balancer that sets them truthfully.
        case all
    }

    /// `headers` without hop-by-hop fields and those the Connection header names. An upgrade request keeps its
    /// `Connection: upgrade` and `Upgrade`, since the local service must see them.
    ///
    /// Finds what to drop in one pass without lowercasing copies, then removes only that from a copy: building a new
    /// set (every `add` checks its name) or removing each hop-by-hop name in turn (a scan each) was 2 to 3% of the
    /// edge's instructions per request (callgrind).
    static func removingHopByHop(_ headers: HTTPHeaders, keepingUpgrade: Bool = false) -> HTTPHeaders {
        var doomed: [String] = []
        for (name, value) in headers {
            if name.equalsLowercaseASCII("connection") {
                for token in value.split(separator: ",") {
                    let named = token.trimmingWhitespace()
                    if !(keepingUpgrade && named.equalsLowercaseASCII("upgrade")) { doomed.append(named) }
                }
            }
            if hopByHop.contains(where: { name.equalsLowercaseASCII($0) }),
                !(keepingUpgrade && name.equalsLowercaseASCII("upgrade"))
            {
                doomed.append(name)
            }
        }
        var result = headers
        for name in doomed { result.remove(name: name) }
        if keepingUpgrade { result.add(name: "Connection", value: "upgrade") }
        return result
    }

    /// The request headers to send through the tunnel: hop-by-hop removed, and the forwarding headers set for the
    /// browser at `clientAddress` that asked for `host` over `scheme`.
    static func forwardedRequestHeaders(
        _ headers: HTTPHeaders,
        clientAddress: String,
        host: String,
        scheme: String,
        trust: Trust,
        isUpgrade: Bool
    ) -> HTTPHeaders {
        var result = removingHopByHop(headers, keepingUpgrade: isUpgrade)
        let priorFor = trust == .all ? headers["x-forwarded-for"].joined(separator: ", ") : ""
        let priorForwarded = trust == .all ? headers["forwarded"].joined(separator: ", ") : ""
        for name in ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"] {
            result.remove(name: name)
        }
        result.add(name: "X-Forwarded-For", value: priorFor.isEmpty ? clientAddress : "\(priorFor), \(clientAddress)")
        result.add(name: "X-Forwarded-Proto", value: scheme)
        result.add(name: "X-Forwarded-Host", value: host)
        // RFC 7239: an IPv6 address is quoted and bracketed.
        let node = clientAddress.contains(":") ? "\"[\(clientAddress)]\"" : clientAddress
        let element = "for=\(node);host=\"\(host)\";proto=\(scheme)"
        result.add(name: "Forwarded", value: priorForwarded.isEmpty ? element : "\(priorForwarded), \(element)")
        return result
    }

    /// Why a request's framing is ambiguous (request smuggling, RFC 9112 §6.3), or nil when it is sound.
    static func framingProblem(_ headers: HTTPHeaders) -> String? {
        let lengths = headers["content-length"]
        let encodings = headers["transfer-encoding"]
        if !lengths.isEmpty && !encodings.isEmpty { return "both Content-Length and Transfer-Encoding" }
        if lengths.count > 1 { return "more than one Content-Length" }
        if let length = lengths.first, length.contains(",") || UInt64(length) == nil {
            return "a Content-Length that is not one number"
        }
        if !encodings.isEmpty {
            let codings = encodings.flatMap { $0.split(separator: ",") }.map {
                $0.trimmingWhitespace().lowercased()
            }
            if codings.last != "chunked" { return "a Transfer-Encoding that does not end in chunked" }
        }
        return nil
    }

    /// The host a request names, lowercased and without its port: from the Host header, or an absolute URI.
    static func host(of head: HTTPRequestHead) -> String? {
        let hosts = head.headers["host"]
        guard hosts.count <= 1 else { return nil }
        var authority = hosts.first
        if authority == nil, let schemeEnd = head.uri.firstRange(of: "://") {
            authority = String(head.uri[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" })
        }
        guard var name = authority?.lowercased(), !name.isEmpty else { return nil }
        if name.hasPrefix("[") {
            // An IPv6 literal: keep the brackets, drop the port.
            if let close = name.firstIndex(of: "]") { name = String(name[...close]) }
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        return name.hasSuffix(".") ? String(name.dropLast()) : name
    }
}
