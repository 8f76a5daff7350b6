import NIOHTTP1
import Testing

@testable import HopGateEdge

/// The header rewriting between browser and tunnel.
@Suite struct ProxyHeadersTests {
    @Test func hopByHopFieldsAndThoseConnectionNamesGoTheRestStayInOrder() {
        let headers = HTTPHeaders([
            ("Content-Type", "text/plain"), ("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=5"),
            ("x-secret", "1"), ("Transfer-Encoding", "chunked"), ("ETag", "\"1\""), ("TE", "trailers"),
            ("Upgrade", "websocket"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
        ])
        let kept = ProxyHeaders.removingHopByHop(headers)
        #expect(
            kept.map { "\($0.name): \($0.value)" } == [
                "Content-Type: text/plain", "ETag: \"1\"", "Set-Cookie: a=1", "Set-Cookie: b=2",
            ]
        )
    }

    @Test func anUpgradeKeepsItsUpgradeAndConnectionUpgrade() {
        let headers = HTTPHeaders([
            ("Host", "app.example.com"), ("Connection", "Upgrade, keep-alive"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "abc"),
        ])
        let kept = ProxyHeaders.removingHopByHop(headers, keepingUpgrade: true)
        #expect(
            kept.map { "\($0.name): \($0.value)" } == [
                "Host: app.example.com", "Upgrade: websocket", "Sec-WebSocket-Key: abc", "Connection: upgrade",
            ]
        )
    }

    @Test func forwardingHeadersReplaceTheClientsClaims() {
        let headers = HTTPHeaders([("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6"), ("Accept", "*/*")])
        let forwarded = ProxyHeaders.forwardedRequestHeaders(
            headers,
            clientAddress: "203.0.113.9",
            host: "app.example.com",
            scheme: "https",
            trust: .none,
            isUpgrade: false
        )
        #expect(
            forwarded.map { "\($0.name): \($0.value)" } == [
                "Accept: */*", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https",
                "X-Forwarded-Host: app.example.com", "Forwarded: for=203.0.113.9;host=\"app.example.com\";proto=https",
            ]
        )
    }
}
