import HopGateDTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Records per second and MB/s through HopGate's DTLS over loopback, with records that fill a 1200-byte datagram,
/// for one session and for many at once. A benchmark, not a test: it prints figures.
///
///   swift run -c release hopgate-dtls-bench [seconds] [sessions...]
@main
struct DTLSBenchmark {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        let seconds = arguments.first.flatMap(Int.init) ?? 5
        let sessionCounts = arguments.dropFirst().compactMap(Int.init)
        let certificate = try DTLSCertificate.selfSigned(names: ["bench.test"])
        print("| sessions | sent rec/s | received rec/s | received MB/s | loss % |")
        print("|---------:|-----------:|---------------:|--------------:|-------:|")
        for sessions in sessionCounts.isEmpty ? [1, 50] : sessionCounts {
            let result = try await run(sessions: sessions, seconds: seconds, certificate: certificate)
            let sent = Double(result.sent) / Double(seconds)
            let received = Double(result.received) / Double(seconds)
            let megabytes = Double(result.receivedBytes) / Double(seconds) / 1_000_000
            let loss = result.sent == 0 ? 0 : 100 * Double(result.sent - result.received) / Double(result.sent)
            print(
                "| \(pad(sessions, 8)) | \(pad(Int(sent), 10)) | \(pad(Int(received), 14)) | "
                    + "\(pad(Int(megabytes.rounded()), 13)) | \(pad(Int(loss.rounded()), 6)) |"
            )
        }
        print(
            "records of \(recordSize) bytes (1200-byte datagrams), \(seconds) s each, one process, loopback UDP, "
                + "server and clients on one event-loop thread each"
        )
    }

    /// The payload that fills one 1200-byte datagram with AES-GCM: 1200 - 13 (header) - 8 (nonce) - 16 (tag).
    static let recordSize = 1163

    struct Result {
        var sent = 0
        var received = 0
        var receivedBytes = 0
    }

    /// The server and the clients each get one event-loop thread (one core each on a 2-core machine), so senders
    /// that never block (UDP) cannot starve the server's reads by sharing its loop.
    static let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func run(sessions: Int, seconds: Int, certificate: DTLSCertificate) async throws -> Result {
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        let counter = NIOLockedValueBox(Result())
        var configuration = DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate))
        configuration.maximumHandshakes = sessions + 10
        let server = try await DatagramBootstrap(group: serverGroup)
            .channelOption(.socketOption(.so_rcvbuf), value: 8 << 20)
            .channelOption(.maxMessagesPerRead, value: 64)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DTLSServerHandler(configuration: configuration, logger: logger)
                    )
                    try channel.pipeline.syncOperations.addHandler(CountingHandler(counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        var clientConfiguration = DTLSClientConfiguration(
            serverName: "bench.test",
            verification: .fingerprint(certificate.fingerprint!)
        )
        clientConfiguration.idleTimeout = .seconds(600)
        let clientSettings = clientConfiguration
        let clients = try await withThrowingTaskGroup(of: NIOAsyncChannel<ByteBuffer, ByteBuffer>.self) { group in
            for _ in 0..<sessions {
                group.addTask {
                    try await DTLSClient.connect(
                        host: "127.0.0.1",
                        port: port,
                        configuration: clientSettings,
                        group: clientGroup
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        counter.withLockedValue { $0 = Result() }
        let deadline = NIODeadline.now() + .seconds(Int64(seconds))
        let record = ByteBuffer(repeating: 0x42, count: recordSize)
        let sent = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in clients {
                group.addTask { try await blast(client.channel, record: record, until: deadline) }
            }
            return try await group.reduce(0, +)
        }
        try await Task.sleep(for: .milliseconds(200))  // the last datagrams in flight
        var result = counter.withLockedValue { $0 }
        result.sent = sent
        for client in clients { try? await client.channel.close() }
        try await server.close()
        return result
    }

    /// Writes batches of records on the channel's event loop, each batch after the previous one reached the socket,
    /// until the deadline. Returns how many were sent.
    static func blast(_ channel: any Channel, record: ByteBuffer, until deadline: NIODeadline) async throws -> Int {
        let batch = 64
        var sent = 0
        while NIODeadline.now() < deadline {
            let last: EventLoopFuture<Void> = channel.eventLoop.flatSubmit {
                var future: EventLoopFuture<Void>?
                for _ in 0..<batch { future = channel.write(record) }
                channel.flush()
                return future!
            }
            try await last.get()
            sent += batch
        }
        return sent
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

/// Counts the records the server receives.
final class CountingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = DTLSServerEvent
    let counter: NIOLockedValueBox<DTLSBenchmark.Result>
    init(counter: NIOLockedValueBox<DTLSBenchmark.Result>) { self.counter = counter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .record(_, let record) = unwrapInboundIn(data) {
            counter.withLockedValue {
                $0.received += 1
                $0.receivedBytes += record.readableBytes
            }
        }
    }
}
