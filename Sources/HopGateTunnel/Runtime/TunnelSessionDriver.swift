import NIOCore

/// What a driver asks of its owner, the NIO handler that carries its records. Called on the driver's event loop.
public protocol TunnelSessionDriverDelegate: AnyObject {
    /// Send these DTLS records, in order, and flush.
    func send(_ records: [ByteBuffer])
    /// The client's credential needs checking (edge only): answer with `TunnelSessionDriver.verdict`.
    func verify(_ action: EdgeHandshake.Action)
    func established(_ welcome: SessionHandshakeMessage.Welcome)
    /// SCTP is up: the edge may open exchanges.
    func ready()
    /// The handshake failed with this Reject (sent or received); `closed` follows.
    func rejected(_ reject: SessionHandshakeMessage.Reject)
    /// A request arrived (client only). Return where its events go, or nil to refuse it.
    func exchangeOpened(_ exchange: TunnelExchange, head: TunnelFrame) -> TunnelExchangeConsumer?
    /// The session is over: close the DTLS session (which sends close_notify). Called once.
    func closed(_ why: String)
}

/// Runs one `TunnelSession` on one event loop for a NIO handler: records and timer ticks in, records out through the
/// delegate, and each exchange's calls and events bridged to the application's `TunnelExchange`. It queues what an
/// application writes and hands it to the session as credit and SCTP's buffer allow. Everything here runs on
/// `eventLoop`; applications reach it only through `TunnelExchange`, which hops here.
public final class TunnelSessionDriver {
    public let session: TunnelSession
    public let eventLoop: any EventLoop
    public weak var delegate: (any TunnelSessionDriverDelegate)?
    private let now: () -> UInt64

    /// An exchange the application holds, with what it wrote that the session has not taken yet.
    private final class Entry {
        let exchange: TunnelExchange
        var consumer: TunnelExchangeConsumer?
        var queue = PendingBytes()
        var queuedBytes = 0
        var endQueued = false
        var endSent = false

        init(exchange: TunnelExchange, consumer: TunnelExchangeConsumer?) {
            self.exchange = exchange
            self.consumer = consumer
        }
    }

    /// The exchanges by id, with the last one looked up at hand: a request's calls and events come in runs for one
    /// exchange, and each lookup in the dictionary hashes the id (nine times a request).
    private struct Entries {
        private var byID: [ExchangeID: Entry] = [:]
        private var last: (id: ExchangeID, entry: Entry)?

        var count: Int { byID.count }
        var isEmpty: Bool { byID.isEmpty }
        var ids: Dictionary<ExchangeID, Entry>.Keys { byID.keys }

        subscript(id: ExchangeID) -> Entry? {
            mutating get {
                if let last, last.id == id { return last.entry }
                guard let entry = byID[id] else { return nil }
                last = (id, entry)
                return entry
            }
            set {
                if last?.id == id { last = nil }
                byID[id] = newValue
            }
        }

        mutating func removeValue(forKey id: ExchangeID) -> Entry? {
            if last?.id == id { last = nil }
            return byID.removeValue(forKey: id)
        }

        mutating func removeAll() {
            last = nil
            byID.removeAll()
        }
    }

    private var entries = Entries()
    /// Session outputs not yet acted on: acting on one may produce more, so they are taken in order from here
    /// rather than by recursion. The session appends to it directly (its `into:` calls), and it keeps its capacity:
    /// arrays of outputs made and joined for every call were the commonest allocation of a request.
    private var backlog: [TunnelSession.Output] = []
    /// The next output of `backlog` to act on.
    private var backlogNext = 0
    private var outgoingRecords: [ByteBuffer] = []
    private var running = false
    public private(set) var isClosed = false

    /// - Parameter now: milliseconds on the process-wide monotonic clock, the one `SCTPStack.advanceTimers` uses.
    public init(
        session: TunnelSession,
        eventLoop: any EventLoop,
        now: @escaping () -> UInt64 = TunnelSessionDriver.monotonicMilliseconds
    ) {
        self.session = session
        self.eventLoop = eventLoop
        self.now = now
        session.defersSending = true
    }

