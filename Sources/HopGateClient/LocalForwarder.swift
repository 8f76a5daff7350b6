import FoundationEssentials
import HopGateCore
import HopGateTunnel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A local service the client forwards to, for requests under a path prefix.
public struct LocalTarget: Sendable, Equatable, CustomStringConvertible {
    public var pathPrefix: String
    public var host: String
    public var port: Int

    public init(pathPrefix: String, host: String, port: Int) {
        self.pathPrefix = pathPrefix
        self.host = host
        self.port = port
    }

    /// `HOST:PORT` or `PORT` (on 127.0.0.1), for `pathPrefix`.
    public init(parsing text: String, pathPrefix: String = "/") throws {
        var hostPart = "127.0.0.1"
        var portText = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            hostPart = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65_535).contains(port), !hostPart.isEmpty else {
            throw LocalTargetError(message: "'\(text)' is not HOST:PORT (for example 127.0.0.1:8080)")
        }
        guard pathPrefix.hasPrefix("/") else {
            throw LocalTargetError(message: "the path prefix '\(pathPrefix)' must start with /")
        }
        self.init(pathPrefix: pathPrefix, host: hostPart, port: port)
    }

    public var description: String { "\(pathPrefix) -> \(host):\(port)" }
}

public struct LocalTargetError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Forwards each tunnel exchange to the local HTTP/1.1 service its path routes to, streaming both ways: the
/// request body is written to the service as it arrives and granted back to the edge as the service's socket takes
/// it; the response is read from the service only as fast as the exchange takes it.
public final class LocalForwarder: Sendable {
    public let targets: [LocalTarget]
    private let logger: Logger
    private let connectTimeout: TimeAmount
    private let pool = LocalConnectionPool()

    public init(
        targets: [LocalTarget],
        connectTimeout: TimeAmount = .seconds(5),
        logger: Logger
    ) {
        // Longest prefix first, so the first match is the best.
        self.targets = targets.sorted { $0.pathPrefix.count > $1.pathPrefix.count }
        self.logger = logger
        self.connectTimeout = connectTimeout
    }

    /// The path prefixes to announce in the Hello.
    public var pathPrefixes: [String] { targets.map(\.pathPrefix) }

    public func target(for path: String) -> LocalTarget? {
        targets.first { path.isUnderPathPrefix($0.pathPrefix) }
    }

    /// `TunnelClientConnection`'s exchange handler: starts forwarding and returns where the exchange's events go.
    public func accept(_ exchange: TunnelExchange, head: TunnelFrame) -> TunnelExchangeConsumer? {
        guard case .requestHead(let method, _, let authority, let path, let fields) = head else { return nil }
        // The tunnel's own loop: the local connection, its pool and the exchange then share one thread, with no
        // hop between them for each event.
        let eventLoop = exchange.eventLoop
        guard let target = target(for: path) else {
            exchange.abort(AbortReason(.localServiceUnavailable, "this client serves no target for \(path)"))
            return TunnelExchangeConsumer(eventLoop: eventLoop) { _ in }
        }
        // One pass over the fields, instead of a lookup in built headers for each name (each lowercases every
        // field's name again). The fields stay the tunnel's bytes: the encoder writes them from those.
        var hasHost = false
        var hasLength = false
        var isUpgrade = false
        fields.forEachFieldBytes { name, _ in
            hasHost = hasHost || equalsLowercaseASCII(name, "host")
            hasLength = hasLength || equalsLowercaseASCII(name, "content-length")
            isUpgrade = isUpgrade || equalsLowercaseASCII(name, "upgrade")
        }
        let requestHead = LocalRequestHead(
            method: HTTPMethod(rawValue: method),
            target: path,
            fields: fields,
            host: hasHost ? nil : authority,
            // The edge removes Content-Length only for a chunked body: so is it sent on.
            addsChunked: !hasLength && !isUpgrade
        )
        let forward = LocalExchange(
            exchange: exchange,
            target: target,
            pool: pool,
            head: requestHead,
            isUpgradeRequest: isUpgrade,
            eventLoop: eventLoop,
            logger: logger
        )
        eventLoop.execute { forward.connect(timeout: self.connectTimeout) }
        return TunnelExchangeConsumer(eventLoop: eventLoop) { forward.tunnelEvent($0) }
    }
}

