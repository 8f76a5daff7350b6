import FoundationEssentials

/// The JSON objects of RFC 8555 §7.1 that HopGate reads, with only the members it uses.
struct ACMEDirectory: Decodable, Sendable {
    struct Meta: Decodable, Sendable {
        var termsOfService: String?
    }

    var newNonce: String
    var newAccount: String
    var newOrder: String
    var meta: Meta?
}

struct ACMEIdentifier: Codable, Sendable, Equatable {
    var type: String
    var value: String

    static func dns(_ name: String) -> ACMEIdentifier { ACMEIdentifier(type: "dns", value: name) }
}

/// The payloads HopGate sends (RFC 8555 §7.3, §7.4); a nil member is left out.
struct ACMENewAccountRequest: Encodable {
    var termsOfServiceAgreed: Bool
    var contact: [String]?
}

struct ACMENewOrderRequest: Encodable {
    var identifiers: [ACMEIdentifier]
}

struct ACMEFinalizeRequest: Encodable {
    var csr: String
}

struct ACMEOrder: Decodable, Sendable {
    /// pending, ready, processing, valid or invalid.
    var status: String
    var identifiers: [ACMEIdentifier]
    var authorizations: [String]
    var finalize: String
    var certificate: String?
    var error: ACMEProblemDocument?
}

struct ACMEAuthorization: Decodable, Sendable {
    var identifier: ACMEIdentifier
    /// pending, valid, invalid, deactivated, expired or revoked.
    var status: String
    var challenges: [ACMEChallenge]
}

struct ACMEChallenge: Decodable, Sendable {
    var type: String
    var url: String
    var status: String
    var token: String?
    var error: ACMEProblemDocument?
}

/// An RFC 7807 problem document, as ACME servers send them (RFC 8555 §6.7).
struct ACMEProblemDocument: Decodable, Sendable, CustomStringConvertible {
    var type: String?
    var detail: String?
    var status: Int?
    var subproblems: [ACMEProblemDocument]?
    var identifier: ACMEIdentifier?

    /// The type without its `urn:ietf:params:acme:error:` prefix: `badNonce`, `rateLimited`, ...
    var shortType: String {
        guard let type else { return "unknown" }
        return type.hasPrefix(Self.prefix) ? String(type.dropFirst(Self.prefix.count)) : type
    }

    static let prefix = "urn:ietf:params:acme:error:"

    var description: String {
        var text = "\(detail ?? "no detail") (\(shortType)"
        if let status { text += ", HTTP \(status)" }
        text += ")"
        for problem in subproblems ?? [] {
            text += "; \(problem.identifier?.value ?? "?"): \(problem.detail ?? "no detail") (\(problem.shortType))"
        }
        return text
    }
}

/// Why an ACME operation failed, said so that an operator knows what to do.
public struct ACMEError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The problem type's short name (`rateLimited`, `unauthorized`, ...) when the CA sent a problem document.
    public let problemType: String?
    /// How long the CA asked us to wait (Retry-After), if it did.
    public let retryAfter: Duration?

    init(_ message: String, problemType: String? = nil, retryAfter: Duration? = nil) {
        self.message = message
        self.problemType = problemType
        self.retryAfter = retryAfter
    }

    public var description: String { message }
}
