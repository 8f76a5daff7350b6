import HopGateCore
import HopGateTunnel
import NIOCore
import NIOHTTP1

/// Writes the responses of an HTTP/1 connection as bytes: what NIO's HTTPResponseEncoder and
/// NIOHTTPResponseHeadersValidator do together, with each head checked, framed and serialized in one pass into a
/// buffer sized once. Those two cost about 17k instructions per proxied request at the edge (a write and its checks
/// for every name, separator and value, a scan and an edit of the headers for framing, and a trip through two
/// handlers); this one about 11k (callgrind).
///
/// `HTTPProxyHandler` tells it each request's method as the request arrives (`noteRequest`), as NIO's encoder
/// learns them by watching the requests go by: a response to HEAD or CONNECT has no body. Told, rather than
/// watching, it is only on the way out: each request part went through it as a dynamic cast out of `NIOAny` and a
/// hop along the pipeline, about 1k instructions a request (callgrind).
///
/// The framing follows NIO's: a response that may have a body and says Content-Length keeps it and loses
/// Transfer-Encoding; one that says neither is sent chunked (HTTP/1.1); one that may not have a body (1xx, 204,
/// 304, a CONNECT's) loses both. A head with a name that is not a token or a value with a control character is not
/// written: its write fails, the error goes up the pipeline (the connection closes), and nothing more is written.
final class EdgeResponseEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    struct InvalidHead: Error, CustomStringConvertible {
        let description: String
    }

    struct BodyNotAllowed: Error, CustomStringConvertible {
        var description: String { "a response to HEAD or CONNECT has no body" }
    }

    /// The methods of the requests read and not yet answered, oldest first.
    private var methods = CircularBuffer<HTTPMethod>(initialCapacity: 4)
    /// The body being written goes in chunks.
    private var chunked = false
    /// The response being written answers HEAD or CONNECT: it has no body, whatever its head says.
    private var bodySuppressed = false
    /// A head was refused: the connection is closing, and nothing after it may reach the browser.
    private var refused = false
    /// A head written without a promise waits for what follows it until the next write or flush: a small body
    /// then goes in the same buffer, so one TLS record and one send carry the whole response instead of two.
    private var heldHead: ByteBuffer?
    /// The most a held head takes in with it: what fits one TLS record (16 KiB) with the head.
    static let joinedBodyLimit = 16 * 1024 - 512

    /// The encoder's own context while it is in the pipeline: `HTTPProxyHandler`, the next handler in, hands it the
    /// response parts directly (`write(_:promise:)`).
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// A request has arrived: the response that answers it (after any 1xx) is framed for its method.
    func noteRequest(_ method: HTTPMethod) {
        methods.append(method)
    }

    /// Whether `write(_:promise:)` and `flush()` may be called: not once an upgrade has taken the encoder out.
    var isInPipeline: Bool { context != nil }

    /// Writes a part as if it had come down the pipeline.
    func write(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>?) {
        write(part, context: context!, promise: promise)
    }

    func flush() {
        flush(context: context!)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// Writes a response head from the tunnel's fields as they stand, without an `HTTPResponseHead`: the fields
    /// the browser gets are read off the tunnel's bytes as they are written (`ProxyHeaders.ResponseFields`).
    /// Building the head's `HTTPHeaders` first, and reading them back, cost about 2.3k instructions a response;
    /// making strings of the fields, and copying them out again, about 4.5k more (callgrind).
    func writeHead(version: HTTPVersion, status: HTTPResponseStatus, fields: ProxyHeaders.ResponseFields) {
        let context = context!
        guard !refused else { return }
        releaseHeldHead(context: context)  // as `write` does: a held head takes in no other head
        writeHead(status: status, context: context, promise: nil) {
            try encode(version: version, status: status, fields: fields, allocator: $0)
        }
    }

    private func write(_ part: HTTPServerResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?)
    {
        guard !refused else {
            promise?.fail(InvalidHead(description: "an earlier response head was refused"))
            return
        }
        if var held = heldHead {
            heldHead = nil  // before appending: the buffer must be held once, or appending copies it
            if Self.join(part, to: &held, chunked: chunked, suppressed: bodySuppressed) {
                if case .end = part {
                    bodySuppressed = false
                    chunked = false
                }
                return context.write(wrapOutboundOut(.byteBuffer(held)), promise: promise)
            }
            context.write(wrapOutboundOut(.byteBuffer(held)), promise: nil)
        }
        switch part {
        case .head(let head):
            writeHead(status: head.status, context: context, promise: promise) {
                try encode(
                    version: head.version,
                    status: head.status,
                    fields: HeaderFields(pairs: head.headers),
                    allocator: $0
                )
            }
        case .body(let body):
            if bodySuppressed {
                promise?.fail(BodyNotAllowed())
                return
            }
            guard chunked, body.readableBytes > 0 else {
                // An empty chunk would end the body: it is written as nothing, in order.
                return context.write(wrapOutboundOut(body), promise: promise)
            }
            writeChunk(body, context: context, promise: promise)
        case .end(let trailers):
            bodySuppressed = false
            if chunked {
                chunked = false
                do {
                    let last = try Self.lastChunk(trailers, allocator: context.channel.allocator)
                    context.write(wrapOutboundOut(.byteBuffer(last)), promise: promise)
                } catch {
                    refused = true
                    promise?.fail(error)
                    context.fireErrorCaught(error)
                }
            } else if let promise {
                // Nothing to write, but the promise must not complete ahead of the writes before it.
                context.write(
                    wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                    promise: promise
                )
            }
        }
    }

    /// Encodes a head and holds it for what follows, or writes it at once when the caller waits for it or it
    /// switches protocols; a head that cannot be written closes the connection.
    private func writeHead(
        status: HTTPResponseStatus,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>?,
        encoding: (ByteBufferAllocator) throws -> ByteBuffer
    ) {
        do {
            let bytes = try encoding(context.channel.allocator)
            if promise == nil && status != .switchingProtocols {
                heldHead = bytes
            } else {
                context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
            }
        } catch {
            refused = true
            promise?.fail(error)
            context.fireErrorCaught(error)
        }
    }

    func flush(context: ChannelHandlerContext) {
        releaseHeldHead(context: context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        releaseHeldHead(context: context)
        context.close(mode: mode, promise: promise)
    }

    /// Writes the held head, if any, on its own.
    private func releaseHeldHead(context: ChannelHandlerContext) {
        guard let held = heldHead else { return }
        heldHead = nil
        context.write(wrapOutboundOut(.byteBuffer(held)), promise: nil)
    }

    /// Appends `part` to the held head, framed, when it is a small body chunk, or the end of an unchunked body
    /// (nothing to add) or of a chunked one (the last chunk, without trailers). False when it goes on its own.
    private static func join(
        _ part: HTTPServerResponsePart,
        to head: inout ByteBuffer,
        chunked: Bool,
        suppressed: Bool
    ) -> Bool {
        switch part {
        case .body(.byteBuffer(var body)) where !suppressed && body.readableBytes <= joinedBodyLimit:
            // An empty chunk would end a chunked body: the head goes alone, in its place.
            guard body.readableBytes > 0 else { return true }
            if chunked {
                head.writeString(String(body.readableBytes, radix: 16))
                head.writeStaticString("\r\n")
            }
            head.writeBuffer(&body)
            if chunked { head.writeStaticString("\r\n") }
            return true
        case .end(nil):
            if chunked { head.writeStaticString("0\r\n\r\n") }
            return true
        default:
            return false
        }
    }

    /// The status line and header block, framed for the request it answers.
    private func encode(
        version: HTTPVersion,
        status: HTTPResponseStatus,
        fields: some HeaderFieldBytes,
        allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        let code = status.code
        // A 1xx other than 101 is followed by the real answer to the same request.
        var answersConnect = false
        if !((100..<200).contains(code) && code != 101), let method = methods.popFirst() {
            bodySuppressed = method == .HEAD || method == .CONNECT
            answersConnect = method == .CONNECT
        }
        let reason = status.reasonPhrase
        guard reason.isHTTPFieldValue else {
            throw InvalidHead(description: "the reason phrase has a control character")
        }
        // Three digits as bytes; any other code (only ever set by hand) as text.
        let codeText = (100...999).contains(code) ? nil : String(code)
        let statusLine =
            version.major == 1 && version.minor == 1 ? "HTTP/1.1 " : "HTTP/\(version.major).\(version.minor) "
        let chunkedField = "transfer-encoding: chunked\r\n"
        // The status line, the fields (no more than `byteCountBound`: a field's name and value take as many bytes
        // with their separators as with their lengths on the wire), a chunked coding, the blank line.
        let size =
            statusLine.utf8.count + (codeText?.utf8.count ?? 3) + 1 + reason.utf8.count + 2
            + fields.byteCountBound + chunkedField.utf8.count + 2
        let mayHaveBody = !answersConnect && status.mayHaveResponseBody
        let isHTTP11 = version.major == 1 && version.minor >= 1
        // Which framing fields go: both without a body; Transfer-Encoding beside Content-Length, and any the
        // service sent when the encoder says chunked itself. Only an HTTP/1.0 answer with a body must know of a
        // Content-Length before its fields are written.
        var hasContentLength = false
        var addsChunked = false
        if mayHaveBody && !isHTTP11 {
            fields.forEachFieldBytes { name, _ in
                if equalsLowercaseASCII(name, "content-length") { hasContentLength = true }
            }
        }
        let dropsContentLength = !mayHaveBody
        let dropsTransferEncoding = !mayHaveBody || hasContentLength || isHTTP11

        // Room for a small body to join the head (see `heldHead`). Each field is checked, and noted, as it is
        // written: one pass over them.
        var buffer = allocator.buffer(capacity: size + 2048)
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            copyUTF8(of: statusLine, into: out, at: &at)
            if let codeText {
                copyUTF8(of: codeText, into: out, at: &at)
            } else {
                out[at] = UInt8(ascii: "0") + UInt8(code / 100)
                out[at + 1] = UInt8(ascii: "0") + UInt8(code / 10 % 10)
                out[at + 2] = UInt8(ascii: "0") + UInt8(code % 10)
                at += 3
            }
            out[at] = UInt8(ascii: " ")
            at += 1
            copyUTF8(of: reason, into: out, at: &at)
            copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            try fields.forEachFieldBytes { name, value in
                try Self.check(name, value)
                if equalsLowercaseASCII(name, "content-length") {
                    hasContentLength = true
                    if dropsContentLength { return }
                }
                if dropsTransferEncoding && equalsLowercaseASCII(name, "transfer-encoding") { return }
                copyBytes(of: name, into: out, at: &at)
                copyBytes(UInt8(ascii: ":"), UInt8(ascii: " "), into: out, at: &at)
                copyBytes(of: value, into: out, at: &at)
                copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            }
            addsChunked = mayHaveBody && !hasContentLength && isHTTP11
            if addsChunked { copyUTF8(of: chunkedField, into: out, at: &at) }
            copyBytes(UInt8(ascii: "\r"), UInt8(ascii: "\n"), into: out, at: &at)
            return at
        }
        chunked = addsChunked && !bodySuppressed
        return buffer
    }

    /// A field may be sent when its name is a token and its value has no control character (`fieldProblem`).
    private static func check(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        if let problem = fieldProblem(name: name, value: value) { throw InvalidHead(description: problem) }
    }

    /// The last chunk, with trailers if there are any, and the blank line.
    private static func lastChunk(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 5)
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] {
            try withUTF8(of: name, value, check)
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
