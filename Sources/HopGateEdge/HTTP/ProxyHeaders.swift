import HopGateCore
import HopGateTunnel
import NIOHTTP1

/// The header rewriting a reverse proxy owes both sides (RFC 9110 §7.6.1, RFC 7239), as pure functions.
public enum ProxyHeaders {
    /// What to do with X-Forwarded-For and Forwarded that a client sent.
    public enum Trust: String, Sendable, CaseIterable {
        /// Replace them: the edge is the first proxy, and whatever came in is the client's claim (the default).
        case none
        /// Append to them: the edge sits behind a proxy or load balancer that sets them truthfully.
        case all
    }

    /// The response fields for the browser: `fields` from the tunnel without hop-by-hop fields and those the
    /// Connection field names. A switch of protocols (`keepingUpgrade`) keeps `Upgrade` and says
    /// `Connection: upgrade`; a response that ends its connection (`closing`) says `Connection: close`.
    ///
    /// Straight from the tunnel's fields to the headers in one pass: building `HTTPHeaders` first and removing what
    /// goes from a copy cost about 8k instructions per request at the edge (callgrind).
    static func responseHeaders(_ fields: HeaderFields, keepingUpgrade: Bool, closing: Bool = false) -> HTTPHeaders {
        let kept = ResponseFields(fields, keepingUpgrade: keepingUpgrade, closing: closing)
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(fields.count + 1)
        for field in kept { pairs.append(field) }
        return HTTPHeaders(pairs)
    }

    /// The browser's response fields (see `responseHeaders`) as they are read, without a copy: an HTTP/1
    /// connection's encoder writes them straight from the tunnel's bytes (`forEachFieldBytes`).
    struct ResponseFields: Sequence, HeaderFieldBytes {
        let fields: HeaderFields
        let keepingUpgrade: Bool
        let closing: Bool
        /// The names the Connection fields list, lowercased; almost always none.
        let named: [String]

        init(_ fields: HeaderFields, keepingUpgrade: Bool, closing: Bool) {
            self.fields = fields
            self.keepingUpgrade = keepingUpgrade
            self.closing = closing
            var named: [String] = []
            fields.forEachFieldBytes { name, value in
                guard equalsLowercaseASCII(name, "connection") else { return }
                for token in String(decoding: value, as: UTF8.self).split(separator: ",") {
                    named.append(token.trimmingWhitespace().lowercased())
                }
            }
            self.named = named
        }

        /// The Connection field the edge adds: `upgrade` for a switch, `close` when the connection ends.
        private var added: (name: String, value: String)? {
            if keepingUpgrade { return ("Connection", "upgrade") }
            if closing { return ("Connection", "close") }
            return nil
        }

        var byteCountBound: Int {
            fields.byteCountBound + (added.map { $0.name.utf8.count + $0.value.utf8.count + 4 } ?? 0)
        }

        func keeps(_ name: UnsafeRawBufferPointer) -> Bool {
            !ProxyHeaders.isConnectionSpecific(name, named: named, keepingUpgrade: keepingUpgrade)
        }

        func keeps(_ name: String) -> Bool {
            !ProxyHeaders.isConnectionSpecific(name, named: named, keepingUpgrade: keepingUpgrade)
        }

        func forEachFieldBytes(
            _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
        ) rethrows {
            try fields.forEachFieldBytes { name, value in
                if keeps(name) { try body(name, value) }
            }
            if let added { try withUTF8(of: added.name, added.value, body) }
        }

        func makeIterator() -> Iterator { Iterator(of: self) }

        struct Iterator: IteratorProtocol {
            private let kept: ResponseFields
            private var fields: HeaderFields.Iterator
            private var added = false

            init(of kept: ResponseFields) {
                self.kept = kept
                fields = kept.fields.makeIterator()
            }

            mutating func next() -> (name: String, value: String)? {
                while let field = fields.next() {
                    if kept.keeps(field.name) { return (field.name, field.value) }
                }
                guard !added else { return nil }
                added = true
                return kept.added
            }
        }
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
        var name = name
        return name.withUTF8 {
            isConnectionSpecific(UnsafeRawBufferPointer($0), named: named, keepingUpgrade: keepingUpgrade)
        }
    }

