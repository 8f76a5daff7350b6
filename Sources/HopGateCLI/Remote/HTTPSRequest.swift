import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTPS (or HTTP) request and its whole response: enough for the admin API's small JSON bodies, without
/// pulling a full HTTP client into the binary.
struct HTTPSRequest {
    struct Response {
        let status: HTTPResponseStatus
        let body: Data
    }

    enum Trust {
        case system
        case caFile(String)
        case insecure
    }

    let url: URL
    let method: HTTPMethod
    let headers: HTTPHeaders
    let body: Data?
    let trust: Trust
    var timeout: TimeAmount = .seconds(30)

    private func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .system: break
        case .caFile(let path): configuration.trustRoots = .file(path)
        case .insecure: configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    func send() async throws -> Response {
        guard let host = url.host, let scheme = url.scheme, scheme == "https" || scheme == "http" else {
            throw URLError(.badURL)
        }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let tls = scheme == "https" ? try clientContext() : nil
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let channel = try await ClientBootstrap(group: eventLoop)
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
            .get()
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
        let timeout = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(URLError(.timedOut))
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }
}

/// Gathers a response and completes the promise with it.
private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<HTTPSRequest.Response>
    var status: HTTPResponseStatus = .ok
    var body = Data()

    init(promise: EventLoopPromise<HTTPSRequest.Response>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status
        case .body(let bytes): body.append(contentsOf: bytes.readableBytesView)
        case .end: promise.succeed(HTTPSRequest.Response(status: status, body: body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(URLError(.networkConnectionLost))
    }
}
