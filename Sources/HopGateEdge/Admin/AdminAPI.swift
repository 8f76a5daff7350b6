import FoundationEssentials
import Glibc
import HopGateCore
import HopGateStore
import HopGateTunnel
import NIOCore
import NIOHTTP1
import Synchronization

/// The admin REST API under `/api/v1/admin` on the main domain (openapi/admin.yaml): register, unregister, list
/// and status of domains, behind `Authorization: Bearer <admin key>`. The same `DomainAdministration` as the CLI
/// does the work, so both give the same answers and the same error codes.
public final class AdminAPI: LocalResponder {
    public static let basePath = "/api/v1/admin"

    /// How the admin key is configured.
    public enum Credential: Sendable {
        /// The key itself, compared in constant time.
        case plain(String)
        /// An Argon2id encoded hash (`$argon2id$...`), checked through the verified-key cache.
        case hash(String)
    }

    private let mainDomain: String
    private let credential: Credential
    private let administration: any DomainAdministration
    private let registry: TunnelSessionRegistry
    private let keyVerifier: KeyVerifier
    private let onRegistered: @Sendable (String) -> Void
    private let failures = Mutex(FailureRateLimiter(maximumFailures: 10, windowMilliseconds: 60_000))
    public let maximumBodyBytes = 64 * 1024

    public init(
        mainDomain: String,
        credential: Credential,
        administration: any DomainAdministration,
        registry: TunnelSessionRegistry,
        keyVerifier: KeyVerifier = KeyVerifier(),
        onRegistered: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.onRegistered = onRegistered
        self.mainDomain = mainDomain.lowercased()
        self.credential = credential
        self.administration = administration
        self.registry = registry
        self.keyVerifier = keyVerifier
    }

    /// The admin API answers on the main domain, and on the edge's IP address (no domain can be an IP address,
    /// so such a request is for the edge itself: `hopgate domain --server https://203.0.113.7`).
    public func claims(host: String, path: String) -> Bool {
        (host == mainDomain || Self.isIPAddress(host))
            && (path == Self.basePath || path.hasPrefix(Self.basePath + "/"))
    }

    static func isIPAddress(_ host: String) -> Bool {
        if host.hasPrefix("[") { return true }
        var v4 = in_addr()
        return inet_pton(AF_INET, host, &v4) == 1
    }

