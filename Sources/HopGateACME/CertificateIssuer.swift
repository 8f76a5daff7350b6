import Crypto
import FoundationEssentials
import HopGateStore
import Logging

/// Gets one certificate for one name from the CA: account, order, challenge, finalize, download; and stores it.
///
/// The challenge answer goes into the store, where every edge on the database finds it, so the edge the CA
/// reaches answers even when the order runs elsewhere (`hopgate cert renew`).
public struct CertificateIssuer: Sendable {
    public let settings: ACMESettings
    private let store: any CertificateStateStore
    private let transport: any ACMETransport
    private let logger: Logger

    public init(
        settings: ACMESettings,
        store: any CertificateStateStore,
        transport: (any ACMETransport)? = nil,
        logger: Logger
    ) {
        self.settings = settings
        self.store = store
        self.transport = transport ?? HTTPSACMETransport(trust: settings.trust)
        self.logger = logger
    }

    /// Orders, validates and stores a certificate for `domain`; returns the stored record.
    public func issue(for domain: String) async throws -> CertificateRecord {
        guard settings.agreeToTerms else {
            throw ACMEError(
                "HopGate cannot get a certificate without agreeing to the CA's terms of service: read them, then "
                    + "start with --acme-agree-tos"
            )
        }
        let deadline = ContinuousClock.now + settings.orderTimeout
        let client = try await accountClient()
        let started = ContinuousClock.now
        let (orderURL, order) = try await client.newOrder(names: [domain])
        for url in order.authorizations {
            try await authorize(url, client: client, deadline: deadline)
        }
        var ready = try await poll(orderURL, client: client, deadline: deadline, until: ["ready", "valid"])
        let key = P256.Signing.PrivateKey()
        if ready.status == "ready" {
            let csr = try IssuedCertificate.signingRequest(for: domain, key: key)
            ready = try await client.finalize(order.finalize, csrDER: csr)
            if ready.status != "valid" {
                ready = try await poll(orderURL, client: client, deadline: deadline, until: ["valid"])
            }
        } else {
            // Valid before we finalized means someone else did, with a key we do not have.
            throw ACMEError("the order for \(domain) was finalized by someone else; try again")
        }
        guard let certificateURL = ready.certificate else {
            throw ACMEError("the CA says the order for \(domain) is valid but names no certificate URL")
        }
        let chain = try await client.downloadCertificate(certificateURL)
        let record = try IssuedCertificate.record(domain: domain, chainPEM: chain, privateKeyPEM: key.pemRepresentation)
        try await store.saveCertificate(record)
        logger.info(
            "certificate issued",
            metadata: [
                "domain": "\(domain)", "issuer": "\(record.issuer)", "serial": "\(record.serialNumber)",
                "not_after": "\(record.notAfter)", "challenge": "\(settings.challenge.rawValue)",
                "milliseconds": "\(Int((ContinuousClock.now - started) / .milliseconds(1)))",
            ]
        )
        return record
    }

    /// A client signed by the stored account key, registered with the CA (which finds the existing account).
    private func accountClient() async throws -> ACMEClient {
        let key: ACMEAccountKey
        if let stored = try await store.acmeAccount(directoryURL: settings.directoryURL) {
            key = try ACMEAccountKey(pem: stored.privateKeyPEM)
        } else {
            // Saved before the CA hears of it: of two edges starting at once, both end up with the first one's key.
            let fresh = ACMEAccountKey()
            let saved = try await store.saveACMEAccount(
                ACMEAccountRecord(
                    directoryURL: settings.directoryURL,
                    accountURL: "",
                    privateKeyPEM: fresh.pem,
                    contact: settings.contactEmail ?? "",
                    createdAt: Date()
                )
            )
            key = try ACMEAccountKey(pem: saved.privateKeyPEM)
        }
        let client = ACMEClient(directoryURL: settings.directoryURL, key: key, transport: transport, logger: logger)
        let accountURL = try await client.register(contactEmail: settings.contactEmail, agreeToTerms: true)
        logger.debug("ACME account ready", metadata: ["account": "\(accountURL)"])
        return client
    }

    /// Gets one authorization to valid: publishes the answer, asks the CA to validate, waits, cleans up.
    private func authorize(_ url: String, client: ACMEClient, deadline: ContinuousClock.Instant) async throws {
        let (authorization, _) = try await client.authorization(url)
        let name = authorization.identifier.value
        // A recent validation of the same account and name may be reused (RFC 8555 §7.1.4).
        if authorization.status == "valid" { return }
        guard authorization.status == "pending" else {
            throw ACMEError("the CA's authorization for \(name) is \(authorization.status), not pending")
        }
        let kind = settings.challenge
        guard let challenge = authorization.challenges.first(where: { $0.type == kind.rawValue }),
            let token = challenge.token
        else {
            let offered = authorization.challenges.map(\.type).joined(separator: ", ")
            throw ACMEError(
                "the CA offers no \(kind.rawValue) challenge for \(name) (only \(offered)): pick another --acme-challenge"
            )
        }
        try await store.saveChallenge(
            ACMEChallengeRecord(
                token: token,
                domain: name,
                kind: kind,
                keyAuthorization: client.key.keyAuthorization(token: token),
                createdAt: Date()
            )
        )
        do {
            try await client.respond(toChallenge: challenge.url)
            var delay = Duration.milliseconds(250)
            while true {
                let (latest, response) = try await client.authorization(url)
                switch latest.status {
                case "valid":
                    try? await store.deleteChallenge(token: token)
                    return
                case "pending", "processing":
                    break
                default:
                    let problem = latest.challenges.first { $0.type == kind.rawValue }?.error
                    throw ACMEError(
                        "the CA could not validate \(name) by \(kind.rawValue): "
                            + (problem?.description ?? "the authorization is \(latest.status)"),
                        problemType: problem?.shortType
                    )
                }
                try await pause(response.retryAfter() ?? delay, deadline: deadline, waitingFor: "validation of \(name)")
                delay = min(delay * 2, .seconds(5))
            }
        } catch {
            try? await store.deleteChallenge(token: token)
            throw error
        }
    }

    private func poll(
        _ url: String,
        client: ACMEClient,
        deadline: ContinuousClock.Instant,
        until wanted: Set<String>
    ) async throws -> ACMEOrder {
        var delay = Duration.milliseconds(250)
        while true {
            let (order, response) = try await client.order(url)
            if wanted.contains(order.status) { return order }
            if order.status == "invalid" {
                throw ACMEError(
                    "the CA gave up on the order: " + (order.error?.description ?? "it is invalid"),
                    problemType: order.error?.shortType
                )
            }
            try await pause(response.retryAfter() ?? delay, deadline: deadline, waitingFor: "the order")
            delay = min(delay * 2, .seconds(5))
        }
    }

    private func pause(_ duration: Duration, deadline: ContinuousClock.Instant, waitingFor what: String) async throws {
        guard ContinuousClock.now + duration < deadline else {
            throw ACMEError("gave up waiting for \(what) after \(settings.orderTimeout)")
        }
        try await Task.sleep(for: duration)
    }
}
