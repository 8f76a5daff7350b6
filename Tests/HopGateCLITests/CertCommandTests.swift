import Foundation
import HopGateTestSupport
import Testing

/// `hopgate cert` and the ACME flags of `hopgate serve`, where no CA is needed to tell. Certificates from a real CA
/// are in ACMEEndToEndTests.
@Suite struct CertCommandTests {
    @Test(
        arguments: [
            (["serve", "--domain", "edge.hopgate.test"], "--acme-agree-tos"),
            (
                ["serve", "--domain", "edge.hopgate.test", "--acme-agree-tos", "--acme-challenge", "dns-01"],
                "http-01 or tls-alpn-01"
            ),
            (
                [
                    "serve", "--domain", "edge.hopgate.test", "--acme-staging", "--acme-directory",
                    "https://ca.test/dir",
                ], "exclude each other"
            ),
            (
                ["serve", "--domain", "edge.hopgate.test", "--acme-agree-tos", "--acme-directory", "ftp://ca.test"],
                "http(s) URL"
            ),
            (
                ["serve", "--domain", "edge.hopgate.test", "--acme-agree-tos", "--acme-email", "mailto:ops@x.test"],
                "--acme-email"
            ),
            (
                ["serve", "--domain", "edge.hopgate.test", "--acme-agree-tos", "--acme-ca-file", "/nonexistent.pem"],
                "cannot read"
            ),
            (
                ["serve", "--domain", "edge.hopgate.test", "--acme-agree-tos", "--http-listen", "off"],
                "needs the HTTP listener"
            ),
            (["cert", "renew"], "--acme-agree-tos"),
            (["cert", "renew", "--acme-agree-tos", "--domain", "bad_name"], "--domain"),
        ] as [([String], String)]
    )
    func badACMESettingsAreUsageErrors(arguments: [String], message: String) async throws {
        let directory = try makeTemporaryDirectory("hopgate-cert-cli")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try await hopgate(arguments, environment: ["HOPGATE_DATABASE": "sqlite:\(directory)/h.db"])
        #expect(output.status == 64, "\(arguments): \(output.standardError)")
        #expect(output.standardError.contains(message), "\(arguments): \(output.standardError)")
    }

    @Test func listsNothingOnAFreshStore() async throws {
        let directory = try makeTemporaryDirectory("hopgate-cert-cli")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["HOPGATE_DATABASE": "sqlite:\(directory)/h.db"]
        let table = try await hopgate(["cert", "ls"], environment: environment)
        #expect(table.status == 0, "\(table.standardError)")
        #expect(table.standardOutput.contains("No certificates stored"))
        let json = try await hopgate(["cert", "ls", "--json"], environment: environment)
        let rows = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [Any]
        #expect(rows?.isEmpty == true, "\(json.standardOutput)")
    }

    @Test func renewSaysWhyItCannotReachTheCA() async throws {
        let directory = try makeTemporaryDirectory("hopgate-cert-cli")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["HOPGATE_DATABASE": "sqlite:\(directory)/h.db"]
        let port = try freeLoopbackPort()  // nothing listens there
        let renewed = try await hopgate(
            [
                "cert", "renew", "--domain", "app.hopgate.test", "--acme-agree-tos", "--acme-directory",
                "https://127.0.0.1:\(port)/dir",
            ],
            environment: environment
        )
        #expect(renewed.status == 75, "\(renewed.standardError)")
        #expect(
            renewed.standardError.contains(
                "error: app.hopgate.test: cannot reach the ACME server at https://127.0.0.1:\(port)/dir to read the ACME directory: cannot connect to 127.0.0.1:\(port): Connection refused"
            ),
            "\(renewed.standardError)"
        )
        let listed = try await hopgate(["cert", "ls"], environment: environment)
        #expect(listed.standardOutput.contains("No certificates stored"), "nothing half-written")
    }
}
