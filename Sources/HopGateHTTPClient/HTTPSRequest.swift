import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTPS (or HTTP) request and its whole response: enough for the admin API's and ACME's small JSON bodies
/// and certificate chains, without pulling a full HTTP client into the binary.
public struct HTTPSRequest: Sendable {
    public struct Response: Sendable {
        public let status: HTTPResponseStatus
        public let headers: HTTPHeaders
        public let body: Data
    }

    /// Which certificates the server's may chain to.
    public enum Trust: Sendable, Equatable {
        case system
        case caFile(String)
        case insecure
    }

    /// A response body over this many bytes fails the request (nothing HopGate asks for comes close).
    public static let maximumBodyBytes = 4 * 1024 * 1024

    public let url: URL
    public let method: HTTPMethod
    public let headers: HTTPHeaders
    public let body: Data?
    public let trust: Trust
    public var timeout: TimeAmount = .seconds(30)

    public init(url: URL, method: HTTPMethod, headers: HTTPHeaders = [:], body: Data? = nil, trust: Trust) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.trust = trust
    }

    private func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .system: break
        case .caFile(let path): configuration.trustRoots = .file(path)
        case .insecure: configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    public func send() async throws -> Response {
        guard let host = url.host, let scheme = url.scheme, scheme == "https" || scheme == "http" else {
            throw HTTPSRequestError.badURL(url.absoluteString)
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let tls = scheme == "https" ? try clientContext() : nil
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: serverName)
                        )
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(promise: promise))
                }
            }
            .connect(host: host, port: port)
        let channel: any Channel
        do {
            channel = try await connected.get()
        } catch {
            // Nothing else will complete the promise when there is no connection.
            promise.fail(error)
            throw HTTPSRequestError.cannotConnect(host: host, port: port, reason: Self.reason(error))
        }
        var headers = self.headers
        headers.replaceOrAdd(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        headers.replaceOrAdd(name: "Connection", value: "close")
        headers.replaceOrAdd(name: "Content-Length", value: "\(body?.count ?? 0)")
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let limit = timeout
        let timeout = channel.eventLoop.scheduleTask(in: limit) {
            promise.fail(HTTPSRequestError.timedOut(after: limit))
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }
}

extension HTTPSRequest {
    /// What went wrong with a connection attempt, as `strerror` says it ("Connection refused").
    static func reason(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError {
            if let single = failure.connectionErrors.first {
                return reason(single.error)
            }
            if failure.dnsAError != nil || failure.dnsAAAAError != nil { return "the host name does not resolve" }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if case ChannelError.connectTimeout = error { return "timed out" }
        return "\(error)"
    }
}

/// Gathers a response and completes the promise with it.
private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<HTTPSRequest.Response>
    var status: HTTPResponseStatus = .ok
    var headers: HTTPHeaders = [:]
    var body = Data()

    init(promise: EventLoopPromise<HTTPSRequest.Response>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            headers = head.headers
        case .body(let bytes):
            body.append(contentsOf: bytes.readableBytesView)
            if body.count > HTTPSRequest.maximumBodyBytes {
                promise.fail(HTTPSRequestError.bodyTooLarge)
                context.close(promise: nil)
            }
        case .end: promise.succeed(HTTPSRequest.Response(status: status, headers: headers, body: body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPSRequestError.connectionClosed)
    }
}

public enum HTTPSRequestError: Error, CustomStringConvertible {
    case cannotConnect(host: String, port: Int, reason: String)
    case bodyTooLarge
    case badURL(String)
    case timedOut(after: TimeAmount)
    case connectionClosed

    public var description: String {
        switch self {
        case .cannotConnect(let host, let port, let reason): "cannot connect to \(host):\(port): \(reason)"
        case .bodyTooLarge: "the response body is larger than \(HTTPSRequest.maximumBodyBytes) bytes"
        case .badURL(let url): "not an http or https URL: \(url)"
        case .timedOut(let after): "no complete response within \(after.nanoseconds / 1_000_000_000) s"
        case .connectionClosed: "the server closed the connection before the response was complete"
        }
    }
}
