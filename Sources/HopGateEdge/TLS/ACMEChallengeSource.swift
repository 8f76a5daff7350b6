import HopGateDTLS
import NIOCore
import NIOHTTP1

/// Where the edge finds the answers to ACME validations (the certificate manager's store, in `hopgate serve`).
public protocol ACMEChallengeSource: Sendable {
    /// The key authorization for an HTTP-01 token on `host`, or nil when none is pending.
    func httpKeyAuthorization(token: String, host: String) async -> String?
    /// The TLS-ALPN-01 certificate for `serverName`, or nil when none is pending.
    func tlsALPNCertificate(serverName: String) async -> DTLSCertificate?
}

/// Answers `GET /.well-known/acme-challenge/<token>` on the plain-HTTP listener (RFC 8555 §8.3).
struct HTTP01Responder: LocalResponder {
    static let pathPrefix = "/.well-known/acme-challenge/"
    let source: any ACMEChallengeSource
    let maximumBodyBytes = 0

    func claims(host: String, path: String) -> Bool { path.hasPrefix(Self.pathPrefix) }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, peer: String) async -> LocalResponse {
        let path = HTTPProxyHandler.originForm(head.uri)
        let token = String(path.dropFirst(Self.pathPrefix.count).prefix { $0 != "?" })
        let host = ProxyHeaders.host(of: head) ?? ""
        guard head.method == .GET || head.method == .HEAD, !token.isEmpty, !token.contains("/"),
            let answer = await source.httpKeyAuthorization(token: token, host: host)
        else {
            return LocalResponse(
                status: .notFound,
                headers: ["Content-Type": "text/plain"],
                body: ByteBuffer(string: "no such challenge\n")
            )
        }
        return LocalResponse(status: .ok, headers: ["Content-Type": "text/plain"], body: ByteBuffer(string: answer))
    }
}
