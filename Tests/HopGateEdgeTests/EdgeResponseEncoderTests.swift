import HopGateTunnel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HopGateEdge

/// The edge's HTTP/1 response encoder: byte for byte what NIO's encoder and header validator write for the same
/// requests and responses, and what it refuses.
@Suite struct EdgeResponseEncoderTests {
    /// One request and the parts of its response.
    struct Exchange {
        var request: String
        var response: [HTTPServerResponsePart]
    }

    private static func head(
        _ status: HTTPResponseStatus,
        _ headers: [(String, String)],
        version: HTTPVersion = .http1_1
    ) -> HTTPServerResponsePart {
        .head(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(headers)))
    }

    private static func body(_ text: String) -> HTTPServerResponsePart {
        .body(.byteBuffer(ByteBuffer(string: text)))
    }

    /// The bytes a pipeline writes for `exchanges`: requests read one after the other (pipelined when several),
    /// then the responses written in order, down the pipeline or handed to `encoder` directly. Writes a pipeline
    /// refuses are left out.
    private static func written(
        _ channel: EmbeddedChannel,
        _ exchanges: [Exchange],
        through encoder: EdgeResponseEncoder? = nil
    ) throws -> String {
        for exchange in exchanges { try channel.writeInbound(ByteBuffer(string: exchange.request)) }
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        for part in exchanges.flatMap(\.response) {
            if let encoder { encoder.write(part, promise: nil) } else { channel.write(part, promise: nil) }
        }
        if let encoder { encoder.flush() } else { channel.flush() }
        var text = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            text += String(buffer: buffer)
        }
        return text
    }

    private static func nios() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withErrorHandling: false
        )
        return channel
    }

    private static func edges() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
        )
        let encoder = EdgeResponseEncoder()
        try channel.pipeline.syncOperations.addHandler(encoder)
        try channel.pipeline.syncOperations.addHandler(MethodTeller(encoder: encoder))
        return channel
    }

    /// Tells the encoder each request's method as it arrives, as HTTPProxyHandler does.
    private final class MethodTeller: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        let encoder: EdgeResponseEncoder
        init(encoder: EdgeResponseEncoder) { self.encoder = encoder }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { encoder.noteRequest(head.method) }
            context.fireChannelRead(data)
        }
    }

    static let get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    static let head = "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
    static let connect = "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"
    static let get10 = "GET / HTTP/1.0\r\n\r\n"

    static let cases: [[Exchange]] = [
        // No length: chunked, the chunks framed, an empty one written as nothing.
        [
            Exchange(
                request: get,
                response: [head(.ok, [("Content-Type", "text/plain")]), body("hello"), body(""), body("x"), .end(nil)]
            )
        ],
        // A length: kept, with a Transfer-Encoding beside it removed.
        [
            Exchange(
                request: get,
                response: [
                    head(.ok, [("Content-Length", "5"), ("Transfer-Encoding", "chunked")]), body("hello"), .end(nil),
                ]
            )
        ],
        // A Transfer-Encoding the service sent is replaced by the encoder's own, at the end.
        [
            Exchange(
                request: get,
                response: [head(.ok, [("transfer-encoding", "gzip"), ("ETag", "\"1\"")]), body("ab"), .end(nil)]
            )
        ],
        // A HEAD response says what a GET's would and has no body.
        [Exchange(request: head, response: [head(.ok, [("Content-Type", "text/html")]), .end(nil)])],
        [Exchange(request: head, response: [head(.ok, [("Content-Length", "10")]), .end(nil)])],
        // No body may follow 204 and 304: their framing fields go.
        [Exchange(request: get, response: [head(.noContent, [("Content-Length", "0"), ("X-A", "1")]), .end(nil)])],
        [
            Exchange(
                request: get,
                response: [head(.notModified, [("Transfer-Encoding", "chunked"), ("ETag", "\"2\"")]), .end(nil)]
            )
        ],
        // A 100 answers nothing yet: the HEAD's response after it still has no body.
        [Exchange(request: head, response: [head(.continue, []), head(.ok, []), .end(nil)])],
        // Pipelined: each response is framed for its own request.
        [
            Exchange(request: head, response: [head(.ok, [("Content-Length", "3")]), .end(nil)]),
            Exchange(request: get, response: [head(.ok, []), body("abc"), .end(nil)]),
            Exchange(request: get, response: [head(.notFound, [("Content-Length", "2")]), body("no"), .end(nil)]),
        ],
        // HTTP/1.0: no chunking; the body runs to the close.
        [
            Exchange(
                request: get10,
                response: [head(.ok, [("Server", "x")], version: .http1_0), body("abc"), .end(nil)]
            )
        ],
        // A CONNECT's answer has no body and no framing fields.
        [Exchange(request: connect, response: [head(.ok, [("Content-Length", "3")]), .end(nil)])],
        // A switch of protocols.
        [
            Exchange(
                request: get,
                response: [head(.switchingProtocols, [("Upgrade", "websocket"), ("Connection", "upgrade")])]
            )
        ],
        // A status NIO has no name for, and trailers on a chunked body.
        [
            Exchange(
                request: get,
                response: [
                    head(HTTPResponseStatus(statusCode: 599), []), body("z"), .end(HTTPHeaders([("X-Sum", "1")])),
                ]
            )
        ],
    ]

    @Test(arguments: cases) func theEncoderWritesWhatNIOsWould(_ exchanges: [Exchange]) throws {
        let nio = try Self.nios()
        let edge = try Self.edges()
        let expected = try Self.written(nio, exchanges)
        #expect(!expected.isEmpty)
        #expect(try Self.written(edge, exchanges) == expected)
        _ = try nio.finish()
        _ = try edge.finish()
    }

    /// Parts handed to the encoder directly, as HTTPProxyHandler hands them, come out as those sent down the
    /// pipeline do; once the encoder leaves the pipeline (an upgrade), it says so and writes nothing more.
    @Test func partsHandedDirectlyAreWrittenAsThePipelinesAre() throws {
        let exchanges = Self.cases.flatMap { $0 }.filter { $0.request == Self.get }
        let piped = try Self.edges()
        let expected = try Self.written(piped, exchanges)
        let direct = try Self.edges()
        let encoder = try direct.pipeline.syncOperations.handler(type: EdgeResponseEncoder.self)
        #expect(encoder.isInPipeline)
        #expect(!expected.isEmpty)
        #expect(try Self.written(direct, exchanges, through: encoder) == expected)
        try direct.pipeline.syncOperations.removeHandler(encoder).wait()
        #expect(!encoder.isInPipeline)
        _ = try piped.finish()
        _ = try direct.finish()
    }

    /// A head handed over as the tunnel's fields (`writeHead(version:status:fields:)`, as HTTPProxyHandler writes
    /// HTTP/1 responses) comes out as the head `ProxyHeaders.responseHeaders` makes of the same fields does: hop-by-hop
    /// fields and those Connection names left out, `Connection: close` added when the connection ends.
    @Test(arguments: [false, true])
    func headsFromTheTunnelsFieldsAreWrittenAsTheirHeadersWouldBe(closing: Bool) throws {
        var exchanges = Self.cases.flatMap { $0 }.filter { $0.request == Self.get }
        exchanges.append(
            Exchange(
                request: Self.get,
                response: [
                    Self.head(
                        .ok,
                        [
                            ("Content-Length", "2"), ("Connection", "keep-alive, X-Private"), ("Keep-Alive", "5"),
                            ("X-Private", "1"), ("Upgrade", "h2c"), ("X-Kept", "yes"),
                        ]
                    ),
                    Self.body("ok"), .end(nil),
                ]
            )
        )
        let expected = try Self.written(
            try Self.edges(),
            exchanges.map { exchange in
                var exchange = exchange
                exchange.response = exchange.response.map { part in
                    guard case .head(let head) = part else { return part }
                    let fields = HeaderFields(head.headers.map { HeaderField($0.name, $0.value) })
                    let headers = ProxyHeaders.responseHeaders(fields, keepingUpgrade: false, closing: closing)
                    return .head(HTTPResponseHead(version: head.version, status: head.status, headers: headers))
                }
                return exchange
            }
        )
        #expect(expected.contains("X-Kept: yes\r\n") && !expected.contains("X-Private"))
        #expect(expected.contains("Connection: close\r\n") == closing)

        let channel = try Self.edges()
        let encoder = try channel.pipeline.syncOperations.handler(type: EdgeResponseEncoder.self)
        for exchange in exchanges { try channel.writeInbound(ByteBuffer(string: exchange.request)) }
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        for part in exchanges.flatMap(\.response) {
            guard case .head(let head) = part else {
                encoder.write(part, promise: nil)
                continue
            }
            // As the edge's session hands them on: the bytes they came in.
            let fields = try HeaderFields.readOffTheWire(head.headers.map { HeaderField($0.name, $0.value) })
            encoder.writeHead(
                version: head.version,
                status: head.status,
                fields: ProxyHeaders.ResponseFields(fields, keepingUpgrade: false, closing: closing)
            )
        }
        encoder.flush()
        #expect(try Self.buffers(channel).joined() == expected)
        _ = try channel.finish()
    }

    /// A field from the tunnel that could split the response is refused as one in an `HTTPResponseHead` is.
    @Test func aHeadFromTheTunnelWithAFieldThatCouldSplitTheResponseIsRefused() throws {
        let channel = try Self.edges()
        let encoder = try channel.pipeline.syncOperations.handler(type: EdgeResponseEncoder.self)
        try channel.writeInbound(ByteBuffer(string: Self.get + Self.get))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        let fields = try HeaderFields.readOffTheWire([HeaderField("X-A", "a\r\nSet-Cookie: evil=1")])
        encoder.writeHead(
            version: .http1_1,
            status: .ok,
            fields: ProxyHeaders.ResponseFields(fields, keepingUpgrade: false, closing: false)
        )
        #expect(throws: EdgeResponseEncoder.InvalidHead.self) { try channel.throwIfErrorCaught() }
        encoder.write(Self.head(.ok, [("Content-Length", "0")]), promise: nil)
        encoder.flush()
        #expect(try Self.buffers(channel).isEmpty)
        _ = try channel.finish()
    }

    /// The buffers a pipeline wrote, in order, empty ones left out.
    private static func buffers(_ channel: EmbeddedChannel) throws -> [String] {
        var buffers: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data, buffer.readableBytes > 0 { buffers.append(String(buffer: buffer)) }
        }
        return buffers
    }

    @Test func aSmallResponseLeavesAsOneBufferALargeBodyOnItsOwn() throws {
        let channel = try Self.edges()
        try channel.writeInbound(ByteBuffer(string: Self.get + Self.get + Self.get + Self.get))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        // Head, body and end in one buffer: one TLS record, one send.
        channel.write(Self.head(.ok, [("Content-Length", "5")]), promise: nil)
        channel.write(Self.body("hello"), promise: nil)
        channel.write(HTTPServerResponsePart.end(nil), promise: nil)
        channel.flush()
        #expect(try Self.buffers(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])
        // Chunked, the last chunk too.
        channel.write(Self.head(.ok, []), promise: nil)
        channel.write(Self.body("ab"), promise: nil)
        channel.flush()
        channel.write(HTTPServerResponsePart.end(nil), promise: nil)
        channel.flush()
        #expect(
            try Self.buffers(channel) == [
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n", "0\r\n\r\n",
            ]
        )
        // A body larger than a record follows the head; a flush sends a head that waits alone.
        let large = String(repeating: "x", count: 20000)
        channel.write(Self.head(.ok, [("Content-Length", "20000")]), promise: nil)
        channel.flush()
        #expect(try Self.buffers(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"])
        channel.write(Self.body(large), promise: nil)
        channel.write(HTTPServerResponsePart.end(nil), promise: nil)
        channel.flush()
        #expect(try Self.buffers(channel) == [large])
        // Without a flush between them, the head still goes first and alone.
        channel.write(Self.head(.ok, [("Content-Length", "20000")]), promise: nil)
        channel.write(Self.body(large), promise: nil)
        channel.flush()
        #expect(try Self.buffers(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n", large])
        _ = try channel.finish()
    }

    @Test func aBodyForAHeadRequestIsRefusedAndNotWritten() throws {
        let channel = try Self.edges()
        try channel.writeInbound(ByteBuffer(string: Self.head))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        try channel.writeOutbound(Self.head(.ok, [("Content-Length", "1")]))
        #expect(throws: EdgeResponseEncoder.BodyNotAllowed.self) { try channel.writeOutbound(Self.body("x")) }
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        var text = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { text += String(buffer: buffer) }
        }
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")
        _ = try channel.finish()
    }

    @Test(arguments: [
        [("X-A", "a\r\nSet-Cookie: evil=1")], [("Bad Name", "1")], [("X-A", "nul\u{0}")], [("", "1")],
    ])
    func aFieldThatCouldSplitTheResponseIsRefusedAndNothingFollows(_ fields: [(String, String)]) throws {
        let channel = try Self.edges()
        try channel.writeInbound(ByteBuffer(string: Self.get + Self.get))
        while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
        #expect(throws: EdgeResponseEncoder.InvalidHead.self) {
            try channel.writeOutbound(Self.head(.ok, fields))
        }
        // The error went up the pipeline too, and the next response is refused as well: the connection is done.
        #expect(throws: EdgeResponseEncoder.InvalidHead.self) { try channel.throwIfErrorCaught() }
        #expect(throws: EdgeResponseEncoder.InvalidHead.self) {
            try channel.writeOutbound(Self.head(.ok, [("Content-Length", "0")]))
        }
        #expect(try channel.readOutbound(as: IOData.self) == nil)
        _ = try channel.finish()
    }
}
