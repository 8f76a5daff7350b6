import CHopGateSCTP
import NIOConcurrencyHelpers
import NIOCore

/// The stack's packet sink (`hg_sctp_init`): one copy, into the buffer that goes on to DTLS. It runs inside calls
/// into the stack, so under `SCTPStack`'s lock.
private func collectPacket(id: UInt64, bytes: UnsafePointer<UInt8>?, length: Int) {
    var packet = SCTPStack.allocator.buffer(capacity: length)
    packet.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
    SCTPStack.outboxes[id, default: []].append(packet)
}

/// The process's one usrsctp stack. usrsctp in no-threads mode is global and not thread-safe, so every call into
/// it, from every association, goes through this one lock; its timers are driven by whoever owns the clock
/// (`advanceTimers`): the tunnel's event loop in a running process, a simulated clock in tests.
public enum SCTPStack {
    private static let lock = NIOLock()
    private static let started: Bool = { hg_sctp_init(collectPacket) == 0 }()

    /// Each association's packets for the peer, in order, until `takeOutgoing`. Only touched under `lock`: the
    /// stack emits packets only inside calls made under it.
    nonisolated(unsafe) static var outboxes: [UInt64: [ByteBuffer]] = [:]
    fileprivate static let allocator = ByteBufferAllocator()

    static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        try lock.withLock {
            precondition(started, "usrsctp failed to start")
            return try body()
        }
    }

    /// Advances every association's timers: retransmissions, delayed acknowledgements, shutdown.
    public static func advanceTimers(byMilliseconds elapsed: UInt32) {
        withLock { hg_sctp_handle_timers(elapsed) }
    }

    /// Advances the timers to `now`, in milliseconds of the process-wide monotonic clock
    /// (`DispatchTime.now().uptimeNanoseconds / 1_000_000`, or `NIODeadline.now().uptimeNanoseconds / 1_000_000`):
    /// the stack is global, so every owner must pass the same clock; then several may call it, from their own
    /// timers, and time is still counted once.
    public static func advanceTimers(toMilliseconds now: UInt64) {
        withLock {
            guard let last = lastAdvance else {
                lastAdvance = now
                return
            }
            guard now > last else { return }
            lastAdvance = now
            hg_sctp_handle_timers(UInt32(min(now - last, UInt64(UInt32.max))))
        }
    }

    nonisolated(unsafe) private static var lastAdvance: UInt64?  // only touched under `lock`

    /// DATA chunks sent again by every association of this process so far: a loss indicator for metrics.
    public static var retransmittedChunks: UInt64 { withLock { hg_sctp_retransmitted_chunks() } }
}

/// One SCTP association over an unreliable packet channel (RFC 8261's SCTP over DTLS): packets in through
/// `input`, packets out through `takeOutgoing`, whole messages on numbered streams through `send` and `receive`.
/// It opens no socket and reads no clock. Both ends call `init` (simultaneous open).
public final class SCTPAssociation: @unchecked Sendable {
    // @unchecked: every use of the C state goes through SCTPStack's lock; `partial` is only touched inside it.

    public struct Settings: Sendable {
        /// Streams each way: one per concurrent exchange, plus the control stream 0. Each costs state (about
        /// 40 KB an idle endpoint at 256, RECIPES), so this is also the concurrency limit.
        public var streams: UInt16 = 256
        /// The SCTP packet payload: 1148 makes 1160-byte packets, which DTLS 1.2 with AES-GCM turns into datagrams
        /// of exactly 1197 bytes, within a 1200-byte MTU (RECIPES).
        public var pathMTU: UInt32 = 1148
        /// Send and receive buffers: a cap on unacknowledged and unread data, so the window a long round trip needs.
        public var bufferBytes: UInt32 = 4 * 1024 * 1024

        public init() {}

        /// The defaults, with packets that fill, and never exceed, records of `maximumRecordSize` bytes: a packet
        /// is the path MTU plus SCTP's 12-byte common header, and the MTU a multiple of 4 (chunks are padded to 4).
        public init(maximumRecordSize: Int) {
            pathMTU = UInt32(clamping: max(maximumRecordSize - 12, 512) / 4 * 4)
        }
    }

    public enum State: Sendable, Equatable {
        case connecting
        case connected
        case closed
    }

    /// The largest message `send` takes: bodies travel in chunks of at most this.
    public static let maximumMessageSize = 64 * 1024

    public let id: UInt64
    private var partial: [UInt16: ByteBuffer] = [:]
    /// What the next piece is read into, kept from one read to the next. A whole message of at least
    /// `handOverBytes` leaves in it as it is, and the next read gets a new one: copying each into a buffer of its
    /// own was a tenth of the memory copying of a download at the edge (perf). A smaller message, or a piece of
    /// one, is copied out, so that a request's few hundred bytes do not hold 64 KiB.
    private var landing: ByteBuffer?
    static let handOverBytes = 32 * 1024
    private var closed = false
    private static let nextID = NIOLockedValueBox<UInt64>(1)

