import NIOCore
import NIOHTTP1

/// A local connection's response decoder: `LocalResponseParser` in the pipeline, turning the service's bytes into
/// NIO's response parts for `LocalResponseHandler`.
///
/// It learns each request's method (an answer to HEAD has no body) from `LocalRequestEncoder`, which tells it of
/// every head it sends (`noteRequest`), instead of observing the writes: a handler that observes writes is an
/// outbound one, and NIO's generic code for that looked types up at run time for every part written.
final class LocalResponseDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart

    private var parser = LocalResponseParser()
    /// The parts one read completed, kept between reads for its room.
    private var parts: [HTTPClientResponsePart] = []

    /// A request head is on its way to the service: its answer comes next, framed by its method.
    func noteRequest(_ head: HTTPRequestHead) {
        parser.noteRequest(head.method)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try parser.parse(bytes, into: &parts)
        } catch {
            deliver(context)
            return context.fireErrorCaught(error)
        }
        deliver(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A body that runs until the connection closes ends here; an answer cut short is the response handler's
        // to judge (it has not seen its end).
        _ = parser.connectionClosed(into: &parts)
        deliver(context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // After a 101 the handler that takes over the connection gets the bytes that came behind it.
        if let upgraded = parser.takeUpgradedBytes(), upgraded.readableBytes > 0 {
            context.fireChannelRead(NIOAny(upgraded))
        }
    }

    /// Passes on the parts parsed, oldest first. A part's handler may act at once (end the response, switch the
    /// connection to raw bytes and take this handler off): each part is taken off before it goes.
    private func deliver(_ context: ChannelHandlerContext) {
        guard !parts.isEmpty else { return }
        var ready: [HTTPClientResponsePart] = []
        swap(&ready, &parts)
        for part in ready { context.fireChannelRead(wrapInboundOut(part)) }
        if parts.isEmpty {
            ready.removeAll(keepingCapacity: true)
            parts = ready
        }
    }
}
