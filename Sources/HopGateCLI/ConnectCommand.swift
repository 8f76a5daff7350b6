import ArgumentParser
import FoundationEssentials
import HopGateClient
import HopGateCore
import HopGateDTLS
import Logging
import ServiceLifecycle

/// `hopgate connect`: the tunnel client.
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Dial the edge over DTLS and serve its requests from local services.",
        discussion: """
            Reconnects forever with exponential backoff (0.5 s doubling to 30 s, with jitter), using a resumption \
            token after the first success. A wrong key or an unknown domain stops it (exit 77 or 66) without retrying. \
            Every option also reads an environment variable (named in its help).
            """
    )

    @OptionGroup var globals: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "The edge: HOST or HOST:PORT (UDP; default port 443). (env: HOPGATE_SERVER, HOP_CLIENT_SERVER_ADDR)",
            valueName: "host[:port]"
        )
    )
    var server: String?

    @Option(
        help: ArgumentHelp(
            "The domain to serve, registered on the edge. (env: HOPGATE_DOMAIN, HOP_CLIENT_DOMAIN)",
            valueName: "domain"
        )
    )
    var domain: String?

    @Option(
        help: ArgumentHelp(
            "The domain's client API key. (env: HOPGATE_CLIENT_API_KEY, HOP_CLIENT_API_KEY)",
            valueName: "key"
        )
    )
    var key: String?

    @Option(
        help: ArgumentHelp(
            "The local service for every path: HOST:PORT or PORT. (env: HOPGATE_TO, HOP_CLIENT_LOCAL_TARGET)",
            valueName: "host:port"
        )
    )
    var to: String?

    @Option(
        help: ArgumentHelp(
            "A local service for one path prefix: /PREFIX=HOST:PORT; repeatable. (env: HOPGATE_ROUTES, comma-separated)",
            valueName: "prefix=host:port"
        )
    )
    var route: [String] = []

    @Option(
        help: ArgumentHelp(
            "Trust only the CAs in this PEM file for the edge's certificate. (env: HOPGATE_CA_FILE)",
            valueName: "path"
        )
    )
    var caFile: String?

    @Option(
        help: ArgumentHelp(
            "Accept exactly the edge certificate with this SHA-256 fingerprint. (env: HOPGATE_SERVER_FINGERPRINT)",
            valueName: "sha256"
        )
    )
    var serverFingerprint: String?

    @Option(
        help: ArgumentHelp(
            "The name the edge's certificate must carry. Default: the host of --server. (env: HOPGATE_SERVER_NAME)",
            valueName: "name"
        )
    )
    var serverName: String?

    @Flag(
        help:
            "Do not verify the edge's certificate at all (anyone on the path can read the tunnel). (env: HOPGATE_INSECURE)"
    )
    var insecure = false

    func run() async throws {
        try await reportingErrors {
            let logger = try globals.makeLogger(label: "hopgate.client")
            let settings = try clientSettings(logger: logger)
            let forwarder = LocalForwarder(targets: try targets(), logger: logger)
            let client = TunnelClientService(settings: settings, forwarder: forwarder, logger: logger)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: client)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            do {
                try await group.run()
            } catch let stopped as TunnelClientStopped {
                throw HopGateError(Self.code(for: stopped), stopped.description)
            } catch let error as ServiceGroupError {
                // The group wraps what the client threw; unwrap it to keep the exit code.
                if let stopped = Self.stopped(in: error) {
                    throw HopGateError(Self.code(for: stopped), stopped.description)
                }
                throw error
            }
        }
    }

    static func stopped(in error: any Error) -> TunnelClientStopped? {
        if let stopped = error as? TunnelClientStopped { return stopped }
        let mirror = Mirror(reflecting: error)
        for child in mirror.children {
            if let stopped = child.value as? TunnelClientStopped { return stopped }
        }
        return nil
    }

    static func code(for stopped: TunnelClientStopped) -> HopGateError.Code {
        switch stopped.reject.code {
        case .badKey: .permissionDenied
        case .unknownDomain: .notFound
        default: .configuration
        }
    }

    private func clientSettings(logger: Logger) throws -> TunnelClientService.Settings {
        guard let serverText = setting(server, "HOPGATE_SERVER", "HOP_CLIENT_SERVER_ADDR") else {
            throw ValidationError("give the edge: --server edge.example.com (or HOPGATE_SERVER)")
        }
        var host = serverText
        var port = 443
        if let colon = serverText.lastIndex(of: ":"), !serverText.hasSuffix("]") {
            guard let value = Int(serverText[serverText.index(after: colon)...]), (1...65_535).contains(value) else {
                throw ValidationError("--server: '\(serverText)' is not HOST or HOST:PORT")
            }
            host = String(serverText[..<colon])
            port = value
        }
        host = host.trimming(while: { $0 == "[" || $0 == "]" })
        guard let domain = setting(domain, "HOPGATE_DOMAIN", "HOP_CLIENT_DOMAIN") else {
            throw ValidationError("give the domain to serve: --domain app.example.com (or HOPGATE_DOMAIN)")
        }
        guard let key = setting(key, "HOPGATE_CLIENT_API_KEY", "HOP_CLIENT_API_KEY") else {
            throw ValidationError("give the domain's client API key: --key KEY (or HOPGATE_CLIENT_API_KEY)")
        }
        let verification: DTLSServerVerification
        if let fingerprint = setting(serverFingerprint, "HOPGATE_SERVER_FINGERPRINT") {
            let digits = fingerprint.filter { $0 != ":" }
            guard digits.count == 64, digits.allSatisfy(\.isHexDigit) else {
                throw ValidationError("--server-fingerprint must be a SHA-256: 64 hex characters (colons allowed)")
            }
            verification = .fingerprint(fingerprint)
        } else if let path = setting(caFile, "HOPGATE_CA_FILE") {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ValidationError("--ca-file: cannot read \(path)")
            }
            verification = .caFile(path)
        } else if enabled(insecure, "HOPGATE_INSECURE") {
            logger.warning(
                "INSECURE: the edge's certificate is not verified; anyone on the network path can impersonate it"
            )
            verification = .insecure
        } else {
            verification = .systemTrustStore
        }
        let dtls = DTLSClientConfiguration(
            serverName: setting(serverName, "HOPGATE_SERVER_NAME") ?? host,
            verification: verification
        )
        return TunnelClientService.Settings(
            host: host,
            port: port,
            dtls: dtls,
            domain: domain,
            key: key,
            clientVersion: HopGateVersion.current
        )
    }

    private func targets() throws -> [LocalTarget] {
        var targets: [LocalTarget] = []
        do {
            if let to = setting(to, "HOPGATE_TO", "HOP_CLIENT_LOCAL_TARGET") {
                targets.append(try LocalTarget(parsing: to))
            }
            var routes = route
            if routes.isEmpty, let text = ProcessInfo.processInfo.environment["HOPGATE_ROUTES"] {
                routes = text.split(separator: ",").map(String.init)
            }
            for route in routes {
                guard let equals = route.firstIndex(of: "=") else {
                    throw ValidationError("--route: '\(route)' is not /PREFIX=HOST:PORT")
                }
                targets.append(
                    try LocalTarget(
                        parsing: String(route[route.index(after: equals)...]),
                        pathPrefix: String(route[..<equals])
                    )
                )
            }
        } catch let error as LocalTargetError {
            throw ValidationError(error.message)
        }
        guard !targets.isEmpty else {
            throw ValidationError("give a local service: --to 127.0.0.1:8080 (or --route /PREFIX=HOST:PORT)")
        }
        return targets
    }
}