    /// The same for a name as bytes.
    private static func isConnectionSpecific(
        _ name: UnsafeRawBufferPointer,
        named: [String],
        keepingUpgrade: Bool
    ) -> Bool {
        if keepingUpgrade && equalsLowercaseASCII(name, "upgrade") { return false }
        return isHopByHopFieldName(name)
            || (!named.isEmpty && named.contains { equalsLowercaseASCII(name, string: $0) })
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
    ///
    /// `forwarded` is this hop's Forwarded element (`forwardedElement`), which a connection makes once for its host.
    static func tunnelRequestFields(
        _ headers: HTTPHeaders,
        clientAddress: String,
        host: String,
        scheme: String,
        forwarded element: String,
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
        let forwarded = priorForwarded.isEmpty ? element : (priorForwarded + [element]).joined(separator: ", ")
        fields.append(HeaderField("Forwarded", forwarded))
        if !hasTransferEncoding && !isUpgrade
            && !fields.contains(where: { $0.name.equalsLowercaseASCII("content-length") })
        {
            fields.append(HeaderField("Content-Length", "0"))
        }
        return fields
    }

    /// This hop's Forwarded element (RFC 7239) for a browser at `clientAddress` that asked for `host` over
    /// `scheme`. Searched as bytes, and built in one allocation: a Character search and five concatenations were
    /// about 4.5k instructions a request, and this is still 1.6k (callgrind), so a connection makes it once.
    static func forwardedElement(clientAddress: String, host: String, scheme: String) -> String {
        // An IPv6 address is quoted and bracketed.
        let node =
            clientAddress.utf8.contains(UInt8(ascii: ":"))
            ? String(concatenating: "\"[", clientAddress, "]\"") : clientAddress
        return String(concatenating: "for=", node, ";host=\"", host, "\";proto=", scheme)
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
        var authority: String?
        for (name, value) in head.headers where name.equalsLowercaseASCII("host") {
            guard authority == nil else { return nil }  // two Host fields
            authority = value
        }
        if authority == nil, let schemeEnd = head.uri.firstRange(of: "://") {
            authority = String(head.uri[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" })
        }
        guard let authority, !authority.isEmpty else { return nil }
        return hostName(in: authority)
    }

    /// An authority's host, lowercased, without port or trailing dot. Read as bytes in place: the separators are
    /// ASCII, and lowercasing a copy, then searching and cutting copies of it, was about 3k instructions a request
    /// (callgrind). A name with other than ASCII is lowercased as Unicode.
    private static func hostName(in authority: String) -> String {
        let inPlace = authority.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            var end = bytes.count
            if bytes.first == UInt8(ascii: "[") {
                // An IPv6 literal: keep the brackets, drop the port.
                if let close = bytes.firstIndex(of: UInt8(ascii: "]")) { end = close + 1 }
            } else if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
                end = colon
            }
            if end > 0 && bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
            let name = UnsafeBufferPointer(rebasing: bytes[..<end])
            guard name.allSatisfy({ $0 < 0x80 }) else { return nil }
            guard name.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else {
                return String(decoding: name, as: UTF8.self)
            }
            return String(unsafeUninitializedCapacity: end) { out in
                for (index, byte) in name.enumerated() {
                    out[index] = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                }
                return end
            }
        }
        if let inPlace, let name = inPlace { return name }
        return hostNameAsUnicode(in: authority)
    }

    /// `hostName(in:)` for a name with other than ASCII, or one whose bytes are not contiguous.
    private static func hostNameAsUnicode(in authority: String) -> String {
        var name = authority.lowercased()
        if name.utf8.first == UInt8(ascii: "[") {
            if let close = name.utf8.firstIndex(of: UInt8(ascii: "]")) { name = String(name[...close]) }
        } else if let colon = name.utf8.lastIndex(of: UInt8(ascii: ":")) {
            name = String(name[..<colon])
        }
        if name.utf8.last == UInt8(ascii: ".") { name = String(name[..<name.utf8.index(before: name.utf8.endIndex)]) }
        return name
    }
}