/// One request on its way to a local service and its answer on the way back. Lives on one event loop.
private final class LocalExchange: @unchecked Sendable {
    // @unchecked: every method runs on `eventLoop` (the consumer's loop and the local channel's are the same).
    let exchange: TunnelExchange
    let target: LocalTarget
    let pool: LocalConnectionPool
    let head: LocalRequestHead
    let eventLoop: any EventLoop
    let logger: Logger
    private var channel: (any Channel)?
    /// Body parts from the edge that came before the connection was up.
    private var early: [ByteBuffer] = []
    private var requestEnded = false
    private var failed = false
    /// The service answered 101 and the connection switched: raw bytes both ways from now on.
    private var upgraded = false
    /// The service answered 101; the connection switches once the response's end is read.
    private(set) var switchPending = false
    /// The request asks to switch protocols (it has an Upgrade field).
    let isUpgradeRequest: Bool

    /// This request went out on a pooled connection: if that connection turns out to be dead before any answer,
    /// a request without a body is sent again on a new one.
    private var reusedConnection = false
    private var responseStarted = false
    private var responseKeepAlive = false
    private var requestEndWritten = false
    private var timeout: TimeAmount = .seconds(5)
    /// Reading from the service stopped for backpressure (autoRead off): it must start again before the
    /// connection serves another request.
    private var readsPaused = false

    init(
        exchange: TunnelExchange,
        target: LocalTarget,
        pool: LocalConnectionPool,
        head: LocalRequestHead,
        isUpgradeRequest: Bool,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.exchange = exchange
        self.target = target
        self.pool = pool
        self.head = head
        self.isUpgradeRequest = isUpgradeRequest
        self.eventLoop = eventLoop
        self.logger = logger
    }

    private var poolKey: LocalConnectionPool.Key { LocalConnectionPool.key(for: target, on: eventLoop) }

    func connect(timeout: TimeAmount) {
        self.timeout = timeout
        if !isUpgradeRequest, let channel = pool.take(poolKey) {
            reusedConnection = true
            return attach(channel)
        }
        connectFresh()
    }

    /// Puts this exchange's response handler on the connection and sends the request.
    private func attach(_ channel: any Channel) {
        guard !failed else {
            channel.close(promise: nil)
            return
        }
        do {
            // The response handler stays on the connection from one request to the next.
            let responseHandler = try channel.pipeline.syncOperations.handler(type: LocalResponseHandler.self)
            responseHandler.begin(self)
            requestEncoder = responseHandler.requestEncoder
        } catch {
            channel.close(promise: nil)
            return fail(AbortReason(.localServiceUnavailable, "the local connection failed: \(error)"))
        }
        self.channel = channel
        guard let requestEncoder, requestEncoder.isInPipeline else {
            // A fresh or pooled connection always starts with its encoder.
            channel.close(promise: nil)
            return fail(AbortReason(.internalError, "the local connection has no request encoder"))
        }
        requestEncoder.writeHead(head, promise: nil)
        for part in early { writeBody(part, on: channel) }
        early = []
        // An upgrade request has no body; its exchange stays open for the bytes after a 101.
        if requestEnded || isUpgradeRequest { writeEnd(on: channel) }
        flush(channel)
    }

    private func writeEnd(on channel: any Channel) {
        requestEndWritten = true
        write(.end(nil), on: channel)
    }

    /// The connection's request encoder, which takes the request's parts directly: through the pipeline, each was
    /// wrapped in `NIOAny` and cast back out of it, about 1k instructions a part (callgrind).
    private var requestEncoder: LocalRequestEncoder?

    /// Writes a part to the connection's encoder, or, once an upgrade has taken it out, through the pipeline's
    /// synchronous operations (every caller runs on the connection's loop), with the part wrapped here:
    /// `Channel.write` is generic, and NIO's copy of it, unspecialized, looked the part's type up at run time.
    private func write(_ part: HTTPClientRequestPart, on channel: any Channel, promise: EventLoopPromise<Void>? = nil) {
        if let requestEncoder, requestEncoder.isInPipeline {
            requestEncoder.write(part, promise: promise)
        } else {
            channel.pipeline.syncOperations.write(NIOAny(part), promise: promise)
        }
    }

    private func flush(_ channel: any Channel) {
        if let requestEncoder, requestEncoder.isInPipeline {
            requestEncoder.flush()
        } else {
            channel.flush()
        }
    }

    /// Sends again on a new connection: a pooled one was closed by the service before it answered. Only for a
    /// request without a body whose end is sent, so nothing is lost by starting over.
    private func retryOnNewConnection() -> Bool {
        guard reusedConnection, !responseStarted, requestEnded, sentBodyBytes == 0, !failed else { return false }
        channel = nil
        connectFresh()
        return true
    }

