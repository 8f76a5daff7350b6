import NIOCore

/// One HTTP exchange on one SCTP stream, from one end's point of view: the pure rules of the HTTP mapping
/// (DESIGN.md §2). It opens nothing and reads no clock; the session feeds it frames and local calls, and sends the
/// frames it returns.
///
/// Each direction is flow-controlled by credit, like HTTP/2's WINDOW_UPDATE: a sender may have at most as many
/// data bytes outstanding as the receiver granted, and the receiver grants more only as its application consumes
/// them. So a slow browser or a slow local service stalls only its own exchange, and nothing buffers without bound.
public struct ExchangeStateMachine: Sendable {
    /// Which side of the exchange this end plays.
    public enum Role: Sendable {
        /// Sends the request, receives the response.
        case edge
        /// Receives the request, sends the response.
        case client
    }

    /// What a received frame means for the application.
    public enum ReceiveAction: Equatable, Sendable {
        /// The request (for the client) or the response (for the edge) begins.
        case head(TunnelFrame)
        /// Body bytes, to deliver; call `consumed` once the application has taken them.
        case data(ByteBuffer)
        /// The peer finished its side.
        case end
        /// The peer granted more credit: a writer waiting for room may continue.
        case creditGranted
        /// The peer gave the exchange up; forget it.
        case aborted(AbortReason)
        /// The peer broke the rules: send this abort frame and forget the exchange.
        case violation(TunnelFrame)
        /// A frame that crossed our abort in flight: nothing to do.
        case ignored
    }

    private enum Direction: Equatable, Sendable {
        case awaitingHead
        case open
        case ended
    }

    public let role: Role
    private var outbound = Direction.awaitingHead
    private var inbound = Direction.awaitingHead
    /// Bytes this end may still send.
    private var sendCredit: Int
    /// Bytes the peer may still send.
    private var receiveWindow: Int
    /// Bytes the application consumed since the last grant.
    private var consumedSinceGrant = 0
    private let initialCredit: Int
    private(set) public var isAborted = false
    /// Whether the response was a 101: both directions are now a raw byte pipe (WebSocket).
    private(set) public var isUpgraded = false

    /// The smallest initial credit that works: grants are made at half the window, and a grant is at least one byte.
    public static let minimumInitialCredit = 2

    public init(role: Role, initialCredit: Int) {
        precondition(initialCredit >= Self.minimumInitialCredit, "an exchange needs credit to move at all")
        self.role = role
        self.initialCredit = initialCredit
        self.sendCredit = initialCredit
        self.receiveWindow = initialCredit
    }

    /// Both sides have finished (or one gave up): the stream id may be used again.
    public var isFinished: Bool { isAborted || (outbound == .ended && inbound == .ended) }

    /// How many data bytes may be sent now.
    public var sendableBytes: Int { outbound == .open && !isAborted ? sendCredit : 0 }

    // MARK: - Local side

    /// The head this end sends: a request head for the edge, a response head for the client.
    public mutating func sendHead(_ head: TunnelFrame) throws -> TunnelFrame {
        guard !isAborted else { throw AbortReason(.cancelled, "the exchange was aborted") }
        switch (role, head) {
        case (.edge, .requestHead):
            guard outbound == .awaitingHead else {
                throw AbortReason(.protocolError, "the request head was sent already")
            }
        case (.client, .responseHead(let status, _)):
            guard outbound == .awaitingHead else {
                throw AbortReason(.protocolError, "the response head was sent already")
            }
            guard inbound != .awaitingHead else { throw AbortReason(.protocolError, "a response before its request") }
            if status == 101 { isUpgraded = true }
            // 1xx heads other than 101 are informational: another head follows.
            if (100..<200).contains(status) && status != 101 { return head }
        default:
            throw AbortReason(.protocolError, "\(role) cannot send \(head)")
        }
        outbound = .open
        return head
    }

    /// A data frame for `bytes`, which must fit `sendableBytes`.
    public mutating func sendData(_ bytes: ByteBuffer) throws -> TunnelFrame {
        try sendData(count: bytes.readableBytes)
        return .data(bytes)
    }

