import HopGateTunnel
import NIOCore

/// Moves raw bytes between a browser's connection and a tunnel exchange once the exchange switched protocols
/// (a WebSocket after its 101): the browser's bytes go to the exchange, read only as fast as it takes them; the
/// exchange's bytes go to the browser and are granted back as the socket takes them. Either side ending closes both.
final class RawPipeHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let exchange: TunnelExchange
    private var context: ChannelHandlerContext?
    private var paused = false
    private var readPending = false

    init(exchange: TunnelExchange) {
        self.exchange = exchange
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !exchange.write(unwrapInboundIn(data)) { paused = true }
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        exchange.end()
        context.fireChannelInactive()
    }

    /// An event of the exchange, passed on by `HTTPProxyHandler`, which receives them.
    func tunnelEvent(_ event: TunnelExchangeEvent) {
        guard let context else {
            if case .data(let bytes) = event { exchange.consumed(bytes.readableBytes) }
            return
        }
        switch event {
        case .data(let bytes):
            let count = bytes.readableBytes
            let exchange = self.exchange
            context.writeAndFlush(wrapOutboundOut(bytes)).whenSuccess { exchange.consumed(count) }
        case .end, .aborted:
            context.close(promise: nil)
        case .writable:
            paused = false
            if readPending {
                readPending = false
                context.read()
            }
        case .head:
            break
        }
    }
}
