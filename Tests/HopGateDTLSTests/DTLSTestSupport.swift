import Foundation
import HopGateLossyRelay
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import HopGateDTLS

let quietLogger = Logger(label: "hopgate.test.dtls") { _ in SwiftLogNoOpLogHandler() }

/// One self-signed certificate for `edge.test`, made once: key generation is the slow part.
let edgeCertificate = try! DTLSCertificate.selfSigned(names: ["edge.test"])

/// Writes `certificate`'s chain to a temporary file, for `.caFile`.
func caFile(for certificate: DTLSCertificate) throws -> String {
    let path = NSTemporaryDirectory() + "/hopgate-ca-\(UUID().uuidString).pem"
    try certificate.chainPEM.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A running server whose pipeline echoes every record back to its session, and that greets each new session
/// with one record of its own. Events are recorded for the test to inspect.
final class EchoServer: Sendable {
    let server: DTLSServer
    let port: Int
    /// The largest datagram the server's configuration allows toward these (loopback) clients.
    let largestAllowedDatagram: Int
    private let events = AsyncStream<DTLSServerEvent>.makeStream()
    private let task: Task<Void, Never>

    static let greeting = "hello from the edge"

    init(configuration: DTLSServerConfiguration? = nil, certificate: DTLSCertificate = edgeCertificate) async throws {
        var config = configuration ?? DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate))
        if configuration == nil {
            config.handshakeTimeout = .seconds(30)
            // These tests stand for any path: every datagram within the default size, loopback or not.
            config.loopbackDatagramSize = nil
        }
        largestAllowedDatagram = max(config.maximumDatagramSize, config.loopbackDatagramSize ?? 0)
        let server = try await DTLSServer.bind(host: "127.0.0.1", port: 0, configuration: config, logger: quietLogger)
        self.server = server
        self.port = server.localAddress?.port ?? 0
        let continuation = events.continuation
        task = Task {
            try? await server.channel.executeThenClose { inbound, outbound in
                for try await event in inbound {
                    continuation.yield(event)
                    switch event {
                    case .established(let id, _, _):
                        try? await outbound.write(.send(id, ByteBuffer(string: Self.greeting)))
                    case .record(let id, let record):
                        try? await outbound.write(.send(id, record))
                    case .closed:
                        break
                    }
                }
            }
            continuation.finish()
        }
    }

    var statistics: DTLSServerStatistics { server.statistics.snapshot }

    /// The next event that satisfies `matching`, within `timeout`.
    func waitForEvent(
        timeout: Duration = .seconds(10),
        _ matching: @escaping @Sendable (DTLSServerEvent) -> Bool
    ) async throws -> DTLSServerEvent {
        try await withThrowingTaskGroup(of: DTLSServerEvent?.self) { group in
            group.addTask {
                for await event in self.events.stream where matching(event) { return event }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return try #require(first, "no matching server event within \(timeout)")
        }
    }

    /// Sends a command as the pipeline above the handler would.
    func send(_ command: DTLSServerCommand) async throws {
        try await server.channel.channel.writeAndFlush(command)
    }

    /// Stops the server, and checks what every test must hold: no datagram it sent exceeded the MTU.
    func stop() async {
        try? await server.channel.channel.close()
        await task.value
        #expect(
            statistics.largestDatagramSent <= largestAllowedDatagram,
            "a datagram of \(statistics.largestDatagramSent) bytes"
        )
        #expect(statistics.largestDatagramSent > 0 || statistics.handshakesCompleted == 0)
    }
}

/// Expects an EchoServer's greeting, then the echo of one random record of each size.
func expectGreetingAndEchoes(
    of sizes: [Int],
    from records: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
    via outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
) async throws {
    // Reads stay outside #require and #expect: a macro may evaluate its expression more than once.
    let greeting = try await records.next()
    #expect(greeting.map { String(buffer: $0) } == EchoServer.greeting)
    for size in sizes {
        let record = ByteBuffer(bytes: (0..<size).map { _ in UInt8.random(in: 0...255) })
        try await outbound.write(record)
        let echo = try await records.next()
        #expect(echo == record)
    }
}

/// Client settings that trust the test certificate by pinning it.
func pinnedClient(
    _ name: String = "edge.test",
    certificate: DTLSCertificate = edgeCertificate
) -> DTLSClientConfiguration {
    var configuration = DTLSClientConfiguration(serverName: name, verification: .fingerprint(certificate.fingerprint!))
    configuration.handshakeTimeout = .seconds(30)
    configuration.loopbackDatagramSize = nil  // as if the server were anywhere: see EchoServer
    return configuration
}

/// Runs `body`, failing with a timeout error when it takes longer than `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let first else { throw TimeoutError() }
        return first
    }
}

struct TimeoutError: Error {}
