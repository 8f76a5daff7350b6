import HopGateTunnel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HopGateClient

/// The client's HTTP/1.1 request encoder, byte for byte, and what it refuses.
@Suite struct LocalRequestEncoderTests {
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            text += String(buffer: buffer)
        }
        return text
    }

    private func head(
        _ headers: [(String, String)],
        method: HTTPMethod = .GET,
        uri: String = "/a?b=1"
    )
        -> HTTPRequestHead
    {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func aRequestWithALengthIsItsHeadThenItsBytes() throws {
        let channel = EmbeddedChannel(handler: LocalRequestEncoder())
        try channel.writeOutbound(
            HTTPClientRequestPart.head(head([("Host", "app"), ("Content-Length", "3")], method: .POST))
        )
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "abc"))))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        #expect(try written(channel) == "POST /a?b=1 HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\n\r\nabc")
        _ = try channel.finish()
    }

    /// Parts handed to the encoder directly, as a local exchange hands them, are framed as those sent down the
    /// pipeline; once the encoder leaves the pipeline (an upgrade), it says so.
    @Test func partsHandedDirectlyAreFramedTheSame() throws {
        let encoder = LocalRequestEncoder()
        let channel = EmbeddedChannel(handler: encoder)
        #expect(encoder.isInPipeline)
        encoder.write(.head(head([("Transfer-Encoding", "chunked")], method: .PUT)), promise: nil)
        encoder.write(.body(.byteBuffer(ByteBuffer(string: "abc"))), promise: nil)
        encoder.write(.end(nil), promise: nil)
        encoder.flush()
        #expect(
            try written(channel) == "PUT /a?b=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        try channel.pipeline.syncOperations.removeHandler(encoder).wait()
        #expect(!encoder.isInPipeline)
        _ = try channel.finish()
    }

    /// A head handed over as the tunnel's fields (as a local exchange writes it) comes out as the `HTTPRequestHead`
    /// with the same fields, the Host and Transfer-Encoding the client adds last, and its body is framed the same.
    @Test(arguments: [(nil, false), ("app.example.com", true), (nil, true), ("app.example.com", false)])
    func aHeadFromTheTunnelsFieldsIsWrittenAsTheSameHTTPRequestHead(host: String?, addsChunked: Bool) throws {
        var fields = [HeaderField("X-Forwarded-For", "203.0.113.9"), HeaderField("Accept", "*/*")]
        if host == nil { fields.insert(HeaderField("Host", "given.example.com"), at: 0) }
        if !addsChunked { fields.append(HeaderField("Content-Length", "3")) }
        let request = LocalRequestHead(
            method: .POST,
            target: "/a?b=1",
            fields: HeaderFields(fields),
            host: host,
            addsChunked: addsChunked
        )
        let parts: [HTTPClientRequestPart] = [.body(.byteBuffer(ByteBuffer(string: "abc"))), .end(nil)]

        let piped = EmbeddedChannel(handler: LocalRequestEncoder())
        var pairs: [(String, String)] = []
        request.allFields.forEachFieldBytes { name, value in
            pairs.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        try piped.writeOutbound(HTTPClientRequestPart.head(head(pairs, method: .POST)))
        for part in parts { try piped.writeOutbound(part) }
        let expected = try written(piped)
        #expect(
            expected == "POST /a?b=1 HTTP/1.1\r\n" + (host == nil ? "Host: given.example.com\r\n" : "")
                + "X-Forwarded-For: 203.0.113.9\r\nAccept: */*\r\n" + (addsChunked ? "" : "Content-Length: 3\r\n")
                + (host.map { "Host: \($0)\r\n" } ?? "")
                + (addsChunked ? "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" : "\r\nabc")
        )

        let encoder = LocalRequestEncoder()
        let direct = EmbeddedChannel(handler: encoder)
        encoder.writeHead(request, promise: nil)
        for part in parts { encoder.write(part, promise: nil) }
        encoder.flush()
        #expect(try written(direct) == expected)
        _ = try piped.finish()
        _ = try direct.finish()
    }

    @Test func theBodyIsChunkedWhenTheLastCodingSaysSo() {
        func says(_ fields: [(String, String)]) -> Bool {
            LocalRequestEncoder.saysChunked(HeaderFields(fields.map { HeaderField($0.0, $0.1) }))
        }
        #expect(says([("Transfer-Encoding", "chunked")]))
        #expect(says([("transfer-encoding", "gzip, Chunked ")]))
        #expect(says([("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked,")]))
        #expect(!says([("Transfer-Encoding", "chunked, gzip")]))
        #expect(!says([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "gzip")]))
        #expect(!says([("Content-Length", "3"), ("X-Chunked", "chunked")]))
        // A value that lists no coding leaves the last one as it was; one of only space is none.
        #expect(says([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", ",")]))
        #expect(!says([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", " , ")]))
    }

    @Test func aChunkedBodyIsFramedAndEnded() throws {
        let channel = EmbeddedChannel(handler: LocalRequestEncoder())
        try channel.writeOutbound(HTTPClientRequestPart.head(head([("Transfer-Encoding", "chunked")], method: .PUT)))
        try channel.writeOutbound(
            HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: String(repeating: "x", count: 26))))
        )
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer())))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        let expected =
            "PUT /a?b=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n"
            + String(repeating: "x", count: 26) + "\r\n0\r\n\r\n"
        #expect(try written(channel) == expected)
        // The next request on the connection starts unchunked again.
        try channel.writeOutbound(HTTPClientRequestPart.head(head([("Content-Length", "1")])))
        try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "y"))))
        #expect(try written(channel) == "GET /a?b=1 HTTP/1.1\r\nContent-Length: 1\r\n\r\ny")
        _ = try channel.finish()
    }

    @Test func theEncoderWritesWhatNIOsWould() throws {
        // The same head through NIO's encoder and through this one.
        let fields = [
            ("Host", "app.example.com"), ("X-Forwarded-For", "203.0.113.9"), ("Accept", "*/*"),
            ("Content-Length", "0"), ("X-Tab", "a\tb"), ("X-Unicode", "välue ✓"),
        ]
        let nio = EmbeddedChannel(handler: HTTPRequestEncoder())
        try nio.writeOutbound(HTTPClientRequestPart.head(head(fields)))
        let ours = EmbeddedChannel(handler: LocalRequestEncoder())
        try ours.writeOutbound(HTTPClientRequestPart.head(head(fields)))
        #expect(try written(ours) == written(nio))
        _ = try nio.finish()
        _ = try ours.finish()
    }

    @Test func headsThatCouldSplitTheRequestAreRefused() {
        let refused: [HTTPRequestHead] = [
            head([("X-Evil", "a\r\nX-Injected: 1")]),
            head([("X Space", "1")]),
            head([("X-Nul", "a\u{0}b")]),
            head([], uri: "/a HTTP/1.1\r\nX: 1"),
            head([], uri: ""),
        ]
        for request in refused {
            #expect(throws: LocalRequestEncoder.InvalidHead.self) {
                try LocalRequestEncoder.encode(request, allocator: ByteBufferAllocator())
            }
        }
    }
}
