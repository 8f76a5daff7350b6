import ArgumentParser
import FoundationEssentials
import Glibc
import HopGateACME
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
            Without --dev and --tls-certificate, certificates for the main domain and every registered domain come \
            from ACME (Let's Encrypt unless --acme-directory says otherwise; --acme-agree-tos is required). \
            SIGTERM or SIGINT stops accepting, sends GOAWAY to every client, lets requests in flight finish for \
            up to --shutdown-grace seconds, and exits 0.
            """
    )

    @OptionGroup var globals: GlobalOptions
    @OptionGroup(title: "Certificates from ACME (without --tls-certificate or --dev)") var acme: ACMEOptions

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

    @Flag(
        help: ArgumentHelp(
            "The HTTP listener forwards requests to clients, as the HTTPS one does, instead of redirecting them to "
                + "HTTPS: behind a load balancer that terminates TLS, or for tests on one machine. The admin API "
                + "stays on HTTPS. (env: HOPGATE_HTTP_PROXY=1)"
        )
    )
    var httpProxy = false

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

    @Option(
        help: ArgumentHelp(
            "Seconds between looks at the store for new, renewed or due certificates (±10% jitter). Default: 30. "
                + "(env: HOPGATE_CERT_REFRESH_INTERVAL)",
            valueName: "seconds"
        )
    )
    var certRefreshInterval: Double?

    @Option(
        help: ArgumentHelp(
            "Seconds before retrying a failed certificate order; doubles with each failure, up to 6 hours. "
                + "Default: 60. (env: HOPGATE_ACME_RETRY_DELAY)",
            valueName: "seconds"
        )
    )
    var acmeRetryDelay: Double?

    @Flag(help: "Loopback only, self-signed certificate, embedded store, a printed admin key. (env: HOPGATE_DEV)")
    var dev = false

    @Flag(help: "Apply pending database migrations at start instead of refusing to run. (env: HOPGATE_MIGRATE)")
    var migrate = false

    func run() async throws {
        try await reportingErrors {
            let logger = try globals.makeLogger(label: "hopgate.edge")
            let isDev = enabled(dev, "HOPGATE_DEV")
            let configuration = try edgeConfiguration(isDev: isDev)
            let (certificates, usesACME) = try loadCertificates(mainDomain: configuration.mainDomain, isDev: isDev)
            let acmeSettings = usesACME ? try acmeSettings() : nil
            if acmeSettings?.challenge == .http01 && configuration.http == nil {
                throw ValidationError(
                    "the http-01 challenge needs the HTTP listener: drop --http-listen off, or use "
                        + "--acme-challenge tls-alpn-01"
                )
            }
            try await globals.withStore { store, _ in
                try await prepare(store, migrate: isDev || enabled(migrate, "HOPGATE_MIGRATE"), logger: logger)
                let manager = try acmeSettings.map { settings in
                    try certificateManager(
                        settings: settings,
                        store: store,
                        mainDomain: configuration.mainDomain,
                        certificates: certificates,
                        logger: logger
                    )
                }
                let keyVerifier = KeyVerifier()
                let verifier = try await TunnelCredentialVerifier(store: store, keyVerifier: keyVerifier)
                let registry = TunnelSessionRegistry()
                let (credential, generatedKey) = try adminCredential(isDev: isDev, logger: logger)
                let admin = credential.map {
                    AdminAPI(
                        mainDomain: configuration.mainDomain,
                        credential: $0,
                        administration: StoreDomainAdministration(store: store),
                        registry: registry,
                        onRegistered: { _ in manager?.wake() }
                    )
                }
                let fingerprint = certificates.entry(for: configuration.mainDomain)?.pem.fingerprint ?? ""
                let server = EdgeServer(
                    configuration: configuration,
                    certificates: certificates,
                    credentialCheck: { await verifier.verdict(for: $0) },
                    registry: registry,
                    admin: admin,
                    acme: manager == nil ? nil : StoredChallengeSource(ChallengeAnswers(store: store, logger: logger)),
                    logger: logger,
                    group: try eventLoopGroup()
                ) { bound in
                    if isDev {
                        DevModeBanner.print(
                            mainDomain: configuration.mainDomain,
                            bound: bound,
                            httpProxies: configuration.httpProxies,
                            fingerprint: fingerprint,
                            generatedAdminKey: generatedKey
                        )
                    }
                }
                // How many client keys cost an Argon2id hash: a reconnect storm with tokens must not move it.
                server.metrics.addGauges {
                    [("hopgate_argon2_verifications_total", Double(keyVerifier.argon2Verifications))]
                }
                if let manager {
                    server.metrics.addGauges {
                        let status = manager.status
                        var gauges = [
                            ("hopgate_certificates", Double(status.certificates)),
                            ("hopgate_acme_orders_succeeded_total", Double(status.ordersSucceeded)),
                            ("hopgate_acme_orders_failed_total", Double(status.ordersFailed)),
                        ]
                        // Absent rather than 0 while nothing is served: 0 would read as "expires now".
                        if let seconds = status.soonestExpirySeconds {
                            gauges.append(("hopgate_certificate_soonest_expiry_seconds", seconds))
                        }
                        return gauges
                    }
                }
                let services: [ServiceGroupConfiguration.ServiceConfiguration] =
                    [.init(service: server)] + (manager.map { [.init(service: $0)] } ?? [])
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: services,
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
        configuration.httpProxies = enabled(httpProxy, "HOPGATE_HTTP_PROXY")
        if configuration.httpProxies && http == nil {
            throw ValidationError("--http-proxy needs the HTTP listener: drop --http-listen off")
        }
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

    /// The certificates to serve, and whether they come from ACME (no files given, not dev mode).
    private func loadCertificates(mainDomain: String, isDev: Bool) throws -> (TLSCertificateStore, usesACME: Bool) {
        let store = TLSCertificateStore(fallbackName: mainDomain)
        var usesACME = false
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
                usesACME = true
            default:
                throw ValidationError("--tls-certificate and --tls-key go together")
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw HopGateError(.configuration, "the TLS certificate does not load: \(error)")
        }
        return (store, usesACME)
    }

    private func acmeSettings() throws -> ACMESettings {
        let settings = try acme.settings()
        guard settings.agreeToTerms else {
            throw ValidationError(
                "without --tls-certificate the edge gets certificates from ACME (\(settings.directoryURL)): read the "
                    + "CA's terms and add --acme-agree-tos (and --acme-email), or give --tls-certificate and "
                    + "--tls-key, or use --dev"
            )
        }
        return settings
    }

    private func certificateManager(
        settings: ACMESettings,
        store: any DomainStore,
        mainDomain: String,
        certificates: TLSCertificateStore,
        logger: Logger
    ) throws -> CertificateManager {
        var schedule = CertificateManager.Schedule()
        if let seconds = try number(certRefreshInterval, "HOPGATE_CERT_REFRESH_INTERVAL") {
            guard seconds >= 1 else { throw ValidationError("--cert-refresh-interval must be at least 1 second") }
            schedule.refreshInterval = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = try number(acmeRetryDelay, "HOPGATE_ACME_RETRY_DELAY") {
            guard seconds >= 1 else { throw ValidationError("--acme-retry-delay must be at least 1 second") }
            schedule.retryDelay = .milliseconds(Int64(seconds * 1000))
        }
        return CertificateManager(
            issuer: CertificateIssuer(settings: settings, store: store, logger: logger),
            store: store,
            mainDomain: mainDomain,
            schedule: schedule,
            logger: logger
        ) { record in
            try certificates.install(
                DTLSCertificate(chainPEM: record.chainPEM, privateKeyPEM: record.privateKeyPEM),
                for: [record.domain]
            )
        }
    }

    /// Dev mode's self-signed certificate, kept beside the embedded store so a restarted edge keeps its fingerprint
    /// (clients pin it with --server-fingerprint).
    private func devCertificate(names: [String]) throws -> DTLSCertificate {
        let directory: String
        if case .sqlite(let path) = try globals.databaseLocation() {
            directory = directoryPart(of: path)
        } else {
            directory = directoryPart(of: DatabaseLocation.defaultSQLitePath())
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
        httpProxies: Bool,
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
        if let http = bound["http"]?.port {
            let role = httpProxies ? "forwards requests, plain HTTP" : "redirects to HTTPS"
            lines.append("  HTTP    http://127.0.0.1:\(http)   (\(role))")
        }
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
        writeAll(lines.joined(separator: "\n") + "\n", toDescriptor: 1)
    }
}
