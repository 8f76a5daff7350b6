import NIOCore
import NIOHTTP1

/// How the edge proxies requests; every value has a flag on `hopgate serve`.
public struct ProxySettings: Sendable {
    /// How long the edge waits for a response head before it answers 504.
    public var upstreamTimeout: TimeAmount = .seconds(60)
    /// The largest request body; nil means no limit. Larger bodies are answered 413.
    public var maximumBodyBytes: Int?
    /// What to do with forwarding headers a client sent.
    public var trust: ProxyHeaders.Trust = .none
    /// Longer request targets are answered 414.
    public var maximumURIBytes = 8 * 1024
    /// A request's head (line and headers) must arrive within this, or the connection closes (slowloris).
    public var headerReadTimeout: TimeAmount = .seconds(10)
    /// A keep-alive connection with no request in flight closes after this.
    public var idleTimeout: TimeAmount = .seconds(75)

    public init() {}
}

/// A response the edge makes itself (the admin API, an ACME challenge).
public struct LocalResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response.
    public static func json(_ status: HTTPResponseStatus, _ text: String, headers: HTTPHeaders = [:]) -> LocalResponse {
        var all = headers
        all.replaceOrAdd(name: "Content-Type", value: "application/json")
        return LocalResponse(status: status, headers: all, body: ByteBuffer(string: text))
    }

    public static func error(_ status: HTTPResponseStatus, code: String, _ message: String) -> LocalResponse {
        .json(status, JSONBody.error(code: code, message: message))
    }
}

/// Requests the edge answers itself instead of sending them through a tunnel.
public protocol LocalResponder: Sendable {
    /// Whether this request is for the edge (the admin API on the main domain).
    func claims(host: String, path: String) -> Bool
    /// The largest body it reads; more is answered 413.
    var maximumBodyBytes: Int { get }
    func respond(to head: HTTPRequestHead, body: ByteBuffer, peer: String) async -> LocalResponse
}
