import NIOCore
import NIOHTTP1

/// NIO's HTTP/1 response decoder, behind a decoder that does not observe the connection's writes.
///
/// NIO's decoder learns each request's method (a response to HEAD has no body) by observing the writes that pass
/// its `ByteToMessageHandler`. That makes the handler an outbound one, and its write code, generic and not
/// specialized in HopGate's module, looked types up at run time for every request part written: about 2,600
/// instructions a request at the client (callgrind). Here the handler sees no writes at all; `LocalRequestEncoder`
/// tells the decoder each request head it sends (`noteRequest`), which is all the decoder took from them.
struct LocalResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    /// A class, shared with the encoder that reports the requests.
    let decoder: HTTPResponseDecoder

    init(_ decoder: HTTPResponseDecoder) {
        self.decoder = decoder
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }

    mutating func decoderAdded(context: ChannelHandlerContext) {
        decoder.decoderAdded(context: context)
    }

    mutating func decoderRemoved(context: ChannelHandlerContext) {
        decoder.decoderRemoved(context: context)
    }
}

extension HTTPResponseDecoder {
    /// A request head is on its way to the service: its answer comes next, framed by its method.
    func noteRequest(_ head: HTTPRequestHead) {
        write(data: .head(head))
    }
}
