import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Reads of the server's counters from any thread.
public final class DTLSStatisticsBox: Sendable {
    private let box = NIOLockedValueBox(DTLSServerStatistics())
    public init() {}
    public var snapshot: DTLSServerStatistics { box.withLockedValue { $0 } }
    func update(_ body: (inout DTLSServerStatistics) -> Void) { box.withLockedValue(body) }
}

/// The DTLS server on one UDP socket: demultiplexes datagrams by peer address, answers unknown peers with
/// stateless cookies, runs handshakes, and turns each session into `DTLSServerEvent`s up the pipeline. Above it
/// sits whatever speaks records (the tunnel); below it, a `DatagramChannel`.
public final class DTLSServerHandler: ChannelDuplexHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias InboundOut = DTLSServerEvent
    public typealias OutboundIn = DTLSServerCommand
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// A class, so that a datagram's path holds its session once instead of looking it up by id at every step (each
    /// lookup hashes the id; a request made eight of them, and one of its address).
    private final class Session {
        let id: DTLSSessionID
        let peer: SocketAddress
        let connection: DTLSConnection
        let startedAt: NIODeadline
        var lastReceived: NIODeadline
        /// The random of the ClientHello that started the session: a copy of that ClientHello arriving late (a
        /// retransmission, a duplicate) is not a restart.
        let clientRandom: [UInt8]?
        /// `end` forgot it: whoever still holds it must stop.
        var isEnded = false
        /// It is in `unsent`.
        var hasUnsent = false

        init(
            id: DTLSSessionID,
            peer: SocketAddress,
            connection: DTLSConnection,
            startedAt: NIODeadline,
            lastReceived: NIODeadline,
            clientRandom: [UInt8]?
        ) {
            self.id = id
            self.peer = peer
            self.connection = connection
            self.startedAt = startedAt
            self.lastReceived = lastReceived
            self.clientRandom = clientRandom
        }
    }

    /// The counters, readable from any thread.
    public let statistics: DTLSStatisticsBox

    private let configuration: DTLSServerConfiguration
    private var logger: Logger
    private var certificate: DTLSCertificate
    private var listener: DTLSCookieListener
    private var dtlsContext: DTLSContext
    private var sessions: [DTLSSessionID: Session] = [:]
    private var sessionsByPeer: [SocketAddress: DTLSSessionID] = [:]
    private var handshaking: Set<DTLSSessionID> = []
    private var nextID: UInt64 = 1
    private var ticker: RepeatedTask?
    private var ticks = 0
    private var lastRotation = NIODeadline.now()
    private var lastCapacityWarning: NIODeadline?
    /// Whether a read cycle is under way; events fired outside one need their own read-complete.
    private var inReadCycle = false
    /// Sessions with records encrypted but not yet written: they go at the next flush, together.
    private var unsent: [Session] = []
    /// The session the last datagram came from or the last record went to: datagrams come in runs from one peer.
    private var lastSession: Session?

    /// Loads the certificate now, so a bad one fails at start-up rather than at the first client.
    public convenience init(
        configuration: DTLSServerConfiguration,
        logger: Logger,
        statistics: DTLSStatisticsBox = DTLSStatisticsBox()
    ) throws {
        let certificate = try configuration.certificateSource.currentCertificate()
        try self.init(
            configuration: configuration,
            certificate: certificate,
            context: try DTLSContext.server(certificate: certificate),
            logger: logger,
            statistics: statistics
        )
    }

    init(
        configuration: DTLSServerConfiguration,
        certificate: DTLSCertificate,
        context: DTLSContext,
        logger: Logger,
        statistics: DTLSStatisticsBox
    ) throws {
        self.configuration = configuration
        self.logger = logger
        self.logger[metadataKey: "component"] = "dtls"
        self.certificate = certificate
        self.statistics = statistics
        dtlsContext = context
        listener = try DTLSCookieListener(context: context, mtu: configuration.maximumDatagramSize)
    }

    // MARK: - Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        // Timers run from the start: a datagram can arrive as soon as the socket is bound.
        startTicking(context)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        ticker?.cancel()
        ticker = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        ticker?.cancel()
        ticker = nil
        for id in Array(sessions.keys) { end(id, reason: .closedLocally, sendCloseNotify: false, context: context) }
        context.fireChannelInactive()
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // close_notify to every peer first, so clients know at once instead of after their idle timeout.
        for id in Array(sessions.keys) { end(id, reason: .closedLocally, sendCloseNotify: true, context: context) }
        flushOutgoing(context)
        context.close(mode: mode, promise: promise)
    }

    private func startTicking(_ context: ChannelHandlerContext) {
        guard ticker == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: timerTick, delay: timerTick) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
    }

    // MARK: - Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadCycle = true
        let envelope = unwrapInboundIn(data)
        guard let segmentSize = envelope.metadata?.segmentSize, segmentSize > 0,
            envelope.data.readableBytes > segmentSize
        else {
            return receive(envelope.data, from: envelope.remoteAddress, context: context)
        }
        // Several datagrams read as one (receive offload): each but the last is `segmentSize` long.
        var datagrams = envelope.data
        while datagrams.readableBytes > 0 {
            let datagram = datagrams.readSlice(length: min(segmentSize, datagrams.readableBytes))!
            receive(datagram, from: envelope.remoteAddress, context: context)
        }
    }

    private func receive(_ datagram: ByteBuffer, from peer: SocketAddress, context: ChannelHandlerContext) {
        if let session = lastSession, !session.isEnded, session.peer == peer {
            receive(datagram, for: session, context: context)
        } else if let id = sessionsByPeer[peer], let session = sessions[id] {
            lastSession = session
            receive(datagram, for: session, context: context)
        } else {
            receiveFromUnknownPeer(datagram, peer: peer, context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flushOutgoing(context)
        context.fireChannelReadComplete()
    }

    /// Passes an event up. Outside a read cycle (a timer, a close command) it completes a read of its own:
    /// handlers above, NIOAsyncChannel among them, deliver what they buffered only at read-complete.
    private func fire(_ event: DTLSServerEvent, context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(event))
        if !inReadCycle { context.fireChannelReadComplete() }
    }

    private func receiveFromUnknownPeer(_ datagram: ByteBuffer, peer: SocketAddress, context: ChannelHandlerContext) {
        let key = Array("\(peer.ipAddress ?? "?"):\(peer.port ?? 0)".utf8)
        switch listener.receive(datagram, peerKey: key, allocator: context.channel.allocator) {
        case .dropped:
            statistics.update { $0.droppedFromUnknownPeers += 1 }
        case .reply(let datagrams):
            statistics.update {
                $0.helloVerifyRequestsSent += 1
                $0.largestDatagramSent = max($0.largestDatagramSent, datagrams.map(\.readableBytes).max() ?? 0)
            }
            for datagram in datagrams {
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: peer, data: datagram)), promise: nil)
            }
        case .accepted(let connection):
            // Counted here, not from the shared statistics box: sessions established plus those still in handshake,
            // so the cap holds even when every handshake in flight completes.
            guard handshaking.count < configuration.maximumHandshakes, sessions.count < configuration.maximumSessions
            else {
                statistics.update { $0.refusedAtCapacity += 1 }
                warnAtCapacity(handshakes: handshaking.count, sessions: sessions.count - handshaking.count)
                return
            }
            let id = DTLSSessionID(value: nextID)
            nextID += 1
            let now = NIODeadline.now()
            let session = Session(
                id: id,
                peer: peer,
                connection: connection,
                startedAt: now,
                lastReceived: now,
                clientRandom: Self.clientRandom(of: datagram)
            )
            sessions[id] = session
            sessionsByPeer[peer] = id
            handshaking.insert(id)
            statistics.update { $0.sessionsHandshaking = handshaking.count }
            handle(connection.advance(), for: session, context: context)
        }
    }

    private func receive(_ datagram: ByteBuffer, for session: Session, context: ChannelHandlerContext) {
        let id = session.id
        let wasEstablished = session.connection.state == .established
        let events = session.connection.receive(datagram)
        if events.isEmpty {
            // Undecryptable, replayed or duplicated. A new ClientHello from the same address means the client
            // restarted on the same port (a NAT keeps it): its old session is gone, so let it start a new one. A
            // late copy of the ClientHello this session began with is only a duplicate.
            if wasEstablished && Self.isClientHello(datagram) && Self.clientRandom(of: datagram) != session.clientRandom
            {
                end(id, reason: .closedByPeer, sendCloseNotify: false, context: context)
                receiveFromUnknownPeer(datagram, peer: session.peer, context: context)
                return
            }
            statistics.update { $0.droppedForSessions += 1 }
        } else {
            // Only authenticated input keeps a session alive: spoofed junk must not.
            session.lastReceived = .now()
        }
        handle(events, for: session, context: context)
    }

    /// A DTLS handshake record in epoch 0 carrying a ClientHello (RFC 6347 §4.1 and §4.2.2 layouts).
    static func isClientHello(_ datagram: ByteBuffer) -> Bool {
        guard datagram.readableBytes > 13,
            let bytes = datagram.getBytes(at: datagram.readerIndex, length: 14)
        else { return false }
        return bytes[0] == 22 && bytes[1] == 0xfe && bytes[3] == 0 && bytes[4] == 0 && bytes[13] == 1
    }

    /// The 32-byte random of a ClientHello whose first fragment is in `datagram`: after the record header (13
    /// bytes), the handshake header (12) and the client version (2). nil for anything else.
    static func clientRandom(of datagram: ByteBuffer) -> [UInt8]? {
        guard isClientHello(datagram), datagram.readableBytes >= 59,
            let fragmentOffset = datagram.getBytes(at: datagram.readerIndex + 19, length: 3),
            fragmentOffset == [0, 0, 0]
        else { return nil }
        return datagram.getBytes(at: datagram.readerIndex + 27, length: 32)
    }

    private func handle(_ events: [DTLSConnectionEvent], for session: Session, context: ChannelHandlerContext) {
        guard !session.isEnded else { return }
        let id = session.id
        for event in events {
            // A handler above may have closed the session while an earlier event was delivered.
            guard !session.isEnded else { break }
            switch event {
            case .handshakeCompleted:
                handshaking.remove(id)
                statistics.update {
                    $0.handshakesCompleted += 1
                    $0.sessionsHandshaking = handshaking.count
                    $0.sessionsEstablished += 1
                }
                logger.debug(
                    "DTLS session established",
                    metadata: ["hopgate.dtls.session": "\(id)", "peer": "\(session.peer)"]
                )
                do throws(DTLSError) {
                    try session.connection.enlargeDatagrams(
                        toward: session.peer,
                        configured: configuration.maximumDatagramSize,
                        loopback: configuration.loopbackDatagramSize
                    )
                } catch {
                    end(id, reason: .failed(error), sendCloseNotify: true, context: context)
                    break
                }
                fire(
                    .established(id, peer: session.peer, maximumRecordSize: session.connection.maximumRecordSize),
                    context: context
                )
            case .record(let record):
                fire(.record(id, record), context: context)
            case .closedByPeer:
                end(id, reason: .closedByPeer, sendCloseNotify: false, context: context)
            case .failed(let error):
                logger.debug(
                    "DTLS session failed",
                    metadata: ["hopgate.dtls.session": "\(id)", "peer": "\(session.peer)", "error": "\(error)"]
                )
                end(id, reason: .failed(error), sendCloseNotify: false, context: context)
            }
        }
        sendOutgoing(of: session, context: context)
    }

    // MARK: - Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .send(let id, let record):
            guard let session = session(id) else {
                promise?.fail(DTLSError(.notEstablished, "the DTLS session \(id) is closed"))
                return
            }
            do {
                try session.connection.send(record)
                // Its datagram leaves at the next flush, with the others written before it; with a promise, now.
                if promise != nil {
                    sendOutgoing(of: session, context: context, promise: promise)
                } else if !session.hasUnsent {
                    session.hasUnsent = true
                    unsent.append(session)
                }
            } catch {
                promise?.fail(error)
            }
        case .close(let id):
            end(id, reason: .closedLocally, sendCloseNotify: true, context: context)
            promise?.succeed()
        }
    }

    public func flush(context: ChannelHandlerContext) {
        flushOutgoing(context)
    }

    private func flushOutgoing(_ context: ChannelHandlerContext) {
        for session in unsent {
            session.hasUnsent = false
            if !session.isEnded { sendOutgoing(of: session, context: context) }
        }
        unsent.removeAll(keepingCapacity: true)
        context.flush()
    }

    /// The live session with this id.
    private func session(_ id: DTLSSessionID) -> Session? {
        if let session = lastSession, session.id == id, !session.isEnded { return session }
        guard let session = sessions[id] else { return nil }
        lastSession = session
        return session
    }

    private func sendOutgoing(
        of session: Session,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>? = nil
    ) {
        let runs = session.connection.takeOutgoing()
        guard !runs.isEmpty else {
            promise?.succeed()
            return
        }
        let largest = runs.map { $0.segmentSize ?? $0.bytes.readableBytes }.max() ?? 0
        statistics.update { $0.largestDatagramSent = max($0.largestDatagramSent, largest) }
        for (index, run) in runs.enumerated() {
            // One datagram a write: the edge's sessions share one socket, and a failed offloaded write (EIO on a
            // path that cannot take it) would close it for all of them.
            context.write(run, to: session.peer, offloading: false, promise: index == runs.count - 1 ? promise : nil)
        }
    }

    /// Forgets a session and tells the pipeline; with `sendCloseNotify`, the peer is told too.
    private func end(
        _ id: DTLSSessionID,
        reason: DTLSCloseReason,
        sendCloseNotify: Bool,
        context: ChannelHandlerContext
    ) {
        guard let session = sessions.removeValue(forKey: id) else { return }
        session.isEnded = true
        if lastSession === session { lastSession = nil }
        sessionsByPeer[session.peer] = nil
        let wasHandshaking = handshaking.remove(id) != nil
        session.connection.close()
        if sendCloseNotify { sendOutgoing(of: session, context: context) }
        statistics.update {
            $0.sessionsHandshaking = handshaking.count
            // A handshake that ends before it completes failed, whatever ended it.
            if wasHandshaking { $0.handshakesFailed += 1 } else { $0.sessionsEstablished -= 1 }
        }
        if !wasHandshaking { fire(.closed(id, reason), context: context) }
    }

    // MARK: - Timers

    private func tick(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        for id in Array(handshaking) {
            guard let session = sessions[id] else { continue }
            if now - session.startedAt > configuration.handshakeTimeout {
                let error = DTLSError(.handshakeTimeout, "the DTLS handshake with \(session.peer) took too long")
                end(id, reason: .failed(error), sendCloseNotify: false, context: context)
            } else if session.connection.retransmitDelayMilliseconds == 0 {
                handle(session.connection.handleTimeout(), for: session, context: context)
            }
        }
        ticks += 1
        if ticks % 10 == 0 {
            for session in sessions.values where !handshaking.contains(session.id) {
                if now - session.lastReceived > configuration.idleTimeout {
                    logger.debug("DTLS session idle, closing", metadata: ["hopgate.dtls.session": "\(session.id)"])
                    end(session.id, reason: .idleTimeout, sendCloseNotify: true, context: context)
                }
            }
        }
        if now - lastRotation > configuration.cookieSecretLifetime {
            lastRotation = now
            dtlsContext.rotateCookieSecret()
            refreshCertificate()
        }
        flushOutgoing(context)
    }

    /// Uses a changed certificate for new sessions; running sessions keep theirs.
    private func refreshCertificate() {
        do {
            let latest = try configuration.certificateSource.currentCertificate()
            guard latest != certificate else { return }
            let newContext = try DTLSContext.server(certificate: latest)
            listener = try DTLSCookieListener(context: newContext, mtu: configuration.maximumDatagramSize)
            dtlsContext = newContext
            certificate = latest
            logger.info("DTLS certificate changed; new sessions use it")
        } catch {
            logger.error("cannot use the new DTLS certificate; keeping the old one", metadata: ["error": "\(error)"])
        }
    }

    private func warnAtCapacity(handshakes: Int, sessions: Int) {
        let now = NIODeadline.now()
        if let last = lastCapacityWarning, now - last < .seconds(10) { return }
        lastCapacityWarning = now
        logger.warning(
            "DTLS server at capacity: refusing new handshakes",
            metadata: [
                "handshakes": "\(handshakes)", "maximum_handshakes": "\(configuration.maximumHandshakes)",
                "sessions": "\(sessions)", "maximum_sessions": "\(configuration.maximumSessions)",
            ]
        )
    }
}
