import Foundation
import HopGateTestSupport
import Testing

/// The CLI against a PostgreSQL server that this suite starts, stops and restarts.
@Suite(.serialized) struct PostgresCLITests {
    @Test func migrateCreatesTheSchemaThenDoesNothing() async throws {
        let url = try await offload { try PostgresServer.sharedURL() }
        let unmigrated = try await hopgate(["domain", "ls", "--database", url])
        #expect(unmigrated.status == 78)
        #expect(unmigrated.standardError.contains("run `hopgate migrate`"))

        let before = try await hopgate(["migrate", "--status", "--json", "--database", url])
        #expect(try parseJSON(before)["pending"] as? Int == 3)

        let first = try await hopgate(["migrate", "--database", url])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(
            first.standardOutput.contains(
                "applied 1 create domains\napplied 2 create tunnel secrets\n"
                    + "applied 3 create acme accounts, certificates, challenges and leases"
            )
        )

        let second = try await hopgate(["migrate", "--database", url])
        #expect(second.status == 0)
        #expect(second.standardOutput.contains("up to date at schema version 3; nothing to apply"))

        let status = try await hopgate(["migrate", "--status", "--database", url])
        let rows = status.standardOutput.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true)
        }
        #expect(rows.contains { $0.first == "1" && $0.contains("domains") && $0.contains("applied") })
        #expect(rows.contains { $0.first == "2" && $0.contains("secrets") && $0.contains("applied") })
        #expect(rows.contains { $0.first == "3" && $0.contains("acme") && $0.contains("applied") })
        #expect(status.standardOutput.contains("is up to date at schema version 3."))
        let json = try parseJSON(await hopgate(["migrate", "--status", "--json", "--database", url]))
        #expect(json["pending"] as? Int == 0)
        #expect(json["schema_version"] as? Int == 3)
    }

    @Test func aStoppedServerGivesExit69NamingTheDatabaseAndWritesNothing() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        let url = server.url().replacingOccurrences(of: "postgres@", with: "postgres:topsecret@")
        #expect(try await hopgate(["migrate", "--database", url]).status == 0)
        #expect(try await hopgate(["domain", "add", "before.example.com", "--database", url]).status == 0)

        try await offload { try server.stop() }
        for command in [
            ["domain", "add", "during.example.com"], ["domain", "ls"],
            ["domain", "rm", "before.example.com", "--force"], ["migrate"],
        ] {
            let started = Date()
            let output = try await hopgate(command + ["--database", url, "--database-timeout", "1"])
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

        try await offload { try server.start() }
        let listed = try parseJSON(
            await hopgate(["domain", "ls", "--json", "--database", url]),
            as: [[String: Any]].self
        )
        #expect(listed.map { $0["domain"] as? String } == ["before.example.com"])
    }

    @Test func aCommandWaitsForAServerThatComesBack() async throws {
        let server = try await offload { try PostgresServer() }
        defer { server.destroy() }
        try await offload { try server.stop() }
        async let restarted: Void = {
            try await Task.sleep(for: .seconds(1))
            try await offload { try server.start() }
        }()
        let output = try await hopgate(["migrate", "--database", server.url(), "--database-timeout", "30"])
        try await restarted
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardError.contains("database unreachable, retrying"))
        #expect(output.standardOutput.contains("applied 1 create domains"))
    }
}
