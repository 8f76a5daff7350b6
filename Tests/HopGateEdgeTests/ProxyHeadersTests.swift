import HopGateTunnel
import NIOHTTP1
import Testing

@testable import HopGateEdge

/// The header rewriting between browser and tunnel.
@Suite struct ProxyHeadersTests {
    @Test func hopByHopFieldsAndThoseConnectionNamesGoTheRestStayInOrder() throws {
        let headers = HTTPHeaders([
            ("Content-Type", "text/plain"), ("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=5"),
            ("x-secret", "1"), ("Transfer-Encoding", "chunked"), ("ETag", "\"1\""), ("TE", "trailers"),
            ("Upgrade", "websocket"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ])
        let kept = ProxyHeaders.responseHeaders(
            try HeaderFields.readOffTheWire(headers.map { HeaderField($0.name, $0.value) }),
            keepingUpgrade: false
        )
        #expect(
            kept.map { "\($0.name): \($0.value)" } == [
                "Content-Type: text/plain", "ETag: \"1\"", "Set-Cookie: a=1", "Set-Cookie: b=2",
            ]
        )
    }

    @Test func anUpgradeKeepsItsUpgradeAndConnectionUpgrade() throws {
        let headers = HTTPHeaders([
            ("Host", "app.example.com"), ("Connection", "Upgrade, keep-alive"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "abc"),
        ])
        let kept = ProxyHeaders.responseHeaders(
            try HeaderFields.readOffTheWire(headers.map { HeaderField($0.name, $0.value) }),
            keepingUpgrade: true
        )
        #expect(
            kept.map { "\($0.name): \($0.value)" } == [
                "Host: app.example.com", "Upgrade: websocket", "Sec-WebSocket-Key: abc", "Connection: upgrade",
            ]
        )
    }

    private func fields(
        _ headers: [(String, String)],
        trust: ProxyHeaders.Trust = .none,
        isUpgrade: Bool = false
    ) -> [String] {
        ProxyHeaders.tunnelRequestFields(
            HTTPHeaders(headers),
            clientAddress: "203.0.113.9",
            host: "app.example.com",
            scheme: "https",
            forwarded: ProxyHeaders.forwardedElement(
                clientAddress: "203.0.113.9",
                host: "app.example.com",
                scheme: "https"
            ),
            trust: trust,
            isUpgrade: isUpgrade
        ).map { "\($0.name): \($0.value)" }
    }

    private let forwarding = [
        "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https", "X-Forwarded-Host: app.example.com",
        "Forwarded: for=203.0.113.9;host=\"app.example.com\";proto=https",
    ]

    @Test func forwardingHeadersReplaceTheClientsClaims() {
        let sent = fields([("X-Forwarded-For", "6.6.6.6"), ("forwarded", "for=6.6.6.6"), ("Accept", "*/*")])
        #expect(sent == ["Accept: */*"] + forwarding + ["Content-Length: 0"])
    }

    @Test func anIPv6BrowserIsQuotedAndBracketedInForwarded() {
        #expect(
            ProxyHeaders.forwardedElement(clientAddress: "2001:db8::1", host: "a.example", scheme: "https")
                == "for=\"[2001:db8::1]\";host=\"a.example\";proto=https"
        )
    }

    @Test func trustedForwardingHeadersAreAppendedTo() {
        let sent = fields([("X-Forwarded-For", "10.0.0.1"), ("Forwarded", "for=10.0.0.1")], trust: .all)
        #expect(sent[0] == "X-Forwarded-For: 10.0.0.1, 203.0.113.9")
        #expect(sent[3] == "Forwarded: for=10.0.0.1, for=203.0.113.9;host=\"app.example.com\";proto=https")
    }

    @Test func theRequestsFramingIsWhatTheClientNeeds() {
        // A length stays; Expect goes (the edge answered it); hop-by-hop and Connection-named fields go.
        #expect(
            fields([("Content-Length", "5"), ("Expect", "100-continue"), ("Connection", "X-Hop"), ("x-hop", "1")])
                == ["Content-Length: 5"] + forwarding
        )
        // Chunked: the length goes beside it, and the client re-frames the body.
        #expect(fields([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]) == forwarding)
        // A length named by Connection stays: the body's framing is not the connection's to drop.
        #expect(
            fields([("Connection", "content-length"), ("Content-Length", "5")]) == ["Content-Length: 5"] + forwarding
        )
    }

    @Test func anUpgradeRequestKeepsItsUpgrade() {
        let sent = fields(
            [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k")],
            isUpgrade: true
        )
        #expect(sent == ["Upgrade: websocket", "Sec-WebSocket-Key: k", "Connection: upgrade"] + forwarding)
    }

    @Test func theHostIsTheNameWithoutPortOrTrailingDot() {
        func host(_ value: String?, uri: String = "/") -> String? {
            var headers = HTTPHeaders()
            if let value { headers.add(name: "Host", value: value) }
            return ProxyHeaders.host(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers))
        }
        #expect(host("App.Example.COM") == "app.example.com")
        #expect(host("app.example.com:8443") == "app.example.com")
        #expect(host("App.Example.COM.:8443") == "app.example.com")
        #expect(host("Bücher.Example:443") == "bücher.example")
        #expect(host(":443") == "")
        #expect(host("app.example.com.") == "app.example.com")
        #expect(host("[2001:db8::1]:443") == "[2001:db8::1]")
        #expect(host("[2001:db8::1]") == "[2001:db8::1]")
        #expect(host("") == nil)
        #expect(host(nil, uri: "https://Other.Example:8443/x?y") == "other.example")
        #expect(host(nil) == nil)
        var twice = HTTPHeaders([("Host", "a.example"), ("host", "b.example")])
        #expect(
            ProxyHeaders.host(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: twice)) == nil
        )
        twice = HTTPHeaders([("HOST", "A.example")])
        #expect(
            ProxyHeaders.host(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: twice))
                == "a.example"
        )
    }

    @Test func theTargetIsThePathAndQueryInEitherForm() {
        #expect(HTTPProxyHandler.originForm("/a/b?c=1") == "/a/b?c=1")
        #expect(HTTPProxyHandler.originForm("") == "/")
        #expect(HTTPProxyHandler.originForm("https://app.example.com/a?b") == "/a?b")
        #expect(HTTPProxyHandler.originForm("https://app.example.com?b") == "/?b")
        #expect(HTTPProxyHandler.originForm("https://app.example.com") == "/")
    }
}
