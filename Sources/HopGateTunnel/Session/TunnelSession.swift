import HopGateCore
import NIOCore

/// One exchange: its stream and the sequence number the edge gave it. Stream ids are reused once both ends finish;
/// the sequence number on every frame tells a late frame for the old exchange from one for the new.
public struct ExchangeID: Hashable, Sendable, CustomStringConvertible {
    public let stream: UInt16
    public let sequence: UInt32
    public var description: String { "\(stream)#\(sequence)" }
}

/// One tunnel session at one end, without sockets or clocks: DTLS records in and out, HTTP exchanges as events and
/// calls. It runs the session handshake in plain records, then SCTP (RFC 8261) in records, with one stream per
/// exchange and the control stream 0 for pings and GOAWAY. The owner (a NIO handler) feeds it records and timer
/// ticks and sends the records it returns; back to back through a simulated link, two of them make a whole tunnel
/// in a test.
public final class TunnelSession {
    public enum Role: Sendable {
        case edge
        case client
    }

    /// What the owner must do or tell its application.
    public enum Output: Equatable, Sendable {
        /// Send this DTLS record to the peer.
        case record(ByteBuffer)
        /// The client's Hello needs a credential check (edge only): answer with `verdict`.
        case verify(EdgeHandshake.Action)
        /// The handshake succeeded; SCTP is starting.
        case established(SessionHandshakeMessage.Welcome)
        /// SCTP is up (once per session): the edge may open exchanges from now on.
        case ready
        /// The edge refused the session (client only), or refused the client (edge only); close it.
        case rejected(SessionHandshakeMessage.Reject)
        /// A new exchange from the edge (client only): the request head.
        case exchangeOpened(ExchangeID, TunnelFrame)
        /// A response head (edge only).
        case head(ExchangeID, TunnelFrame)
        case data(ExchangeID, ByteBuffer)
        case end(ExchangeID)
        case aborted(ExchangeID, AbortReason)
        /// The exchange may send more data: credit or buffer space came back.
        case writable(ExchangeID)
        /// The session is over; close the DTLS session.
        case closed(String)
    }

    private enum Phase {
        case handshaking
        case established
        case closed
    }

    public let role: Role
    /// When set, the calls an application makes (open, head, data, end, credit, abort) only queue their frames;
    /// `flush` sends them. An owner that flushes once per event-loop turn lets frames of one exchange that come
    /// together (a small response's head, body and end) leave as one message in one packet.
    public var defersSending = false
    /// How many calls queued frames that no `flush` has sent yet.
    public private(set) var deferredCalls = 0
    /// A call queued frames that no `flush` has sent yet.
    public var hasDeferredFrames: Bool { deferredCalls > 0 }
    private var phase = Phase.handshaking
    private var edgeHandshake: EdgeHandshake?
    private var clientHandshake: ClientHandshake?
    private var association: SCTPAssociation?
    private var exchanges = ExchangeTable()
    private var nextSequence: UInt32 = 1
    private var liveness: LivenessStateMachine?
    private var welcome: SessionHandshakeMessage.Welcome?
    private var limits = FrameLimits.standard
    /// Frames SCTP had no room for yet, in order, and their size: bounded, since a peer that stops acknowledging
    /// must not make this end buffer without end.
    private var pending: [(stream: UInt16, message: ByteBuffer)] = []
    private var pendingBytes = 0
    private var pongPending = false
    /// Above this backlog for SCTP, writers are told there is no room (`sendableBytes` is 0) until it drains: SCTP's
    /// own send buffer pushes back on the applications, whatever credit they hold.
    static let pendingHighWater = 1024 * 1024
    /// How much may wait for SCTP before the session is given up: writers stop at the high-water mark, so only a
    /// peer that stops acknowledging while pinging can get here.
    static let maximumPendingBytes = 16 * 1024 * 1024
    /// The largest data chunk: one SCTP message with the exchange sequence, the frame's length and its type.
    public static let maximumChunkSize = SCTPAssociation.maximumMessageSize - 9
    /// Data chunks of at least this many bytes go to SCTP at once, even while sending is deferred.
    static let sendAtOnceBytes = 32 * 1024
    /// The data chunk `sendableBytes` offers: the largest whose message is a whole number of SCTP packets.
    public let dataChunkSize: Int

