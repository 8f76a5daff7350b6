import HopGateCore
import HopGateDTLS
import HopGateTunnel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Where a listener binds.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT`, `:PORT` (every address) or `[V6]:PORT`.
    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else { throw ListenAddressError(text: text) }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct ListenAddressError: Error, CustomStringConvertible {
    let text: String
    public var description: String { "'\(text)' is not HOST:PORT (for example 0.0.0.0:443 or :443)" }
}

/// What `hopgate serve` runs.
public struct EdgeConfiguration: Sendable {
    /// The control domain: the admin API lives here, and the DTLS listener presents its certificate.
    public var mainDomain: String
    public var https: ListenAddress
    public var http: ListenAddress?
    /// The HTTP listener forwards requests to the clients as the HTTPS one does, instead of redirecting them to
    /// HTTPS: for an edge behind a load balancer that terminates TLS, or a test on one machine. ACME challenges are
    /// still answered there; the admin API stays on HTTPS only.
    public var httpProxies = false
    public var dtls: ListenAddress
    public var metrics: ListenAddress?
    public var proxy = ProxySettings()
    public var tunnelPolicy = EdgeHandshake.Policy()
    /// How long in-flight requests may run on after SIGTERM.
    public var shutdownGrace: Duration = .seconds(30)

    public init(
        mainDomain: String,
        https: ListenAddress,
        http: ListenAddress?,
        dtls: ListenAddress,
        metrics: ListenAddress?
    ) {
        self.mainDomain = mainDomain
        self.https = https
        self.http = http
        self.dtls = dtls
        self.metrics = metrics
    }
}

/// The edge as one Service: the HTTPS, HTTP, DTLS and metrics listeners, the tunnel sessions, the admin API.
/// On graceful shutdown it stops accepting connections, sends GOAWAY to every client, lets in-flight requests
/// finish for up to the grace period, then ends.
public final class EdgeServer: Service {
    public let configuration: EdgeConfiguration
    public let registry: TunnelSessionRegistry
    public let metrics = EdgeMetrics()
    private let certificates: TLSCertificateStore
    private let credentialCheck: EdgeTunnelListener.CredentialCheck
    private let acme: (any ACMEChallengeSource)?
    private let admin: AdminAPI?
    private let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable ([String: SocketAddress]) -> Void

    /// - Parameters:
    ///   - registry: the live sessions; the admin API ends a domain's sessions through it.
    ///   - admin: the admin API, or nil for none.
    ///   - acme: the answers to ACME validations (HTTP-01 on the HTTP listener, TLS-ALPN-01 on the HTTPS one), or
    ///     nil when certificates do not come from ACME.
    ///   - onListening: told the bound addresses once every listener is up (for dev mode's printout and tests).
    public init(
        configuration: EdgeConfiguration,
        certificates: TLSCertificateStore,
        credentialCheck: @escaping EdgeTunnelListener.CredentialCheck,
        registry: TunnelSessionRegistry,
        admin: AdminAPI?,
        acme: (any ACMEChallengeSource)? = nil,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable ([String: SocketAddress]) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.certificates = certificates
        self.credentialCheck = credentialCheck
        self.acme = acme
        self.logger = logger
        self.group = group
        self.onListening = onListening
        self.registry = registry
        self.admin = admin
    }

    public func run() async throws {
        let tls = try certificates.makeServerContext(alpn: ["h2", "http/1.1"])
        var environment = HTTPProxyHandler.Environment(
            registry: registry,
            settings: configuration.proxy,
            scheme: "https",
            redirectToHTTPSPort: nil,
            local: admin,
            challenges: nil,
            metrics: metrics,
            logger: logger
        )
        let https = try await listening("HTTPS", configuration.https) {
            try await EdgeHTTPListener.bind(
                host: configuration.https.host,
                port: configuration.https.port,
                tls: tls,
                acme: acme,
                environment: environment,
                group: group
            )
        }
        var bound: [String: SocketAddress] = ["https": https.localAddress!]
        var http: EdgeHTTPListener?
        if let address = configuration.http {
            environment.scheme = "http"
            environment.redirectToHTTPSPort =
                configuration.httpProxies ? nil : https.localAddress?.port ?? configuration.https.port
            environment.local = nil
            environment.challenges = acme.map { HTTP01Responder(source: $0) }
            http = try await listening("HTTP", address) { [environment] in
                try await EdgeHTTPListener.bind(
                    host: address.host,
                    port: address.port,
                    tls: nil,
                    environment: environment,
                    group: group
                )
            }
            bound["http"] = http?.localAddress
        }
        // The DTLS listener presents the main domain's certificate; from ACME, that takes a moment after a first
        // start, while the HTTP and HTTPS listeners already answer the CA's validation.
        if certificates.entry(covering: configuration.mainDomain) == nil {
            logger.info(
                "waiting for the main domain's certificate before the DTLS listener starts",
                metadata: ["domain": "\(configuration.mainDomain)"]
            )
            let certificates = self.certificates
            let mainDomain = configuration.mainDomain
            do {
                try await cancelWhenGracefulShutdown {
                    while certificates.entry(covering: mainDomain) == nil {
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
            } catch {
                try? await https.channel.close()
                try? await http?.channel.close()
                logger.info("edge stopped before its certificate arrived")
                return
            }
        }
        let metrics = self.metrics
        let tunnel = try await listening("DTLS", configuration.dtls, udp: true) {
            try await EdgeTunnelListener.bind(
                host: configuration.dtls.host,
                port: configuration.dtls.port,
                dtls: DTLSServerConfiguration(
                    certificateSource: InstalledCertificateSource(store: certificates, name: configuration.mainDomain)
                ),
                policy: configuration.tunnelPolicy,
                registry: self.registry,
                group: group,
                logger: logger,
                metrics: metrics,
                check: credentialCheck
            )
        }
        bound["dtls"] = tunnel.localAddress
        let registry = self.registry
        let statistics = tunnel.statistics
        metrics.addGauges {
            let snapshot = statistics.snapshot
            return [
                ("hopgate_sessions_active", Double(registry.count)),
                ("hopgate_dtls_sessions_established", Double(snapshot.sessionsEstablished)),
                ("hopgate_dtls_handshakes_completed", Double(snapshot.handshakesCompleted)),
                ("hopgate_dtls_handshakes_failed", Double(snapshot.handshakesFailed)),
            ]
        }
        var metricsListener: (any Channel)?
        if let address = configuration.metrics {
            metricsListener = try await listening("metrics", address) {
                try await MetricsListener.bind(address, metrics: metrics, group: group)
            }
            bound["metrics"] = metricsListener?.localAddress
        }
        logger.info(
            "edge listening",
            metadata: bound.mapValues { $0.hostAndPort }.reduce(into: ["domain": "\(configuration.mainDomain)"]) {
                $0[$1.key] = .string($1.value)
            }
        )
        onListening(bound)

        let grace = configuration.shutdownGrace
        await withDiscardingTaskGroup { group in
            group.addTask { await tunnel.run(grace: grace) }
            // Runs until SIGTERM/SIGINT (or the service group ends); then the drain begins.
            try? await gracefulShutdown()
            logger.info(
                "edge shutting down: no new connections; in-flight requests may finish",
                metadata: [
                    "grace_seconds": "\(grace.components.seconds)"
                ]
            )
            try? await https.channel.close()
            try? await http?.channel.close()
            group.cancelAll()
        }
        try? await metricsListener?.close()
        logger.info("edge stopped")
    }

    /// Runs a listener's bind, turning its failure into an error that names the listener and the address
    /// ("address already in use" from a second edge, "cannot assign requested address" from a foreign IP).
    private func listening<Listener>(
        _ name: String,
        _ address: ListenAddress,
        udp: Bool = false,
        _ bind: () async throws -> Listener
    ) async throws -> Listener {
        do {
            return try await bind()
        } catch let error as IOError {
            throw HopGateError(
                .configuration,
                "the \(name) listener cannot bind \(address)\(udp ? "/udp" : ""): "
                    + String(cString: strerror(error.errnoCode)).lowercased()
            )
        }
    }
}

extension SocketAddress {
    /// `127.0.0.1:8443` or `[::1]:8443`, as people write addresses.
    public var hostAndPort: String {
        let host = ipAddress ?? "?"
        let port = self.port.map(String.init) ?? "?"
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