    private var sentBodyBytes = 0

    private func connectFresh() {
        reusedConnection = false
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: localReadAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // HopGate's own HTTP/1 codec (see LocalRequestEncoder and LocalResponseParser).
                    let encoder = LocalRequestEncoder()
                    try channel.pipeline.syncOperations.addHandlers([
                        encoder, LocalResponseHandler(requestEncoder: encoder),
                    ])
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { result in
                switch result {
                case .success(let channel): self.attach(channel)
                case .failure(let error):
                    self.fail(
                        AbortReason(
                            .localServiceUnavailable,
                            "the local service \(self.target.host):\(self.target.port) could not be reached: \(error)"
                        )
                    )
                }
            }
    }

    private func writeBody(_ bytes: ByteBuffer, on channel: any Channel) {
        let count = bytes.readableBytes
        sentBodyBytes += count
        let exchange = self.exchange
        let written = channel.eventLoop.makePromise(of: Void.self)
        write(.body(.byteBuffer(bytes)), on: channel, promise: written)
        flush(channel)
        written.futureResult.whenSuccess { exchange.consumed(count) }
    }

    func tunnelEvent(_ event: TunnelExchangeEvent) {
        switch event {
        case .data(let bytes) where upgraded:
            let count = bytes.readableBytes
            let exchange = self.exchange
            channel?.writeAndFlush(bytes).whenSuccess { exchange.consumed(count) }
        case .data(let bytes):
            if let channel { writeBody(bytes, on: channel) } else { early.append(bytes) }
        case .end where upgraded:
            channel?.close(promise: nil)
        case .end:
            requestEnded = true
            if !isUpgradeRequest, let channel {
                writeEnd(on: channel)
                flush(channel)
            }
        case .aborted:
            failed = true
            channel?.close(promise: nil)
        case .writable:
            guard readsPaused, let channel else { return }
            readsPaused = false
            try? channel.syncOptions?.setOption(.autoRead, value: true)
            channel.read()
        case .head:
            break
        }
    }

    // MARK: - From the local service

    func responseHead(_ head: LocalResponseParser.Head) {
        responseStarted = true
        responseKeepAlive = head.keepAlive
        let switching = head.status == 101 && isUpgradeRequest
        var fields = head.fields
        // The parser has left out the hop-by-hop fields of any other head.
        if head.status == 101 {
            var kept = fields.array
            kept.removeAll { field in
                // A 101 keeps what it switches to (Upgrade) and says so (Connection: upgrade).
                if switching
                    && (field.name.equalsLowercaseASCII("upgrade") || field.name.equalsLowercaseASCII("connection"))
                {
                    return false
                }
                return field.name.isHopByHopFieldName
            }
            fields = HeaderFields(kept)
        }
        exchange.sendHead(.responseHead(status: UInt16(head.status), headers: fields))
        if switching { switchPending = true }
    }

    /// The local connection now carries raw bytes.
    func switched() {
        switchPending = false
        upgraded = true
    }

    /// The local service closed an upgraded connection: the exchange's response side is done.
    func rawClosed() {
        guard !failed else { return }
        exchange.end()
    }

    func responseBody(_ bytes: ByteBuffer) {
        if !exchange.write(bytes) {
            // The edge's side is full: stop reading from the service until `.writable`.
            readsPaused = true
            try? channel?.syncOptions?.setOption(.autoRead, value: false)
        }
    }

    /// The response is complete. Returns whether its connection may serve another request (the caller then takes
    /// its handler off and gives it to the pool).
    func responseEnd() -> Bool {
        exchange.end()
        let reusable = responseKeepAlive && requestEndWritten && !failed && !upgraded && !switchPending
        if !reusable { channel?.close(promise: nil) }
        return reusable
    }

    func returnToPool(_ channel: any Channel) {
        self.channel = nil
        // A connection paused for backpressure must read again for its next request. Set only then, and in place:
        // through a future for every request it cost a promise and dynamic casts (callgrind).
        if readsPaused {
            readsPaused = false
            try? channel.syncOptions?.setOption(.autoRead, value: true)
        }
        pool.give(channel, poolKey)
    }

    func localClosedEarly() {
        guard !failed else { return }
        if retryOnNewConnection() { return }
        fail(
            AbortReason(
                .localServiceUnavailable,
                "the local service \(target.host):\(target.port) closed the connection"
            )
        )
    }

