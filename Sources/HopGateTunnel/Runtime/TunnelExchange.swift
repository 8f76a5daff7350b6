import NIOCore
import Synchronization

/// What happens to an exchange, as its application hears it.
public enum TunnelExchangeEvent: Sendable, Equatable {
    /// The response head (at the edge). At the client the request head comes with the exchange itself.
    case head(TunnelFrame)
    /// Body bytes: call `consumed` once they are passed on, so the peer may send more.
    case data(ByteBuffer)
    /// The peer finished its side.
    case end
    /// The exchange is over without finishing: the peer or the session gave it up.
    case aborted(AbortReason)
    /// The exchange's outgoing buffer drained after `write` returned false: write again.
    case writable
}

/// Where an exchange's events go: run on `eventLoop`, in order.
public struct TunnelExchangeConsumer: Sendable {
    public let eventLoop: any EventLoop
    public let onEvent: @Sendable (TunnelExchangeEvent) -> Void

    public init(eventLoop: any EventLoop, onEvent: @escaping @Sendable (TunnelExchangeEvent) -> Void) {
        self.eventLoop = eventLoop
        self.onEvent = onEvent
    }
}

/// One HTTP exchange of a running tunnel session, as an application (the edge's proxy, the client's forwarder) uses
/// it from any thread. Calls hop to the session's event loop; events come back on the consumer's loop.
///
/// Backpressure: `write` takes any amount and returns false once more than `highWaterBytes` wait to be sent; the
/// writer then stops reading its source until `.writable` arrives. Received data is granted back to the peer only as
/// the application calls `consumed`, so a reader that stops stops only its own exchange.
public final class TunnelExchange: Sendable {
    /// Above this many unsent bytes `write` asks the writer to pause.
    public static let highWaterBytes = 256 * 1024
    /// The writer is told to continue once the unsent bytes fall to this.
    public static let lowWaterBytes = 64 * 1024

    public let id: ExchangeID
    let driver: NIOLoopBound<TunnelSessionDriver>
    private let buffered = Mutex(Buffered())

    private struct Buffered {
        var bytes = 0
        /// The writer saw `write` return false and waits for `.writable`.
        var writerWaiting = false
    }

    init(id: ExchangeID, driver: NIOLoopBound<TunnelSessionDriver>) {
        self.id = id
        self.driver = driver
    }

    /// The session's event loop. An application that does its I/O on this loop (the client's local connections)
    /// saves a thread hop for every call and event.
    public var eventLoop: any EventLoop { driver.eventLoop }

    /// Sends the response head (client only).
    public func sendHead(_ head: TunnelFrame) {
        let id = self.id
        onLoop { $0.sendHead(head, on: id) }
    }

    /// Queues body bytes. Returns whether the writer may go on writing.
    @discardableResult
    public func write(_ bytes: ByteBuffer) -> Bool {
        guard bytes.readableBytes > 0 else { return true }
        let writable = buffered.withLock { state in
            state.bytes += bytes.readableBytes
            if state.bytes > Self.highWaterBytes { state.writerWaiting = true }
            return !state.writerWaiting
        }
        let id = self.id
        onLoop { $0.queue(bytes, on: id) }
        return writable
    }

    /// Whether `write` would still take bytes without asking the writer to pause.
    public var isWritable: Bool { buffered.withLock { !$0.writerWaiting } }

    /// Ends this end's side, after everything written so far.
    public func end() {
        let id = self.id
        onLoop { $0.queueEnd(on: id) }
    }

    /// Gives the exchange up and tells the peer why.
    public func abort(_ reason: AbortReason) {
        let id = self.id
        onLoop { $0.abort(id, reason) }
    }

    /// The application passed `bytes` of received data on: the peer may send that much more.
    public func consumed(_ bytes: Int) {
        guard bytes > 0 else { return }
        let id = self.id
        onLoop { $0.consumed(bytes, on: id) }
    }

    /// Runs `body` on the session's loop: at once when already there (the driver takes nested calls), else as a
    /// task. Most calls come from the loop itself (the client's local connections, a one-loop edge), and a task
    /// each would cost an allocation and a trip through the queue.
    private func onLoop(_ body: @escaping @Sendable (TunnelSessionDriver) -> Void) {
        let driver = self.driver
        if driver.eventLoop.inEventLoop {
            body(driver.value)
        } else {
            driver.eventLoop.execute { body(driver.value) }
        }
    }

    /// The driver handed `bytes` to the session. Returns whether a waiting writer should hear `.writable`.
    func drained(_ bytes: Int) -> Bool {
        buffered.withLock { state in
            state.bytes -= bytes
            guard state.writerWaiting, state.bytes <= Self.lowWaterBytes else { return false }
            state.writerWaiting = false
            return true
        }
    }
}