    public func respond(to head: HTTPRequestHead, body: ByteBuffer, peer: String) async -> LocalResponse {
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let limiterKey = "admin:" + peer
        if failures.withLock({ $0.isLimited(limiterKey, now: now) }) {
            return .error(.tooManyRequests, code: "rate_limited", "Too many failed admin logins; wait a minute.")
        }
        guard await isAuthorized(head.headers) else {
            failures.withLock { $0.recordFailure(limiterKey, now: now) }
            var response = LocalResponse.error(.unauthorized, code: "unauthorized", "A valid admin key is required.")
            response.headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"hopgate admin\"")
            return response
        }
        let path = String(HTTPProxyHandler.originForm(head.uri).prefix { $0 != "?" })
        let route = path.dropFirst(Self.basePath.count)
        do {
            switch (head.method, route) {
            case (.POST, "/domains/register"):
                return try await register(try Self.jsonObject(head, body))
            case (.POST, "/domains/unregister"):
                return try await unregister(try Self.jsonObject(head, body))
            case (.GET, "/domains"):
                return try await list()
            case (.GET, _) where route.hasPrefix("/domains/"):
                return try await status(String(route.dropFirst("/domains/".count)))
            case (_, "/domains/register"), (_, "/domains/unregister"), (_, "/domains"):
                return .error(
                    .methodNotAllowed,
                    code: "method_not_allowed",
                    "\(head.method.rawValue) is not allowed here."
                )
            default:
                return .error(.notFound, code: "not_found", "No admin endpoint at \(path).")
            }
        } catch let error as HopGateError {
            return Self.response(for: error)
        } catch let response as LocalResponseError {
            return response.response
        } catch {
            return .error(.internalServerError, code: "internal", "\(error)")
        }
    }

    // MARK: - Endpoints

    private func register(_ object: [String: JSONMember]) async throws -> LocalResponse {
        let domain = try DomainName(validating: try Self.string(object, "domain"))
        let memo = try Memo(validating: object["memo"]?.string ?? "")
        let registered = try await administration.register(domain, memo: memo)
        onRegistered(domain.value)
        return .json(
            .created,
            Self.fields(registered.info, ["client_api_key": JSONBody.quote(registered.clientAPIKey.secret)])
        )
    }

    private func unregister(_ object: [String: JSONMember]) async throws -> LocalResponse {
        let domain = try DomainName(validating: try Self.string(object, "domain"))
        let key = try Self.string(object, "client_api_key")
        let info = try await administration.unregister(domain, authorization: .clientAPIKey(key))
        let ended = registry.closeSessions(for: info.domain, reason: "the domain was unregistered")
        return .json(.ok, Self.fields(info, ["unregistered": "true", "sessions_closed": "\(ended)"]))
    }

    /// A domain as a JSON object, with `extra` members (already JSON) after its own.
    static func fields(_ info: DomainInfo, _ extra: KeyValuePairs<String, String> = [:]) -> String {
        var members = [
            "\"id\":\(JSONBody.quote(info.id.uuidString.lowercased()))",
            "\"domain\":\(JSONBody.quote(info.domain))",
            "\"memo\":\(JSONBody.quote(info.memo))",
            "\"created_at\":\(JSONBody.quote(Timestamp.format(info.createdAt)))",
            "\"updated_at\":\(JSONBody.quote(Timestamp.format(info.updatedAt)))",
        ]
        for (name, value) in extra { members.append("\(JSONBody.quote(name)):\(value)") }
        return "{" + members.joined(separator: ",") + "}\n"
    }

    private func list() async throws -> LocalResponse {
        let domains = try await administration.list()
        let items = domains.map { info in
            "{\"id\":\(JSONBody.quote(info.id.uuidString.lowercased())),\"domain\":\(JSONBody.quote(info.domain)),"
                + "\"memo\":\(JSONBody.quote(info.memo)),\"created_at\":\(JSONBody.quote(Timestamp.format(info.createdAt))),"
                + "\"updated_at\":\(JSONBody.quote(Timestamp.format(info.updatedAt))),"
                + "\"sessions\":\(registry.sessions(for: info.domain).count)}"
        }
        return .json(.ok, "{\"domains\":[\(items.joined(separator: ","))]}\n")
    }

    private func status(_ name: String) async throws -> LocalResponse {
        let domain = try DomainName(validating: percentDecoded(name) ?? name)
        guard let info = try await administration.list().first(where: { $0.domain == domain.value }) else {
            throw HopGateError(.notFound, "\(domain.value) is not registered")
        }
        var sessions: [String] = []
        for session in registry.sessions(for: info.domain) {
            let status = try? await session.status().get()
            let rtt = status?.roundTripMilliseconds.map { "\($0)" } ?? "null"
            sessions.append(
                "{\"id\":\(session.id),\"peer\":\(JSONBody.quote(session.peer.hostAndPort)),"
                    + "\"paths\":[\(session.pathPrefixes.map(JSONBody.quote).joined(separator: ","))],"
                    + "\"client_version\":\(JSONBody.quote(session.clientVersion)),"
                    + "\"connected_at\":\(JSONBody.quote(Timestamp.format(session.connectedAt))),"
                    + "\"open_exchanges\":\(status?.openExchanges ?? 0),\"rtt_ms\":\(rtt)}"
            )
        }
        return .json(
            .ok,
            Self.fields(
                info,
                ["connected": "\(!sessions.isEmpty)", "sessions": "[\(sessions.joined(separator: ","))]"]
            )
        )
    }

    // MARK: - Authorization

    private func isAuthorized(_ headers: HTTPHeaders) async -> Bool {
        let values = headers["authorization"]
        guard values.count == 1, let value = values.first, value.lowercased().hasPrefix("bearer ") else {
            return false
        }
        let presented = String(value.dropFirst("bearer ".count)).trimmingWhitespace()
        switch credential {
        case .plain(let key):
            return Self.constantTimeEquals(presented, key)
        case .hash(let encoded):
            return (try? await keyVerifier.verify(presented, against: encoded)) ?? false
        }
    }

    /// Compares without stopping at the first difference, so timing reveals nothing about the key.
    static func constantTimeEquals(_ left: String, _ right: String) -> Bool {
        let a = Array(left.utf8)
        let b = Array(right.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }

    // MARK: - JSON in

    private struct LocalResponseError: Error {
        let response: LocalResponse
    }

    private static func jsonObject(_ head: HTTPRequestHead, _ body: ByteBuffer) throws -> [String: JSONMember] {
        let type = head.headers["content-type"].first?.lowercased() ?? ""
        guard type.hasPrefix("application/json") else {
            throw LocalResponseError(
                response: .error(.unsupportedMediaType, code: "unsupported_media_type", "Send application/json.")
            )
        }
        guard let object = try? JSONDecoder().decode([String: JSONMember].self, from: Data(body.readableBytesView))
        else {
            throw LocalResponseError(
                response: .error(.badRequest, code: "invalid_json", "The body is not a JSON object.")
            )
        }
        return object
    }

    private static func string(_ object: [String: JSONMember], _ key: String) throws -> String {
        guard let value = object[key]?.string else {
            throw HopGateError(.invalidInput, "the JSON body needs a string \"\(key)\"")
        }
        return value
    }

    /// The one place a `HopGateError` becomes an HTTP status.
    static func response(for error: HopGateError) -> LocalResponse {
        let status: HTTPResponseStatus
        switch error.code {
        case .invalidInput: status = .badRequest
        case .notFound: status = .notFound
        case .alreadyExists: status = .conflict
        case .permissionDenied: status = .forbidden
        case .databaseUnavailable, .temporaryFailure: status = .serviceUnavailable
        default: status = .internalServerError
        }
        return .error(status, code: "\(error.code)", error.message)
    }
}
