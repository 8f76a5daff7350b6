import Foundation
import HopGateTestSupport
import Testing

/// `hopgate serve` getting its certificates from Pebble over real HTTP-01 and TLS-ALPN-01 validation on loopback,
/// `hopgate cert renew|ls`, and what happens when the CA is down, refuses or cannot validate.
@Suite("ACME against Pebble")
struct ACMEEndToEndTests {
    static let mainDomain = "edge.hopgate.test"

    @Test("HTTP-01: certificates for the main and a new domain, verified by curl; renew --force and renewal when due")
    func httpChallenge() async throws {
        let ports = try ACMEEdge.Ports()
        // 45 s certificates: renewal is due a third before expiry, 30 s after issue.
        let pebble = try await PebbleServer(httpPort: ports.http, tlsPort: ports.https, validitySeconds: 45)
        let edge = try await ACMEEdge(pebble: pebble, ports: ports, challenge: "http-01")
        defer { Task { await edge.stop() } }
        let root = try pebble.issuingRootFile()

        let admin = try await edge.curl(Self.mainDomain, "/api/v1/admin/domains", root: root, admin: true)
        #expect(admin.status == 0, "curl must verify the main domain's certificate: \(admin.output)")
        #expect(admin.output.hasSuffix("200"))

        try await edge.register("app.hopgate.test", root: root)
        try await edge.waitForLog(["certificate issued", "app.hopgate.test", "http-01"])
        let site = try await edge.curl("app.hopgate.test", "/", root: root)
        #expect(site.status == 0, "curl must verify the new domain's certificate: \(site.output)")
        #expect(site.output.hasSuffix("502"), "no client is connected, so the edge answers 502: \(site.output)")
        #expect(edge.log.contains("answering an HTTP-01 challenge"))

        // renew --force from the CLI: the running edge answers the validation and serves the result.
        let before = try await edge.servedSerial("app.hopgate.test")
        let serial = try await edge.forceRenewal(of: "app.hopgate.test")
        #expect(serial != before)
        try await edge.waitUntilServed("app.hopgate.test", serial: serial)

        // Due (a third of its life left): the edge renews the main domain's certificate itself.
        let mainBefore = try await edge.servedSerial(Self.mainDomain)
        try await edge.waitUntilServed(Self.mainDomain, notSerial: mainBefore, timeout: .seconds(40))

        let listed = try await edge.hopgate(["cert", "ls", "--json"])
        #expect(listed.status == 0, "\(listed.standardError)")
        let rows = try #require(
            try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]]
        )
        #expect(rows.compactMap { $0["domain"] as? String } == ["app.hopgate.test", Self.mainDomain])
        #expect(rows.allSatisfy { ($0["issuer"] as? String)?.contains("Pebble") == true })
        let table = try await edge.hopgate(["cert", "ls"])
        #expect(table.standardOutput.contains("DAYS LEFT"))

        let metrics = try await offload {
            try runProcess("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(ports.metrics)/metrics"])
        }
        #expect(metrics.standardOutput.contains("hopgate_certificates 2"), "\(metrics.standardOutput)")
        #expect(metrics.standardOutput.contains("hopgate_acme_orders_failed_total 0"))
        #expect(metrics.standardOutput.contains("hopgate_certificate_soonest_expiry_seconds "))
    }

    @Test("TLS-ALPN-01: the CA validates on the HTTPS port; renew --force changes the served serial")
    func tlsALPNChallenge() async throws {
        let ports = try ACMEEdge.Ports()
        let pebble = try await PebbleServer(httpPort: ports.http, tlsPort: ports.https, authorizationReuse: false)
        let edge = try await ACMEEdge(pebble: pebble, ports: ports, challenge: "tls-alpn-01")
        defer { Task { await edge.stop() } }
        let root = try pebble.issuingRootFile()
        let admin = try await edge.curl(Self.mainDomain, "/api/v1/admin/domains", root: root, admin: true)
        #expect(admin.status == 0, "curl must verify the main domain's certificate: \(admin.output)")

        try await edge.register("alpn.hopgate.test", root: root)
        try await edge.waitForLog(["certificate issued", "alpn.hopgate.test", "tls-alpn-01"])
        let site = try await edge.curl("alpn.hopgate.test", "/", root: root)
        #expect(site.status == 0, "curl must verify the certificate: \(site.output)")
        #expect(edge.log.contains("answering a TLS-ALPN-01 challenge"))
        #expect(!edge.log.contains("answering an HTTP-01 challenge"))

        let before = try await edge.servedSerial("alpn.hopgate.test")
        let serial = try await edge.forceRenewal(of: "alpn.hopgate.test")
        #expect(serial != before)
        try await edge.waitUntilServed("alpn.hopgate.test", serial: serial)
    }

    @Test("A CA error document, a failing challenge and a stopped CA: clear errors, retries, the old certificate")
    func failures() async throws {
        let ports = try ACMEEdge.Ports()
        let pebble = try await PebbleServer(
            httpPort: ports.http,
            tlsPort: ports.https,
            blockedDomains: ["blocked.hopgate.test"],
            authorizationReuse: false
        )
        let edge = try await ACMEEdge(pebble: pebble, ports: ports, challenge: "http-01")
        defer { Task { await edge.stop() } }
        let root = try pebble.issuingRootFile()
        let mainSerial = try await edge.servedSerial(Self.mainDomain)

        // The CA refuses the name with a problem document: said plainly, retried with a growing delay.
        try await edge.register("blocked.hopgate.test", root: root)
        try await edge.waitForLog([
            "cannot get a certificate", "blocked.hopgate.test", "rejectedIdentifier", #""attempt":"1""#,
        ])
        try await edge.waitForLog(["cannot get a certificate", "blocked.hopgate.test", #""attempt":"2""#])

        // Validation fails: the name resolves where nothing listens.
        try pebble.resolve("unreachable.hopgate.test", to: "127.0.0.2")
        try await edge.register("unreachable.hopgate.test", root: root)
        try await edge.waitForLog(["cannot get a certificate", "could not validate unreachable.hopgate.test"])
        // The same for a renewal: it fails, says why, and the old certificate stays in service.
        try await pebble.forgetAuthorizations()
        try pebble.resolve(Self.mainDomain, to: "127.0.0.2")
        let failed = try await edge.hopgate(["cert", "renew", "--domain", Self.mainDomain, "--force"] + edge.acmeFlags)
        #expect(failed.status == 75)
        #expect(
            failed.standardError.contains("could not validate \(Self.mainDomain) by http-01"),
            "\(failed.standardError)"
        )
        #expect(try await edge.servedSerial(Self.mainDomain) == mainSerial)
        try pebble.forgetAddress(of: Self.mainDomain)

        // The CA is down: renew fails with a clear error and the edge keeps serving the old certificate.
        await pebble.stop()
        let renewed = try await edge.hopgate(
            ["cert", "renew", "--domain", Self.mainDomain, "--force"] + edge.acmeFlags
        )
        #expect(renewed.status != 0)
        #expect(renewed.standardError.contains("cannot reach the ACME server"), "\(renewed.standardError)")
        #expect(try await edge.servedSerial(Self.mainDomain) == mainSerial)

        // A domain registered while the CA is down gets its certificate once the CA is back.
        try await edge.register("late.hopgate.test", root: root)
        try await edge.waitForLog(["cannot get a certificate", "late.hopgate.test", "cannot reach the ACME server"])
        try await pebble.start()
        try await edge.waitForLog(["certificate issued", "late.hopgate.test"], timeout: .seconds(60))
        let site = try await edge.curl("late.hopgate.test", "/", root: try pebble.issuingRootFile())
        #expect(site.status == 0, "curl must verify the certificate from the restarted CA: \(site.output)")
        #expect(try await edge.servedSerial(Self.mainDomain) == mainSerial)
    }
}

