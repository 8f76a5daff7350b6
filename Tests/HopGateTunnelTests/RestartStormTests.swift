import Foundation
import HopGateClient
import HopGateCore
import HopGateDTLS
import HopGateStore
import HopGateTestSupport
import Logging
import Testing

/// 200 clients, one per domain, on one real edge (`hopgate serve` as a process); the edge restarts and every
/// client must serve again within 30 s without an Argon2 storm: they come back with resumption tokens. The
/// clients run in this process (usrsctp is global), so this belongs to the serialized SCTP suite.
extension SCTPAssociationTests {
    @Test(.timeLimit(.minutes(4)))
    func twoHundredClientsComeBackAfterAnEdgeRestartWithoutArgon2() async throws {
        let count = 200
        let directory = try makeTemporaryDirectory("hopgate-storm")
        let database = "sqlite:\(directory)/hopgate.db"
        let logger = Logger(label: "hopgate.test") { _ in SwiftLogNoOpLogHandler() }
        let store = Stores.open(
            try DatabaseLocation(parsing: database),
            options: StoreOptions(migrateAutomatically: true),
            logger: logger
        )
        let administration = StoreDomainAdministration(store: store)
        var keys: [String] = []
        for index in 0..<count {
            let registered = try await administration.register(
                try DomainName(validating: "c\(index).storm.test"),
                memo: .empty
            )
            keys.append(registered.clientAPIKey.secret)
        }
        await store.close()

        var edge = try await StormEdge(database: database, directory: directory, port: 0)
        let port = edge.dtlsPort
        let forwarder = LocalForwarder(
            targets: [LocalTarget(pathPrefix: "/", host: "127.0.0.1", port: 9)],
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                var settings = TunnelClientService.Settings(
                    host: "127.0.0.1",
                    port: port,
                    dtls: DTLSClientConfiguration(
                        serverName: "edge.localhost",
                        verification: .fingerprint(edge.fingerprint)
                    ),
                    domain: "c\(index).storm.test",
                    key: keys[index],
                    clientVersion: "storm"
                )
                settings.maximumBackoff = .seconds(5)
                let client = TunnelClientService(settings: settings, forwarder: forwarder, logger: logger)
                group.addTask { try await client.run() }
            }
            // The first connections are paced by Argon2 (one hash each) and the per-network attempt limit: on a
            // slow 2-core machine under the rest of the suite they took 60 to 90 s. What this test is about is the
            // restart below.
            let firstUp = try await edge.waitForSessions(count, within: .seconds(150))
            let firstArgon2 = try await edge.metric("hopgate_argon2_verifications_total")
            print("storm: \(count) clients connected in \(firstUp); \(Int(firstArgon2)) Argon2 checks")
            #expect(firstArgon2 >= Double(count), "every first connection presents its key")

            await edge.process.stop()
            edge = try await StormEdge(database: database, directory: directory, port: port)
            let restartedUp = try await edge.waitForSessions(count, within: .seconds(60))
            let argon2 = try await edge.metric("hopgate_argon2_verifications_total")
            print("storm: after the restart all \(count) serve again in \(restartedUp); \(Int(argon2)) Argon2 checks")
            #expect(restartedUp < .seconds(30), "all \(count) clients back within 30 s")
            #expect(argon2 == 0, "resumption tokens, not keys: no Argon2 work after the restart")
            group.cancelAll()
        }
        await edge.process.stop()
    }
}

/// The edge of the storm test: `hopgate serve --dev` on loopback with its metrics.
private struct StormEdge {
    let process: BackgroundProcess
    let dtlsPort: Int
    let metricsPort: Int
    let fingerprint: String

    init(database: String, directory: String, port: Int) async throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HOPGATE_") }
        environment["HOPGATE_DATABASE"] = database
        environment["HOPGATE_LOG_FORMAT"] = "json"
        environment["HOPGATE_LOG_LEVEL"] = "notice"
        process = try BackgroundProcess(
            HopGateBinary.path,
            [
                "serve", "--dev", "--https-listen", "127.0.0.1:0", "--http-listen", "off", "--dtls-listen",
                "127.0.0.1:\(port)", "--metrics-listen", "127.0.0.1:0",
            ],
            environment: environment,
            name: "storm edge"
        )
        let banner = try await process.waitForOutput(containing: "metrics http://")
        func number(after marker: String, in text: String) -> Int? {
            guard let range = text.range(of: marker) else { return nil }
            return Int(text[range.upperBound...].prefix { $0.isNumber })
        }
        dtlsPort = try #require(number(after: "DTLS    127.0.0.1:", in: banner))
        metricsPort = try #require(number(after: "metrics http://127.0.0.1:", in: banner))
        let range = try #require(banner.range(of: "certificate sha256 "))
        fingerprint = String(banner[range.upperBound...].prefix { $0.isHexDigit })
    }

    func metric(_ name: String) async throws -> Double {
        let port = metricsPort
        let text = try await offload {
            try runProcess("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(port)/metrics"])
        }.standardOutput
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return Double(line?.split(separator: " ").last ?? "") ?? -1
    }

    /// Waits until the edge has `count` live sessions; returns how long that took.
    func waitForSessions(_ count: Int, within limit: Duration) async throws -> Duration {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            if try await metric("hopgate_sessions_active") >= Double(count) { return ContinuousClock.now - started }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw ServerError("only \(try await metric("hopgate_sessions_active")) of \(count) sessions within \(limit)")
    }
}
