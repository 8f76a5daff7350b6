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
    /// The body sizes opened once both sessions are up.
    var plannedSizes: [Int] = []

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
                if !atEdge { established.client = true }
            case .ready:
                if atEdge { established.edge = true }
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

extension StreamingEcho: RealDTLSApplications {
    var isEstablished: Bool { established.edge && established.client }
    var isFinished: Bool { !requests.isEmpty && !requests.values.contains { !$0.ended } }
    var clockNow: UInt64 {
        get { now }
        set { now = newValue }
    }

    func openExchanges() throws {
        for (index, size) in plannedSizes.enumerated() {
            let head = TunnelFrame.requestHead(
                method: "POST",
                scheme: "https",
                authority: "app.example.com",
                path: "/\(index)",
                headers: []
            )
            let (id, outputs) = try #require(try edge.openExchange(head, now: now))
            requests[id] = Request(size: size)
            handle(outputs, atEdge: true)
            if size == 0 { handle(try edge.sendEnd(on: id, now: now), atEdge: true) }
        }
    }

    func takeOutbox() -> [(toEdge: Bool, record: ByteBuffer)] {
        defer { outbox = [] }
        return outbox
    }
}

extension SCTPAssociationTests {
    /// 100 concurrent exchanges, one of them large, over real DTLS: 200 MiB each way directly, and 20 MiB each way
    /// through the lossy relay at 5% loss (where every lost packet can cost SCTP's 1 s RTO.min, so 200 MiB would
    /// take the better part of an hour in a test).
    @Test(.timeLimit(.minutes(10)), arguments: [(0.0, 200), (0.05, 20)])
    func aHundredExchangesWithALargeBodyOverRealDTLS(loss: Double, largeMiB: Int) async throws {
        let echo = try StreamingEcho(key: Self.key)
        var generator = SeededGenerator(seed: 77)
        echo.plannedSizes =
            [largeMiB * 1024 * 1024] + (1..<100).map { _ in Int.random(in: 0...200_000, using: &generator) }
        let started = ContinuousClock.now
        let baseline = residentKiB()
        var peak = baseline
        try await driveOverRealDTLS(echo, loss: loss) { peak = max(peak, residentKiB()) }
        let seconds = (ContinuousClock.now - started).components.seconds
        #expect(echo.requests.count == 100)
        #expect(echo.aborted.isEmpty, "\(echo.aborted)")
        for (id, request) in echo.requests {
            #expect(request.mismatchAt == nil, "\(id): first wrong byte at \(request.mismatchAt ?? -1)")
            #expect(request.verified == request.size, "\(id): \(request.verified) of \(request.size) bytes")
        }
        let growthMiB = (peak - baseline) / 1024
        #expect(growthMiB < 64, "resident memory grew by \(growthMiB) MiB")
        print(
            "tunnel over DTLS at \(Int(loss * 100))% loss: \(largeMiB) MiB each way plus 99 exchanges in \(seconds) s, "
                + "resident memory grew by \(growthMiB) MiB"
        )
        _ = echo.edge.close("test over")
        _ = echo.client.close("test over")
    }
}
