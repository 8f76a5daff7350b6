import HopGateCore
import HopGateTunnel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HopGateClient

/// The client's HTTP/1 response parser: framing as RFC 9112 has it, the same parts as NIO's decoder for the same
/// bytes however they are split, and what it refuses.
@Suite struct LocalResponseParserTests {
    /// The parts as text, consecutive body parts joined: `head 200 1 a=1,b=2` (status, minor version, fields),
    /// `body hello`, `end`.
    private static func describe(_ parts: [LocalResponseParser.Part]) -> [String] {
        var lines: [String] = []
        for part in parts {
            switch part {
            case .head(let head):
                let fields = head.fields.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                lines.append("head \(head.status) \(head.version.minor) \(fields)")
            case .body(let body):
                if let last = lines.last, last.hasPrefix("body ") {
                    lines[lines.count - 1] = last + String(buffer: body)
                } else {
                    lines.append("body " + String(buffer: body))
                }
            case .end:
                lines.append("end")
            }
        }
        return lines
    }

    /// NIO's parts as the parser's, to be described the same way: without the hop-by-hop fields, which the parser
    /// leaves out of every head but a 101's.
    private static func parserParts(_ parts: [HTTPClientResponsePart]) -> [LocalResponseParser.Part] {
        parts.map { part in
            switch part {
            case .head(let head):
                let fields = head.headers.map { HeaderField($0.name, $0.value) }.filter {
                    head.status == .switchingProtocols || !$0.name.isHopByHopFieldName
                }
                return .head(
                    LocalResponseParser.Head(
                        status: Int(head.status.code),
                        version: head.version,
                        fields: HeaderFields(fields)
                    )
                )
            case .body(let body):
                return .body(body)
            case .end:
                return .end
            }
        }
    }

    /// Parses `text` fed in pieces of `step` bytes (0: all at once), after requests with `methods`.
    private static func parse(
        _ text: String,
        methods: [HTTPMethod] = [.GET],
        step: Int = 0,
        closed: Bool = false
    )
        throws -> [String]
    {
        var parser = LocalResponseParser()
        for method in methods { parser.noteRequest(method) }
        var parts: [LocalResponseParser.Part] = []
        let bytes = Array(text.utf8)
        let size = step == 0 ? max(bytes.count, 1) : step
        var offset = 0
        while offset < bytes.count {
            let piece = bytes[offset..<min(offset + size, bytes.count)]
            try parser.parse(ByteBuffer(bytes: piece), into: &parts)
            offset += size
        }
        if closed { _ = parser.connectionClosed(into: &parts) }
        return describe(parts)
    }

