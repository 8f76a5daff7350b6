import Foundation
import HopGateTestSupport
import Testing

/// `hopgate connect` under failure: a client killed under load, a client stopped gracefully.
@Suite(.serialized) struct ClientEndToEndTests {
    /// Requests from 4 threads for `seconds`, each printed as `start-offset end-offset status body`, after a first
    /// line with the wall-clock time the offsets count from.
    static let load = """
        import http.client, ssl, sys, threading, time
        port, seconds = int(sys.argv[1]), float(sys.argv[2])
        context = ssl._create_unverified_context()
        started = time.time(); lock = threading.Lock(); results = []
        def worker():
            while time.time() - started < seconds:
                begin = time.time() - started
                try:
                    c = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
                    c.request("GET", "/who", headers={"Host": "app.localhost"})
                    r = c.getresponse(); body = r.read().decode().strip(); status = r.status; c.close()
                except Exception as e:
                    status, body = 0, type(e).__name__
                with lock: results.append((begin, time.time() - started, status, body))
        threads = [threading.Thread(target=worker) for _ in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(f"started {started:.3f}")
        for begin, end, status, body in sorted(results):
            print(f"{begin:.2f} {end:.2f} {status} {body}")
        """

    @Test(.timeLimit(.minutes(2)))
    func killingOneOfTwoClientsFailsOnlyTheRequestsInFlightOnIt() async throws {
        let edge = try await EdgeUnderTest()
        let a = try await LocalService(name: "a")
        let b = try await LocalService(name: "b")
        let key = try await edge.register("app.localhost")
        let first = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(a.port)"])
        let second = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(b.port)"])
        _ = second
        let https = edge.https
        // 16 s of load: on a loaded 2-core machine the kill came so late on the load's clock that nothing was left
        // in the 12 s the load once ran to show who serves after detection.
        async let run = offload { try runProcess("/usr/bin/python3", ["-c", Self.load, "\(https)", "16"]) }
        try await Task.sleep(for: .seconds(2))
        first.signal(SIGKILL)
        let killedWallClock = Date().timeIntervalSince1970
        let lines = try await run.standardOutput.split(separator: "\n")
        // When the kill came on the load's own clock: on a loaded machine the sleep and the load's start both run
        // late, so "2 s in" can be half a second off.
        let loadStarted = lines.first { $0.hasPrefix("started ") }.flatMap { Double($0.dropFirst(8)) }
        let killedAt = killedWallClock - (loadStarted ?? killedWallClock - 2)
        let results = lines.map { $0.split(separator: " ", maxSplits: 3) }.filter { $0.count == 4 }
        #expect(results.count > 50, "the load ran: \(results.count) requests")
        // Only requests in flight on the killed client when it died may fail (its answer was half sent); the
        // load has 4 workers, so at most 4. Every later request is served, by the other client if need be.
        let failed = results.filter { $0[2] != "200" }
        #expect(failed.count <= 4, "\(failed)")
        #expect(failed.allSatisfy { (Double($0[0]) ?? 99) < killedAt + 0.25 }, "failed after the kill: \(failed)")
        let before = results.filter { (Double($0[1]) ?? 0) < killedAt }
        #expect(
            before.contains { $0[3].hasPrefix("a ") } && before.contains { $0[3].hasPrefix("b ") },
            "both clients shared the load"
        )
        let late = results.filter { (Double($0[0]) ?? 0) > killedAt + 6 }
        #expect(!late.isEmpty && late.allSatisfy { $0[3].hasPrefix("b ") }, "after detection only b serves")
        let slowest = results.map { (Double($0[1]) ?? 0) - (Double($0[0]) ?? 0) }.max() ?? 0
        print("failover: \(results.count) requests, \(failed.count) failed; the slowest took \(slowest) s")
        #expect(slowest < 10, "a request on the dead client waited \(slowest) s")
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func sigtermLetsTheClientFinishADownloadThenExitZero() async throws {
        let edge = try await EdgeUnderTest()
        let service = try await LocalService(name: "app")
        let key = try await edge.register("app.localhost")
        let client = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(service.port)"])
        let (finished, verdict) = try await edge.slowDownload(count: 4 * 1024 * 1024) { client.signal(SIGTERM) }
        #expect(finished.status == 200, "\(finished.standardError)")
        #expect(verdict == "ok")
        let exit = try await client.waitForExit(timeout: .seconds(10))
        #expect(exit == 0, "\(client.standardError)")
        // Gone away: the edge has no session for the domain any more.
        let after = try await edge.curl([edge.url("app.localhost", "/")], host: "app.localhost")
        #expect(after.status == 502)
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(3)))
    func aClientBehindALossyLinkServesADownloadByteExact() async throws {
        let edge = try await EdgeUnderTest()
        let service = try await LocalService(name: "app")
        let key = try await edge.register("app.localhost")
        let relayPath = URL(fileURLWithPath: HopGateBinary.path).deletingLastPathComponent()
            .appendingPathComponent("hopgate-lossy-relay").path
        let relay = try BackgroundProcess(
            relayPath,
            ["\(edge.dtls)", "0.05", "11"],
            environment: [:],
            name: "lossy relay"
        )
        let output = try await relay.waitForOutput(containing: "PORT")
        let portText = output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let relayPort = try #require(Int(portText))
        let client = try await edge.connect(
            domain: "app.localhost",
            key: key,
            arguments: ["--to", "\(service.port)"],
            serverPort: relayPort
        )
        let download = edge.directory + "/lossy"
        let count = 16 * 1024 * 1024
        let started = ContinuousClock.now
        let got = try await edge.curl(
            [edge.url("app.localhost", "/bytes?n=\(count)")],
            host: "app.localhost",
            outputFile: download
        )
        print("lossy: 16 MiB through a client behind 5% loss in \(ContinuousClock.now - started)")
        #expect(got.status == 200, "\(got.standardError)")
        let verdict = try await verifyDownloadedBytes(download, count: count)
        #expect(verdict == "ok")
        await client.stop()
        await relay.stop()
        await edge.stop()
    }
}
