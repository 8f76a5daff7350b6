import FoundationEssentials
import HopGateTunnel
import Logging
import NIOCore
import NIOHTTP1

/// Serves one HTTP/1.1 connection from a browser: each request is answered by the edge itself (a redirect, the
/// admin API, an error page) or routed by Host and longest path prefix to a live tunnel session and streamed
/// through it both ways, with backpressure: the browser's body is read only as fast as the exchange takes it, and
/// the response is granted back to the client only as the browser's socket takes it.
final class HTTPProxyHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What every connection of a listener shares.
    struct Environment: Sendable {
        var registry: TunnelSessionRegistry
        var settings: ProxySettings
        /// `https` or `http`: what X-Forwarded-Proto says.
        var scheme: String
        /// Set on the plain-HTTP listener unless it forwards requests: they are redirected to HTTPS on this port.
        var redirectToHTTPSPort: Int?
        var local: (any LocalResponder)?
        /// Set on the plain-HTTP listener: the ACME HTTP-01 answers, given before anything else.
        var challenges: (any LocalResponder)?
        var metrics: EdgeMetrics
        var logger: Logger
    }

    /// One request going through a tunnel.
    private final class Proxied {
        let head: HTTPRequestHead
        let host: String
        let started = NIODeadline.now()
        var exchange: TunnelExchange?
        var session: EdgeTunnelSession?
        /// Body parts that came before the exchange was open.
        var early: [ByteBuffer] = []
        var requestEnded = false
        var responseStarted = false
        var responseHasNoBody = false
        /// The request asks to switch protocols (WebSocket): its end does not end the exchange.
        var isUpgrade = false
        /// After a 101: raw bytes both ways through this handler.
        var pipe: RawPipeHandler?
        /// Sessions this request was sent to and lost with.
        var lostSessions: [EdgeTunnelSession] = []

        /// A request that can be sent again on another session when its session dies before answering: it has
        /// no body (nothing was consumed that cannot be replayed) and its method is idempotent.
        var canRetry: Bool {
            requestEnded && bytesIn == 0 && !responseStarted && !isUpgrade && lostSessions.count < 2
                && [.GET, .HEAD, .OPTIONS].contains(head.method)
        }
        var status: UInt = 0
        var bytesIn = 0
        var bytesOut = 0
        /// Response bytes written to the browser's connection while it was over its high-water mark: granted back
        /// to the exchange once it drains.
        var heldCredit = 0
        /// Response body parts, and the end behind them, that arrived while the browser's connection was more
        /// than `writtenAheadBytes` over its high-water mark: they wait here, each in the exchange's own buffer,
        /// and go on once it drains. Written on regardless, they waited inside HTTP/2 and TLS instead, and went
        /// out in one flush once the browser caught up: up to a credit window (2 MiB) encrypted into one buffer,
        /// which NIOSSL then kept and allocated again at that size for every later flush (heaptrack: the edge's
        /// largest use of memory during a download). An array, which allocates nothing while empty: a
        /// CircularBuffer made room for 16 events for every request (3.6k instructions a request, callgrind).
        var waiting: [TunnelExchangeEvent] = []
        /// When the service must have started its answer (see `check`); nil once it has, or while none is due.
        var responseDeadline: NIODeadline?

        init(head: HTTPRequestHead, host: String) {
            self.head = head
            self.host = host
        }
    }

    private enum State {
        case idle
        case proxying(Proxied)
        /// Collecting a body for the edge's own answer.
        case local(head: HTTPRequestHead, host: String, responder: any LocalResponder, body: ByteBuffer)
        /// Answered already: the rest of the request is read and dropped.
        case discarding(closeAfter: Bool)
    }

    /// What came behind a request whose response is still going out (HTTP/1.1 pipelining): answers go in order,
    /// so it waits, and the socket is not read, until the connection is idle again.
    private enum Pipelined {
        case part(HTTPServerRequestPart)
        case malformed(HTTPParserError)
    }

    private let environment: Environment
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// Reads wait for the exchange to take more of the body.
    private var readsPaused = false
    private var readPending = false
    private var pipelined = CircularBuffer<Pipelined>()
    /// A flush is queued behind the events already waiting on the loop.
    private var flushScheduled = false
    /// Body bytes written since the last flush.
    private var unflushedBytes = 0
    /// From this many unflushed body bytes on, a flush happens at once. A download's datagrams keep arriving, and
    /// the loop reads them all before it runs its queued flush: the edge read and decrypted a whole credit window
    /// (2 MiB) before any of it went on to the browser, and granted credit for bytes that sat unflushed, so the
    /// client's sending and the edge's writing took turns.
    static let flushAtOnceBytes = 64 * 1024
    /// How much body goes on into a browser's connection over its high-water mark before the rest waits (see
    /// `Proxied.waiting`). HTTP/2 streams cross their small mark at every few writes: stopping right there left
    /// the connection idle while it drained, and downloads ran a tenth slower.
    static let writtenAheadBytes = 256 * 1024
    private var cachedClientAddress: String?
    /// The Forwarded element of the connection's last request, and the host it names.
    private var cachedForwarded: (host: String, element: String)?
    /// When a connection without a request under way is closed: its head did not arrive in time, or it idled
    /// between requests. Nil while a request is under way.
    private var idleDeadline: NIODeadline?
    /// The connection's one timer and when it fires (see `check`).
    private var timer: Scheduled<Void>?
    private var timerFires: NIODeadline?

    /// The HTTP/1 connection's response encoder, told each request's method (nil on an HTTP/2 stream).
    private let responseEncoder: EdgeResponseEncoder?

    init(environment: Environment, responseEncoder: EdgeResponseEncoder? = nil) {
        self.environment = environment
        self.responseEncoder = responseEncoder
    }

    private var logger: Logger { environment.logger }

    // MARK: - Connection

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer(environment.settings.headerReadTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .proxying(let request) = state, request.pipe == nil {
            request.responseDeadline = nil
            request.exchange?.abort(AbortReason(.cancelled, "the browser closed the connection"))
            environment.metrics.proxyError("browser_closed")
        }
        state = .idle
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .proxying(let request) = state {
            if request.heldCredit > 0 {
                request.exchange?.consumed(request.heldCredit)
                request.heldCredit = 0
            }
            sendWaiting(request, context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused || !pipelined.isEmpty {
            readPending = true
        } else {
            context.read()
        }
    }

    private func pauseReads() { readsPaused = true }

    /// Reads go on, after whatever pipelined requests can be taken now.
    private func resumeReads() {
        readsPaused = false
        takePipelined()
        guard readPending, !readsPaused, pipelined.isEmpty, let context else { return }
        readPending = false
        context.read()
    }

    /// Hands on what waited behind the last response, up to the next request that must wait in turn.
    private func takePipelined() {
        guard let context else { return }
        while let next = pipelined.first {
            switch next {
            case .part(let part):
                if case .head = part, !isIdle { return }
                pipelined.removeFirst()
                receive(part, context: context)
            case .malformed(let error):
                guard isIdle else { return }
                pipelined.removeFirst()
                refuseMalformed(error)
            }
        }
    }

    private var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// The request under way has come in whole, so what the parser says now concerns the next one.
    private var requestIsComplete: Bool {
        if case .proxying(let request) = state { return request.requestEnded }
        return false
    }

    private func armIdleTimer(_ delay: TimeAmount) {
        let deadline = NIODeadline.now() + delay
        idleDeadline = deadline
        check(at: deadline)
    }

    /// Makes the timer fire by `deadline`. It is moved only when that is sooner than it fires anyway; when it fires,
    /// `check` looks at the deadlines as they stand then. A timer scheduled and cancelled for every request (its
    /// response deadline, then the idle one) cost a promise and the scheduler's heap each time: about 5% of the edge's
    /// instructions per request (callgrind).
    private func check(at deadline: NIODeadline) {
        if let fires = timerFires, fires <= deadline { return }
        guard let context else { return }
        timer?.cancel()
        timerFires = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            handler.timer = nil
            handler.timerFires = nil
            handler.check()
        }
    }

    /// Acts on whichever deadline has passed, and sets the timer for the next.
    private func check() {
        let now = NIODeadline.now()
        switch state {
        case .proxying(let request):
            guard let due = request.responseDeadline, !request.responseStarted else { return }
            if due <= now { responseTimedOut(request) } else { check(at: due) }
        case .idle:
            guard let due = idleDeadline else { return }
            if due <= now { context?.close(promise: nil) } else { check(at: due) }
        case .local, .discarding:
            // Their end arms the idle deadline again.
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError, !pipelined.isEmpty || requestIsComplete {
            // A pipelined request is malformed: the one before it is still answered first.
            pipelined.append(.malformed(parserError))
            return
        }
        guard let parserError = error as? HTTPParserError, case .idle = state else {
            // A broken request mid-exchange, or TLS failing: nothing sensible can be written any more.
            if case .proxying(let request) = state {
                request.exchange?.abort(AbortReason(.cancelled, "the browser's request broke off: \(error)"))
            }
            state = .discarding(closeAfter: true)
            context.close(promise: nil)
            return
        }
        refuseMalformed(parserError)
    }

    private func refuseMalformed(_ parserError: HTTPParserError) {
        let page =
            parserError == .headerOverflow
            ? ErrorPage(
                status: .requestHeaderFieldsTooLarge,
                code: "headers_too_large",
                message: "The request's headers are too large."
            )
            : ErrorPage(
                status: .badRequest,
                code: "malformed_request",
                message: "The request is not valid HTTP/1.1 (\(parserError))."
            )
        respondAndClose(page, version: .http1_1)
    }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // Behind what already waits, or the next request while this one is still being answered: it waits too.
        var waits = !pipelined.isEmpty
        if case .head(let head) = part {
            // In the order the requests come, which is the order of their answers.
            responseEncoder?.noteRequest(head.method)
            if !isIdle { waits = true }
        }
        if waits {
            pipelined.append(.part(part))
        } else {
            receive(part, context: context)
        }
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            idleDeadline = nil
            receiveHead(head, context: context)
        case .body(let bytes):
            receiveBody(bytes)
        case .end:
            receiveEnd()
        }
    }

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard head.uri.utf8.count <= environment.settings.maximumURIBytes else {
            return respondAndClose(
                ErrorPage(
                    status: .uriTooLong,
                    code: "uri_too_long",
                    message: "The request target is longer than \(environment.settings.maximumURIBytes) bytes."
                ),
                version: head.version
            )
        }
        if let problem = ProxyHeaders.framingProblem(head.headers) {
            return respondAndClose(
                ErrorPage(status: .badRequest, code: "ambiguous_framing", message: "The request has \(problem)."),
                version: head.version
            )
        }
        guard let host = ProxyHeaders.host(of: head) else {
            return respondAndClose(
                ErrorPage(status: .badRequest, code: "no_host", message: "The request names no single Host."),
                version: head.version
            )
        }
        let path = Self.originForm(head.uri)
        if let challenges = environment.challenges, challenges.claims(host: host, path: path) {
            state = .local(head: head, host: host, responder: challenges, body: ByteBuffer())
            return
        }
        if let port = environment.redirectToHTTPSPort {
            return redirect(head, host: host, path: path, port: port)
        }
        if let local = environment.local, local.claims(host: host, path: path) {
            if let length = head.headers["content-length"].first.flatMap(Int.init), length > local.maximumBodyBytes {
                return respond(tooLarge(local.maximumBodyBytes), to: head, thenClose: true)
            }
            state = .local(head: head, host: host, responder: local, body: ByteBuffer())
            return
        }
        if let limit = environment.settings.maximumBodyBytes,
            let length = head.headers["content-length"].first.flatMap(Int.init), length > limit
        {
            return respond(tooLarge(limit), to: head, thenClose: true)
        }
        let candidates = environment.registry.candidates(domain: host, path: path)
        guard !candidates.isEmpty else {
            environment.metrics.proxyError("no_tunnel")
            return respond(
                ErrorPage(
                    status: .badGateway,
                    code: "no_tunnel",
                    message: "No HopGate client is connected for \(host)\(path == "/" ? "" : " and \(path)") right now."
                ),
                to: head,
                thenClose: false,
                discardBody: true
            )
        }
        let request = Proxied(head: head, host: host)
        request.isUpgrade =
            !head.headers["upgrade"].isEmpty
            && head.headers["connection"].contains { $0.lowercased().contains("upgrade") }
        state = .proxying(request)
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // Answered here, not by the local service: the body then flows at once instead of after curl's 1 s wait.
            write(.head(HTTPResponseHead(version: head.version, status: .continue)), context: context)
            flush(context)
        }
        open(request, candidates: candidates[...], path: path)
    }

    /// Opens the exchange on the first session that takes it.
    private func open(
        _ request: Proxied,
        candidates: ArraySlice<EdgeTunnelSession>,
        path: String
    ) {
        guard let context else { return }
        guard let session = candidates.first else {
            environment.metrics.proxyError("busy")
            return failBeforeResponse(
                request,
                ErrorPage(
                    status: .serviceUnavailable,
                    code: "tunnel_busy",
                    message: "Every HopGate client for \(request.host) is busy or going away; try again."
                )
            )
        }
        let loopBound = NIOLoopBound((self, request), eventLoop: context.eventLoop)
        let consumer = TunnelExchangeConsumer(eventLoop: context.eventLoop) { event in
            let (handler, request) = loopBound.value
            handler.exchangeEvent(event, for: request)
        }
        let head = tunnelHead(for: request, path: path, context: context)
        // On the session's own loop (the default, one-loop edge) the exchange opens at once: a future for every
        // request, with its hop and callback, cost about 3k instructions (callgrind).
        if let result = session.openExchangeAtOnce(head, consumer: consumer) {
            return openFinished(result, on: session, for: request, candidates: candidates, path: path)
        }
        session.openExchange(head, consumer: consumer)
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let (handler, request) = loopBound.value
                handler.openFinished(result, on: session, for: request, candidates: candidates, path: path)
            }
    }

    private func openFinished(
        _ result: Result<TunnelExchange?, any Error>,
        on session: EdgeTunnelSession,
        for request: Proxied,
        candidates: ArraySlice<EdgeTunnelSession>,
        path: String
    ) {
        guard isCurrent(request) else {
            if case .success(let exchange?) = result {
                exchange.abort(AbortReason(.cancelled, "the browser went away"))
            }
            return
        }
        switch result {
        case .success(let exchange?):
            opened(exchange, on: session, for: request)
        case .success(nil):
            open(request, candidates: candidates.dropFirst(), path: path)
        case .failure(let error):
            let reason = error as? AbortReason
            environment.metrics.proxyError("bad_request_head")
            failBeforeResponse(
                request,
                reason?.code == .headersTooLarge
                    ? ErrorPage(
                        status: .requestHeaderFieldsTooLarge,
                        code: "headers_too_large",
                        message: "The request's headers do not fit the tunnel."
                    )
                    : ErrorPage(status: .badGateway, code: "tunnel_error", message: "\(error)")
            )
        }
    }

    private func opened(_ exchange: TunnelExchange, on session: EdgeTunnelSession, for request: Proxied) {
        request.exchange = exchange
        request.session = session
        var writable = true
        for part in request.early { writable = exchange.write(part) }
        request.early = []
        if request.requestEnded && !request.isUpgrade { exchange.end() }
        // After a whole upgrade request the connection stays unread until its answer (see receiveEnd).
        if writable && !(request.isUpgrade && request.requestEnded) { resumeReads() }
        let deadline = NIODeadline.now() + environment.settings.upstreamTimeout
        request.responseDeadline = deadline
        check(at: deadline)
    }

    private func responseTimedOut(_ request: Proxied) {
        request.exchange?.abort(AbortReason(.timeout, "no response in time"))
        environment.metrics.proxyError("timeout")
        failBeforeResponse(
            request,
            ErrorPage(
                status: .gatewayTimeout,
                code: "upstream_timeout",
                message: "The service behind \(request.host) did not answer within "
                    + "\(environment.settings.upstreamTimeout.nanoseconds / 1_000_000_000) s."
            )
        )
    }

    private func tunnelHead(for request: Proxied, path: String, context: ChannelHandlerContext) -> TunnelFrame {
        let host = request.head.headers.first(name: "host") ?? request.host
        return .requestHead(
            method: request.head.method.rawValue,
            scheme: environment.scheme,
            authority: host,
            path: path,
            headers: HeaderFields(
                ProxyHeaders.tunnelRequestFields(
                    request.head.headers,
                    clientAddress: clientAddress(context),
                    host: host,
                    scheme: environment.scheme,
                    forwarded: forwardedElement(host: host, context: context),
                    trust: environment.settings.trust,
                    isUpgrade: request.isUpgrade
                )
            )
        )
    }

    /// The browser's address as text, worked out once per connection (NIO formats it anew on every call).
    private func clientAddress(_ context: ChannelHandlerContext) -> String {
        if let cachedClientAddress { return cachedClientAddress }
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        cachedClientAddress = address
        return address
    }

    /// The Forwarded element for a request to `host`, made once for each host a connection asks for in turn.
    private func forwardedElement(host: String, context: ChannelHandlerContext) -> String {
        if let cachedForwarded, cachedForwarded.host == host { return cachedForwarded.element }
        let element = ProxyHeaders.forwardedElement(
            clientAddress: clientAddress(context),
            host: host,
            scheme: environment.scheme
        )
        cachedForwarded = (host, element)
        return element
    }

    private func receiveBody(_ bytes: ByteBuffer) {
        switch state {
        case .proxying(let request):
            request.bytesIn += bytes.readableBytes
            if let limit = environment.settings.maximumBodyBytes, request.bytesIn > limit {
                request.exchange?.abort(AbortReason(.cancelled, "the request body is over the limit"))
                return failBeforeResponse(request, tooLarge(limit))
            }
            guard let exchange = request.exchange else {
                request.early.append(bytes)
                // Until the exchange is open the body waits here, as much as the exchange itself would hold.
                if request.bytesIn > TunnelExchange.highWaterBytes { pauseReads() }
                return
            }
            if !exchange.write(bytes) { pauseReads() }
        case .local(let head, let host, let responder, var body):
            guard body.readableBytes + bytes.readableBytes <= responder.maximumBodyBytes else {
                return respond(tooLarge(responder.maximumBodyBytes), to: head, thenClose: true)
            }
            var bytes = bytes
            body.writeBuffer(&bytes)
            state = .local(head: head, host: host, responder: responder, body: body)
        case .idle, .discarding:
            break
        }
    }

    private func receiveEnd() {
        switch state {
        case .proxying(let request):
            request.requestEnded = true
            // An upgrade request keeps the exchange open for the bytes that follow a 101, and those belong to the
            // protocol it asks for: none are read before the answer.
            if request.isUpgrade {
                pauseReads()
            } else {
                request.exchange?.end()
            }
        case .local(let head, _, let responder, let body):
            answerLocally(head, responder: responder, body: body)
        case .discarding(let closeAfter):
            state = .idle
            if closeAfter {
                context?.close(promise: nil)
            } else {
                armIdleTimer(environment.settings.idleTimeout)
                resumeReads()
            }
        case .idle:
            break
        }
    }

    /// Flushes after the events already queued on the loop: a response that came in one datagram (head, body, end)
    /// arrives as one event each, and flushing each would cost a TLS record and a write(2) apiece.
    /// Body bytes count toward a flush at once (`flushAtOnceBytes`).
    private func flushSoon(_ context: ChannelHandlerContext, bodyBytes: Int = 0) {
        unflushedBytes += bodyBytes
        if unflushedBytes >= Self.flushAtOnceBytes {
            unflushedBytes = 0
            return flush(context)
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = loopBound.value
            handler.flushScheduled = false
            handler.unflushedBytes = 0
            if let context = handler.context { handler.flush(context) }
        }
    }

    /// Writes a response part. Over HTTP/1 it goes straight to the connection's `EdgeResponseEncoder`, the next
    /// handler out, as long as it is there: down the pipeline, each part was wrapped in `NIOAny` and cast back out of
    /// it, about 1k instructions a part (callgrind).
    private func write(
        _ part: HTTPServerResponsePart,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>? = nil
    ) {
        if let responseEncoder, responseEncoder.isInPipeline {
            responseEncoder.write(part, promise: promise)
        } else {
            context.write(wrapOutboundOut(part), promise: promise)
        }
    }

    private func flush(_ context: ChannelHandlerContext) {
        if let responseEncoder, responseEncoder.isInPipeline {
            responseEncoder.flush()
        } else {
            context.flush()
        }
    }

    private func isCurrent(_ request: Proxied) -> Bool {
        if case .proxying(let current) = state { return current === request }
        return false
    }

    // MARK: - The answer through the tunnel

    private func exchangeEvent(_ event: TunnelExchangeEvent, for request: Proxied) {
        guard isCurrent(request), let context else {
            // A late event for a request already answered (an error page, a closed browser): give credit back so
            // the exchange does not sit on it, and let it go.
            if case .data(let bytes) = event { request.exchange?.consumed(bytes.readableBytes) }
            return
        }
        if let pipe = request.pipe { return pipe.tunnelEvent(event) }
        switch event {
        case .head(.responseHead(let status, let fields)):
            // Informational heads (100, 103) from the service are not passed on: the edge answered Expect itself.
            if (100..<200).contains(status) && status != 101 { return }
            request.responseDeadline = nil
            request.responseStarted = true
            request.status = UInt(status)
            let method = request.head.method
            request.responseHasNoBody = method == .HEAD || status == 204 || status == 304
            let switching = status == 101 && request.isUpgrade
            // A refused upgrade ends the connection too: NIO's request decoder parses nothing after an upgrade
            // request, so a next request on it would wait forever.
            let closing =
                (!request.head.isKeepAlive || request.isUpgrade) && !switching && request.head.version.major == 1
            let version = request.head.version
            let responseStatus = HTTPResponseStatus(statusCode: Int(status))
            if !switching, let responseEncoder, responseEncoder.isInPipeline {
                let browserFields = ProxyHeaders.ResponseFields(fields, keepingUpgrade: false, closing: closing)
                responseEncoder.writeHead(version: version, status: responseStatus, fields: browserFields)
                return flushSoon(context)
            }
            let headers = ProxyHeaders.responseHeaders(fields, keepingUpgrade: switching, closing: closing)
            write(.head(HTTPResponseHead(version: version, status: responseStatus, headers: headers)), context: context)
            if switching {
                flush(context)
                switchToRawBytes(request, context: context)
            } else {
                flushSoon(context)
            }
        case .head:
            break
        case .data(let bytes):
            guard !request.responseHasNoBody else {
                request.exchange?.consumed(bytes.readableBytes)
                return
            }
            guard request.waiting.isEmpty && mayWriteBody(request, context: context) else {
                return request.waiting.append(event)
            }
            writeBody(bytes, for: request, context: context)
        case .end:
            guard request.waiting.isEmpty else { return request.waiting.append(event) }
            endResponse(request, context: context)
        case .aborted(let reason) where reason.code == .sessionEnded && request.canRetry:
            // The client died (or was unregistered) before answering: try another one, as a reverse proxy tries
            // its next upstream.
            request.responseDeadline = nil
            if let session = request.session { request.lostSessions.append(session) }
            request.exchange = nil
            request.session = nil
            let path = Self.originForm(request.head.uri)
            let others = environment.registry.candidates(
                domain: request.host,
                path: path,
                excluding: request.lostSessions
            )
            environment.metrics.proxyError("retried")
            guard !others.isEmpty else {
                return failBeforeResponse(
                    request,
                    ErrorPage(status: .badGateway, code: "tunnel_lost", message: "\(reason.message) (no other client)")
                )
            }
            open(request, candidates: others[...], path: path)
        case .aborted(let reason):
            request.responseDeadline = nil
            request.waiting.removeAll()
            guard !request.responseStarted else {
                // Half a response is out: closing is the only honest way to say it is cut short.
                environment.metrics.proxyError("aborted")
                logAccess(request, status: request.status, note: "aborted: \(reason.message)")
                state = .idle
                context.close(promise: nil)
                return
            }
            let page: ErrorPage
            switch reason.code {
            case .timeout:
                environment.metrics.proxyError("timeout")
                page = ErrorPage(status: .gatewayTimeout, code: "upstream_timeout", message: reason.message)
            case .localServiceUnavailable:
                environment.metrics.proxyError("local_unavailable")
                page = ErrorPage(status: .badGateway, code: "local_service_unavailable", message: reason.message)
            case .refused, .tooManyExchanges:
                environment.metrics.proxyError("busy")
                page = ErrorPage(status: .serviceUnavailable, code: "tunnel_busy", message: reason.message)
            default:
                environment.metrics.proxyError("aborted")
                page = ErrorPage(status: .badGateway, code: "tunnel_error", message: reason.message)
            }
            failBeforeResponse(request, page)
        case .writable:
            resumeReads()
        }
    }

    private func writeBody(_ bytes: ByteBuffer, for request: Proxied, context: ChannelHandlerContext) {
        let count = bytes.readableBytes
        request.bytesOut += count
        write(.body(.byteBuffer(bytes)), context: context)
        flushSoon(context, bodyBytes: count)
        // Credit goes back while the browser's connection keeps up, and waits while its buffer is over the
        // high-water mark: what the edge holds for a slow reader stays that buffer and one credit window.
        // (A promise per write, granting as each was written, cost a promise and a callback per chunk.)
        if context.channel.isWritable {
            request.exchange?.consumed(count)
        } else {
            request.heldCredit += count
        }
    }

    private func endResponse(_ request: Proxied, context: ChannelHandlerContext) {
        // An upgrade refused (no 101): the exchange was kept open for nothing; end this side too.
        if request.isUpgrade { request.exchange?.end() }
        if !request.requestEnded {
            // The service answered before reading the whole body: the rest cannot be framed, so close after.
            request.requestEnded = true
            request.exchange?.abort(AbortReason(.cancelled, "the response ended before the request"))
            state = .discarding(closeAfter: true)
        } else {
            state = .idle
        }
        finish(request, context: context)
    }

    /// Below the high-water mark, or not yet `writtenAheadBytes` over it (counted as the credit held back).
    private func mayWriteBody(_ request: Proxied, context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable || request.heldCredit < Self.writtenAheadBytes
    }

    /// The browser's connection drained: what waited goes on, in order, as long as it keeps up.
    private func sendWaiting(_ request: Proxied, context: ChannelHandlerContext) {
        // Each event leaves the queue before it is written: a write or flush can make the connection writable again
        // and bring this back in, which must go on from the next one.
        while mayWriteBody(request, context: context), isCurrent(request), !request.waiting.isEmpty {
            let event = request.waiting.removeFirst()
            switch event {
            case .data(let bytes): writeBody(bytes, for: request, context: context)
            case .end: endResponse(request, context: context)
            default: break  // only body parts and the end wait
            }
        }
    }

    /// After a 101, the connection carries raw bytes both ways (WebSocket): the HTTP codecs leave the pipeline
    /// and a `RawPipeHandler` in front of this one moves the bytes.
    private func switchToRawBytes(_ request: Proxied, context: ChannelHandlerContext) {
        guard let exchange = request.exchange else { return }
        let pipeline = context.pipeline.syncOperations
        do {
            let pipe = RawPipeHandler(exchange: exchange)
            try pipeline.addHandler(pipe, position: .before(self))
            // Removal completes at once on the loop; the futures say nothing more.
            _ = pipeline.removeHandler(try pipeline.handler(type: EdgeResponseEncoder.self))
            _ = pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
            request.pipe = pipe
            logAccess(request, status: 101, note: "switched protocols")
            // Reads waited for the 101 (see receiveHead).
            readsPaused = false
            readPending = false
            context.read()
        } catch {
            logger.error("cannot switch the connection to raw bytes", metadata: ["error": "\(error)"])
            exchange.abort(AbortReason(.internalError, "the edge could not switch protocols"))
            context.close(promise: nil)
        }
    }

    private func finish(_ request: Proxied, context: ChannelHandlerContext) {
        var discarding = false
        if case .discarding(let close) = state { discarding = close }
        // An HTTP/2 stream ends with its response; closing it would cancel what is still queued.
        let closeAfter =
            request.head.version.major == 1 && (!request.head.isKeepAlive || discarding || request.isUpgrade)
        if closeAfter {
            let promise = context.eventLoop.makePromise(of: Void.self)
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { _ in loopBound.value.context?.close(promise: nil) }
            write(.end(nil), context: context, promise: promise)
            flush(context)
        } else {
            // The idle wait starts now rather than once the end is written: the same to a millisecond, without a
            // promise for every response.
            armIdleTimer(environment.settings.idleTimeout)
            write(.end(nil), context: context)
            flush(context)
        }
        resumeReads()
        logAccess(request, status: request.status, note: nil)
    }

    /// The exchange failed before any of its response went out: an error page instead.
    private func failBeforeResponse(_ request: Proxied, _ page: ErrorPage) {
        request.responseDeadline = nil
        if !request.responseStarted { logAccess(request, status: page.status.code, note: page.code) }
        request.responseStarted = true
        let unread = !request.requestEnded
        state = .idle
        // A body still arriving would have to be read to the end first; closing is cheaper and just as clear.
        respond(page, to: request.head, thenClose: unread, logged: true)
        resumeReads()
    }

    // MARK: - Answers from the edge itself

    private func redirect(_ head: HTTPRequestHead, host: String, path: String, port: Int) {
        let authority = port == 443 ? host : "\(host):\(port)"
        var headers = HTTPHeaders()
        headers.add(name: "Location", value: "https://\(authority)\(path)")
        headers.add(name: "Content-Length", value: "0")
        writeResponse(
            head,
            status: .permanentRedirect,
            headers: headers,
            body: nil,
            thenClose: false,
            discardBody: true
        )
    }

    private func answerLocally(_ head: HTTPRequestHead, responder: any LocalResponder, body: ByteBuffer) {
        guard let context else { return }
        state = .discarding(closeAfter: false)
        pauseReads()
        let peer = clientAddress(context)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let started = NIODeadline.now()
        context.eventLoop.makeFutureWithTask {
            await responder.respond(to: head, body: body, peer: peer)
        }.whenSuccess { response in
            let handler = loopBound.value
            var headers = response.headers
            headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.readableBytes)")
            handler.state = .idle
            handler.writeResponse(
                head,
                status: response.status,
                headers: headers,
                body: response.body,
                thenClose: false,
                discardBody: false
            )
            handler.resumeReads()
            handler.environment.metrics.requestFinished(
                method: head.method,
                status: response.status.code,
                seconds: Double((NIODeadline.now() - started).nanoseconds) / 1e9,
                bytesIn: body.readableBytes,
                bytesOut: response.body.readableBytes
            )
        }
    }

    private func tooLarge(_ limit: Int) -> ErrorPage {
        ErrorPage(
            status: .payloadTooLarge,
            code: "body_too_large",
            message: "The request body is larger than \(limit) bytes."
        )
    }

    private func respond(
        _ page: ErrorPage,
        to head: HTTPRequestHead,
        thenClose: Bool,
        discardBody: Bool = false,
        logged: Bool = false
    ) {
        let (headers, body) = page.response(accept: head.headers["accept"].first)
        if !logged {
            environment.metrics.requestFinished(
                method: head.method,
                status: page.status.code,
                seconds: 0,
                bytesIn: 0,
                bytesOut: body.readableBytes
            )
        }
        writeResponse(
            head,
            status: page.status,
            headers: headers,
            body: body,
            thenClose: thenClose,
            discardBody: discardBody
        )
    }

    private func respondAndClose(_ page: ErrorPage, version: HTTPVersion) {
        respond(page, to: HTTPRequestHead(version: version, method: .GET, uri: "/"), thenClose: true)
    }

    /// Writes a whole response the edge made. With `discardBody`, the rest of the request is read and dropped
    /// before the next one; with `thenClose`, the connection closes once it is out.
    private func writeResponse(
        _ request: HTTPRequestHead,
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: ByteBuffer?,
        thenClose: Bool,
        discardBody: Bool
    ) {
        guard let context else { return }
        var headers = headers
        // An HTTP/2 stream ends with the response itself; closing it early would cancel what is still queued.
        let close = request.version.major == 1 && (thenClose || !request.isKeepAlive)
        // HTTP/2 has no Connection header (the stream just ends); HTTP/1 says it will close.
        if close && request.version.major == 1 { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: status, headers: headers)
        write(.head(head), context: context)
        if let body, body.readableBytes > 0, request.method != .HEAD {
            write(.body(.byteBuffer(body)), context: context)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        write(.end(nil), context: context, promise: promise)
        flush(context)
        if close {
            let channel = context.channel
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            state = .discarding(closeAfter: true)
        } else if discardBody {
            state = .discarding(closeAfter: false)
        } else {
            armIdleTimer(environment.settings.idleTimeout)
        }
    }

    // MARK: - Logging

    private func logAccess(_ request: Proxied, status: UInt, note: String?) {
        let seconds = Double((NIODeadline.now() - request.started).nanoseconds) / 1e9
        environment.metrics.requestFinished(
            method: request.head.method,
            status: status,
            seconds: seconds,
            bytesIn: request.bytesIn,
            bytesOut: request.bytesOut
        )
        // The metadata costs a dictionary and eight strings a request: build it only when the line is written.
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": "\(request.head.method.rawValue)", "host": "\(request.host)",
            "path": "\(Self.originForm(request.head.uri))", "status": "\(status)",
            "bytes_in": "\(request.bytesIn)", "bytes_out": "\(request.bytesOut)",
            "duration_ms": "\(Int(seconds * 1000))",
        ]
        if let session = request.session { metadata["session"] = "\(session.id)" }
        if let note { metadata["note"] = "\(note)" }
        logger.info("request", metadata: metadata)
    }

    /// The path and query of a request target, whether it came in origin form or absolute form.
    static func originForm(_ uri: String) -> String {
        // Nearly every request comes in origin form: no search (a string search costs thousands of instructions).
        if uri.utf8.first == UInt8(ascii: "/") { return uri }
        guard let schemeEnd = uri.firstRange(of: "://") else { return uri.isEmpty ? "/" : uri }
        let rest = uri[schemeEnd.upperBound...]
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        let target = String(rest[slash...])
        return target.hasPrefix("?") ? "/" + target : target
    }
}
