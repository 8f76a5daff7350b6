import HopGateHTTPClient
import HopGateStore

/// Which CA to ask and how: the `--acme-*` flags.
public struct ACMESettings: Sendable {
    public static let letsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
    public static let letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"

    public var directoryURL: String
    /// The account's contact, for the CA's expiry warnings.
    public var contactEmail: String?
    /// Whether the operator agreed to the CA's terms of service; newAccount fails without.
    public var agreeToTerms: Bool
    /// Which certificates the CA's own HTTPS listener may chain to.
    public var trust: HTTPSRequest.Trust
    /// How the edge proves control of a name.
    public var challenge: ACMEChallengeRecord.Kind
    /// How long one order may take, from newOrder to the downloaded chain.
    public var orderTimeout: Duration = .seconds(180)

    public init(
        directoryURL: String = Self.letsEncryptProduction,
        contactEmail: String? = nil,
        agreeToTerms: Bool = false,
        trust: HTTPSRequest.Trust = .system,
        challenge: ACMEChallengeRecord.Kind = .http01
    ) {
        self.directoryURL = directoryURL
        self.contactEmail = contactEmail
        self.agreeToTerms = agreeToTerms
        self.trust = trust
        self.challenge = challenge
    }
}
