import FoundationEssentials
import HopGateCore

/// A registered domain as shown to an operator: never its key, never its key's hash.
public struct DomainInfo: Sendable, Equatable, Codable {
    public let id: UUID
    public let domain: String
    public let memo: String
    public let createdAt: Date
    public let updatedAt: Date

    public init(_ record: DomainRecord) {
        self.id = record.id
        self.domain = record.domain.value
        self.memo = record.memo
        self.createdAt = record.createdAt
        self.updatedAt = record.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, domain, memo
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    // MARK: - Codable (timestamps as RFC 3339 text, ids lowercase: the admin API's JSON shape)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decode(UUID.self, forKey: .id)
        self.domain = try container.decode(String.self, forKey: .domain)
        self.memo = try container.decode(String.self, forKey: .memo)
        self.createdAt = try Self.decodeTimestamp(container, .createdAt)
        self.updatedAt = try Self.decodeTimestamp(container, .updatedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(domain, forKey: .domain)
        try container.encode(memo, forKey: .memo)
        try container.encode(Timestamp.format(createdAt), forKey: .createdAt)
        try container.encode(Timestamp.format(updatedAt), forKey: .updatedAt)
    }

    private static func decodeTimestamp(
        _ container: KeyedDecodingContainer<CodingKeys>,
        _ key: CodingKeys
    ) throws -> Date {
        let text = try container.decode(String.self, forKey: key)
        guard let date = Timestamp.parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key,
                in: container,
                debugDescription: "not a timestamp: \(text)"
            )
        }
        return date
    }
}

/// A newly registered domain with its client API key, which is shown this once and never again.
public struct RegisteredDomain: Sendable, Equatable {
    public let info: DomainInfo
    public let clientAPIKey: APIKey

    public init(info: DomainInfo, clientAPIKey: APIKey) {
        self.info = info
        self.clientAPIKey = clientAPIKey
    }
}

/// How a domain to unregister is authorised.
public enum UnregisterAuthorization: Sendable {
    /// The caller proves it holds the domain's client API key (the seed's unregister {domain, client_api_key}).
    case clientAPIKey(String)
    /// The operator removes it without the key (`hopgate domain rm --force`, on the store directly).
    case force
}

/// Domain administration: the one set of operations that `hopgate domain` runs on a local store, that the
/// admin API serves, and that `hopgate domain --server` will call remotely. Each implementation gives the same
/// results and the same `HopGateError` codes.
public protocol DomainAdministration: Sendable {
    /// Registers `domain` with a new client API key.
    func register(_ domain: DomainName, memo: Memo) async throws -> RegisteredDomain
    /// Unregisters `domain`; `.notFound` if it is not registered, `.permissionDenied` if the key is wrong.
    func unregister(_ domain: DomainName, authorization: UnregisterAuthorization) async throws -> DomainInfo
    /// Every registered domain, ordered by name.
    func list() async throws -> [DomainInfo]
}

extension RegisteredDomain: Encodable {
    private enum KeyCodingKeys: String, CodingKey {
        case clientAPIKey = "client_api_key"
    }

    /// The domain's fields plus `client_api_key`, in one object: the admin API's register response.
    public func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: KeyCodingKeys.self)
        try container.encode(clientAPIKey.secret, forKey: .clientAPIKey)
    }
}
