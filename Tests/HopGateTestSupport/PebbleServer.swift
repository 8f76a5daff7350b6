import Foundation
import Synchronization

/// Pebble, the ACME test CA (Debian's `pebble`), with pebble-challtestsrv as its DNS server answering 127.0.0.1 for
/// every name, so that it validates challenges against the edge's own HTTP and HTTPS ports on loopback. Real
/// validation, and nonce rejection and authorization reuse as Pebble does them by default.
public final class PebbleServer: Sendable {
    /// The ACME directory URL.
    public let directoryURL: String
    /// The CA that Pebble's own HTTPS listener chains to (what `--acme-ca-file` takes).
    public let listenerCAFile: String
    let directory: String
    let configurationPath: String
    let dnsPort: Int
    let managementPort: Int
    let dnsManagementPort: Int
    let environment: [String: String]
    private let dns: BackgroundProcess
    private let pebble: Mutex<BackgroundProcess?>

    /// - Parameters:
    ///   - httpPort: where Pebble sends HTTP-01 validations (the edge's HTTP port).
    ///   - tlsPort: where Pebble sends TLS-ALPN-01 validations (the edge's HTTPS port).
    ///   - validitySeconds: how long issued certificates last (Pebble's default: five years).
    ///   - blockedDomains: names Pebble refuses with a rejectedIdentifier problem document.
    ///   - authorizationReuse: whether Pebble may reuse a valid authorization instead of validating again.
    public init(
        httpPort: Int,
        tlsPort: Int,
        validitySeconds: Int? = nil,
        blockedDomains: [String] = [],
        authorizationReuse: Bool = true
    ) async throws {
        directory = try makeTemporaryDirectory("hopgate-pebble")
        let port = try freeLoopbackPort()
        managementPort = try freeLoopbackPort()
        dnsPort = try freeLoopbackPort()
        dnsManagementPort = try freeLoopbackPort()
        directoryURL = "https://127.0.0.1:\(port)/dir"
        listenerCAFile = directory + "/listener-ca.pem"
        try Self.makeListenerCertificate(in: directory)
        var pebble: [String: Any] = [
            "listenAddress": "127.0.0.1:\(port)",
            "managementListenAddress": "127.0.0.1:\(managementPort)",
            "certificate": directory + "/listener.pem",
            "privateKey": directory + "/listener.key",
            "httpPort": httpPort,
            "tlsPort": tlsPort,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": blockedDomains,
        ]
        if let validitySeconds { pebble["certificateValidityPeriod"] = validitySeconds }
        configurationPath = directory + "/pebble.json"
        try JSONSerialization.data(withJSONObject: ["pebble": pebble]).write(
            to: URL(fileURLWithPath: configurationPath)
        )
        var environment = ["PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1"]
        if !authorizationReuse { environment["PEBBLE_AUTHZREUSE"] = "0" }
        self.environment = environment
        dns = try BackgroundProcess(
            "/usr/bin/pebble-challtestsrv",
            [
                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", "127.0.0.1:\(dnsPort)", "-http01", "",
                "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:\(dnsManagementPort)",
            ],
            environment: environment,
            name: "pebble-challtestsrv"
        )
        try await dns.waitForOutput(containing: "Starting management server")
        self.pebble = Mutex(nil)
        try await start()
    }

    /// Starts Pebble (again, after `stop`: with a new root and no memory of accounts or orders).
    public func start() async throws {
        let process = try BackgroundProcess(
            "/usr/bin/pebble",
            ["-config", configurationPath, "-dnsserver", "127.0.0.1:\(dnsPort)"],
            environment: environment,
            name: "pebble"
        )
        pebble.withLock { $0 = process }
        try await process.waitForOutput(containing: "Listening on")
    }

    public func stop() async {
        let process = pebble.withLock { process in
            defer { process = nil }
            return process
        }
        await process?.stop()
    }

    /// Restarts Pebble, so that the next order for a name validated before is validated again. `authorizationReuse:
    /// false` is not enough on its own: Pebble 2.4 reuses a valid authorization unless `rand.Intn(100) > percent`,
    /// and with 0 that is false once in a hundred orders (a renewal that had to fail once succeeded in CI).
    public func forgetAuthorizations() async throws {
        await stop()
        try await start()
    }

    /// The root that Pebble's issued chains end in (it changes with every start), written to a file for curl.
    public func issuingRootFile() throws -> String {
        let path = directory + "/root-\(UUID().uuidString).pem"
        let fetched = try runProcess(
            "/usr/bin/curl",
            [
                "-sS", "--fail", "--cacert", listenerCAFile, "-o", path,
                "https://127.0.0.1:\(managementPort)/roots/0",
            ]
        )
        guard fetched.status == 0 else { throw ServerError("cannot fetch Pebble's root: \(fetched.standardError)") }
        return path
    }

    /// Makes `host` resolve to `address` for Pebble (to make a validation fail: nothing listens there).
    public func resolve(_ host: String, to address: String) throws {
        let body = #"{"host":"\#(host).","addresses":["\#(address)"]}"#
        let added = try runProcess(
            "/usr/bin/curl",
            ["-sS", "--fail", "-d", body, "http://127.0.0.1:\(dnsManagementPort)/add-a"]
        )
        guard added.status == 0 else { throw ServerError("cannot add a DNS record: \(added.standardError)") }
    }

    /// Undoes `resolve`: `host` resolves to 127.0.0.1 again.
    public func forgetAddress(of host: String) throws {
        let cleared = try runProcess(
            "/usr/bin/curl",
            ["-sS", "--fail", "-d", #"{"host":"\#(host)."}"#, "http://127.0.0.1:\(dnsManagementPort)/clear-a"]
        )
        guard cleared.status == 0 else { throw ServerError("cannot clear a DNS record: \(cleared.standardError)") }
    }

    /// Debian's pebble ships no test certificates: a throwaway CA and a localhost certificate for the listener.
    private static func makeListenerCertificate(in directory: String) throws {
        let steps: [[String]] = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                directory + "/listener-ca.key", "-out", directory + "/listener-ca.pem", "-days", "2", "-subj",
                "/CN=HopGate test Pebble listener CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                directory + "/listener.key", "-out", directory + "/listener.csr", "-subj", "/CN=localhost",
            ],
            [
                "x509", "-req", "-in", directory + "/listener.csr", "-CA", directory + "/listener-ca.pem", "-CAkey",
                directory + "/listener-ca.key", "-CAcreateserial", "-out", directory + "/listener.pem", "-days", "2",
                "-extfile", directory + "/listener.ext",
            ],
        ]
        try Data("subjectAltName=DNS:localhost,IP:127.0.0.1\n".utf8)
            .write(to: URL(fileURLWithPath: directory + "/listener.ext"))
        for arguments in steps {
            let result = try runProcess("/usr/bin/openssl", arguments)
            guard result.status == 0 else {
                throw ServerError("openssl \(arguments[0]) failed: \(result.standardError)")
            }
        }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