    /// SCTP cuts a message into packets of `pathMTU - 20` bytes (20 is an I-DATA chunk's header), so a message of
    /// a whole number of packets leaves no small packet behind. A 64 KiB message at loopback's 16 KiB packets went
    /// as four full packets and one of 200 bytes: a fifth of the datagrams of a download, each costing what a full
    /// one does but for the copying.
    static func dataChunkSize(pathMTU: UInt32) -> Int {
        let packetPayload = (Int(pathMTU) - 20) / 4 * 4
        let packets = max(1, SCTPAssociation.maximumMessageSize / packetPayload)
        return min(packets * packetPayload, SCTPAssociation.maximumMessageSize) - 9
    }
    /// Why the peer said GOAWAY, once it has.
    private var peerGoAwayReason: String?
    /// The strings of the heads this session received lately, to be found again (see `RecentStrings`).
    private var recentStrings = RecentStrings()
    private var handshakeStartedAt: UInt64?
    /// How long a session may take to finish its handshake.
    static let handshakeTimeoutMilliseconds: UInt64 = 30_000
    private var nextStream: UInt16 = 1
    /// The client's Hello and when it was last sent: datagrams get lost, so it is sent again until answered.
    private var helloRecord: ByteBuffer?
    private var helloSentAt: UInt64 = 0
    /// The edge's Welcome, sent again when a retransmitted Hello shows the first one was lost.
    private var welcomeRecord: ByteBuffer?
    /// How often an unanswered Hello is sent again.
    static let helloRetransmitMilliseconds: UInt64 = 500
    /// Streams each way: as configured, then as both ends agreed once SCTP is up.
    private var streams: UInt16
    private var announcedReady = false
    private let settings: SCTPAssociation.Settings

    /// The edge's end of a session; `sessionID` goes into the Welcome.
    public init(
        edgeSessionID sessionID: UInt64,
        policy: EdgeHandshake.Policy = .init(),
        sctp: SCTPAssociation.Settings = .init()
    ) {
        role = .edge
        edgeHandshake = EdgeHandshake(sessionID: sessionID, policy: policy)
        settings = sctp
        dataChunkSize = Self.dataChunkSize(pathMTU: sctp.pathMTU)
        streams = sctp.streams
    }

    /// The client's end, which speaks first: send the records `start` returns.
    public init(client handshake: ClientHandshake, sctp: SCTPAssociation.Settings = .init()) {
        role = .client
        clientHandshake = handshake
        settings = sctp
        dataChunkSize = Self.dataChunkSize(pathMTU: sctp.pathMTU)
        streams = sctp.streams
    }

    deinit { association?.close() }

    /// The client's Hello.
    public func start(now: UInt64) throws -> [Output] {
        try collect { try start(now: now, into: &$0) }
    }

    /// Each call that returns outputs also has a form that appends them to the caller's array: an owner that acts on
    /// many outputs (`TunnelSessionDriver`) keeps one array instead of allocating and joining several per record.
    public func start(now: UInt64, into outputs: inout [Output]) throws {
        guard let clientHandshake else { return }
        let record = try clientHandshake.helloRecord()
        helloRecord = record
        helloSentAt = now
        handshakeStartedAt = now
        outputs.append(.record(record))
    }

    private func collect(_ body: (inout [Output]) throws -> Void) rethrows -> [Output] {
        var outputs: [Output] = []
        try body(&outputs)
        return outputs
    }

    public var roundTripMilliseconds: UInt64? { liveness?.roundTripMilliseconds }
    /// A probing ping is out and unanswered while exchanges wait: the peer may be gone.
    public var isSuspect: Bool { liveness?.isProbing ?? false }
    public var openExchanges: Int { exchanges.count }

    /// The streams exchanges may use, plus the control stream: as configured, then as agreed once SCTP is up.
    public var streamCount: UInt16 { streams }

