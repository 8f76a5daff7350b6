import Foundation
import HopGateCore
import HopGateTestSupport
import Testing

/// The parts of the command line every subcommand shares: version, help, global options, exit codes.
@Suite struct CommandLineTests {
    @Test func printsItsVersion() async throws {
        let output = try await hopgate(["--version"])
        #expect(output.status == 0)
        #expect(output.standardOutput == HopGateVersion.current + "\n")
    }

    @Test func helpDocumentsExitCodesAndEnvironment() async throws {
        let root = try await hopgate(["--help"])
        #expect(root.status == 0)
        for line in [
            "65  invalid input", "69  database unavailable", "73  already exists", "domain", "migrate", "keygen",
        ] {
            #expect(root.standardOutput.contains(line), "\(line)")
        }
        let add = try await hopgate(["domain", "add", "--help"])
        for variable in ["HOPGATE_DATABASE", "HOPGATE_LOG_LEVEL", "HOPGATE_LOG_FORMAT", "HOPGATE_DATABASE_TIMEOUT"] {
            #expect(add.standardOutput.contains(variable), "\(variable)")
        }
        #expect(try await hopgate(["domain", "rm", "--help"]).standardOutput.contains("HOPGATE_CLIENT_API_KEY"))
    }

    @Test(arguments: [
        ["domain", "add"],
        ["domain", "frobnicate"],
        ["domain", "ls", "--no-such-flag"],
        ["domain", "ls", "--log-level", "loud"],
        ["domain", "ls", "--log-format", "xml"],
        ["domain", "ls", "--database-timeout", "-1"],
        ["keygen", "--bytes", "3"],
        ["serve", "--dev", "--http-listen", "off", "--http-proxy"],
    ])
    func usageErrorsExit64(arguments: [String]) async throws {
        let output = try await hopgate(arguments)
        #expect(output.status == 64, "\(arguments): \(output.standardError)")
        #expect(output.standardError.contains("Error:") || output.standardError.contains("error:"))
    }

    @Test(arguments: ["mysql://root@db/hop", "/var/lib/hopgate.db", "sqlite:"])
    func aBadDatabaseURLExits78(url: String) async throws {
        let output = try await hopgate(["domain", "ls", "--database", url])
        #expect(output.status == 78)
        #expect(output.standardError.contains("sqlite:PATH") || output.standardError.contains("names no file"))
    }

    @Test func environmentVariablesStandInForFlagsAndFlagsWin() async throws {
        let first = try await TestDatabase.sqlite.freshMigratedURL()
        let second = try await TestDatabase.sqlite.freshMigratedURL()
        #expect(
            try await hopgate(["domain", "add", "env.example.com"], environment: ["HOPGATE_DATABASE": first]).status
                == 0
        )
        let fromEnv = try await hopgate(["domain", "ls", "--json"], environment: ["HOPGATE_DATABASE": first])
        #expect(try parseJSON(fromEnv, as: [Any].self).count == 1)
        let flagWins = try await hopgate(
            ["domain", "ls", "--json", "--database", second],
            environment: ["HOPGATE_DATABASE": first]
        )
        #expect(try parseJSON(flagWins, as: [Any].self).isEmpty)
        let badEnv = try await hopgate(
            ["domain", "ls"],
            environment: ["HOPGATE_DATABASE": first, "HOPGATE_LOG_LEVEL": "shout"]
        )
        #expect(badEnv.status == 64)
    }

    @Test func jsonLogsGoToStandardErrorOneObjectALine() async throws {
        let url = try await TestDatabase.sqlite.freshMigratedURL()
        let output = try await hopgate(["domain", "ls", "--json", "--log-format", "json", "--database", url])
        #expect(output.status == 0)
        #expect(try parseJSON(output, as: [Any].self).isEmpty)
        let lines = output.standardError.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["level"] != nil && object["msg"] != nil && object["ts"] != nil && object["component"] != nil)
        }
        #expect(output.standardError.contains("\"msg\":\"applied migration\""))
    }

    @Test func theEmbeddedStoreIsCreatedOnFirstUseWithPrivatePermissions() async throws {
        let directory = try makeTemporaryDirectory("hopgate-first-use") + "/deep/er"
        let output = try await hopgate(["domain", "ls", "--database", "sqlite://" + directory + "/h.db"])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("No domains registered"))
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/h.db")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func aFileThatIsNotADatabaseIsReported() async throws {
        let path = try makeTemporaryDirectory("hopgate-junk") + "/junk.db"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let output = try await hopgate(["domain", "ls", "--database", "sqlite:" + path, "--database-timeout", "0"])
        #expect(output.status == 69)
        #expect(output.standardError.contains("is not a usable SQLite database"))
    }
}