extension ACMEEndToEndTests {
    @Test("Two edges on one PostgreSQL share the certificates, and either answers the CA for an order made elsewhere")
    func edgesShareOnePostgreSQL() async throws {
        let database = try await offload { try PostgresServer.sharedURL() }
        let validated = try ACMEEdge.Ports()
        let pebble = try await PebbleServer(
            httpPort: validated.http,
            tlsPort: validated.https,
            authorizationReuse: false
        )
        let first = try await ACMEEdge(pebble: pebble, ports: validated, challenge: "http-01", database: database)
        defer { Task { await first.stop() } }
        let firstSerial = try await first.servedSerial(Self.mainDomain)

        // The second edge finds the certificate in the store and serves it: no second order.
        let second = try await ACMEEdge(
            pebble: pebble,
            ports: try ACMEEdge.Ports(),
            challenge: "http-01",
            database: database
        )
        defer { Task { await second.stop() } }
        #expect(try await second.servedSerial(Self.mainDomain) == firstSerial)
        #expect(!second.log.contains("ordering a certificate"), "\(second.log)")

        // An order made elsewhere (here the CLI, on the same database) is validated on the first edge's port, which
        // answers from the store; both edges then serve the new certificate.
        func answers() -> Int { first.log.components(separatedBy: "answering an HTTP-01 challenge").count - 1 }
        let answersBefore = answers()
        try await pebble.forgetAuthorizations()
        let serial = try await second.forceRenewal(of: Self.mainDomain)
        #expect(answers() > answersBefore, "the first edge must have answered the renewal's validation")
        try await first.waitUntilServed(Self.mainDomain, serial: serial)
        try await second.waitUntilServed(Self.mainDomain, serial: serial)
    }
}

