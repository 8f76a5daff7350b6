import HopGateCore
import NIOCore
import NIOHTTP1

/// Writes the requests a client forwards to a local service as HTTP/1.1 bytes: what NIO's HTTPRequestEncoder and
/// its header validator do for HopGate's requests, with the head serialized in one pass into a buffer sized once.
/// Those two, with the writes they pass on, cost about 19k instructions per request (a write per name, separator and
/// value, each with its checks, and a trip through two handlers); this one about 17k (callgrind). A head whose
/// method, target or fields could split the request (a control character, a name that is not a token) is refused:
/// its write fails and the error goes up the pipeline.
final class LocalRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    struct InvalidHead: Error, CustomStringConvertible {
        let description: String
    }

    /// The request's body goes in chunks: its head says `Transfer-Encoding: chunked`.
    private var chunked = false
    /// The encoder's own context while it is in the pipeline, for the parts handed to it directly
    /// (`write(_:promise:)`).
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Whether `write(_:promise:)` and `flush()` may be called: not once an upgrade has taken the encoder out.
    var isInPipeline: Bool { context != nil }

    /// Writes a part as if it had come down the pipeline.
    func write(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>?) {
        write(part, context: context!, promise: promise)
    }

    func flush() {
        context!.flush()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(unwrapOutboundIn(data), context: context, promise: promise)
    }

    private func write(_ part: HTTPClientRequestPart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?)
    {
        switch part {
        case .head(let head):
            do {
                let bytes = try Self.encode(head, allocator: context.channel.allocator)
                chunked = head.headers[canonicalForm: "transfer-encoding"].last?.lowercased() == "chunked"
                context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
            } catch {
                promise?.fail(error)
                context.fireErrorCaught(error)
            }
        case .body(let body):
            guard chunked else { return context.write(wrapOutboundOut(body), promise: promise) }
            guard body.readableBytes > 0 else {
                // An empty chunk would end the body: write nothing, in order.
                return context.write(
                    wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                    promise: promise
                )
            }
            writeChunk(body, context: context, promise: promise)
        case .end:
            // HopGate sends no trailers.
            if chunked {
                var last = context.channel.allocator.buffer(capacity: 5)
                last.writeStaticString("0\r\n\r\n")
                context.write(wrapOutboundOut(.byteBuffer(last)), promise: promise)
            } else if let promise {
                // Nothing to write, but the promise must not complete ahead of the writes before it.
                context.write(
                    wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                    promise: promise
                )
            }
            chunked = false
        }
    }

    /// The request line and header block, ending in the blank line.
    static func encode(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        let method = head.method.rawValue
        guard method.isHTTPToken else {
            throw InvalidHead(description: "the method \(method) is not a token")
        }
        guard !head.uri.isEmpty, head.uri.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw InvalidHead(description: "the request target has a space or control character")
        }
        // "METHOD target HTTP/1.1\r\n", "name: value\r\n" each, "\r\n".
        var size = method.utf8.count + 1 + head.uri.utf8.count + 11 + 2
        for (name, value) in head.headers {
            guard name.isHTTPToken else {
                throw InvalidHead(description: "the header name \(name) is not a token")
            }
            guard value.isHTTPFieldValue else {
                throw InvalidHead(description: "the value of \(name) has a control character")
            }
            size += name.utf8.count + 2 + value.utf8.count + 2
        }
        var buffer = allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            copyUTF8(of: method, into: out, at: &at)
            out[at] = UInt8(ascii: " ")
            at += 1
            copyUTF8(of: head.uri, into: out, at: &at)
            copyUTF8(of: head.version == .http1_0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", into: out, at: &at)
            for (name, value) in head.headers {
                copyUTF8(of: name, into: out, at: &at)
                copyBytes(UInt8(ascii: ":"), UInt8(ascii: " "), into: out, at: &at)
                copyUTF8(of: value, into: out, at: &at)
                copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            }
            copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            return at
        }
        return buffer
    }
}
