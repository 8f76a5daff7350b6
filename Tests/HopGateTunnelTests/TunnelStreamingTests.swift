import Foundation
import HopGateDTLS
import HopGateLossyRelay
import HopGateTunnel
import Logging
import NIOCore
import NIOPosix
import Testing

/// Bodies that are generated and checked on the fly, so a test can move hundreds of megabytes through the tunnel
/// and measure the tunnel's memory, not its own.
final class StreamingEcho {
    struct Request {
        var size: Int
        var sent = 0
        var verified = 0
        var mismatchAt: Int?
        var ended = false
    }

    struct Echo {
        var pending = ByteBuffer()
        var headSent = false
        var requestEnded = false
        var finished = false
    }

    let edge: TunnelSession
    let client: TunnelSession
    var requests: [ExchangeID: Request] = [:]
    var echoes: [ExchangeID: Echo] = [:]
    var outbox: [(toEdge: Bool, record: ByteBuffer)] = []
    var established = (edge: false, client: false)
    var aborted: [ExchangeID: AbortReason] = [:]
    var now: UInt64 = 0

    /// Every body is this pattern repeated: a prime length, so a chunk shifted by any offset below it differs.
    static let pattern: [UInt8] = {
        var generator = SeededGenerator(seed: 0x5eed)
        return (0..<1_048_573).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }()

    /// Bytes `position..<position+count` of a body.
    static func chunk(at position: Int, count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        var done = 0
        while done < count {
            let offset = (position + done) % pattern.count
            let run = min(count - done, pattern.count - offset)
            buffer.writeBytes(pattern[offset..<(offset + run)])
            done += run
        }
        return buffer
    }

    /// Whether `bytes` are the body's bytes from `position` on (compared with memcmp, not byte by byte).
    static func matches(_ bytes: ByteBuffer, at position: Int) -> Bool {
        let expected = chunk(at: position, count: bytes.readableBytes)
        return bytes.withUnsafeReadableBytes { actual in
            expected.withUnsafeReadableBytes { wanted in
                actual.count == wanted.count
                    && (actual.count == 0 || memcmp(actual.baseAddress!, wanted.baseAddress!, actual.count) == 0)
            }
        }
    }

    init(key: String) throws {
        edge = TunnelSession(edgeSessionID: 9)
        client = TunnelSession(
            client: ClientHandshake(
                domain: "app.example.com",
                credential: .clientAPIKey(key),
                pathPrefixes: ["/"],
                clientVersion: "test"
            )
        )
    }

    func handle(_ outputs: [TunnelSession.Output], atEdge: Bool) {
        var queue = outputs
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .record(let record):
                outbox.append((!atEdge, record))
            case .verify:
                queue += edge.verdict(.valid(resumptionToken: []), now: now)
            case .established:
                if atEdge { established.edge = true } else { established.client = true }
            case .exchangeOpened(let id, _):
                echoes[id] = Echo()
            case .data(let id, let bytes):
                if atEdge {
                    guard var request = requests[id] else { break }
                    if request.mismatchAt == nil && !Self.matches(bytes, at: request.verified) {
                        request.mismatchAt = request.verified
                    }
                    request.verified += bytes.readableBytes
                    requests[id] = request
                    queue += edge.consumed(bytes.readableBytes, on: id, now: now)
                } else {
                    // Echo as it arrives; credit goes back to the edge only once the bytes are echoed.
                    var incoming = bytes
                    echoes[id]?.pending.writeBuffer(&incoming)
                }
            case .end(let id):
                if atEdge { requests[id]?.ended = true } else { echoes[id]?.requestEnded = true }
            case .aborted(let id, let reason):
                aborted[id] = reason
            case .head, .writable, .rejected, .closed:
                break
            }
        }
    }

    func runApplications() throws {
        handle(edge.tick(now: now), atEdge: true)
        handle(client.tick(now: now), atEdge: false)
        for (id, request) in requests where request.sent < request.size {
            let count = min(edge.sendableBytes(on: id), request.size - request.sent)
            guard count > 0 else { continue }
            let chunk = Self.chunk(at: request.sent, count: count)
            requests[id]?.sent += count
            handle(try edge.sendData(chunk, on: id, now: now), atEdge: true)
            if request.sent + count == request.size { handle(try edge.sendEnd(on: id, now: now), atEdge: true) }
        }
        for (id, echo) in echoes where !echo.finished {
            if !echo.headSent {
                echoes[id]?.headSent = true
                handle(try client.sendHead(.responseHead(status: 200, headers: []), on: id, now: now), atEdge: false)
            }
            var pending = echoes[id]!.pending
            let count = min(client.sendableBytes(on: id), pending.readableBytes)
            if count > 0, let chunk = pending.readSlice(length: count) {
                // A buffer that is appended to and read from never shrinks by itself.
                pending.discardReadBytes()
                echoes[id]?.pending = pending
                handle(try client.sendData(chunk, on: id, now: now), atEdge: false)
                handle(client.consumed(count, on: id, now: now), atEdge: false)
            }
            if let current = echoes[id], current.requestEnded, current.pending.readableBytes == 0 {
                echoes[id]?.finished = true
                handle(try client.sendEnd(on: id, now: now), atEdge: false)
            }
        }
    }
}

/// The process's resident memory in KiB (Linux).
func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