    /// Frames this end has not yet handed to SCTP, or that SCTP has not yet had acknowledged: closing now would
    /// lose them (close aborts the association).
    public var hasUndeliveredData: Bool { !pending.isEmpty || (association?.outstandingChunks ?? 0) > 0 }
    /// How many messages wait for SCTP to take them (see `enqueue`).
    var queuedMessages: Int { pending.count }

    /// Whether the exchange is still open at this end.
    public func isActive(_ id: ExchangeID) -> Bool { exchanges[id.stream]?.sequence == id.sequence }

    /// The client's Hello, once the edge accepted it (edge only): its path prefixes and version.
    public private(set) var clientHello: SessionHandshakeMessage.Hello?

    /// The bound domain and what the edge offered, once the session is up.
    public var establishedWelcome: SessionHandshakeMessage.Welcome? { welcome }

    // MARK: - Records in

    public func receive(_ record: ByteBuffer, now: UInt64) -> [Output] {
        collect { receive(record, now: now, into: &$0) }
    }

    public func receive(_ record: ByteBuffer, now: UInt64, into outputs: inout [Output]) {
        switch phase {
        case .closed:
            return
        case .handshaking:
            if handshakeStartedAt == nil { handshakeStartedAt = now }
            // At the client, SCTP's INIT may overtake the Welcome: ignore it, SCTP sends it again. The edge expects
            // nothing but a Hello (the client starts SCTP only after the Welcome): anything else is a bad Hello.
            guard role == .edge || SessionHandshakeMessage.isHandshake(record) else { return }
            receiveHandshake(record, now: now, into: &outputs)
        case .established:
            if SessionHandshakeMessage.isHandshake(record) {
                // The client sent its Hello again: our Welcome was lost.
                if role == .edge, let welcomeRecord { outputs.append(.record(welcomeRecord)) }
                return
            }
            guard let association else { return }
            liveness?.received(now: now)
            association.input(record)
            pump(now: now, into: &outputs)
        }
    }

    private func receiveHandshake(_ record: ByteBuffer, now: UInt64, into outputs: inout [Output]) {
        if var handshake = edgeHandshake {
            let action = handshake.receive(record)
            edgeHandshake = handshake
            return handleEdge(action, now: now, into: &outputs)
        }
        guard var handshake = clientHandshake else { return }
        let outcome = handshake.receive(record)
        clientHandshake = handshake
        switch outcome {
        case .waiting:
            return
        case .rejected(let reject):
            phase = .closed
            outputs += [.rejected(reject), .closed(reject.message)]
        case .failed(let why):
            phase = .closed
            outputs.append(.closed(why))
        case .welcomed(let welcome):
            establish(welcome, now: now, into: &outputs)
        }
    }

    /// The owner's answer to `.verify` (edge only).
    public func verdict(_ verdict: EdgeHandshake.Verdict, now: UInt64) -> [Output] {
        collect { self.verdict(verdict, now: now, into: &$0) }
    }

    public func verdict(_ verdict: EdgeHandshake.Verdict, now: UInt64, into outputs: inout [Output]) {
        guard var handshake = edgeHandshake, phase == .handshaking else { return }
        let action = handshake.verdict(verdict)
        edgeHandshake = handshake
        handleEdge(action, now: now, into: &outputs)
    }

    private func handleEdge(_ action: EdgeHandshake.Action, now: UInt64, into outputs: inout [Output]) {
        switch action {
        case .none:
            return
        case .verifyKey, .verifyToken:
            outputs.append(.verify(action))
        case .reject(let record, let reject):
            phase = .closed
            outputs += [.record(record), .rejected(reject), .closed(reject.message)]
        case .welcome(let record, let welcome, let hello):
            welcomeRecord = record
            clientHello = hello
            outputs.append(.record(record))
            establish(welcome, now: now, into: &outputs)
        }
    }

    private func establish(_ welcome: SessionHandshakeMessage.Welcome, now: UInt64, into outputs: inout [Output]) {
        do {
            association = try SCTPAssociation(settings: settings)
        } catch {
            phase = .closed
            outputs.append(.closed("cannot start SCTP: \(error)"))
            return
        }
        self.welcome = welcome
        limits = FrameLimits(
            maximumHeaderBytes: Int(welcome.maximumHeaderBytes),
            maximumHeaderCount: FrameLimits.standard.maximumHeaderCount
        )
        liveness = LivenessStateMachine(
            keepaliveIntervalMilliseconds: UInt64(welcome.keepaliveIntervalMilliseconds),
            idleTimeoutMilliseconds: UInt64(welcome.idleTimeoutMilliseconds),
            now: now
        )
        phase = .established
        outputs.append(.established(welcome))
        pump(now: now, into: &outputs)
    }