/// `hopgate serve` on loopback with certificates from `pebble`, its store in a temporary SQLite file.
final class ACMEEdge: Sendable {
    struct Ports {
        let https: Int
        let http: Int
        let metrics: Int

        init() throws {
            https = try freeLoopbackPort()
            http = try freeLoopbackPort()
            metrics = try freeLoopbackPort()
        }
    }

    static let adminKey = String(repeating: "ad", count: 32)
    let process: BackgroundProcess
    let ports: Ports
    let directory: String
    let environment: [String: String]
    let acmeFlags: [String]

    /// - Parameters:
    ///   - database: the store (default: a new SQLite file).
    ///   - refreshSeconds: `--cert-refresh-interval`.
    init(
        pebble: PebbleServer,
        ports: Ports,
        challenge: String,
        database: String? = nil,
        refreshSeconds: Int = 1
    ) async throws {
        self.ports = ports
        directory = try makeTemporaryDirectory("hopgate-acme")
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("HOPGATE_") && !$0.key.hasPrefix("HOP_")
        }
        environment["HOPGATE_DATABASE"] = database ?? "sqlite:\(directory)/hopgate.db"
        environment["HOPGATE_LOG_FORMAT"] = "json"
        self.environment = environment
        acmeFlags = [
            "--acme-directory", pebble.directoryURL, "--acme-ca-file", pebble.listenerCAFile, "--acme-agree-tos",
            "--acme-email", "ops@hopgate.test", "--acme-challenge", challenge,
        ]
        process = try BackgroundProcess(
            HopGateBinary.path,
            [
                "serve", "--domain", ACMEEndToEndTests.mainDomain, "--migrate",
                "--https-listen", "127.0.0.1:\(ports.https)", "--http-listen", "127.0.0.1:\(ports.http)",
                "--dtls-listen", "127.0.0.1:\(ports.https)", "--metrics-listen", "127.0.0.1:\(ports.metrics)",
                "--admin-key", Self.adminKey, "--cert-refresh-interval", "\(refreshSeconds)", "--acme-retry-delay", "1",
            ] + acmeFlags,
            environment: environment,
            name: "edge"
        )
        // The edge says it listens once the DTLS listener has the main domain's certificate.
        try await process.waitForOutput(containing: "\"edge listening\"", timeout: .seconds(60))
    }

    /// Everything the edge logged so far.
    var log: String { process.standardOutput + process.standardError }

    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs the hopgate CLI on the edge's store.
    func hopgate(_ arguments: [String]) async throws -> ProcessOutput {
        let environment = self.environment
        return try await offload { try runProcess(HopGateBinary.path, arguments, environment: environment) }
    }

    /// `hopgate cert renew --domain D --force` on the edge's store with its ACME flags; the serial it printed.
    func forceRenewal(of domain: String) async throws -> String {
        let renewed = try await hopgate(["cert", "renew", "--domain", domain, "--force"] + acmeFlags)
        guard renewed.status == 0, let serial = renewed.standardOutput.firstMatch(of: /serial ([0-9a-f]+)/)?.1 else {
            throw ServerError("cert renew failed (\(renewed.status)): \(renewed.standardError)")
        }
        return String(serial)
    }

    /// curl over HTTPS to `host` on the edge, trusting only `root`; its output ends in the status code.
    func curl(
        _ host: String,
        _ path: String,
        root: String,
        admin: Bool = false,
        body: String? = nil
    ) async throws
        -> ProcessOutput
    {
        var arguments = [
            "-sS", "--max-time", "20", "--cacert", root, "--resolve", "\(host):\(ports.https):127.0.0.1",
            "-w", "\n%{http_code}",
        ]
        if admin { arguments += ["-H", "Authorization: Bearer \(Self.adminKey)"] }
        if let body { arguments += ["-H", "Content-Type: application/json", "-d", body] }
        arguments.append("https://\(host):\(ports.https)\(path)")
        let curlArguments = arguments
        return try await offload { try runProcess("/usr/bin/curl", curlArguments) }
    }

    /// Registers `domain` through the admin API (which wakes the certificate manager).
    func register(_ domain: String, root: String) async throws {
        let result = try await curl(
            ACMEEndToEndTests.mainDomain,
            "/api/v1/admin/domains/register",
            root: root,
            admin: true,
            body: #"{"domain":"\#(domain)"}"#
        )
        guard result.status == 0, result.standardOutput.hasSuffix("201") else {
            throw ServerError("registering \(domain) failed: \(result.standardOutput) \(result.standardError)")
        }
    }

    /// The serial number (lowercase hex) of the certificate the edge presents for `serverName`.
    func servedSerial(_ serverName: String) async throws -> String {
        let script =
            "openssl s_client -connect 127.0.0.1:\(ports.https) -servername \(serverName) </dev/null 2>/dev/null "
            + "| openssl x509 -noout -serial"
        let result = try await offload { try runProcess("/bin/sh", ["-c", script]) }
        guard let serial = result.standardOutput.split(separator: "=").last, result.status == 0 else {
            throw ServerError("no certificate served for \(serverName): \(result.standardError)")
        }
        return serial.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    func waitUntilServed(
        _ serverName: String,
        serial: String? = nil,
        notSerial: String? = nil,
        timeout: Duration = .seconds(15)
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var served = ""
        while ContinuousClock.now < deadline {
            served = try await servedSerial(serverName)
            if let serial, served == serial.lowercased() { return }
            if let notSerial, served != notSerial { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw ServerError("the edge still serves \(served) for \(serverName):\n\(log)")
    }

    /// Waits for a log line holding every one of `fragments`.
    func waitForLog(_ fragments: [String], timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let lines = log.split(separator: "\n")
            if lines.contains(where: { line in fragments.allSatisfy { line.contains($0) } }) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServerError("no log line with \(fragments):\n\(log)")
    }
}

extension ProcessOutput {
    /// Standard output without its trailing newline (curl's ends in the status code), then any error text.
    var output: String {
        standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            + (standardError.isEmpty ? "" : "\n" + standardError)
    }
}
