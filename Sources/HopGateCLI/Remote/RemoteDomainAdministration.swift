import ArgumentParser
import FoundationEssentials
import HopGateCore
import HopGateHTTPClient
import HopGateStore
import NIOHTTP1

/// Options of `hopgate domain` that point it at a running edge's admin API instead of the store.
struct RemoteAdminOptions: ParsableArguments {
    @Option(
        name: .customLong("server"),
        help: ArgumentHelp(
            "Administer the domains of the edge at this URL (https://edge.example.com) through its admin API "
                + "instead of the store. (env: HOPGATE_ADMIN_SERVER)",
            valueName: "url"
        )
    )
    var server: String?

    @Option(help: ArgumentHelp("The edge's admin key, with --server. (env: HOPGATE_ADMIN_KEY)", valueName: "key"))
    var adminKey: String?

    @Option(
        name: .customLong("admin-ca-file"),
        help: ArgumentHelp(
            "Trust only the CAs in this PEM file for --server. (env: HOPGATE_ADMIN_CA_FILE)",
            valueName: "path"
        )
    )
    var caFile: String?

    @Flag(
        name: .customLong("admin-insecure"),
        help: "Do not verify the certificate of --server (a dev-mode edge). (env: HOPGATE_ADMIN_INSECURE)"
    )
    var insecure = false

    /// The remote administration these options name, or nil for the local store.
    func administration() throws -> RemoteDomainAdministration? {
        guard let text = setting(server, "HOPGATE_ADMIN_SERVER") else { return nil }
        guard let url = URL(string: text), url.scheme == "https" || url.scheme == "http", url.host != nil else {
            throw ValidationError("--server must be a URL such as https://edge.example.com, not '\(text)'")
        }
        guard let key = setting(adminKey, "HOPGATE_ADMIN_KEY") else {
            throw ValidationError("--server needs the edge's admin key: --admin-key KEY (or HOPGATE_ADMIN_KEY)")
        }
        let trust: HTTPSRequest.Trust
        if let path = setting(caFile, "HOPGATE_ADMIN_CA_FILE") {
            trust = .caFile(path)
        } else if enabled(insecure, "HOPGATE_ADMIN_INSECURE") {
            trust = .insecure
        } else {
            trust = .system
        }
        return RemoteDomainAdministration(base: url, adminKey: key, trust: trust)
    }
}

/// Domain administration through a running edge's admin API: the same operations, answers and error codes as
/// on the store, so `hopgate domain --server` prints exactly what local mode prints.
struct RemoteDomainAdministration: DomainAdministration {
    let base: URL
    let adminKey: String
    let trust: HTTPSRequest.Trust

    func register(_ domain: DomainName, memo: Memo) async throws -> RegisteredDomain {
        let answer = try await call(.POST, "/domains/register", ["domain": domain.value, "memo": memo.value])
        let info = try decode(DomainInfo.self, from: answer)
        guard let key = try decode(KeyAnswer.self, from: answer).clientAPIKey else {
            throw HopGateError(.internalError, "the edge's answer has no client_api_key")
        }
        return RegisteredDomain(info: info, clientAPIKey: try APIKey(validating: key))
    }

    func unregister(_ domain: DomainName, authorization: UnregisterAuthorization) async throws -> DomainInfo {
        guard case .clientAPIKey(let key) = authorization else {
            throw HopGateError(.invalidInput, "--force works on the store only; give the domain's key with --server")
        }
        let answer = try await call(.POST, "/domains/unregister", ["domain": domain.value, "client_api_key": key])
        return try decode(DomainInfo.self, from: answer)
    }

    func list() async throws -> [DomainInfo] {
        guard let items = try decode(ListAnswer.self, from: try await call(.GET, "/domains", nil)).domains else {
            throw HopGateError(.internalError, "the edge's answer has no domains list")
        }
        return items
    }

    /// The members of the edge's answers read here besides a `DomainInfo`.
    private struct KeyAnswer: Decodable {
        var clientAPIKey: String?

        enum CodingKeys: String, CodingKey {
            case clientAPIKey = "client_api_key"
        }
    }

    private struct ListAnswer: Decodable {
        var domains: [DomainInfo]?
    }

    private struct ErrorAnswer: Decodable {
        struct Body: Decodable {
            var code: String?
            var message: String?
        }

        var error: Body?
    }

    /// Sends the request; returns the body of a 2xx answer, throws the edge's error for any other.
    private func call(_ method: HTTPMethod, _ path: String, _ body: [String: String]?) async throws -> Data {
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(adminKey)")
        headers.add(name: "Accept", value: "application/json")
        var data: Data?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            data = try JSONEncoder().encode(body)
        }
        let url = base.appendingPathComponent("api/v1/admin" + path)
        let response: HTTPSRequest.Response
        do {
            response = try await HTTPSRequest(url: url, method: method, headers: headers, body: data, trust: trust)
                .send()
        } catch {
            throw HopGateError(.temporaryFailure, "cannot reach the edge at \(base.absoluteString): \(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            let error = (try? JSONDecoder().decode(ErrorAnswer.self, from: response.body))?.error
            let message = error?.message ?? "the edge answered \(response.status.code)"
            throw HopGateError(Self.code(status: response.status, name: error?.code), message)
        }
        return response.body
    }

    /// The store's error code behind an admin API error, so exit codes match local mode.
    static func code(status: HTTPResponseStatus, name: String?) -> HopGateError.Code {
        switch (status, name) {
        case (.unauthorized, _), (.forbidden, _): .permissionDenied
        case (.notFound, _): .notFound
        case (.conflict, _): .alreadyExists
        case (.badRequest, _): .invalidInput
        case (.serviceUnavailable, "database_unavailable"): .databaseUnavailable
        case (.serviceUnavailable, _), (.tooManyRequests, _): .temporaryFailure
        default: .internalError
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, from answer: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: answer)
        } catch {
            throw HopGateError(.internalError, "the edge's answer does not parse: \(error)")
        }
    }
}