    /// Spends credit on `count` body bytes, which must fit `sendableBytes`: for a data frame the caller encodes
    /// itself (from several buffers, without joining them first).
    public mutating func sendData(count: Int) throws {
        guard outbound == .open, !isAborted else { throw AbortReason(.protocolError, "no data may be sent now") }
        guard count <= sendCredit else {
            throw AbortReason(.creditViolation, "\(count) bytes with \(sendCredit) bytes of credit")
        }
        sendCredit -= count
    }

    /// Ends this end's side.
    public mutating func sendEnd() throws -> TunnelFrame {
        guard outbound == .open, !isAborted else { throw AbortReason(.protocolError, "nothing to end") }
        outbound = .ended
        return .end
    }

    /// Gives the exchange up.
    public mutating func abort(_ reason: AbortReason) -> TunnelFrame? {
        guard !isAborted, !isFinished else { return nil }
        isAborted = true
        return .abort(reason)
    }

    /// The application took `bytes` of received data. Returns a credit frame once half the initial window has
    /// been consumed: fewer, larger grants cost fewer messages and still keep the sender busy.
    public mutating func consumed(_ bytes: Int) -> TunnelFrame? {
        guard !isAborted, inbound == .open, bytes > 0 else { return nil }
        // Never grant more than was ever received: the window cannot grow past its initial size.
        let outstanding = initialCredit - receiveWindow - consumedSinceGrant
        consumedSinceGrant += min(bytes, max(0, outstanding))
        guard consumedSinceGrant >= initialCredit / 2, consumedSinceGrant > 0 else { return nil }
        let grant = consumedSinceGrant
        consumedSinceGrant = 0
        receiveWindow += grant
        return .credit(UInt32(grant))
    }

    // MARK: - Remote side

    public mutating func receive(_ frame: TunnelFrame) -> ReceiveAction {
        guard !isAborted else { return .ignored }
        switch frame {
        case .requestHead, .responseHead:
            return receiveHead(frame)
        case .data(let bytes):
            guard inbound == .open else { return violate(.protocolError, "data outside a body") }
            guard bytes.readableBytes <= receiveWindow else {
                return violate(
                    .creditViolation,
                    "\(bytes.readableBytes) bytes sent with \(receiveWindow) bytes of credit"
                )
            }
            receiveWindow -= bytes.readableBytes
            return .data(bytes)
        case .end:
            guard inbound == .open else { return violate(.protocolError, "an end outside a body") }
            inbound = .ended
            return .end
        case .credit(let increment):
            guard outbound != .ended else { return .creditGranted }  // a grant racing our end: harmless
            let (sum, overflow) = sendCredit.addingReportingOverflow(Int(increment))
            guard !overflow, sum <= Int(UInt32.max) else { return violate(.creditViolation, "credit beyond 4 GiB") }
            sendCredit = sum
            return .creditGranted
        case .abort(let reason):
            isAborted = true
            return .aborted(reason)
        case .ping, .pong, .goAway:
            return violate(.protocolError, "a session frame on an exchange stream")
        }
    }

    private mutating func receiveHead(_ frame: TunnelFrame) -> ReceiveAction {
        guard inbound == .awaitingHead else { return violate(.protocolError, "a second head") }
        switch (role, frame) {
        case (.client, .requestHead):
            inbound = .open
        case (.edge, .responseHead(let status, _)):
            guard outbound != .awaitingHead else { return violate(.protocolError, "a response before the request") }
            if (100..<200).contains(status) && status != 101 { return .head(frame) }  // informational: more follow
            if status == 101 { isUpgraded = true }
            inbound = .open
        default:
            return violate(.protocolError, "\(role) does not receive this head")
        }
        return .head(frame)
    }

    private mutating func violate(_ code: AbortReason.Code, _ message: String) -> ReceiveAction {
        isAborted = true
        return .violation(.abort(AbortReason(code, message)))
    }
}
