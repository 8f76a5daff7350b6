import NIOCore

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
        /// The session is up; exchanges may flow.
        case established(SessionHandshakeMessage.Welcome)
        /// The edge refused the session (client only), or refused the client (edge only); close it.
        case rejected(SessionHandshakeMessage.Reject)
        /// A new exchange from the edge (client only): the request head.
        case exchangeOpened(UInt16, TunnelFrame)
        /// A response head (edge only).
        case head(UInt16, TunnelFrame)
        case data(UInt16, ByteBuffer)
        case end(UInt16)
        case aborted(UInt16, AbortReason)
        /// The exchange may send more data: credit or buffer space came back.
        case writable(UInt16)
        /// The session is over; close the DTLS session.
        case closed(String)
    }

    private enum Phase {
        case handshaking
        case established
        case closed
    }

    public let role: Role
    private var phase = Phase.handshaking
    private var edgeHandshake: EdgeHandshake?
    private var clientHandshake: ClientHandshake?
    private var association: SCTPAssociation?
    private var exchanges: [UInt16: ExchangeStateMachine] = [:]
    private var liveness: LivenessStateMachine?
    private var welcome: SessionHandshakeMessage.Welcome?
    private var limits = FrameLimits.standard
    /// Frames SCTP had no room for yet, in order.
    private var pending: [(stream: UInt16, message: ByteBuffer)] = []
    private var nextStream: UInt16 = 1
    /// The client's Hello and when it was last sent: datagrams get lost, so it is sent again until answered.
    private var helloRecord: ByteBuffer?
    private var helloSentAt: UInt64 = 0
    /// The edge's Welcome, sent again when a retransmitted Hello shows the first one was lost.
    private var welcomeRecord: ByteBuffer?
    /// How often an unanswered Hello is sent again.
    static let helloRetransmitMilliseconds: UInt64 = 500
    private let streams: UInt16
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
        streams = sctp.streams
    }

    /// The client's end, which speaks first: send the records `start` returns.
    public init(client handshake: ClientHandshake, sctp: SCTPAssociation.Settings = .init()) {
        role = .client
        clientHandshake = handshake
        settings = sctp
        streams = sctp.streams
    }

    deinit { association?.close() }

    /// The client's Hello.
    public func start(now: UInt64) throws -> [Output] {
        guard let clientHandshake else { return [] }
        let record = try clientHandshake.helloRecord()
        helloRecord = record
        helloSentAt = now
        return [.record(record)]
    }

    public var roundTripMilliseconds: UInt64? { liveness?.roundTripMilliseconds }
    public var openExchanges: Int { exchanges.count }

    // MARK: - Records in

    public func receive(_ record: ByteBuffer, now: UInt64) -> [Output] {
        switch phase {
        case .closed:
            return []
        case .handshaking:
            // SCTP's INIT may overtake the Welcome: ignore it, SCTP sends it again.
            guard SessionHandshakeMessage.isHandshake(record) else { return [] }
            return receiveHandshake(record, now: now)
        case .established:
            if SessionHandshakeMessage.isHandshake(record) {
                // The client sent its Hello again: our Welcome was lost.
                if role == .edge, let welcomeRecord { return [.record(welcomeRecord)] }
                return []
            }
            guard let association else { return [] }
            liveness?.received(now: now)
            association.input(record)
            return pump(now: now)
        }
    }

    private func receiveHandshake(_ record: ByteBuffer, now: UInt64) -> [Output] {
        if var handshake = edgeHandshake {
            let action = handshake.receive(record)
            edgeHandshake = handshake
            return handleEdge(action, now: now)
        }
        guard var handshake = clientHandshake else { return [] }
        let outcome = handshake.receive(record)
        clientHandshake = handshake
        switch outcome {
        case .waiting:
            return []
        case .rejected(let reject):
            phase = .closed
            return [.rejected(reject), .closed(reject.message)]
        case .failed(let why):
            phase = .closed
            return [.closed(why)]
        case .welcomed(let welcome):
            return establish(welcome, now: now)
        }
    }

    /// The owner's answer to `.verify` (edge only).
    public func verdict(_ verdict: EdgeHandshake.Verdict, now: UInt64) -> [Output] {
        guard var handshake = edgeHandshake, phase == .handshaking else { return [] }
        let action = handshake.verdict(verdict)
        edgeHandshake = handshake
        return handleEdge(action, now: now)
    }

    private func handleEdge(_ action: EdgeHandshake.Action, now: UInt64) -> [Output] {
        switch action {
        case .none:
            return []
        case .verifyKey, .verifyToken:
            return [.verify(action)]
        case .reject(let record, let reject):
            phase = .closed
            return [.record(record), .rejected(reject), .closed(reject.message)]
        case .welcome(let record, let welcome, _):
            welcomeRecord = record
            return [.record(record)] + establish(welcome, now: now)
        }
    }

    private func establish(_ welcome: SessionHandshakeMessage.Welcome, now: UInt64) -> [Output] {
        do {
            association = try SCTPAssociation(settings: settings)
        } catch {
            phase = .closed
            return [.closed("cannot start SCTP: \(error)")]
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
        return [.established(welcome)] + pump(now: now)
    }

    // MARK: - Timers

    /// Call on a timer (every few milliseconds): drives keepalive; SCTP's own timers are the process-wide
    /// `SCTPStack.advanceTimers`, after which every session's `tick` collects what they produced.
    public func tick(now: UInt64) -> [Output] {
        if phase == .handshaking, let helloRecord, now >= helloSentAt + Self.helloRetransmitMilliseconds {
            helloSentAt = now
            return [.record(helloRecord)]
        }
        guard phase == .established, var liveness else { return [] }
        let action = liveness.tick(now: now)
        self.liveness = liveness
        var outputs: [Output] = []
        switch action {
        case .sendPing(let value):
            queue(.ping(value), on: 0)
        case .idleTimeout:
            return close("the peer sent nothing for \(liveness.idleTimeoutMilliseconds) ms")
        case .sendPong, nil:
            break
        }
        outputs += pump(now: now)
        return outputs
    }

    // MARK: - Exchanges (calls)

    /// Opens an exchange with a request head (edge only). Returns its stream, or nil when the session takes no new
    /// exchanges now (all streams busy, or going away).
    public func openExchange(_ head: TunnelFrame, now: UInt64) throws -> (UInt16, [Output])? {
        guard role == .edge, phase == .established, liveness?.acceptsNewExchanges == true,
            let welcome, exchanges.count < Int(welcome.maximumConcurrentExchanges), exchanges.count < Int(streams) - 1
        else { return nil }
        var stream = nextStream
        while exchanges[stream] != nil { stream = stream % (streams - 1) + 1 }
        nextStream = stream % (streams - 1) + 1
        var exchange = ExchangeStateMachine(role: .edge, initialCredit: Int(welcome.initialCredit))
        let frame = try exchange.sendHead(head)
        exchanges[stream] = exchange
        queue(frame, on: stream)
        return (stream, pump(now: now))
    }

    /// Sends a response head (client only).
    public func sendHead(_ head: TunnelFrame, on stream: UInt16, now: UInt64) throws -> [Output] {
        try withExchange(stream, now: now) { try $0.sendHead(head) }
    }

    /// How many data bytes the exchange may send now.
    public func sendableBytes(on stream: UInt16) -> Int {
        min(exchanges[stream]?.sendableBytes ?? 0, SCTPAssociation.maximumMessageSize - 1)
    }

    /// Sends body bytes; at most `sendableBytes`.
    public func sendData(_ bytes: ByteBuffer, on stream: UInt16, now: UInt64) throws -> [Output] {
        try withExchange(stream, now: now) { try $0.sendData(bytes) }
    }

    public func sendEnd(on stream: UInt16, now: UInt64) throws -> [Output] {
        try withExchange(stream, now: now) { try $0.sendEnd() }
    }

    /// The application took `bytes` of received data from the exchange: grants the peer more credit.
    public func consumed(_ bytes: Int, on stream: UInt16, now: UInt64) -> [Output] {
        guard var exchange = exchanges[stream] else { return [] }
        let grant = exchange.consumed(bytes)
        exchanges[stream] = exchange
        if let grant { queue(grant, on: stream) }
        return pump(now: now)
    }

    public func abort(_ stream: UInt16, _ reason: AbortReason, now: UInt64) -> [Output] {
        guard var exchange = exchanges[stream] else { return [] }
        if let frame = exchange.abort(reason) { queue(frame, on: stream) }
        exchanges[stream] = nil
        return pump(now: now)
    }

    /// Announces GOAWAY: no new exchanges; those in flight may finish.
    public func goAway(_ reason: String, now: UInt64) -> [Output] {
        guard phase == .established, var liveness, liveness.goAway() else { return [] }
        self.liveness = liveness
        queue(.goAway(reason: reason), on: 0)
        return pump(now: now)
    }

    public func close(_ why: String) -> [Output] {
        guard phase != .closed else { return [] }
        phase = .closed
        association?.close()
        exchanges.removeAll()
        pending.removeAll()
        return [.closed(why)]
    }

    private func withExchange(
        _ stream: UInt16,
        now: UInt64,
        _ body: (inout ExchangeStateMachine) throws -> TunnelFrame
    )
        throws -> [Output]
    {
        guard var exchange = exchanges[stream] else {
            throw AbortReason(.protocolError, "no exchange on stream \(stream)")
        }
        let frame = try body(&exchange)
        exchanges[stream] = exchange
        queue(frame, on: stream)
        if exchange.isFinished { exchanges[stream] = nil }
        return pump(now: now)
    }

    // MARK: - Moving frames

    private func queue(_ frame: TunnelFrame, on stream: UInt16) {
        // Encoding our own frames cannot fail: heads were checked when made, data is bounded by credit.
        guard let message = try? frame.encoded() else { return }
        pending.append((stream, message))
    }

    /// Sends what SCTP has room for, reads what arrived, and collects the packets to send.
    private func pump(now: UInt64) -> [Output] {
        guard let association, phase == .established else { return [] }
        var outputs: [Output] = []
        // Read first: acknowledgements free send space.
        for (stream, message) in association.receive() {
            outputs += deliver(message, on: stream, now: now)
            guard phase == .established else { return outputs }
        }
        if association.state == .closed { return outputs + close("the SCTP association ended") }
        if association.state == .connected {
            var sent = 0
            while sent < pending.count, (try? association.send(pending[sent].message, on: pending[sent].stream)) == true
            {
                sent += 1
            }
            if sent > 0 { pending.removeFirst(sent) }
        }
        for packet in association.takeOutgoing() { outputs.append(.record(packet)) }
        return outputs
    }

    private func deliver(_ message: ByteBuffer, on stream: UInt16, now: UInt64) -> [Output] {
        let frame: TunnelFrame
        do {
            frame = try TunnelFrame(decoding: message, limits: limits)
        } catch let reason as AbortReason {
            return abortAndForget(stream, reason)
        } catch {
            if stream == 0 { return close("a malformed control frame: \(error)") }
            return abortAndForget(stream, AbortReason(.protocolError, "\(error)"))
        }
        if stream == 0 { return control(frame, now: now) }
        if exchanges[stream] == nil {
            guard role == .client, case .requestHead = frame, liveness?.acceptsNewExchanges == true, let welcome else {
                // A frame for an exchange we forgot (it crossed our abort), or a request we cannot take.
                if case .requestHead = frame {
                    return abortAndForget(stream, AbortReason(.refused, "the client is going away"))
                }
                return []
            }
            exchanges[stream] = ExchangeStateMachine(role: .client, initialCredit: Int(welcome.initialCredit))
        }
        guard var exchange = exchanges[stream] else { return [] }
        let action = exchange.receive(frame)
        exchanges[stream] = exchange
        var outputs: [Output]
        switch action {
        case .head(let head): outputs = [role == .client ? .exchangeOpened(stream, head) : .head(stream, head)]
        case .data(let bytes): outputs = [.data(stream, bytes)]
        case .end: outputs = [.end(stream)]
        case .creditGranted: outputs = [.writable(stream)]
        case .aborted(let reason): outputs = [.aborted(stream, reason)]
        case .violation(let abortFrame):
            queue(abortFrame, on: stream)
            if case .abort(let reason) = abortFrame { outputs = [.aborted(stream, reason)] } else { outputs = [] }
        case .ignored: outputs = []
        }
        if exchange.isFinished { exchanges[stream] = nil }
        return outputs
    }

    private func abortAndForget(_ stream: UInt16, _ reason: AbortReason) -> [Output] {
        queue(.abort(reason), on: stream)
        let known = exchanges.removeValue(forKey: stream) != nil
        return known ? [.aborted(stream, reason)] : []
    }

    private func control(_ frame: TunnelFrame, now: UInt64) -> [Output] {
        guard var liveness else { return [] }
        defer { self.liveness = liveness }
        switch frame {
        case .ping(let value):
            if case .sendPong(let answer) = liveness.receivedPing(value, now: now) { queue(.pong(answer), on: 0) }
        case .pong(let value):
            liveness.receivedPong(value, now: now)
        case .goAway:
            liveness.receivedGoAway(now: now)
        default:
            self.liveness = liveness
            return close("an exchange frame on the control stream")
        }
        return []
    }
}
