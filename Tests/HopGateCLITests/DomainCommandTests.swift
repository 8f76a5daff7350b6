import Foundation
import HopGateCore
import HopGateTestSupport
import Testing

/// `hopgate domain add|rm|ls` on the real binary, on SQLite and on a real PostgreSQL.
@Suite struct DomainCommandTests {
    @Test(arguments: TestDatabase.allCases)
    func addTwiceListRemove(database: TestDatabase) async throws {
        let url = try await database.freshMigratedURL()
        let added = try await hopgate(["domain", "add", "example.com", "--memo", "first one", "--database", url])
        #expect(added.status == 0, "\(added.standardError)")
        let key = try #require(added.standardOutput.split(separator: "\n").last.map(String.init))
        #expect(try APIKey(validating: key).secret == key)
        #expect(added.standardOutput.contains("shown only this once"))

        let again = try await hopgate(["domain", "add", "EXAMPLE.com.", "--database", url])
        #expect(again.status == 73)
        #expect(again.standardError == "error: example.com is already registered\n")

        let listed = try await hopgate(["domain", "ls", "--json", "--database", url])
        #expect(listed.status == 0)
        let domains = try parseJSON(listed, as: [[String: Any]].self)
        #expect(domains.count == 1)
        let entry = try #require(domains.first)
        #expect(entry["domain"] as? String == "example.com")
        #expect(entry["memo"] as? String == "first one")
        #expect(Timestamp.parse(try #require(entry["created_at"] as? String)) != nil)
        #expect(Timestamp.parse(try #require(entry["updated_at"] as? String)) != nil)
        #expect(!listed.standardOutput.contains(key) && !listed.standardOutput.contains("argon2"))

        let table = try await hopgate(["domain", "ls", "--database", url])
        #expect(table.standardOutput.hasPrefix("DOMAIN"))
        #expect(table.standardOutput.contains("example.com  first one"))

        let removed = try await hopgate(["domain", "rm", "example.com", "--key", key, "--database", url])
        #expect(removed.status == 0, "\(removed.standardError)")
        #expect(removed.standardOutput == "Unregistered example.com.\n")
        #expect(try parseJSON(await hopgate(["domain", "ls", "--json", "--database", url]), as: [Any].self).isEmpty)
    }

    @Test(arguments: TestDatabase.allCases)
    func addPrintsJSONWithTheKeyOnce(database: TestDatabase) async throws {
        let url = try await database.freshMigratedURL()
        let added = try await hopgate(["domain", "add", "json.example.com", "--json", "--database", url])
        #expect(added.status == 0)
        let object = try parseJSON(added)
        let key = try #require(object["client_api_key"] as? String)
        #expect(key.count == 64)
        #expect(object["domain"] as? String == "json.example.com")
        #expect(UUID(uuidString: try #require(object["id"] as? String)) != nil)
        #expect(Timestamp.parse(try #require(object["created_at"] as? String)) != nil)
    }

    @Test(arguments: TestDatabase.allCases)
    func removeChecksTheKey(database: TestDatabase) async throws {
        let url = try await database.freshMigratedURL()
        let env = ["HOPGATE_DATABASE": url]
        let key = try parseJSON(await hopgate(["domain", "add", "keyed.example.com", "--json"], environment: env))[
            "client_api_key"
        ]
        let wrong = try await hopgate(
            ["domain", "rm", "keyed.example.com", "--key", APIKey.generate().secret],
            environment: env
        )
        #expect(wrong.status == 77)
        #expect(wrong.standardError.contains("is not its key"))

        let noKey = try await hopgate(["domain", "rm", "keyed.example.com"], environment: env)
        #expect(noKey.status == 64)
        #expect(noKey.standardError.contains("--force"))

        let malformed = try await hopgate(["domain", "rm", "keyed.example.com", "--key", "short"], environment: env)
        #expect(malformed.status == 65)
        #expect(try parseJSON(await hopgate(["domain", "ls", "--json"], environment: env), as: [Any].self).count == 1)

        // The key on standard input, as a script would pipe it.
        let piped = try await hopgate(
            ["domain", "rm", "keyed.example.com"],
            environment: env,
            input: "\(try #require(key as? String))\n"
        )
        #expect(piped.status == 0, "\(piped.standardError)")

        let gone = try await hopgate(["domain", "rm", "keyed.example.com", "--force"], environment: env)
        #expect(gone.status == 66)
        #expect(gone.standardError == "error: keyed.example.com is not registered\n")
    }

    @Test(arguments: TestDatabase.allCases)
    func forceRemovesWithoutTheKey(database: TestDatabase) async throws {
        let url = try await database.freshMigratedURL()
        #expect(try await hopgate(["domain", "add", "forced.example.com", "--database", url]).status == 0)
        let removed = try await hopgate(["domain", "rm", "forced.example.com", "--force", "--json", "--database", url])
        #expect(removed.status == 0)
        #expect(try parseJSON(removed)["domain"] as? String == "forced.example.com")
        let both = try await hopgate(["domain", "rm", "x.example.com", "--force", "--key", "k", "--database", url])
        #expect(both.status == 64)
    }

    @Test(arguments: [
        ("-bad.com", "starts or ends with a hyphen"),
        ("a..b", "empty label"),
        (String(repeating: "x", count: 296) + ".com", "the limit is 253"),
        ("exa mple.com", "a space is not allowed"),
        ("localhost", "at least two labels"),
        ("bücher.example", "non-ASCII"),
    ])
    func badDomainsGetAClearErrorAndNothingIsStored(name: String, reason: String) async throws {
        let url = try await TestDatabase.sqlite.freshMigratedURL()
        // `--` ends the options, so a name that starts with a hyphen reaches the validator.
        let output = try await hopgate(["domain", "add", "--database", url, "--", name])
        #expect(output.status == 65)
        #expect(output.standardError.hasPrefix("error: '\(name)' is not a valid domain name: "))
        #expect(output.standardError.contains(reason))
        #expect(output.standardOutput.isEmpty)
        #expect(try parseJSON(await hopgate(["domain", "ls", "--json", "--database", url]), as: [Any].self).isEmpty)
    }

    @Test func aTooLongMemoIsRefused() async throws {
        let url = try await TestDatabase.sqlite.freshMigratedURL()
        let output = try await hopgate([
            "domain", "add", "m.example.com", "--memo", String(repeating: "m", count: 300), "--database", url,
        ])
        #expect(output.status == 65)
        #expect(output.standardError.contains("the limit is 256"))
    }
}