    /// A flush is queued behind the tasks already waiting on the loop, so the frames they queue go with it.
    private var flushScheduled = false
    /// Exchanges whose last queued bytes wait for that flush (see `flush`), in the order they were held. A few at
    /// a time: a list searched in turn costs less than a set, which hashed every id and was built anew every turn
    /// (about 2k instructions a request at the client, callgrind). `heldBeingFlushed` keeps the other list's
    /// storage between turns.
    private var held: [ExchangeID] = []
    private var heldBeingFlushed: [ExchangeID] = []
    /// Deferred frames leave at once when this many calls have queued them, rather than at the end of the loop's
    /// turn. With many connections ready in one turn, holding every request (or response) to the end of it made
    /// the two tunnel ends take turns: the client idled while the edge worked through the whole batch, then the
    /// edge while the client did. Sending every few calls lets them overlap (wrk -c32 on /1k, loopback: about 11k
    /// req/s with one send per turn, 13.5k to 14.5k with one every 4 to 24 calls, 10.7k with one per call, which
    /// costs a datagram each). Since the messages of one send leave bundled in as few SCTP packets as fit, larger
    /// sends cost less: edge CPU per request 50-56 us every 8 calls, 42-44 every 32, 40-45 once a turn, at about
    /// the same rate (bench/profile SCHEME=http, three alternating rounds).
    public static let deferredCallsPerSend = 32

    public static func monotonicMilliseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    public var openExchanges: Int { entries.count }

    /// Nothing open and nothing on its way: the session can close without losing a byte.
    public var isIdle: Bool { entries.isEmpty && !session.hasUndeliveredData }

    // MARK: - From the owner

    /// Sends the client's Hello.
    public func start() {
        run {
            do {
                try session.start(now: now(), into: &backlog)
            } catch {
                session.close("the Hello cannot be sent: \(error)", into: &backlog)
            }
        }
    }

    public func receive(_ record: ByteBuffer) {
        runDeliveringAtOnce { session.receive(record, now: now(), into: &backlog) }
    }

    /// Call every few milliseconds, after `SCTPStack.advanceTimers`.
    public func tick() {
        runDeliveringAtOnce { session.tick(now: now(), into: &backlog) }
    }

    public func verdict(_ verdict: EdgeHandshake.Verdict) {
        run { session.verdict(verdict, now: now(), into: &backlog) }
    }

    public func goAway(_ reason: String) {
        run { session.goAway(reason, now: now(), into: &backlog) }
    }

    /// Ends the session: every exchange is aborted, and the delegate hears `closed`.
    public func close(_ why: String) {
        run { session.close(why, into: &backlog) }
    }