    // MARK: - Timers

    /// Call on a timer (every few milliseconds): drives keepalive; SCTP's own timers are the process-wide
    /// `SCTPStack.advanceTimers`, after which every session's `tick` collects what they produced.
    public func tick(now: UInt64) -> [Output] {
        collect { tick(now: now, into: &$0) }
    }

    public func tick(now: UInt64, into outputs: inout [Output]) {
        if phase == .handshaking {
            let started = handshakeStartedAt ?? now
            handshakeStartedAt = started
            if now >= started + Self.handshakeTimeoutMilliseconds {
                return close(
                    "no session handshake within \(Self.handshakeTimeoutMilliseconds / 1000) s",
                    into: &outputs
                )
            }
        }
        if phase == .handshaking, let helloRecord, now >= helloSentAt + Self.helloRetransmitMilliseconds {
            helloSentAt = now
            outputs.append(.record(helloRecord))
            return
        }
        guard phase == .established, var liveness else { return }
        let action = liveness.tick(now: now, exchangesWaiting: !exchanges.isEmpty)
        self.liveness = liveness
        switch action {
        case .sendPing(let value):
            queueControl(.ping(value))
        case .idleTimeout:
            return close("the peer sent nothing for \(liveness.idleTimeoutMilliseconds) ms", into: &outputs)
        case .unresponsive:
            return close(
                "the peer did not answer a ping within \(LivenessStateMachine.probeTimeoutMilliseconds) ms "
                    + "while \(exchanges.count) exchange(s) waited",
                into: &outputs
            )
        case .sendPong, nil:
            break
        }
        // The edge sends GOAWAY only when it shuts down: once the last exchange is done and delivered, the client
        // leaves at once and connects again (to the edge's next run), rather than waiting for the edge's close,
        // which a hard stop never sends: the idle timeout would then keep the domain offline for 45 s.
        if role == .client, let reason = peerGoAwayReason, exchanges.isEmpty, !hasUndeliveredData {
            return close("the edge is going away: \(reason)", into: &outputs)
        }
        pump(now: now, into: &outputs)
    }

    // MARK: - Exchanges (calls)

    /// Opens an exchange with a request head (edge only). Returns it, or nil when the session takes no new exchanges
    /// now (all streams busy, or going away). Throws `.headersTooLarge` for a head over one message.
    public func openExchange(_ head: TunnelFrame, now: UInt64) throws -> (ExchangeID, [Output])? {
        var outputs: [Output] = []
        guard let id = try openExchange(head, now: now, into: &outputs) else { return nil }
        return (id, outputs)
    }

    public func openExchange(_ head: TunnelFrame, now: UInt64, into outputs: inout [Output]) throws -> ExchangeID? {
        guard role == .edge, phase == .established, announcedReady, liveness?.acceptsNewExchanges == true,
            let welcome, exchanges.count < Int(welcome.maximumConcurrentExchanges), exchanges.count < Int(streams) - 1
        else { return nil }
        var stream = nextStream
        while exchanges[stream] != nil { stream = stream % (streams - 1) + 1 }
        nextStream = stream % (streams - 1) + 1
        let id = ExchangeID(stream: stream, sequence: nextSequence)
        nextSequence = nextSequence == UInt32.max ? 1 : nextSequence + 1
        var exchange = ExchangeStateMachine(role: .edge, initialCredit: Int(welcome.initialCredit))
        let message = try Self.message(try exchange.sendHead(head), sequence: id.sequence)
        exchanges[stream] = (id.sequence, exchange)
        enqueue(message, on: stream)
        pumpUnlessDeferred(now: now, into: &outputs)
        return id
    }

    /// Sends a response head (client only).
    public func sendHead(_ head: TunnelFrame, on id: ExchangeID, now: UInt64) throws -> [Output] {
        try collect { try sendHead(head, on: id, now: now, into: &$0) }
    }