extension SCTPAssociationTests {
    private enum StreamEvent {
        case edge(DTLSServerEvent)
        case client(ByteBuffer)
        case tick
    }

    /// 100 concurrent exchanges, one of them large, over real DTLS: 200 MiB each way directly, and 20 MiB each way
    /// through the lossy relay at 5% loss (where every lost packet can cost SCTP's 1 s RTO.min, so 200 MiB would
    /// take the better part of an hour in a test).
    @Test(.timeLimit(.minutes(10)), arguments: [(0.0, 200), (0.05, 20)])
    func aHundredExchangesWithALargeBodyOverRealDTLS(loss: Double, largeMiB: Int) async throws {
        let largeBody = largeMiB * 1024 * 1024
        let logger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }
        let certificate = try DTLSCertificate.selfSigned(names: ["edge.test"])
        let server = try await DTLSServer.bind(
            host: "127.0.0.1",
            port: 0,
            configuration: DTLSServerConfiguration(certificateSource: FixedCertificateSource(certificate)),
            logger: logger
        )
        var port = server.localAddress!.port!
        var relay: LossyRelay?
        if loss > 0 {
            relay = try await LossyRelay.start(
                to: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                configuration: LossyRelayConfiguration(
                    lossRate: loss,
                    duplicationRate: loss / 5,
                    reorderRate: loss,
                    seed: 8
                )
            )
            port = relay!.port
        }
        let client = try await DTLSClient.connect(
            host: "127.0.0.1",
            port: port,
            configuration: DTLSClientConfiguration(
                serverName: "edge.test",
                verification: .fingerprint(certificate.fingerprint!)
            )
        )
        let echo = try StreamingEcho(key: Self.key)
        let clock = ContinuousClock()
        let started = clock.now
        var generator = SeededGenerator(seed: 77)
        let sizes = [largeBody] + (1..<100).map { _ in Int.random(in: 0...200_000, using: &generator) }
        let baseline = residentKiB()
        var peak = baseline
        let (events, continuation) = AsyncStream.makeStream(of: StreamEvent.self)

        try await server.channel.executeThenClose { serverInbound, serverOutbound in
            try await client.executeThenClose { clientInbound, clientOutbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for try await event in serverInbound { continuation.yield(.edge(event)) } }
                    group.addTask { for try await record in clientInbound { continuation.yield(.client(record)) } }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .milliseconds(2))
                            continuation.yield(.tick)
                        }
                    }
                    var edgeSession: DTLSSessionID?
                    var opened = false
                    echo.handle(try echo.client.start(now: 0), atEdge: false)
                    for await event in events {
                        let elapsed = clock.now - started
                        echo.now =
                            UInt64(elapsed.components.seconds) * 1000
                            + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
                        switch event {
                        case .edge(.established(let id, _)): edgeSession = id
                        case .edge(.record(_, let record)):
                            echo.handle(echo.edge.receive(record, now: echo.now), atEdge: true)
                        case .edge(.closed): Issue.record("the DTLS session closed")
                        case .client(let record): echo.handle(echo.client.receive(record, now: echo.now), atEdge: false)
                        case .tick:
                            SCTPStack.advanceTimers(toMilliseconds: NIODeadline.now().uptimeNanoseconds / 1_000_000)
                            try echo.runApplications()
                            peak = max(peak, residentKiB())
                            if echo.established.edge && echo.established.client && !opened {
                                opened = true
                                for (index, size) in sizes.enumerated() {
                                    let head = TunnelFrame.requestHead(
                                        method: "POST",
                                        scheme: "https",
                                        authority: "app.example.com",
                                        path: "/\(index)",
                                        headers: []
                                    )
                                    let (id, outputs) = try #require(try echo.edge.openExchange(head, now: echo.now))
                                    echo.requests[id] = StreamingEcho.Request(size: size)
                                    echo.handle(outputs, atEdge: true)
                                    if size == 0 {
                                        echo.handle(try echo.edge.sendEnd(on: id, now: echo.now), atEdge: true)
                                    }
                                }
                            }
                        }
                        if let edgeSession {
                            for (toEdge, record) in echo.outbox {
                                if toEdge {
                                    try await clientOutbound.write(record)
                                } else {
                                    try await serverOutbound.write(.send(edgeSession, record))
                                }
                            }
                            echo.outbox = []
                        }
                        if opened && !echo.requests.values.contains(where: { !$0.ended }) { break }
                    }
                    group.cancelAll()
                }
            }
        }
        let seconds = Double((clock.now - started).components.seconds)
        #expect(echo.requests.count == 100)
        #expect(echo.aborted.isEmpty, "\(echo.aborted)")
        for (id, request) in echo.requests {
            #expect(request.mismatchAt == nil, "\(id): first wrong byte at \(request.mismatchAt ?? -1)")
            #expect(request.verified == request.size, "\(id): \(request.verified) of \(request.size) bytes")
        }
        let growthMiB = (peak - baseline) / 1024
        #expect(growthMiB < 64, "resident memory grew by \(growthMiB) MiB")
        print(
            "tunnel over DTLS at \(Int(loss * 100))% loss: \(largeMiB) MiB each way plus 99 exchanges in \(Int(seconds)) s, "
                + "resident memory grew by \(growthMiB) MiB"
        )
        await relay?.stop()
        _ = echo.edge.close("test over")
        _ = echo.client.close("test over")
    }
}
