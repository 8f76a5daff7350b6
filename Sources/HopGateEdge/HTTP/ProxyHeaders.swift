import HopGateCore
import HopGateTunnel
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
        let named = connectionNames(in: headers)
        var doomed: [String] = []
        for (name, _) in headers where isConnectionSpecific(name, named: named, keepingUpgrade: keepingUpgrade) {
            doomed.append(name)
        }
        var result = headers
        for name in doomed { result.remove(name: name) }
        if keepingUpgrade { result.add(name: "Connection", value: "upgrade") }
        return result
    }

    /// The field names the Connection header lists, lowercased.
    private static func connectionNames(in headers: HTTPHeaders) -> [String] {
        var named: [String] = []
        for (name, value) in headers where name.equalsLowercaseASCII("connection") {
            for token in value.split(separator: ",") { named.append(token.trimmingWhitespace().lowercased()) }
        }
        return named
    }

    /// Whether a field describes the connection rather than the message: hop-by-hop, or named by Connection
    /// (`named`). With `keepingUpgrade`, Upgrade is not.
    private static func isConnectionSpecific(_ name: String, named: [String], keepingUpgrade: Bool) -> Bool {
        if keepingUpgrade && name.equalsLowercaseASCII("upgrade") { return false }
        return hopByHop.contains { name.equalsLowercaseASCII($0) } || named.contains { name.equalsLowercaseASCII($0) }
    }

    /// The request header fields to send through the tunnel, in order: hop-by-hop fields and those Connection
    /// names removed (an upgrade keeps `Upgrade` and says `Connection: upgrade`), Expect removed (the edge answers
    /// it), Content-Length removed beside Transfer-Encoding (the client re-frames the body), and the forwarding
    /// headers set for the browser at `clientAddress` that asked for `host` over `scheme`; a request that says
    /// nothing of a body gets `Content-Length: 0`.
    ///
    /// Straight from the browser's headers to the tunnel's fields in two passes, rather than by editing an
    /// `HTTPHeaders` (each remove a scan, each add a check of its name): that was 5% of the edge's instructions per
    /// request (callgrind).
    static func tunnelRequestFields(
        _ headers: HTTPHeaders,
        clientAddress: String,
        host: String,
        scheme: String,
        trust: Trust,
        isUpgrade: Bool
    ) -> [HeaderField] {
        let named = connectionNames(in: headers)
        var priorFor: [String] = []
        var priorForwarded: [String] = []
        var hasTransferEncoding = false
        for (name, value) in headers {
            if name.equalsLowercaseASCII("transfer-encoding") {
                hasTransferEncoding = true
            } else if trust == .all && name.equalsLowercaseASCII("x-forwarded-for") {
                priorFor.append(value)
            } else if trust == .all && name.equalsLowercaseASCII("forwarded") {
                priorForwarded.append(value)
            }
        }
        var fields: [HeaderField] = []
        fields.reserveCapacity(headers.count + 6)
        for (name, value) in headers {
            // Content-Length frames the body the edge forwards: dropping it because Connection names it would
            // leave the local service to find the body's end on its own (request smuggling).
            if isConnectionSpecific(name, named: named, keepingUpgrade: isUpgrade)
                && !name.equalsLowercaseASCII("content-length")
            {
                continue
            }
            if forwarding.contains(where: { name.equalsLowercaseASCII($0) }) || name.equalsLowercaseASCII("expect") {
                continue
            }
            if hasTransferEncoding && name.equalsLowercaseASCII("content-length") { continue }
            fields.append(HeaderField(name, value))
        }
        if isUpgrade { fields.append(HeaderField("Connection", "upgrade")) }
        let forwardedFor = priorFor.isEmpty ? clientAddress : (priorFor + [clientAddress]).joined(separator: ", ")
        fields.append(HeaderField("X-Forwarded-For", forwardedFor))
        fields.append(HeaderField("X-Forwarded-Proto", scheme))
        fields.append(HeaderField("X-Forwarded-Host", host))
        // RFC 7239: an IPv6 address is quoted and bracketed.
        let node = clientAddress.contains(":") ? "\"[\(clientAddress)]\"" : clientAddress
        let element = "for=" + node + ";host=\"" + host + "\";proto=" + scheme
        let forwarded = priorForwarded.isEmpty ? element : (priorForwarded + [element]).joined(separator: ", ")
        fields.append(HeaderField("Forwarded", forwarded))
        if !hasTransferEncoding && !isUpgrade
            && !fields.contains(where: { $0.name.equalsLowercaseASCII("content-length") })
        {
            fields.append(HeaderField("Content-Length", "0"))
        }
        return fields
    }

    /// The forwarding headers the edge sets itself.
    private static let forwarding = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]

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
        // Searched as bytes: the separators are ASCII, and walking characters costs grapheme segmentation.
        if name.utf8.first == UInt8(ascii: "[") {
            // An IPv6 literal: keep the brackets, drop the port.
            if let close = name.utf8.firstIndex(of: UInt8(ascii: "]")) { name = String(name[...close]) }
        } else if let colon = name.utf8.lastIndex(of: UInt8(ascii: ":")) {
            name = String(name[..<colon])
        }
        if name.utf8.last == UInt8(ascii: ".") { name = String(name[..<name.utf8.index(before: name.utf8.endIndex)]) }
        return name
    }
}