    public init(settings: Settings = Settings()) throws {
        id = Self.nextID.withLockedValue { value in
            defer { value += 1 }
            return value
        }
        var cSettings = hg_sctp_settings(
            streams: settings.streams,
            path_mtu: settings.pathMTU,
            buffer_bytes: settings.bufferBytes
        )
        let error = SCTPStack.withLock {
            let error = hg_sctp_open(id, &cSettings)
            if error == 0 { Self.live += 1 } else { SCTPStack.outboxes[id] = nil }
            return error
        }
        guard error == 0 else {
            closed = true  // deinit still runs: nothing to close
            throw TunnelWireError("usrsctp cannot open an association (errno \(error))")
        }
    }

    deinit { close() }

    /// Where the association stands, as of the last `receive()`: the stack reports changes among the messages it
    /// delivers, so call `receive()` after every `input` and timer advance.
    public var state: State {
        switch SCTPStack.withLock({ hg_sctp_state(id) }) {
        case Int32(HG_SCTP_CONNECTED): .connected
        case Int32(HG_SCTP_CONNECTING): .connecting
        default: .closed
        }
    }

    /// The streams both ends agreed on (the smaller offer), once connected; 0 before.
    public var negotiatedStreams: UInt16 { UInt16(clamping: SCTPStack.withLock { hg_sctp_stream_count(id) }) }

    /// DATA chunks not yet sent or not yet acknowledged: 0 once the peer has everything.
    public var outstandingChunks: Int { Int(SCTPStack.withLock { hg_sctp_outstanding(id) }) }

    /// Feeds one packet from the peer.
    public func input(_ packet: ByteBuffer) {
        packet.withUnsafeReadableBytes { bytes in
            SCTPStack.withLock {
                hg_sctp_input(id, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
            }
        }
    }

    /// The packets to send to the peer, in order.
    public func takeOutgoing() -> [ByteBuffer] {
        SCTPStack.withLock { SCTPStack.outboxes.removeValue(forKey: id) ?? [] }
    }

    /// Queues one whole message on `stream`. Returns false when the send buffer has no room now: call again after
    /// more input (acknowledgements free the buffer).
    public func send(_ message: ByteBuffer, on stream: UInt16) throws -> Bool {
        guard message.readableBytes <= Self.maximumMessageSize else {
            throw TunnelWireError(
                "a message of \(message.readableBytes) bytes; the limit is \(Self.maximumMessageSize)"
            )
        }
        let result = message.withUnsafeReadableBytes { bytes in
            SCTPStack.withLock {
                hg_sctp_send(id, stream, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
            }
        }
        if result >= 0 { return true }
        if result == HG_SCTP_WOULD_BLOCK { return false }
        throw TunnelWireError("the SCTP association cannot send (errno \(-result))")
    }

    /// Whether a message goes out at once (the default) or, while data is in flight, waits to be bundled with the
    /// ones after it until a send with this on again (see `TunnelSession`'s pump).
    public func setSendsAtOnce(_ atOnce: Bool) {
        SCTPStack.withLock { hg_sctp_set_nodelay(id, atOnce ? 1 : 0) }
    }

    /// Every whole message that has arrived, in order per stream. A peer that sends a message over
    /// `maximumMessageSize` breaks the protocol: the association is closed rather than buffering without bound.
    public func receive() -> [(stream: UInt16, message: ByteBuffer)] {
        SCTPStack.withLock {
            var messages: [(stream: UInt16, message: ByteBuffer)] = []
            while true {
                var stream: UInt16 = 0
                var endOfMessage: Int32 = 0
                var piece = landing ?? ByteBufferAllocator().buffer(capacity: Self.maximumMessageSize)
                landing = nil
                piece.clear()
                var count = 0
                piece.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maximumMessageSize) { out in
                    let into = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    count = hg_sctp_receive(id, into, Self.maximumMessageSize, &stream, &endOfMessage)
                    return max(count, 0)
                }
                guard count >= 0 else {
                    landing = piece
                    break
                }
                // With I-DATA, pieces of messages on different streams may interleave: collect per stream.
                if endOfMessage != 0, count >= Self.handOverBytes, partial[stream] == nil {
                    messages.append((stream, piece))
                    continue
                }
                var pending = partial.removeValue(forKey: stream) ?? ByteBuffer()
                guard pending.readableBytes + count <= Self.maximumMessageSize else {
                    abortLocked()
                    partial.removeAll()
                    break
                }
                pending.writeImmutableBuffer(piece)
                landing = piece
                if endOfMessage != 0 {
                    messages.append((stream, pending))
                } else {
                    partial[stream] = pending
                }
            }
            return messages
        }
    }

    /// Aborts the association at once. Ending gracefully is the tunnel's job: GOAWAY, then every exchange done.
    public func close() {
        SCTPStack.withLock {
            guard !closed else { return }
            abortLocked()
        }
    }

    /// Under the stack's lock. (An association aborted for an oversized message used to stay in `liveCount`.)
    private func abortLocked() {
        closed = true
        hg_sctp_close(id)
        SCTPStack.outboxes[id] = nil  // nothing more is sent for it
        Self.live -= 1
    }

    /// How many associations exist in this process: the edge makes one only for a session that got its Welcome.
    public static var liveCount: Int { SCTPStack.withLock { live } }
    nonisolated(unsafe) private static var live = 0  // only touched under SCTPStack's lock
}