    /// The service's answer does not parse: the exchange fails, saying why (its connection is closed).
    func responseUnreadable(_ error: any Error) {
        fail(
            AbortReason(
                .localServiceUnavailable,
                "the local service \(target.host):\(target.port) sent a response that does not parse: \(error)"
            )
        )
    }

    private func fail(_ reason: AbortReason) {
        guard !failed else { return }
        failed = true
        logger.warning("local service failed", metadata: ["target": "\(target)", "reason": "\(reason.message)"])
        exchange.abort(reason)
        channel?.close(promise: nil)
    }
}

/// Reads a local connection's responses (`LocalResponseParser`) and hands them to the exchange that sent the
/// request. It stays on the connection between requests, answering to the next exchange (`begin`): adding and
/// removing a handler for every request cost about 6k instructions (callgrind). Parsing here, rather than in a
/// decoder before it, spares each part a trip through the pipeline as a type-erased value (a dynamic cast each).
private final class LocalResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// The exchange whose response this is; nil while the connection waits in the pool.
    private var owner: LocalExchange?
    /// The same connection's request encoder, for the exchanges that write to it.
    let requestEncoder: LocalRequestEncoder
    private var ended = false
    private var parser = LocalResponseParser()
    /// The parts one read completed, kept between reads for its room.
    private var parts: [LocalResponseParser.Part] = []

    init(requestEncoder: LocalRequestEncoder) {
        self.requestEncoder = requestEncoder
    }

    /// The connection serves `owner`'s request now: its answer is framed by its method (none after HEAD).
    func begin(_ owner: LocalExchange) {
        self.owner = owner
        ended = false
        parser.noteRequest(owner.head.method)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard owner != nil else {
            // Bytes nobody asked for, on an idle connection: it is no longer one HTTP can trust.
            return context.close(promise: nil)
        }
        do {
            try parser.parse(unwrapInboundIn(data), into: &parts)
        } catch {
            // What parsed before the error goes on; then the exchange fails with the reason, and the connection,
            // which no longer frames responses, closes.
            deliver(context)
            if !ended, let owner {
                ended = true
                owner.responseUnreadable(error)
            }
            return context.close(promise: nil)
        }
        deliver(context)
    }

    /// Hands on the parts parsed, oldest first. Ending a response can give the connection to the pool, or switch
    /// it to raw bytes: the parts after a 101's end (none; the parser stops there) would not be this handler's.
    private func deliver(_ context: ChannelHandlerContext) {
        defer { parts.removeAll(keepingCapacity: true) }
        for part in parts {
            guard let owner else { return context.close(promise: nil) }
            switch part {
            case .head(let head):
                owner.responseHead(head)
            case .body(let bytes):
                owner.responseBody(bytes)
            case .end:
                // A 101's end comes straight after its head: the connection switches now.
                guard !owner.switchPending else { return switchToRawBytes(owner, context: context) }
                ended = true
                self.owner = nil
                if owner.responseEnd() { owner.returnToPool(context.channel) }
            }
        }
    }

    /// After a 101 the HTTP codec leaves; a raw handler takes its place and gets the bytes that came behind the
    /// 101.
    private func switchToRawBytes(_ owner: LocalExchange, context: ChannelHandlerContext) {
        ended = true
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(LocalRawHandler(owner: owner), position: .after(self))
            if let upgraded = parser.takeUpgradedBytes(), upgraded.readableBytes > 0 {
                context.fireChannelRead(NIOAny(upgraded))
            }
            // Removal completes at once on the loop; the futures say nothing more.
            _ = pipeline.removeHandler(try pipeline.handler(type: LocalRequestEncoder.self))
            _ = pipeline.removeHandler(self)
            owner.switched()
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body that runs until the connection closes ends here; an answer cut short was not ended.
        _ = parser.connectionClosed(into: &parts)
        deliver(context)
        if !ended, let owner { owner.localClosedEarly() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// An upgraded local connection (WebSocket): the service's bytes go to the exchange.
private final class LocalRawHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let owner: LocalExchange

    init(owner: LocalExchange) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.responseBody(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner.rawClosed()
        context.fireChannelInactive()
    }
}

/// Reads from a local service grow up to 256 KiB (NIO's default stops at 64 KiB) while a large body streams: a
/// quarter of the reads, and of the acknowledgements each read sends the service, which on loopback make the
/// service's sends run on this thread.
private let localReadAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)