    /// What NIO's decoder makes of the same bytes.
    private static func nio(_ text: String, methods: [HTTPMethod] = [.GET], closed: Bool = false) throws -> [String] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            HTTPRequestEncoder(), ByteToMessageHandler(HTTPResponseDecoder()),
        ])
        for method in methods {
            try channel.writeOutbound(
                HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/"))
            )
        }
        try channel.writeInbound(ByteBuffer(string: text))
        if closed { channel.pipeline.fireChannelInactive() }
        var parts: [HTTPClientResponsePart] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) { parts.append(part) }
        _ = try? channel.finish()
        return describe(parserParts(parts))
    }

    static let responses: [(String, [HTTPMethod], Bool)] = [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: \t spaced\r\n\r\nhello", [.GET], false),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\n"
                + String(repeating: "z", count: 26)
                + "\r\n0\r\nX-Trailer: 1\r\n\r\n", [.GET], false
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n"
                + "Content-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [.HEAD, .GET, .GET, .GET],
            false
        ),
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew", [.POST], false),
        ("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil the end", [.GET], true),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\n!",
            [.GET, .GET], false
        ),
        ("HTTP/1.1 599 Odd\r\nX-Uni: välue\r\nContent-Length: 1\r\n\r\n.", [.GET], false),
        ("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n.", [.GET], false),
    ]

    @Test func theSamePartsAsNIOsDecoderHoweverTheBytesAreSplit() throws {
        for (text, methods, closed) in Self.responses {
            let expected = try Self.nio(text, methods: methods, closed: closed)
            #expect(expected.contains("end"), "NIO ends \(text.debugDescription)")
            for step in [0, 1, 2, 3, 7, 64] {
                let ours = try Self.parse(text, methods: methods, step: step, closed: closed)
                #expect(ours == expected, "\(text.debugDescription) in pieces of \(step)")
            }
        }
    }

    @Test func aValueLosesTheSpaceAroundIt() throws {
        #expect(
            try Self.parse("HTTP/1.1 200 OK\r\nX-A: \t a b \t\r\nContent-Length: 0\r\n\r\n")
                == ["head 200 1 X-A=a b,Content-Length=0", "end"]
        )
    }

    @Test func linesMayEndInALineFeedAlone() throws {
        #expect(
            try Self.parse("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi") == [
                "head 200 1 Content-Length=2", "body hi", "end",
            ]
        )
    }

    @Test func aBodyUntilCloseEndsWithTheConnectionAndACutAnswerIsSaidSo() throws {
        var parser = LocalResponseParser()
        parser.noteRequest(.GET)
        var parts: [LocalResponseParser.Part] = []
        try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), into: &parts)
        let whole = parser.connectionClosed(into: &parts)
        #expect(!whole)
        #expect(Self.describe(parts) == ["head 200 1 Content-Length=10", "body abc"])

        var idle = LocalResponseParser()
        let idleWhole = idle.connectionClosed(into: &parts)
        #expect(idleWhole)
    }

    @Test func aSwitchLeavesTheBytesBehindItForTheNewProtocol() throws {
        var parser = LocalResponseParser()
        parser.noteRequest(.GET)
        var parts: [LocalResponseParser.Part] = []
        try parser.parse(
            ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u{81}\u{02}hi"),
            into: &parts
        )
        try parser.parse(ByteBuffer(string: "more"), into: &parts)
        #expect(Self.describe(parts) == ["head 101 1 Upgrade=websocket", "end"])
        let upgraded = parser.takeUpgradedBytes().map { String(buffer: $0) }
        #expect(upgraded == "\u{81}\u{02}himore")
    }

    /// The fields about the local connection stay behind, whatever the head's framing; a 101 keeps them, for the
    /// exchange to keep what it switches to.
    @Test func hopByHopFieldsAreLeftOutOfEveryHeadButASwitch() throws {
        let heads = [
            (
                "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n",
                "head 200 1 Content-Length=0,X-A=1"
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nX-A: 1\r\n\r\n0\r\n\r\n",
                "head 200 1 X-A=1"
            ),
            ("HTTP/1.1 204 No Content\r\nConnection: close\r\nX-A: 1\r\n\r\n", "head 204 1 X-A=1"),
        ]
        for (text, head) in heads {
            #expect(try Self.parse(text) == [head, "end"])
        }
        let switched = try Self.parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n")
        #expect(switched == ["head 101 1 Upgrade=h2c,Connection=upgrade", "end"])
    }

    @Test func headsAndBodiesThatCouldBeMisreadAreRefused() {
        let refused = [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 200OK\r\n\r\n",
            "ICY 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nNo Colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Nul: a\u{0}b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
            "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "b", count: LocalResponseParser.maximumHeadBytes)
                + "\r\n\r\n",
        ]
        for text in refused {
            #expect(throws: LocalResponseParser.Failure.self, "\(text.prefix(80).debugDescription)") {
                try Self.parse(text)
            }
        }
    }

    /// The fields go to the tunnel as bytes: a value that is not UTF-8 (Latin-1 here) goes repaired, as a string
    /// made of it would, since the edge takes only UTF-8; one longer than the tunnel carries is refused.
    @Test func fieldsTheTunnelCannotCarryAsTheyAreAreRepairedOrRefused() throws {
        var parser = LocalResponseParser()
        parser.noteRequest(.GET)
        parser.noteRequest(.GET)
        var parts: [LocalResponseParser.Part] = []
        var latin1 = ByteBuffer(string: "HTTP/1.1 200 OK\r\nX-Name: caf")
        latin1.writeInteger(UInt8(0xE9))
        latin1.writeString("\r\nContent-Length: 0\r\n\r\n")
        try parser.parse(latin1, into: &parts)
        #expect(Self.describe(parts) == ["head 200 1 X-Name=caf\u{FFFD},Content-Length=0", "end"])
        let long = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "l", count: 70_000) + "\r\n\r\n"
        #expect(throws: LocalResponseParser.Failure.self) { try parser.parse(ByteBuffer(string: long), into: &parts) }
    }

    @Test func afterARefusalNothingMoreIsParsed() throws {
        var parser = LocalResponseParser()
        parser.noteRequest(.GET)
        parser.noteRequest(.GET)
        var parts: [LocalResponseParser.Part] = []
        #expect(throws: LocalResponseParser.Failure.self) {
            try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), into: &parts)
        }
        #expect(throws: LocalResponseParser.Failure.self) {
            try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), into: &parts)
        }
        #expect(parts.isEmpty)
    }

    @Test func aHeadThatHasNotAllArrivedWaitsAndALongOneIsRefusedBeforeItEnds() throws {
        var parser = LocalResponseParser()
        parser.noteRequest(.GET)
        var parts: [LocalResponseParser.Part] = []
        try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Len"), into: &parts)
        #expect(parts.isEmpty)
        #expect(!parser.isBetweenResponses)
        try parser.parse(ByteBuffer(string: "gth: 1\r\n\r\n!"), into: &parts)
        #expect(Self.describe(parts) == ["head 200 1 Content-Length=1", "body !", "end"])
        #expect(parser.isBetweenResponses)

        var endless = LocalResponseParser()
        endless.noteRequest(.GET)
        try endless.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\n"), into: &parts)
        #expect(throws: LocalResponseParser.Failure.self) {
            try endless.parse(
                ByteBuffer(string: "X: " + String(repeating: "y", count: LocalResponseParser.maximumHeadBytes)),
                into: &parts
            )
        }
    }

    @Test func aHeadSaysWhetherItsConnectionStaysOpen() throws {
        let cases: [(String, Bool)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            ("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true),
        ]
        for (text, keepAlive) in cases {
            var parser = LocalResponseParser()
            parser.noteRequest(.GET)
            var parts: [LocalResponseParser.Part] = []
            try parser.parse(ByteBuffer(string: text), into: &parts)
            guard case .head(let head) = parts.first else {
                Issue.record("no head for \(text.debugDescription)")
                continue
            }
            #expect(head.keepAlive == keepAlive, "\(text.debugDescription)")
        }
    }

    @Test func connectionOptionsKeepAliveAsNIOSays() {
        let values: [[String]] = [
            [], ["close"], ["keep-alive"], ["Keep-Alive"], ["upgrade, close"], ["CLOSE"], [" keep-alive "],
            ["keep-alive", "close"], ["te, keep-alive"], ["closed"],
        ]
        for version in [HTTPVersion.http1_0, .http1_1] {
            for fields in values {
                var options = ConnectionOptions()
                for value in fields { options.read(value) }
                let head = HTTPResponseHead(
                    version: version,
                    status: .ok,
                    headers: HTTPHeaders(fields.map { ("Connection", $0) })
                )
                #expect(options.keepsAlive(version: version) == head.isKeepAlive, "\(version) \(fields)")
            }
        }
    }
}
