import FoundationEssentials
import Logging

/// The RFC 8555 protocol with one CA for one account key: the directory, nonces, signed requests and the
/// resources of an order. It keeps no state but the directory, spare nonces and the account URL; `CertificateIssuer`
/// walks an order through it.
actor ACMEClient {
    let directoryURL: String
    let key: ACMEAccountKey
    private let transport: any ACMETransport
    private let logger: Logger
    /// How long to wait between attempts at a request that failed in transit or with a 5xx.
    private let transientRetryDelays: [Duration]
    private var directory: ACMEDirectory?
    private var nonces: [String] = []
    private(set) var accountURL: String?

    init(
        directoryURL: String,
        key: ACMEAccountKey,
        transport: any ACMETransport,
        logger: Logger,
        transientRetryDelays: [Duration] = [.seconds(1), .seconds(3)]
    ) {
        self.directoryURL = directoryURL
        self.key = key
        self.transport = transport
        self.logger = logger
        self.transientRetryDelays = transientRetryDelays
    }

    // MARK: - Resources

    /// Makes the account for this key, or finds the one it already has (RFC 8555 §7.3: newAccount with a known key
    /// answers 200 and the account's URL), so a CA that forgot us (Pebble restarted) is no problem.
    func register(contactEmail: String?, agreeToTerms: Bool) async throws -> String {
        let directory = try await loadDirectory()
        let payload = ACMENewAccountRequest(
            termsOfServiceAgreed: agreeToTerms,
            contact: contactEmail.map { ["mailto:\($0)"] }
        )
        let response = try await post(
            directory.newAccount,
            payload: try JSONEncoder().encode(payload),
            signer: .jwk,
            doing: "register the ACME account"
        )
        guard let location = response.header("Location") else {
            throw ACMEError("the CA created the account but named no URL for it (no Location header)")
        }
        accountURL = location
        return location
    }

    /// A new order for `names`; returns its URL and the order.
    func newOrder(names: [String]) async throws -> (url: String, order: ACMEOrder) {
        let directory = try await loadDirectory()
        let response = try await post(
            directory.newOrder,
            payload: try JSONEncoder().encode(ACMENewOrderRequest(identifiers: names.map(ACMEIdentifier.dns))),
            doing: "create an order for \(names.joined(separator: ", "))"
        )
        guard let location = response.header("Location") else {
            throw ACMEError("the CA created the order but named no URL for it (no Location header)")
        }
        return (location, try decode(ACMEOrder.self, response, "the order"))
    }

    func authorization(_ url: String) async throws -> (ACMEAuthorization, ACMEHTTPResponse) {
        let response = try await post(url, payload: nil, doing: "read an authorization")
        return (try decode(ACMEAuthorization.self, response, "the authorization"), response)
    }

    func order(_ url: String) async throws -> (ACMEOrder, ACMEHTTPResponse) {
        let response = try await post(url, payload: nil, doing: "read the order")
        return (try decode(ACMEOrder.self, response, "the order"), response)
    }

    /// Tells the CA the answer is in place and it may validate (RFC 8555 §7.5.1: an empty JSON object).
    func respond(toChallenge url: String) async throws {
        _ = try await post(url, payload: Data("{}".utf8), doing: "ask the CA to validate a challenge")
    }

    func finalize(_ url: String, csrDER: [UInt8]) async throws -> ACMEOrder {
        let payload = try JSONEncoder().encode(ACMEFinalizeRequest(csr: Base64URL.encode(csrDER)))
        let response = try await post(url, payload: payload, doing: "finalize the order")
        return try decode(ACMEOrder.self, response, "the finalized order")
    }

    /// The issued chain, PEM, leaf first.
    func downloadCertificate(_ url: String) async throws -> String {
        let response = try await post(
            url,
            payload: nil,
            accept: "application/pem-certificate-chain",
            doing: "download the certificate"
        )
        let text = String(decoding: response.body, as: UTF8.self)
        guard text.contains("-----BEGIN CERTIFICATE-----") else {
            throw ACMEError("the CA's certificate download is not a PEM chain (\(response.body.count) bytes)")
        }
        return text
    }

    // MARK: - Requests

    private func loadDirectory() async throws -> ACMEDirectory {
        if let directory { return directory }
        let response = try await send("GET", directoryURL, body: nil, headers: [], doing: "read the ACME directory")
        guard response.status == 200 else {
            throw ACMEError(
                "the ACME directory \(directoryURL) answered HTTP \(response.status), not a directory: "
                    + "check --acme-directory"
            )
        }
        let directory = try decode(ACMEDirectory.self, response, "the ACME directory \(directoryURL)")
        self.directory = directory
        return directory
    }

    private func nonce() async throws -> String {
        if let nonce = nonces.popLast() { return nonce }
        let directory = try await loadDirectory()
        _ = try await send("GET", directory.newNonce, body: nil, headers: [], doing: "get a nonce")
        guard let nonce = nonces.popLast() else { throw ACMEError("the CA's newNonce gave no Replay-Nonce header") }
        return nonce
    }

    /// A signed POST (a POST-as-GET when `payload` is nil). A `badNonce` is retried with the fresh nonce the error
    /// carried, as RFC 8555 §6.5 asks; any other problem document becomes an `ACMEError` that says what failed.
    private func post(
        _ url: String,
        payload: Data?,
        signer: ACMEAccountKey.Signer? = nil,
        accept: String? = nil,
        doing operation: String
    ) async throws -> ACMEHTTPResponse {
        let badNonceAttempts = 10
        for attempt in 1...badNonceAttempts {
            let identity: ACMEAccountKey.Signer
            if let signer {
                identity = signer
            } else if let accountURL {
                identity = .account(accountURL)
            } else {
                throw ACMEError("cannot \(operation) before the account is registered")
            }
            let body = try key.sign(payload: payload, url: url, nonce: try await nonce(), signer: identity)
            var headers = [("Content-Type", "application/jose+json")]
            if let accept { headers.append(("Accept", accept)) }
            let response = try await send("POST", url, body: body, headers: headers, doing: operation)
            if (200..<300).contains(response.status) { return response }
            let problem = try? JSONDecoder().decode(ACMEProblemDocument.self, from: response.body)
            if problem?.shortType == "badNonce" && attempt < badNonceAttempts {
                logger.debug("the CA rejected a nonce; retrying with a fresh one", metadata: ["url": "\(url)"])
                continue
            }
            let detail =
                problem.map(\.description)
                ?? "HTTP \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))"
            throw ACMEError(
                "the CA refused to \(operation): \(detail)",
                problemType: problem?.shortType,
                retryAfter: response.retryAfter()
            )
        }
        throw ACMEError("the CA rejected \(badNonceAttempts) nonces in a row while trying to \(operation)")
    }

    /// One HTTP exchange, retried after a failure in transit or a 5xx (the CA restarting, a load balancer). Every
    /// response's Replay-Nonce is kept for the next signed request.
    private func send(
        _ method: String,
        _ url: String,
        body: Data?,
        headers: [(String, String)],
        doing operation: String
    ) async throws -> ACMEHTTPResponse {
        var delays = transientRetryDelays[...]
        while true {
            let failure: String
            var wait: Duration? = nil
            do {
                let response = try await transport.send(method, url, body: body, headers: headers)
                if let nonce = response.header("Replay-Nonce") { nonces.append(nonce) }
                guard response.status >= 500 else { return response }
                failure = "HTTP \(response.status)"
                wait = response.retryAfter()
                // A signed body carries a nonce the failed request may have used up: sign again.
                if method == "POST" { return response }
            } catch let error as ACMEError {
                throw error
            } catch {
                failure = "\(error)"
            }
            guard let delay = delays.popFirst() else {
                throw ACMEError("cannot reach the ACME server at \(url) to \(operation): \(failure)")
            }
            let pause = min(wait ?? delay, .seconds(30))
            logger.info(
                "ACME request failed; retrying",
                metadata: ["url": "\(url)", "error": "\(failure)", "retry_in": "\(pause)"]
            )
            try await Task.sleep(for: pause)
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: ACMEHTTPResponse, _ what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: response.body)
        } catch {
            throw ACMEError("the CA sent \(what) in a form HopGate cannot read: \(error)")
        }
    }
}
