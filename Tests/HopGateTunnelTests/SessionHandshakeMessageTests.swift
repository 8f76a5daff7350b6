import HopGateTunnel
import NIOCore
import Testing

@Suite struct SessionHandshakeMessageTests {
    static let examples: [SessionHandshakeMessage] = [
        .hello(
            .init(
                protocolVersion: 1,
                domain: "app.example.com",
                credential: .clientAPIKey(String(repeating: "ab", count: 32)),
                pathPrefixes: ["/", "/admin"],
                clientVersion: "0.1.0"
            )
        ),
        .hello(
            .init(
                protocolVersion: 1,
                domain: "app.example.com",
                credential: .resumptionToken(Array(0..<80)),
                pathPrefixes: [],
                clientVersion: "0.1.0"
            )
        ),
        .welcome(
            .init(
                sessionID: 7,
                boundDomain: "app.example.com",
                maximumConcurrentExchanges: 256,
                maximumHeaderBytes: 65536,
                initialCredit: 262_144,
                keepaliveIntervalMilliseconds: 15_000,
                idleTimeoutMilliseconds: 45_000,
                resumptionToken: Array(repeating: 9, count: 80)
            )
        ),
        .reject(.init(code: .badKey, message: "the client API key for app.example.com is wrong")),
    ]

    @Test(arguments: examples)
    func roundTrips(message: SessionHandshakeMessage) throws {
        let record = try message.encoded()
        #expect(record.readableBytes <= SessionHandshakeMessage.maximumSize)
        #expect(try SessionHandshakeMessage(decoding: record) == message)
    }

    @Test func aHelloThatWouldNotFitOneDatagramIsRefusedBeforeSending() {
        let hello = SessionHandshakeMessage.hello(
            .init(
                protocolVersion: 1,
                domain: "app.example.com",
                credential: .clientAPIKey("k"),
                pathPrefixes: (0..<100).map { "/service-\($0)/with/a/long/prefix" },
                clientVersion: "0.1.0"
            )
        )
        let error = #expect(throws: TunnelWireError.self) { try hello.encoded() }
        #expect(error?.message.contains("one datagram carries 1163") == true)
    }

    @Test(
        arguments: [
            [UInt8](), Array("GET / HTTP/1.1\r\n".utf8), [0x48, 0x47, 0x54, 0x02, 1], [0x48, 0x47, 0x54, 0x01, 9],
            [0x48, 0x47, 0x54, 0x01, 1, 0, 1, 0, 200],
        ] as [[UInt8]]
    )
    func garbageIsRefused(bytes: [UInt8]) {
        #expect(throws: TunnelWireError.self) { try SessionHandshakeMessage(decoding: ByteBuffer(bytes: bytes)) }
    }

    @Test func survivesAFuzzRun() throws {
        var generator = SeededGenerator(seed: 7)
        let valid = try Self.examples.map { Array(buffer: try $0.encoded()) }
        for round in 0..<100_000 {
            var bytes = valid[round % valid.count]
            let cut = Int.random(in: 0...bytes.count, using: &generator)
            switch round % 3 {
            case 0: bytes = Array(bytes.prefix(cut))
            case 1 where !bytes.isEmpty: bytes[cut % bytes.count] ^= UInt8.random(in: 1...255, using: &generator)
            default: bytes = (0..<cut).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            if let message = try? SessionHandshakeMessage(decoding: ByteBuffer(bytes: bytes)) {
                // A Reject with a code this build does not know decodes as malformedHello, so it re-encodes
                // differently; everything else must re-encode to exactly the bytes it came from.
                if case .reject = message { continue }
                #expect(Array(buffer: try message.encoded()) == bytes)
            }
        }
    }

    @Test func onlyTransientRejectionsAreRetried() {
        let retryable = SessionHandshakeMessage.Reject.Code.allCases.filter(\.isRetryable)
        #expect(Set(retryable) == [.rateLimited, .serverBusy, .expiredToken])
    }
}