    /// Opens an exchange with a request head (edge only). Returns nil when the session takes no new exchanges now;
    /// throws an `AbortReason` (`.headersTooLarge`) for a head that cannot be sent.
    public func openExchange(_ head: TunnelFrame, consumer: TunnelExchangeConsumer) throws -> TunnelExchange? {
        var opened: TunnelExchange?
        var failure: (any Error)?
        run {
            do {
                guard let id = try session.openExchange(head, now: now(), into: &backlog) else { return }
                let exchange = TunnelExchange(id: id, driver: NIOLoopBound(self, eventLoop: eventLoop))
                entries[id] = Entry(exchange: exchange, consumer: consumer)
                opened = exchange
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return opened
    }

    // MARK: - From the exchanges

    func sendHead(_ head: TunnelFrame, on id: ExchangeID) {
        run {
            do {
                try session.sendHead(head, on: id, now: now(), into: &backlog)
            } catch {
                abortLocally(id, error)
            }
        }
    }

    func queue(_ bytes: ByteBuffer, on id: ExchangeID) {
        run {
            guard let entry = entries[id], !entry.endQueued else { return }
            entry.queue.append(bytes)
            entry.queuedBytes += bytes.readableBytes
            flush(id)
        }
    }

    func queueEnd(on id: ExchangeID) {
        run {
            guard let entry = entries[id] else { return }
            entry.endQueued = true
            flush(id)
        }
    }

    func abort(_ id: ExchangeID, _ reason: AbortReason) {
        run {
            guard entries.removeValue(forKey: id) != nil else { return }
            session.abort(id, reason, now: now(), into: &backlog)
        }
    }

    func consumed(_ bytes: Int, on id: ExchangeID) {
        run { session.consumed(bytes, on: id, now: now(), into: &backlog) }
    }

    // MARK: - Acting on outputs

    /// The owner's calls (a record, a tick) come from the loop itself, never from inside an application's call, so
    /// their events may reach consumers at once (see `deliver`).
    private var deliversAtOnce = false
    /// A consumer is hearing an event now.
    private var inConsumer = false
    /// Events in tasks on the driver's loop that have not run yet.
    private var queuedEvents = 0

    private func runDeliveringAtOnce(_ body: () -> Void) {
        guard !running else { return run(body) }
        deliversAtOnce = true
        run(body)
        deliversAtOnce = false
    }

    /// Runs `body`, then acts on every output it produced, then sends the records they made.
    private func run(_ body: () -> Void) {
        eventLoop.preconditionInEventLoop()
        guard !running else {
            body()
            return
        }
        running = true
        body()
        actOnBacklog()
        if session.deferredCalls >= Self.deferredCallsPerSend {
            session.flush(now: now(), into: &backlog)
            actOnBacklog()
        }
        running = false
        sendOutgoingRecords()
        scheduleFlushIfNeeded()
    }

    private func scheduleFlushIfNeeded() {
        guard session.hasDeferredFrames || !held.isEmpty, !flushScheduled else { return }
        flushScheduled = true
        let driver = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            let driver = driver.value
            driver.flushScheduled = false
            driver.run {
                swap(&driver.held, &driver.heldBeingFlushed)
                for id in driver.heldBeingFlushed { driver.flush(id, partial: true) }
                driver.heldBeingFlushed.removeAll(keepingCapacity: true)
                driver.session.flush(now: driver.now(), into: &driver.backlog)
            }
        }
    }

    /// `flush` left a chunk smaller than the session takes: it goes at the end of the turn unless more writes
    /// fill it first.
    private func holdUntilTurnEnds(_ id: ExchangeID) {
        if !held.contains(id) { held.append(id) }
    }

    private func sendOutgoingRecords() {
        guard !outgoingRecords.isEmpty else { return }
        let records = outgoingRecords
        outgoingRecords.removeAll(keepingCapacity: true)
        delegate?.send(records)
    }

    private func actOnBacklog() {
        while backlogNext < backlog.count {
            let output = backlog[backlogNext]
            backlogNext += 1
            act(on: output)
        }
        backlog.removeAll(keepingCapacity: true)
        backlogNext = 0
    }

    private func act(on output: TunnelSession.Output) {
        switch output {
        case .record(let record):
            outgoingRecords.append(record)
        case .verify(let action):
            delegate?.verify(action)
        case .established(let welcome):
            delegate?.established(welcome)
        case .ready:
            delegate?.ready()
        case .rejected(let reject):
            delegate?.rejected(reject)
        case .exchangeOpened(let id, let head):
            let exchange = TunnelExchange(id: id, driver: NIOLoopBound(self, eventLoop: eventLoop))
            let entry = Entry(exchange: exchange, consumer: nil)
            entries[id] = entry
            // The application's code, like a consumer's: nothing reaches it at once while it runs.
            inConsumer = true
            let accepted = delegate?.exchangeOpened(exchange, head: head)
            inConsumer = false
            guard let consumer = accepted else {
                entries[id] = nil
                session.abort(id, AbortReason(.refused, "the client takes no requests now"), now: now(), into: &backlog)
                return
            }
            entry.consumer = consumer
        case .head(let id, let head):
            deliver(.head(head), to: id)
        case .data(let id, let bytes):
            deliver(.data(bytes), to: id)
        case .end(let id):
            deliver(.end, to: id)
            forgetIfFinished(id)
        case .aborted(let id, let reason):
            deliver(.aborted(reason), to: id)
            entries[id] = nil
        case .writable(let id):
            flush(id)
        case .closed(let why):
            isClosed = true
            let reason = AbortReason(.sessionEnded, "the tunnel session ended: \(why)")
            for id in entries.ids { deliver(.aborted(reason), to: id) }
            entries.removeAll()
            // What the session sent last (a Reject) must leave before the owner's close_notify.
            sendOutgoingRecords()
            delegate?.closed(why)
        }
    }

    /// Events go to a consumer as a task on its loop, except where that is the driver's own loop (the client's local
    /// connections, a one-loop edge) and hearing it at once is safe: a task for each head, data and end was an
    /// allocation and a trip through the loop's queue, three times a request. At once only
    /// - while the driver acts on a record or a tick (`deliversAtOnce`): during a run an application started (a
    ///   `write`), an event would reach it inside its own call, before that call returned what it returns;
    /// - outside another consumer's event (`inConsumer`): what a consumer calls back nests in this run;
    /// - with no task of events still queued (`queuedEvents`), so that events keep their order.
    /// What a consumer calls back (write, end, consumed) nests in the current `run`; its outputs are acted on after
    /// the one being acted on now.
    private func deliver(_ event: TunnelExchangeEvent, to id: ExchangeID) {
        guard let consumer = entries[id]?.consumer else { return }
        guard consumer.eventLoop === eventLoop else {
            consumer.eventLoop.execute { consumer.onEvent(event) }
            return
        }
        if deliversAtOnce && !inConsumer && queuedEvents == 0 {
            inConsumer = true
            consumer.onEvent(event)
            inConsumer = false
            return
        }
        queuedEvents += 1
        let driver = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            driver.value.queuedEvents -= 1
            consumer.onEvent(event)
        }
    }

