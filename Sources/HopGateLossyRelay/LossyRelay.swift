import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A UDP relay for tests and benchmarks: what clients send to its port goes to `target`, and back, with loss,
/// duplication, reordering and delay drawn from a seeded generator. These machines have no netem; this stands in.
///
/// Each client address gets its own socket towards the target, so the target sees one peer per client, as it
/// would without the relay. Everything runs on one event loop, so the generator needs no lock.
public final class LossyRelay: Sendable {
    private let front: Channel
    private let box: NIOLockedValueBox<LossyRelayStatistics>

    /// The port clients send to.
    public var port: Int { front.localAddress?.port ?? 0 }

    /// What has happened so far.
    public var statistics: LossyRelayStatistics { box.withLockedValue { $0 } }

    private init(front: Channel, box: NIOLockedValueBox<LossyRelayStatistics>) {
        self.front = front
        self.box = box
    }

    /// Starts relaying from a new port on 127.0.0.1 to `target`.
    public static func start(
        to target: SocketAddress,
        configuration: LossyRelayConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> LossyRelay {
        let box = NIOLockedValueBox(LossyRelayStatistics())
        let eventLoop = group.next()
        let front = try await DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelOption(.recvAllocator, value: largestDatagramAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        FrontHandler(target: target, configuration: configuration, statistics: box)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LossyRelay(front: front, box: box)
    }

    /// Stops relaying and closes every socket.
    public func stop() async {
        try? await front.close()
    }
}

/// The decisions, shared by both directions of every client.
final class Impairment {
    private var generator: SplitMix64
    private let configuration: LossyRelayConfiguration
    private let statistics: NIOLockedValueBox<LossyRelayStatistics>

    init(configuration: LossyRelayConfiguration, statistics: NIOLockedValueBox<LossyRelayStatistics>) {
        self.configuration = configuration
        self.generator = SplitMix64(seed: configuration.seed)
        self.statistics = statistics
    }

    /// Calls `send` for each copy of `datagram` that survives, after its delay.
    func forward(
        _ datagram: ByteBuffer,
        upstream: Bool,
        on eventLoop: any EventLoop,
        send: @escaping (ByteBuffer) -> Void
    ) {
        let size = datagram.readableBytes
        let drop = Double.random(in: 0..<1, using: &generator) < configuration.lossRate
        let duplicate = Double.random(in: 0..<1, using: &generator) < configuration.duplicationRate
        let reorder = Double.random(in: 0..<1, using: &generator) < configuration.reorderRate
        let extra =
            reorder ? Int64.random(in: 1...max(1, configuration.reorderDelay.nanoseconds), using: &generator) : 0
        statistics.withLockedValue { stats in
            func count(_ direction: inout LossyRelayStatistics.Direction) {
                direction.received += 1
                direction.largestDatagram = max(direction.largestDatagram, size)
                if drop { direction.dropped += 1 }
                if duplicate && !drop { direction.duplicated += 1 }
                if reorder && !drop { direction.reordered += 1 }
            }
            if upstream { count(&stats.upstream) } else { count(&stats.downstream) }
        }
        guard !drop else { return }
        let delay = configuration.delay + .nanoseconds(extra)
        for _ in 0..<(duplicate ? 2 : 1) {
            if delay == .zero {
                send(datagram)
            } else {
                let loopBound = NIOLoopBound(send, eventLoop: eventLoop)
                eventLoop.scheduleTask(in: delay) { loopBound.value(datagram) }
            }
        }
    }
}

/// Receives from clients; keeps one back channel per client address.
final class FrontHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private enum Back {
        case opening([ByteBuffer])
        case open(Channel)
    }

    private let target: SocketAddress
    private let impairment: Impairment
    private var backs: [SocketAddress: Back] = [:]

    init(
        target: SocketAddress,
        configuration: LossyRelayConfiguration,
        statistics: NIOLockedValueBox<LossyRelayStatistics>
    ) {
        self.target = target
        self.impairment = Impairment(configuration: configuration, statistics: statistics)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        let target = self.target
        impairment.forward(envelope.data, upstream: true, on: context.eventLoop) { [self] datagram in
            switch backs[client] {
            case .open(let back):
                back.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: datagram), promise: nil)
            case .opening(var queued):
                queued.append(datagram)
                backs[client] = .opening(queued)
            case nil:
                backs[client] = .opening([datagram])
                openBack(for: client, context: context)
            }
        }
    }

    private func openBack(for client: SocketAddress, context: ChannelHandlerContext) {
        let front = context.channel
        let impairment = NIOLoopBound(impairment, eventLoop: context.eventLoop)
        let opened = DatagramBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: largestDatagramAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        BackHandler(client: client, front: front, impairment: impairment.value)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let target = self.target
        opened.whenComplete { result in
            let handler = loopBound.value
            guard case .success(let back) = result else {
                handler.backs[client] = nil
                return
            }
            if case .opening(let queued) = handler.backs[client] {
                for datagram in queued {
                    back.write(AddressedEnvelope(remoteAddress: target, data: datagram), promise: nil)
                }
                back.flush()
            }
            handler.backs[client] = .open(back)
            // The back channel lives as long as the relay: it closes when the front does.
            front.closeFuture.whenComplete { _ in back.close(promise: nil) }
        }
    }
}

/// Receives the target's answers for one client and sends them back through the front socket.
final class BackHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let client: SocketAddress
    private let front: Channel
    private let impairment: Impairment

    init(client: SocketAddress, front: Channel, impairment: Impairment) {
        self.client = client
        self.front = front
        self.impairment = impairment
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = self.client
        let front = self.front
        impairment.forward(envelope.data, upstream: false, on: context.eventLoop) { datagram in
            front.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: datagram), promise: nil)
        }
    }
}

/// Room for any UDP datagram: NIO's default of 2048 bytes would cut the large ones peers on loopback send.
private let largestDatagramAllocator = FixedSizeRecvByteBufferAllocator(capacity: 65_536)
