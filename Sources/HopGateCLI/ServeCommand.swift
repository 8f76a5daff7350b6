import ArgumentParser
import Foundation
import HopGateCore
import HopGateDTLS
import HopGateEdge
import HopGateStore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `hopgate serve`: the public edge.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the edge: HTTPS and HTTP listeners, the DTLS tunnel listener, the admin API and metrics.",
        discussion: """
            Every option also reads an environment variable (named in its help); a flag wins over the variable. \
            With --dev the edge listens on loopback only (HTTP 8080, HTTPS 8443, DTLS 8443/udp) with a \
            self-signed certificate for the main domain and *.localhost, and prints the commands to try next. \
            SIGTERM or SIGINT stops accepting, sends GOAWAY to every client, lets requests in flight finish for \
            up to --shutdown-grace seconds, and exits 0.
            """
    )

    @OptionGroup var globals: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "The main (control) domain: the admin API is served on it. Default in --dev: edge.localhost. "
                + "(env: HOPGATE_DOMAIN, HOP_SERVER_DOMAIN)",
            valueName: "domain"
        )
    )
    var domain: String?

    @Option(
        help: ArgumentHelp(
            "The HTTPS listener. Default: :443 (:8443 on loopback in --dev). (env: HOPGATE_HTTPS_LISTEN, "
                + "HOP_SERVER_HTTPS_LISTEN)",
            valueName: "host:port"
        )
    )
    var httpsListen: String?

    @Option(
        help: ArgumentHelp(
            "The HTTP listener (ACME challenges, and redirects to HTTPS), or off. Default: :80 (:8080 in --dev). "
                + "(env: HOPGATE_HTTP_LISTEN, HOP_SERVER_HTTP_LISTEN)",
            valueName: "host:port"
        )
    )
    var httpListen: String?

    @Option(
        help: ArgumentHelp(
            "The DTLS (UDP) listener clients dial. Default: :443 (:8443 in --dev). (env: HOPGATE_DTLS_LISTEN, "
                + "HOP_SERVER_DTLS_LISTEN)",
            valueName: "host:port"
        )
    )
    var dtlsListen: String?

    @Option(
        help: ArgumentHelp(
            "The Prometheus listener (GET /metrics), or off. Default: 127.0.0.1:9090. (env: HOPGATE_METRICS_LISTEN)",
            valueName: "host:port"
        )
    )
    var metricsListen: String?

    @Option(
        help: ArgumentHelp(
            "The admin API key, or its Argon2id hash from `hopgate keygen --hash`. Without one the admin API is off "
                + "(--dev makes one and prints it). (env: HOPGATE_ADMIN_KEY, HOP_ADMIN_API_KEY)",
            valueName: "key"
        )
    )
    var adminKey: String?

    @Option(
        help: ArgumentHelp(
            "A PEM certificate chain for the main domain (and any names it covers). (env: HOPGATE_TLS_CERTIFICATE)",
            valueName: "path"
        )
    )
    var tlsCertificate: String?

    @Option(
        help: ArgumentHelp(
            "The PEM private key for --tls-certificate. (env: HOPGATE_TLS_KEY)",
            valueName: "path"
        )
    )
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Seconds to wait for a response head before answering 504. Default: 60. (env: HOPGATE_UPSTREAM_TIMEOUT)",
            valueName: "seconds"
        )
    )
    var upstreamTimeout: Double?

    @Option(
        help: ArgumentHelp(
            "Seconds a connection may take to send a request's head before it is closed (slowloris). Default: 10. "
                + "(env: HOPGATE_HEADER_TIMEOUT)",
            valueName: "seconds"
        )
    )
    var headerTimeout: Double?

    @Option(
        help: ArgumentHelp(
            "The largest request body in bytes (larger: 413). Default: no limit. (env: HOPGATE_MAX_BODY_BYTES)",
            valueName: "bytes"
        )
    )
    var maxBodyBytes: Int?

    @Option(
        help: ArgumentHelp(
            "X-Forwarded-For and Forwarded from clients: none (replace them) or all (append: the edge is behind a "
                + "trusted proxy). Default: none. (env: HOPGATE_TRUST_FORWARDED)",
            valueName: "none|all"
        ),
        completion: .list(["none", "all"])
    )
    var trustForwarded: String?

    @Option(
        help: ArgumentHelp(
            "Seconds in-flight requests may run on after SIGTERM. Default: 30. (env: HOPGATE_SHUTDOWN_GRACE)",
            valueName: "seconds"
        )
    )
    var shutdownGrace: Double?

    @Option(
        help: ArgumentHelp(
            "Event loop threads for the listeners and tunnels. Default: 1, which measured faster on 2 cores than one "
                + "a core: every request then stays on one thread from browser to tunnel. (env: HOPGATE_THREADS)",
            valueName: "n"
        )
    )
    var threads: Int?

    @Flag(help: "Loopback only, self-signed certificate, embedded store, a printed admin key. (env: HOPGATE_DEV)")
    var dev = false

    @Flag(help: "Apply pending database migrations at start instead of refusing to run. (env: HOPGATE_MIGRATE)")
    var migrate = false

    func run() async throws {
        try await reportingErrors {
            let logger = try globals.makeLogger(label: "hopgate.edge")
            let isDev = enabled(dev, "HOPGATE_DEV")
            let configuration = try edgeConfiguration(isDev: isDev)
            let certificates = try loadCertificates(mainDomain: configuration.mainDomain, isDev: isDev)
            try await globals.withStore { store, _ in
                try await prepare(store, migrate: isDev || enabled(migrate, "HOPGATE_MIGRATE"), logger: logger)
                let keyVerifier = KeyVerifier()
                let verifier = try await TunnelCredentialVerifier(store: store, keyVerifier: keyVerifier)
                let registry = TunnelSessionRegistry()
                let (credential, generatedKey) = try adminCredential(isDev: isDev, logger: logger)
                let admin = credential.map {
                    AdminAPI(
                        mainDomain: configuration.mainDomain,
                        credential: $0,
                        administration: StoreDomainAdministration(store: store),
                        registry: registry
                    )
                }
                let fingerprint = certificates.entry(for: configuration.mainDomain)?.pem.fingerprint ?? ""
                let server = EdgeServer(
                    configuration: configuration,
                    certificates: certificates,
                    credentialCheck: { await verifier.verdict(for: $0) },
                    registry: registry,
                    admin: admin,
                    logger: logger,
                    group: try eventLoopGroup()
                ) { bound in
                    if isDev {
                        DevModeBanner.print(
                            mainDomain: configuration.mainDomain,
                            bound: bound,
                            fingerprint: fingerprint,
                            generatedAdminKey: generatedKey
                        )
                    }
                }
                // How many client keys cost an Argon2id hash: a reconnect storm with tokens must not move it.
                server.metrics.addGauges {
                    [("hopgate_argon2_verifications_total", Double(keyVerifier.argon2Verifications))]
                }
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [.init(service: server)],
                        gracefulShutdownSignals: [.sigterm, .sigint],
                        logger: logger
                    )
                )
                try await group.run()
            }
        }
    }

    private func edgeConfiguration(isDev: Bool) throws -> EdgeConfiguration {
        let loopback = "127.0.0.1"
        func address(_ flag: String?, _ variables: [String], dev: Int, production: String) throws -> ListenAddress? {
            let environment = ProcessInfo.processInfo.environment
            let text = flag ?? variables.lazy.compactMap { environment[$0] }.first
            if let text {
                if text == "off" { return nil }
                do { return try ListenAddress(parsing: text) } catch { throw ValidationError("\(error)") }
            }
            return isDev ? ListenAddress(host: loopback, port: dev) : try ListenAddress(parsing: production)
        }
        guard
            let https = try address(
                httpsListen,
                ["HOPGATE_HTTPS_LISTEN", "HOP_SERVER_HTTPS_LISTEN"],
                dev: 8443,
                production: ":443"
            )
        else { throw ValidationError("the HTTPS listener cannot be off") }
        let http = try address(
            httpListen,
            ["HOPGATE_HTTP_LISTEN", "HOP_SERVER_HTTP_LISTEN"],
            dev: 8080,
            production: ":80"
        )
        guard
            let dtls = try address(
                dtlsListen,
                ["HOPGATE_DTLS_LISTEN", "HOP_SERVER_DTLS_LISTEN"],
                dev: 8443,
                production: ":443"
            )
        else { throw ValidationError("the DTLS listener cannot be off") }
        let metrics = try address(metricsListen, ["HOPGATE_METRICS_LISTEN"], dev: 9090, production: "127.0.0.1:9090")
        guard let name = setting(domain, "HOPGATE_DOMAIN", "HOP_SERVER_DOMAIN") ?? (isDev ? "edge.localhost" : nil)
        else {
            throw ValidationError("give the main domain: --domain edge.example.com (or HOPGATE_DOMAIN)")
        }
        let mainDomain: String
        do { mainDomain = try DomainName(validating: name).value } catch {
            throw ValidationError("--domain: \(error)")
        }
        var configuration = EdgeConfiguration(
            mainDomain: mainDomain,
            https: https,
            http: http,
            dtls: dtls,
            metrics: metrics
        )
        if let seconds = try number(upstreamTimeout, "HOPGATE_UPSTREAM_TIMEOUT") {
            configuration.proxy.upstreamTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = try number(headerTimeout, "HOPGATE_HEADER_TIMEOUT") {
            configuration.proxy.headerReadTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = try number(shutdownGrace, "HOPGATE_SHUTDOWN_GRACE") {
            configuration.shutdownGrace = .milliseconds(Int64(seconds * 1000))
        }
        if let bytes = try number(maxBodyBytes.map(Double.init), "HOPGATE_MAX_BODY_BYTES") {
            configuration.proxy.maximumBodyBytes = Int(bytes)
        }
        if let text = setting(trustForwarded, "HOPGATE_TRUST_FORWARDED") {
            guard let trust = ProxyHeaders.Trust(rawValue: text) else {
                throw ValidationError("--trust-forwarded must be none or all, not '\(text)'")
            }
            configuration.proxy.trust = trust
        }
        return configuration
    }

    private func eventLoopGroup() throws -> any EventLoopGroup {
        let count = try number(threads.map(Double.init), "HOPGATE_THREADS").map { Int($0) } ?? 1
        guard (1...256).contains(count) else { throw ValidationError("--threads must be between 1 and 256") }
        return count == 1
            ? MultiThreadedEventLoopGroup.singleton.next()
            : MultiThreadedEventLoopGroup(numberOfThreads: count)
    }

    private func number(_ flag: Double?, _ variable: String) throws -> Double? {
        if let flag {
            guard flag >= 0 else { throw ValidationError("\(variable) must not be negative") }
            return flag
        }
        guard let text = ProcessInfo.processInfo.environment[variable] else { return nil }
        guard let value = Double(text), value >= 0 else { throw ValidationError("\(variable) must be a number") }
        return value
    }

    private func loadCertificates(mainDomain: String, isDev: Bool) throws -> TLSCertificateStore {
        let store = TLSCertificateStore(fallbackName: mainDomain)
        let certificatePath = setting(tlsCertificate, "HOPGATE_TLS_CERTIFICATE")
        let keyPath = setting(tlsKey, "HOPGATE_TLS_KEY")
        do {
            switch (certificatePath, keyPath) {
            case (let certificatePath?, let keyPath?):
                let certificate = try DTLSCertificate.load(chainPath: certificatePath, keyPath: keyPath)
                try store.install(certificate, for: [mainDomain])
            case (nil, nil) where isDev:
                let names = [mainDomain, "*.\(mainDomain)", "localhost", "*.localhost"]
                try store.install(try devCertificate(names: names), for: names)
            case (nil, nil):
                throw ValidationError(
                    "give --tls-certificate and --tls-key (PEM files) for \(mainDomain), or use --dev"
                )
            default:
                throw ValidationError("--tls-certificate and --tls-key go together")
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw HopGateError(.configuration, "the TLS certificate does not load: \(error)")
        }
        return store
    }

    /// Dev mode's self-signed certificate, kept beside the embedded store so a restarted edge keeps its fingerprint
    /// (clients pin it with --server-fingerprint).
    private func devCertificate(names: [String]) throws -> DTLSCertificate {
        let directory: String
        if case .sqlite(let path) = try globals.databaseLocation() {
            directory = (path as NSString).deletingLastPathComponent
        } else {
            directory = (DatabaseLocation.defaultSQLitePath() as NSString).deletingLastPathComponent
        }
        let certificatePath = directory + "/dev-certificate.pem"
        let keyPath = directory + "/dev-key.pem"
        let namesPath = directory + "/dev-names.txt"
        let wanted = names.joined(separator: "\n")
        if let saved = try? String(contentsOfFile: namesPath, encoding: .utf8), saved == wanted,
            let certificate = try? DTLSCertificate.load(chainPath: certificatePath, keyPath: keyPath)
        {
            return certificate
        }
        let certificate = try DTLSCertificate.selfSigned(names: names)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Created readable by its owner only, before any byte of the key is in it.
        guard
            FileManager.default.createFile(
                atPath: keyPath,
                contents: Data(certificate.privateKeyPEM.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw HopGateError(.configuration, "cannot write the dev certificate's key to \(keyPath)") }
        try Data(certificate.chainPEM.utf8).write(to: URL(fileURLWithPath: certificatePath))
        try Data(wanted.utf8).write(to: URL(fileURLWithPath: namesPath))
        return certificate
    }

    private func prepare(_ store: any DomainStore, migrate: Bool, logger: Logger) async throws {
        let status = try await store.migrationStatus()
        guard !status.pending.isEmpty else { return }
        guard migrate else {
            throw HopGateError(
                .configuration,
                "the database has \(status.pending.count) pending migration(s): run `hopgate migrate`, "
                    + "or start with --migrate"
            )
        }
        let applied = try await store.migrate()
        logger.info("migrated the database", metadata: ["applied": "\(applied.map(\.version))"])
    }

    private func adminCredential(isDev: Bool, logger: Logger) throws -> (AdminAPI.Credential?, String?) {
        if let key = setting(adminKey, "HOPGATE_ADMIN_KEY", "HOP_ADMIN_API_KEY") {
            if key.hasPrefix("$argon2id$") { return (.hash(key), nil) }
            guard key.count >= 16 else { throw ValidationError("the admin key must be at least 16 characters") }
            return (.plain(key), nil)
        }
        if isDev {
            let key = APIKey.generate().secret
            return (.plain(key), key)
        }
        logger.warning("no admin key configured (--admin-key): the admin API is off")
        return (nil, nil)
    }
}

/// What `hopgate serve --dev` prints once it listens: where, the admin key, and what to type next.
enum DevModeBanner {
    static func print(
        mainDomain: String,
        bound: [String: SocketAddress],
        fingerprint: String,
        generatedAdminKey: String?
    ) {
        let httpsPort = bound["https"]?.port ?? 8443
        let dtlsPort = bound["dtls"]?.port ?? 8443
        var lines = [
            "",
            "HopGate edge (dev mode) for \(mainDomain)",
            "  HTTPS   https://127.0.0.1:\(httpsPort)   (self-signed: curl -k)",
            "  DTLS    127.0.0.1:\(dtlsPort)/udp   certificate sha256 \(fingerprint)",
        ]
        if let http = bound["http"]?.port { lines.append("  HTTP    http://127.0.0.1:\(http)   (redirects to HTTPS)") }
        if let metrics = bound["metrics"] {
            lines.append("  metrics http://\(metrics.ipAddress ?? "127.0.0.1"):\(metrics.port ?? 0)/metrics")
        }
        if let key = generatedAdminKey { lines.append("  admin key (shown once): \(key)") }
        lines += [
            "",
            "Next:",
            "  hopgate domain add demo.localhost",
            "  hopgate connect --server 127.0.0.1:\(dtlsPort) --server-fingerprint \(fingerprint) \\",
            "      --domain demo.localhost --key KEY_FROM_ABOVE --to 127.0.0.1:3000",
            "  curl -k --resolve demo.localhost:\(httpsPort):127.0.0.1 https://demo.localhost:\(httpsPort)/",
            "",
        ]
        // Written straight to the file descriptor: stdout may be a pipe, where print() would sit in a buffer.
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
