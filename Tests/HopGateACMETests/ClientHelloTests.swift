import HopGateEdge
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

/// The edge reads SNI and ALPN from real ClientHellos (made by NIOSSL's client) to spot TLS-ALPN-01 validations.
@Suite struct ClientHelloTests {
    @Test func readsTheServerNameAndProtocolsOfARealClientHello() throws {
        let hello = try Self.clientHello(serverName: "alpn.hopgate.test", alpn: ["acme-tls/1"])
        let parsed = ClientHello.parse(hello)
        #expect(parsed == .complete(ClientHello(serverName: "alpn.hopgate.test", applicationProtocols: ["acme-tls/1"])))
        if case .complete(let summary) = parsed { #expect(summary.isACMEValidation) }

        let browser = try Self.clientHello(serverName: "app.hopgate.test", alpn: ["h2", "http/1.1"])
        guard case .complete(let summary) = ClientHello.parse(browser) else {
            Issue.record("a browser's ClientHello must parse")
            return
        }
        #expect(summary.applicationProtocols == ["h2", "http/1.1"])
        #expect(!summary.isACMEValidation)
    }

    @Test func waitsForTheRestOfAClientHelloEvenAcrossRecords() throws {
        let hello = try Self.clientHello(serverName: "alpn.hopgate.test", alpn: ["acme-tls/1"])
        for length in [0, 1, 4, 5, 40, hello.readableBytes - 1] {
            #expect(ClientHello.parse(hello.getSlice(at: 0, length: length)!) == .needMoreData, "\(length) bytes")
        }
        // The same handshake message cut into two records.
        let body = hello.getSlice(at: 5, length: hello.readableBytes - 5)!
        let cut = 30
        var split = ByteBuffer()
        for part in [body.getSlice(at: 0, length: cut)!, body.getSlice(at: cut, length: body.readableBytes - cut)!] {
            split.writeBytes([22, 3, 1])
            split.writeInteger(UInt16(part.readableBytes))
            split.writeImmutableBuffer(part)
        }
        #expect(ClientHello.parse(split.getSlice(at: 0, length: 5 + cut + 3)!) == .needMoreData)
        #expect(
            ClientHello.parse(split)
                == .complete(ClientHello(serverName: "alpn.hopgate.test", applicationProtocols: ["acme-tls/1"]))
        )
    }

    @Test func anythingElseIsNotAClientHello() throws {
        #expect(ClientHello.parse(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == .notClientHello)
        // A handshake record holding a ServerHello (type 2), and a record with a zero length.
        #expect(ClientHello.parse(ByteBuffer(bytes: [22, 3, 3, 0, 4, 2, 0, 0, 0])) == .notClientHello)
        #expect(ClientHello.parse(ByteBuffer(bytes: [22, 3, 3, 0, 0])) == .notClientHello)
        // A ClientHello whose extensions claim 16 bytes and hold 4.
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0, 0, 2, 0x13, 0x01, 1, 0]
        body += [0, 16, 0, 0, 0, 0]
        var record = ByteBuffer(bytes: [22, 3, 1])
        record.writeInteger(UInt16(4 + body.count))
        record.writeBytes([1, 0, 0, UInt8(body.count)] + body)
        #expect(ClientHello.parse(record) == .notClientHello)
    }

    /// The first bytes a NIOSSL client sends.
    static func clientHello(serverName: String, alpn: [String]) throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = alpn
        let context = try NIOSSLContext(configuration: configuration)
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: context, serverHostname: serverName)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var hello = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { hello.writeBuffer(&part) }
        return hello
    }
}