    public func sendHead(_ head: TunnelFrame, on id: ExchangeID, now: UInt64, into outputs: inout [Output]) throws {
        try withExchange(id, now: now, into: &outputs) { try $0.sendHead(head) }
    }

    /// How many data bytes the exchange may send now, in one `sendData`.
    public func sendableBytes(on id: ExchangeID) -> Int {
        guard let exchange = exchanges[id.stream], exchange.sequence == id.sequence,
            pendingBytes < Self.pendingHighWater
        else { return 0 }
        return min(exchange.machine.sendableBytes, dataChunkSize)
    }

    /// Sends body bytes; at most `sendableBytes`.
    public func sendData(_ bytes: ByteBuffer, on id: ExchangeID, now: UInt64) throws -> [Output] {
        try collect { try sendData(gathering: [bytes], on: id, now: now, into: &$0) }
    }

    /// Sends body bytes from several buffers as one data frame (their order kept); at most `sendableBytes` in all.
    /// A writer whose reads do not match `dataChunkSize` fills whole messages this way without copying twice.
    public func sendData(gathering pieces: [ByteBuffer], on id: ExchangeID, now: UInt64) throws -> [Output] {
        try collect { try sendData(gathering: pieces, on: id, now: now, into: &$0) }
    }

    public func sendData(
        gathering pieces: [ByteBuffer],
        on id: ExchangeID,
        now: UInt64,
        into outputs: inout [Output]
    ) throws {
        let count = pieces.reduce(0) { $0 + $1.readableBytes }
        guard count <= Self.maximumChunkSize else {
            throw AbortReason(.internalError, "a chunk of \(count) bytes; at most \(Self.maximumChunkSize)")
        }
        guard var exchange = exchanges[id.stream], exchange.sequence == id.sequence else {
            throw AbortReason(.cancelled, "the exchange \(id) is over")
        }
        try exchange.machine.sendData(count: count)
        exchanges[id.stream] = exchange
        var message = ByteBufferAllocator().buffer(capacity: 9 + count)
        message.writeInteger(id.sequence)
        message.writeInteger(UInt32(1 + count))  // the frame's length: its type, then the bytes
        TunnelFrame.encodeData(pieces, into: &message)
        enqueue(message, on: id.stream)
        // A chunk this large fills packets of its own, so waiting to bundle it gains nothing, and a writer that
        // reads a megabyte from its source in one turn would otherwise send it all only at the turn's end.
        if count >= Self.sendAtOnceBytes { return pump(now: now, into: &outputs) }
        pumpUnlessDeferred(now: now, into: &outputs)
    }

    public func sendEnd(on id: ExchangeID, now: UInt64) throws -> [Output] {
        try collect { try sendEnd(on: id, now: now, into: &$0) }
    }

    public func sendEnd(on id: ExchangeID, now: UInt64, into outputs: inout [Output]) throws {
        try withExchange(id, now: now, into: &outputs) { try $0.sendEnd() }
    }

    /// The application took `bytes` of received data from the exchange: grants the peer more credit.
    public func consumed(_ bytes: Int, on id: ExchangeID, now: UInt64) -> [Output] {
        collect { consumed(bytes, on: id, now: now, into: &$0) }
    }

    public func consumed(_ bytes: Int, on id: ExchangeID, now: UInt64, into outputs: inout [Output]) {
        guard var exchange = exchanges[id.stream], exchange.sequence == id.sequence else { return }
        let grant = exchange.machine.consumed(bytes)
        exchanges[id.stream] = exchange
        guard let grant, let message = try? Self.message(grant, sequence: id.sequence) else {
            return pumpUnlessDeferred(now: now, into: &outputs)
        }
        enqueue(message, on: id.stream)
        // A grant leaves at once, not with the deferred frames at the end of the turn: the peer's sender may be
        // waiting for it, and an edge that read a whole window in one turn granted only after it, so the two
        // ends took turns instead of overlapping (a download's client and edge each about half busy).
        pump(now: now, into: &outputs)
    }