    /// Hands the exchange's queued bytes (and then its end) to the session, as far as credit and SCTP allow, in
    /// chunks as large as the session takes, gathered across the writes. A last chunk smaller than that waits for
    /// more writes until the loop's turn ends (`partial`): a writer's 64 KiB reads would otherwise leave a few
    /// bytes each as a message, and a packet, of their own.
    private func flush(_ id: ExchangeID, partial: Bool = false) {
        guard let entry = entries[id] else { return }
        var drained = 0
        while !entry.queue.isEmpty {
            let room = session.sendableBytes(on: id)
            guard room > 0 else { break }
            if !partial && !entry.endQueued && entry.queuedBytes < room {
                holdUntilTurnEnds(id)
                break
            }
            var pieces: [ByteBuffer] = []
            var gathered = 0
            while gathered < room, var chunk = entry.queue.first {
                let piece = chunk.readSlice(length: min(room - gathered, chunk.readableBytes))!
                if chunk.readableBytes == 0 {
                    entry.queue.removeFirst()
                } else {
                    entry.queue.replaceFirst(with: chunk)
                }
                pieces.append(piece)
                gathered += piece.readableBytes
            }
            entry.queuedBytes -= gathered
            do {
                try session.sendData(gathering: pieces, on: id, now: now(), into: &backlog)
            } catch {
                return abortLocally(id, error)
            }
            drained += gathered
        }
        if entry.queue.isEmpty && entry.endQueued && !entry.endSent {
            entry.endSent = true
            do {
                try session.sendEnd(on: id, now: now(), into: &backlog)
            } catch {
                return abortLocally(id, error)
            }
            forgetIfFinished(id)
        }
        entry.queue.compactWaiting()
        if drained > 0 && entry.exchange.drained(drained) { deliver(.writable, to: id) }
    }

    /// Both ends finished: the session has let the stream go, and so does the driver.
    private func forgetIfFinished(_ id: ExchangeID) {
        guard let entry = entries[id], !session.isActive(id), entry.queue.isEmpty else { return }
        entries[id] = nil
    }

    /// A local call failed (the exchange is over, or a head was too large): the application hears why.
    private func abortLocally(_ id: ExchangeID, _ error: any Error) {
        let reason = error as? AbortReason ?? AbortReason(.internalError, "\(error)")
        deliver(.aborted(reason), to: id)
        entries[id] = nil
        session.abort(id, reason, now: now(), into: &backlog)
    }
}
