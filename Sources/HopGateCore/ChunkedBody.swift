import NIOCore

/// Writes `body` as one chunk of a chunked HTTP/1.1 body (its size in hex, the bytes, CRLF) for an encoder whose
/// outbound type is `IOData`, with `promise` on the last write. The body must not be empty: an empty chunk ends
/// the body.
public func writeChunk(_ body: IOData, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
    var size = context.channel.allocator.buffer(capacity: 18)
    size.writeString(String(body.readableBytes, radix: 16))
    size.writeStaticString("\r\n")
    context.write(NIOAny(IOData.byteBuffer(size)), promise: nil)
    context.write(NIOAny(body), promise: nil)
    var end = context.channel.allocator.buffer(capacity: 2)
    end.writeStaticString("\r\n")
    context.write(NIOAny(IOData.byteBuffer(end)), promise: promise)
}