    public func abort(_ id: ExchangeID, _ reason: AbortReason, now: UInt64) -> [Output] {
        collect { abort(id, reason, now: now, into: &$0) }
    }

    public func abort(_ id: ExchangeID, _ reason: AbortReason, now: UInt64, into outputs: inout [Output]) {
        guard var exchange = exchanges[id.stream], exchange.sequence == id.sequence else { return }
        if let frame = exchange.machine.abort(reason), let message = try? Self.message(frame, sequence: id.sequence) {
            enqueue(message, on: id.stream)
        }
        exchanges[id.stream] = nil
        pumpUnlessDeferred(now: now, into: &outputs)
    }

    /// Announces GOAWAY: no new exchanges; those in flight may finish.
    public func goAway(_ reason: String, now: UInt64) -> [Output] {
        collect { goAway(reason, now: now, into: &$0) }
    }

    public func goAway(_ reason: String, now: UInt64, into outputs: inout [Output]) {
        guard phase == .established, var liveness, liveness.goAway() else { return }
        self.liveness = liveness
        queueControl(.goAway(reason: String(reason.prefix(1024))))
        pump(now: now, into: &outputs)
    }

    public func close(_ why: String) -> [Output] {
        collect { close(why, into: &$0) }
    }

    public func close(_ why: String, into outputs: inout [Output]) {
        guard phase != .closed else { return }
        phase = .closed
        association?.close()
        exchanges.removeAll()
        pending.removeAll()
        pendingBytes = 0
        outputs.append(.closed(why))
    }

    private func withExchange(
        _ id: ExchangeID,
        now: UInt64,
        into outputs: inout [Output],
        _ body: (inout ExchangeStateMachine) throws -> TunnelFrame
    ) throws {
        guard var exchange = exchanges[id.stream], exchange.sequence == id.sequence else {
            throw AbortReason(.cancelled, "the exchange \(id) is over")
        }
        let message = try Self.message(try body(&exchange.machine), sequence: id.sequence)
        exchanges[id.stream] = exchange
        enqueue(message, on: id.stream)
        if exchange.machine.isFinished { exchanges[id.stream] = nil }
        pumpUnlessDeferred(now: now, into: &outputs)
    }

    /// Sends what the application's calls queued (with `defersSending`).
    public func flush(now: UInt64) -> [Output] {
        collect { pump(now: now, into: &$0) }
    }

    public func flush(now: UInt64, into outputs: inout [Output]) {
        pump(now: now, into: &outputs)
    }

    private func pumpUnlessDeferred(now: UInt64, into outputs: inout [Output]) {
        guard defersSending else { return pump(now: now, into: &outputs) }
        deferredCalls += 1
    }

    // MARK: - Moving frames

    /// An exchange frame as one SCTP message: the exchange's sequence number, then the frame's length and the
    /// frame. Frames of one exchange that wait together are sent as one message (the sequence once, then each
    /// length and frame), so a small response's head, body and end travel in one packet. Throws
    /// `.headersTooLarge` when it would not fit one message.
    static func message(_ frame: TunnelFrame, sequence: UInt32) throws -> ByteBuffer {
        // Sized at once: growing by doubling would copy a 64 KiB body several times, and a head a few.
        var buffer = ByteBufferAllocator().buffer(capacity: 8 + frame.encodedSizeEstimate)
        buffer.writeInteger(sequence)
        buffer.writeInteger(UInt32(0))  // the length, written once the frame is
        do {
            try frame.encode(into: &buffer)
            buffer.setInteger(UInt32(buffer.readableBytes - 8), at: buffer.readerIndex + 4)
        } catch {
            // Only heads can fail to encode (a name or value over 64 KiB): it is the head that is too large.
            throw AbortReason(.headersTooLarge, "\(error)")
        }
        guard buffer.readableBytes <= SCTPAssociation.maximumMessageSize else {
            throw AbortReason(.headersTooLarge, "a frame of \(buffer.readableBytes) bytes does not fit one message")
        }
        return buffer
    }

    private func queueControl(_ frame: TunnelFrame) {
        if case .pong = frame {
            // One pong in the queue is enough: a peer pinging into a full buffer gets no more.
            guard !pongPending else { return }
            pongPending = true
        }
        guard let message = try? frame.encoded() else { return }
        enqueue(message, on: 0)
    }

