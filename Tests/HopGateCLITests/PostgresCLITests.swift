import Foundation
import HopGateTestSupport
import Testing

/// The CLI against a PostgreSQL server that this suite starts, stops and restarts.
@Suite(.serialized) struct PostgresCLITests {
    @Test func migrateCreatesTheSchemaThenDoesNothing() throws {
        let url = try PostgresServer.sharedURL()
        let unmigrated = try hopgate(["domain", "ls", "--database", url])
        #expect(unmigrated.status == 78)
        #expect(unmigrated.standardError.contains("run `hopgate migrate`"))

        let before = try hopgate(["migrate", "--status", "--json", "--database", url])
        #expect(try parseJSON(before)["pending"] as? Int == 1)

        let first = try hopgate(["migrate", "--database", url])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("applied 1 create domains"))

        let second = try hopgate(["migrate", "--database", url])
        #expect(second.status == 0)
        #expect(second.standardOutput.contains("up to date at schema version 1; nothing to apply"))

        let status = try hopgate(["migrate", "--status", "--database", url])
        #expect(status.standardOutput.contains("1        create domains  applied"))
        #expect(status.standardOutput.contains("is up to date at schema version 1."))
        let json = try parseJSON(hopgate(["migrate", "--status", "--json", "--database", url]))
        #expect(json["pending"] as? Int == 0)
        #expect(json["schema_version"] as? Int == 1)
    }

    @Test func aStoppedServerGivesExit69NamingTheDatabaseAndWritesNothing() throws {
        let server = try PostgresServer()
        defer { server.destroy() }
        let url = server.url().replacingOccurrences(of: "postgres@", with: "postgres:topsecret@")
        #expect(try hopgate(["migrate", "--database", url]).status == 0)
        #expect(try hopgate(["domain", "add", "before.example.com", "--database", url]).status == 0)

        try server.stop()
        for command in [
            ["domain", "add", "during.example.com"], ["domain", "ls"],
            ["domain", "rm", "before.example.com", "--force"], ["migrate"],
        ] {
            let started = Date()
            let output = try hopgate(command + ["--database", url, "--database-timeout", "1"])
            #expect(output.status == 69, "\(command): \(output.standardError)")
            #expect(
                output.standardError.contains(
                    "error: cannot reach the database postgres://postgres:***@127.0.0.1:\(server.port)/postgres"
                )
            )
            #expect(!output.standardError.contains("topsecret"))
            #expect(output.standardOutput.isEmpty)
            #expect(Date().timeIntervalSince(started) < 15)
        }

        try server.start()
        let listed = try parseJSON(hopgate(["domain", "ls", "--json", "--database", url]), as: [[String: Any]].self)
        #expect(listed.map { $0["domain"] as? String } == ["before.example.com"])
    }

    @Test func aCommandWaitsForAServerThatComesBack() throws {
        let server = try PostgresServer()
        defer { server.destroy() }
        try server.stop()
        let output = try withRestart(of: server, after: 1.0) {
            try hopgate(["migrate", "--database", server.url(), "--database-timeout", "30"])
        }
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardError.contains("database unreachable, retrying"))
        #expect(output.standardOutput.contains("applied 1 create domains"))
    }

    /// Runs `body` while, after `seconds`, another thread starts `server` again.
    private func withRestart<T>(of server: PostgresServer, after seconds: Double, _ body: () throws -> T) throws -> T {
        let restarted = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: seconds)
            do { try server.start() } catch { failure = error }
            restarted.signal()
        }
        let result = try body()
        restarted.wait()
        if let failure { throw failure }
        return result
    }
}
