import Logging
import NIOCore

/// The DTLS client on a connected UDP channel: runs the handshake when the channel becomes active, then turns
/// records into `ByteBuffer` reads and `ByteBuffer` writes into records, one datagram each.
public final class DTLSClientHandler: ChannelDuplexHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let configuration: DTLSClientConfiguration
    private let connection: DTLSConnection
    private let handshakePromise: EventLoopPromise<Void>
    private let closePromise: EventLoopPromise<DTLSCloseReason>?
    private var remote: SocketAddress?
    private var startedAt = NIODeadline.now()
    private var lastReceived = NIODeadline.now()
    private var ticker: RepeatedTask?
    private var closeReason: DTLSCloseReason?
    /// Runs of datagrams leave as one write each (UDP GSO): set once the handshake is done and a probe passed.
    private var segmentationOffload = false

    /// - Parameters:
    ///   - handshakePromise: succeeded when records may flow, failed with a `DTLSError` saying why not.
    ///   - closePromise: succeeded with the reason when the session ends.
    public init(
        configuration: DTLSClientConfiguration,
        handshakePromise: EventLoopPromise<Void>,
        closePromise: EventLoopPromise<DTLSCloseReason>? = nil
    ) throws {
        self.configuration = configuration
        self.handshakePromise = handshakePromise
        self.closePromise = closePromise
        let context = try DTLSContext.client(verification: configuration.verification)
        connection = try DTLSConnection(
            clientContext: context,
            mtu: configuration.maximumDatagramSize,
            serverName: configuration.serverName
        )
    }

    /// The largest record one write may carry (larger once the handshake is done, toward a server on loopback).
    public var maximumRecordSize: Int { connection.maximumRecordSize }

    // MARK: - Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        finish(.closedLocally)
        context.fireChannelInactive()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if connection.state == .established {
            connection.close()
            flushOutgoing(context)
        }
        finish(.closedLocally)
        context.close(mode: mode, promise: promise)
    }

    private func start(_ context: ChannelHandlerContext) {
        guard ticker == nil, let remote = context.channel.remoteAddress else { return }
        self.remote = remote
        startedAt = .now()
        lastReceived = startedAt
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: timerTick, delay: timerTick) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context)
        }
        handle(connection.advance(), context: context)
        flushOutgoing(context)
    }

    // MARK: - Records

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // A connected UDP socket only hears its peer; the check keeps that true on any platform.
        guard envelope.remoteAddress == remote else { return }
        lastReceived = .now()
        handle(connection.receive(envelope.data), context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushOutgoing(context)
        context.fireChannelReadComplete()
    }

    /// Encrypts the record now; its datagram leaves at the next flush, with the others written before it, so
    /// runs of them can go in one system call. A write with a promise leaves at once.
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        do {
            try connection.send(unwrapOutboundIn(data))
            if promise != nil { sendOutgoing(context, promise: promise) }
        } catch {
            promise?.fail(error)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        flushOutgoing(context)
    }

    private func flushOutgoing(_ context: ChannelHandlerContext) {
        sendOutgoing(context)
        context.flush()
    }

    private func handle(_ events: [DTLSConnectionEvent], context: ChannelHandlerContext) {
        // Out first: a failed handshake leaves an alert to send, and the events below may close the channel.
        sendOutgoing(context)
        for event in events {
            switch event {
            case .handshakeCompleted:
                // The handshake's flights stay within the default size; records toward loopback may be larger.
                do throws(DTLSError) {
                    try connection.enlargeDatagrams(
                        toward: remote,
                        configured: configuration.maximumDatagramSize,
                        loopback: configuration.loopbackDatagramSize
                    )
                } catch {
                    fail(error, context: context)
                    return
                }
                if configuration.segmentationOffload, let remote {
                    segmentationOffload = SegmentationOffloadProbe.works(toward: remote)
                }
                handshakePromise.succeed()
            case .record(let record):
                context.fireChannelRead(wrapInboundOut(record))
            case .closedByPeer:
                finish(.closedByPeer)
                context.close(promise: nil)
            case .failed(let error):
                flushOutgoing(context)
                fail(error, context: context)
            }
        }
    }

    private func sendOutgoing(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        guard let remote else {
            promise?.fail(DTLSError(.notEstablished, "the DTLS channel is not connected"))
            return
        }
        let runs = connection.takeOutgoing()
        guard !runs.isEmpty else {
            promise?.succeed()
            return
        }
        for (index, run) in runs.enumerated() {
            context.write(
                run,
                to: remote,
                offloading: segmentationOffload,
                promise: index == runs.count - 1 ? promise : nil
            )
        }
    }

    // MARK: - Ending

    private func fail(_ error: DTLSError, context: ChannelHandlerContext) {
        finish(.failed(error))
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Records why the session ended, once, and settles both promises.
    private func finish(_ reason: DTLSCloseReason) {
        ticker?.cancel()
        ticker = nil
        guard closeReason == nil else { return }
        closeReason = reason
        if case .failed(let error) = reason {
            handshakePromise.fail(error)
        } else {
            handshakePromise.fail(DTLSError(.notEstablished, "the DTLS session closed before its handshake finished"))
        }
        closePromise?.succeed(reason)
    }

    private func tick(_ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        switch connection.state {
        case .handshaking:
            if now - startedAt > configuration.handshakeTimeout {
                fail(
                    DTLSError(
                        .handshakeTimeout,
                        "no DTLS handshake with \(remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "the server") "
                            + "within \(configuration.handshakeTimeout.nanoseconds / 1_000_000_000) s"
                    ),
                    context: context
                )
            } else if connection.retransmitDelayMilliseconds == 0 {
                handle(connection.handleTimeout(), context: context)
                flushOutgoing(context)
            }
        case .established:
            if now - lastReceived > configuration.idleTimeout {
                connection.close()
                flushOutgoing(context)
                finish(.idleTimeout)
                context.close(promise: nil)
            }
        case .closed:
            break
        }
    }
}