    /// Queues a message for SCTP, joined to the one before it when that one is the same exchange's and not yet
    /// sent (up to the message size), so an exchange's frames that come together (a small response's head, body
    /// and end; a request's head and end) leave as one message, one `usrsctp_sendv` and one chunk. The message
    /// before is taken out of the queue while it grows, so it is held once and appended to in place: joining the
    /// queue's runs in a pass before each send copied every run into a new buffer: 1.2k instructions a request at
    /// the edge and 1.7k at the client (callgrind).
    private func enqueue(_ message: ByteBuffer, on stream: UInt16) {
        if stream != 0, var last = pending.popLast() {
            if last.stream == stream, message.readableBytes > 4,
                last.message.readableBytes + message.readableBytes - 4 <= SCTPAssociation.maximumMessageSize,
                let sequence = Self.sequence(of: message), Self.sequence(of: last.message) == sequence
            {
                // Its sequence is already there: the frames after it.
                last.message.writeImmutableBuffer(
                    message.getSlice(at: message.readerIndex + 4, length: message.readableBytes - 4)!
                )
                pendingBytes += message.readableBytes - 4
                pending.append(last)
                return
            }
            pending.append(last)
        }
        pending.append((stream, message))
        pendingBytes += message.readableBytes
    }

    /// Sends what SCTP has room for, reads what arrived, and collects the packets to send.
    private func pump(now: UInt64, into outputs: inout [Output]) {
        deferredCalls = 0
        guard let association, phase == .established else { return }
        // Read first: acknowledgements free send space.
        for (stream, message) in association.receive() {
            deliver(message, on: stream, now: now, into: &outputs)
            guard phase == .established else { return }
        }
        if association.state == .closed { return close("the SCTP association ended", into: &outputs) }
        if !announcedReady && association.state == .connected {
            announcedReady = true
            // The peer may have offered fewer streams than this end: only those both have exist.
            let agreed = association.negotiatedStreams
            if agreed >= 2 { streams = min(streams, agreed) }
            outputs.append(.ready)
        }
        let wasAboveHighWater = pendingBytes >= Self.pendingHighWater
        if association.state == .connected {
            var sent = 0
            // Several messages (of different exchanges) leave bundled: SCTP holds each but the last and sends them
            // together with it, in one packet where they fit, instead of a packet (a DTLS record, a datagram, a
            // wakeup at the peer) each.
            let bundles = pending.count > 1
            if bundles { association.setSendsAtOnce(false) }
            defer { if bundles { association.setSendsAtOnce(true) } }
            do {
                while sent < pending.count {
                    if bundles && sent == pending.count - 1 { association.setSendsAtOnce(true) }
                    guard try association.send(pending[sent].message, on: pending[sent].stream) else { break }
                    if pending[sent].stream == 0 && pongPending { pongPending = false }
                    pendingBytes -= pending[sent].message.readableBytes
                    sent += 1
                }
            } catch {
                return close("SCTP refused a message: \(error)", into: &outputs)
            }
            if sent > 0 { pending.removeFirst(sent) }
        }
        if pendingBytes > Self.maximumPendingBytes {
            return close("the peer stopped acknowledging: \(pendingBytes) bytes are waiting", into: &outputs)
        }
        if wasAboveHighWater && pendingBytes < Self.pendingHighWater {
            // Room again: every writer may continue.
            outputs += exchanges.ids.map { .writable($0) }
        }
        for packet in association.takeOutgoing() { outputs.append(.record(packet)) }
    }

    /// The exchange sequence an exchange message starts with.
    private static func sequence(of message: ByteBuffer) -> UInt32? {
        message.getInteger(at: message.readerIndex, as: UInt32.self)
    }

