import HopGateCore
import HopGateTunnel
import NIOCore
import NIOHTTP1

/// A request head for a local service as the tunnel delivered it: the fields stay the tunnel's (the bytes they
/// came in), with the Host and Transfer-Encoding the client adds beside them, instead of being copied into an
/// `HTTPRequestHead`'s headers that the encoder then reads back (about 2k instructions a request, callgrind).
struct LocalRequestHead {
    var method: HTTPMethod
    /// The request target, in origin form.
    var target: String
    var fields: HeaderFields
    /// The Host field to add: the edge's authority, when the fields have none.
    var host: String?
    /// Whether to add `Transfer-Encoding: chunked`: the request says nothing of its body's length.
    var addsChunked: Bool

    /// The head's fields in order, the added ones last.
    var allFields: AllFields { AllFields(head: self) }

    struct AllFields: HeaderFieldBytes {
        let head: LocalRequestHead

        var byteCountBound: Int {
            head.fields.byteCountBound + (head.host.map { 4 + 4 + $0.utf8.count } ?? 0) + (head.addsChunked ? 32 : 0)
        }

        func forEachFieldBytes(
            _ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Void
        ) rethrows {
            try head.fields.forEachFieldBytes(body)
            if let host = head.host { try withUTF8(of: "Host", host, body) }
            if head.addsChunked { try withUTF8(of: "Transfer-Encoding", "chunked", body) }
        }
    }
}

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

    /// Writes a head from the tunnel's fields, as `write(.head(_:))` writes an `HTTPRequestHead` with the same
    /// fields.
    func writeHead(_ head: LocalRequestHead, promise: EventLoopPromise<Void>?) {
        writeHead(
            method: head.method,
            target: head.target,
            version: .http1_1,
            fields: head.allFields,
            context: context!,
            promise: promise
        )
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
            writeHead(
                method: head.method,
                target: head.uri,
                version: head.version,
                fields: HeaderFields(pairs: head.headers),
                context: context,
                promise: promise
            )
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

    private func writeHead(
        method: HTTPMethod,
        target: String,
        version: HTTPVersion,
        fields: some HeaderFieldBytes,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>?
    ) {
        do {
            let allocator = context.channel.allocator
            let (bytes, saysChunked) = try Self.encode(
                method: method,
                target: target,
                version: version,
                fields: fields,
                allocator: allocator
            )
            chunked = saysChunked
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
        }
    }

    /// Whether the body goes in chunks: the last coding the Transfer-Encoding fields list is chunked.
    static func saysChunked(_ fields: some HeaderFieldBytes) -> Bool {
        var chunked = false
        fields.forEachFieldBytes { name, value in
            if equalsLowercaseASCII(name, "transfer-encoding") { note(coding: value, chunked: &chunked) }
        }
        return chunked
    }

    /// Notes whether a Transfer-Encoding value's last coding is chunked; one that lists none leaves it as it was.
    private static func note(coding value: UnsafeRawBufferPointer, chunked: inout Bool) {
        if let coding = lastTransferCoding(value) { chunked = equalsLowercaseASCII(coding, "chunked") }
    }

    /// The request line and header block, ending in the blank line.
    static func encode(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        try encode(
            method: head.method,
            target: head.uri,
            version: head.version,
            fields: HeaderFields(pairs: head.headers),
            allocator: allocator
        ).bytes
    }

    /// The request line and header block, ending in the blank line, and whether the body goes in chunks: in one
    /// pass over the fields, each checked as it is written into a buffer sized for them all at once.
    static func encode(
        method httpMethod: HTTPMethod,
        target: String,
        version: HTTPVersion,
        fields: some HeaderFieldBytes,
        allocator: ByteBufferAllocator
    ) throws -> (bytes: ByteBuffer, chunked: Bool) {
        let method = httpMethod.rawValue
        guard method.isHTTPToken else {
            throw InvalidHead(description: "the method \(method) is not a token")
        }
        guard !target.isEmpty, target.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw InvalidHead(description: "the request target has a space or control character")
        }
        // "METHOD target HTTP/1.1\r\n", "name: value\r\n" each, "\r\n".
        let size = method.utf8.count + 1 + target.utf8.count + 11 + fields.byteCountBound + 2
        var chunked = false
        var buffer = allocator.buffer(capacity: size)
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            copyUTF8(of: method, into: out, at: &at)
            out[at] = UInt8(ascii: " ")
            at += 1
            copyUTF8(of: target, into: out, at: &at)
            copyUTF8(of: version == .http1_0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", into: out, at: &at)
            try fields.forEachFieldBytes { name, value in
                if let problem = fieldProblem(name: name, value: value) { throw InvalidHead(description: problem) }
                if equalsLowercaseASCII(name, "transfer-encoding") { note(coding: value, chunked: &chunked) }
                copyBytes(of: name, into: out, at: &at)
                copyBytes(UInt8(ascii: ":"), UInt8(ascii: " "), into: out, at: &at)
                copyBytes(of: value, into: out, at: &at)
                copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            }
            copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            return at
        }
        return (buffer, chunked)
    }
}