    private func deliver(_ message: ByteBuffer, on stream: UInt16, now: UInt64, into outputs: inout [Output]) {
        if stream == 0 {
            guard let frame = try? TunnelFrame(decoding: message, limits: limits, strings: &recentStrings) else {
                return close("a malformed control frame", into: &outputs)
            }
            return control(frame, now: now, into: &outputs)
        }
        var body = message
        guard let sequence = body.readInteger(as: UInt32.self) else {
            return close("an exchange message without its sequence", into: &outputs)
        }
        let id = ExchangeID(stream: stream, sequence: sequence)
        repeat {
            guard let length = body.readInteger(as: UInt32.self), let frameBytes = body.readSlice(length: Int(length))
            else {
                return abortAndForget(
                    id,
                    AbortReason(.protocolError, "a frame longer than its message"),
                    into: &outputs
                )
            }
            let frame: TunnelFrame
            do {
                // Each end writes most heads' fields straight on as HTTP/1 bytes (see `HeaderFields`).
                frame = try TunnelFrame(
                    decoding: frameBytes,
                    limits: limits,
                    strings: &recentStrings,
                    keepingFieldBytes: true
                )
            } catch let reason as AbortReason {
                return abortAndForget(id, reason, into: &outputs)
            } catch {
                return abortAndForget(id, AbortReason(.protocolError, "\(error)"), into: &outputs)
            }
            deliverFrame(frame, id: id, now: now, into: &outputs)
            guard phase == .established else { return }
        } while body.readableBytes > 0
    }

    private func deliverFrame(_ frame: TunnelFrame, id: ExchangeID, now: UInt64, into outputs: inout [Output]) {
        let stream = id.stream
        let sequence = id.sequence
        if let current = exchanges[stream], current.sequence != sequence {
            // Frames are in order per stream, so a different sequence is either stale (a frame that crossed our
            // end or abort: drop it) or, at the client, the edge's next exchange on a stream it has finished with.
            guard role == .client, case .requestHead = frame else { return }
            exchanges[stream] = nil
            outputs.append(
                .aborted(ExchangeID(stream: stream, sequence: current.sequence), AbortReason(.cancelled, "replaced"))
            )
        }
        if exchanges[stream] == nil {
            guard role == .client, case .requestHead = frame, let welcome else { return }  // stale: drop
            guard liveness?.acceptsNewExchanges == true else {
                return abortAndForget(id, AbortReason(.refused, "the client is going away"), into: &outputs)
            }
            exchanges[stream] = (
                sequence, ExchangeStateMachine(role: .client, initialCredit: Int(welcome.initialCredit))
            )
        }
        guard var exchange = exchanges[stream] else { return }
        let action = exchange.machine.receive(frame)
        exchanges[stream] = exchange
        switch action {
        case .head(let head): outputs.append(role == .client ? .exchangeOpened(id, head) : .head(id, head))
        case .data(let bytes): outputs.append(.data(id, bytes))
        case .end: outputs.append(.end(id))
        case .creditGranted: outputs.append(.writable(id))
        case .aborted(let reason): outputs.append(.aborted(id, reason))
        case .violation(let abortFrame):
            if let message = try? Self.message(abortFrame, sequence: sequence) { enqueue(message, on: stream) }
            if case .abort(let reason) = abortFrame { outputs.append(.aborted(id, reason)) }
        case .ignored: break
        }
        if exchange.machine.isFinished { exchanges[stream] = nil }
    }

    private func abortAndForget(_ id: ExchangeID, _ reason: AbortReason, into outputs: inout [Output]) {
        if let message = try? Self.message(.abort(reason), sequence: id.sequence) { enqueue(message, on: id.stream) }
        guard exchanges[id.stream]?.sequence == id.sequence else { return }
        exchanges[id.stream] = nil
        outputs.append(.aborted(id, reason))
    }

    private func control(_ frame: TunnelFrame, now: UInt64, into outputs: inout [Output]) {
        guard var liveness else { return }
        defer { self.liveness = liveness }
        switch frame {
        case .ping(let value):
            if case .sendPong(let answer) = liveness.receivedPing(value, now: now) {
                self.liveness = liveness
                queueControl(.pong(answer))
            }
        case .pong(let value):
            liveness.receivedPong(value, now: now)
        case .goAway(let reason):
            liveness.receivedGoAway(now: now)
            peerGoAwayReason = reason
        default:
            self.liveness = liveness
            close("an exchange frame on the control stream", into: &outputs)
        }
    }
}
