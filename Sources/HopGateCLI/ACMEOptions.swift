import ArgumentParser
import FoundationEssentials
import HopGateACME
import HopGateHTTPClient
import HopGateStore

/// The `--acme-*` flags of `hopgate serve` and `hopgate cert renew`.
struct ACMEOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The ACME directory URL. Default: Let's Encrypt production. (env: HOPGATE_ACME_DIRECTORY)",
            valueName: "url"
        )
    )
    var acmeDirectory: String?

    @Flag(
        help:
            "Use Let's Encrypt's staging directory (untrusted certificates, generous limits). (env: HOPGATE_ACME_STAGING)"
    )
    var acmeStaging = false

    @Option(
        help: ArgumentHelp(
            "The account's contact email, for the CA's expiry notices. (env: HOPGATE_ACME_EMAIL)",
            valueName: "email"
        )
    )
    var acmeEmail: String?

    @Flag(help: "Agree to the CA's terms of service (required to get certificates). (env: HOPGATE_ACME_AGREE_TOS)")
    var acmeAgreeTos = false

    @Option(
        help: ArgumentHelp(
            "A PEM CA file to trust for the ACME server's own HTTPS (a test CA such as Pebble's). "
                + "(env: HOPGATE_ACME_CA_FILE)",
            valueName: "path"
        )
    )
    var acmeCaFile: String?

    @Option(
        help: ArgumentHelp(
            "How to prove control of a name: http-01 (the CA fetches http://NAME/.well-known/acme-challenge/ on "
                + "port 80) or tls-alpn-01 (the CA connects to port 443). Default: http-01. "
                + "(env: HOPGATE_ACME_CHALLENGE)",
            valueName: "http-01|tls-alpn-01"
        ),
        completion: .list(["http-01", "tls-alpn-01"])
    )
    var acmeChallenge: String?

    func settings() throws -> ACMESettings {
        let staging = enabled(acmeStaging, "HOPGATE_ACME_STAGING")
        let directory = setting(acmeDirectory, "HOPGATE_ACME_DIRECTORY")
        if staging && directory != nil {
            throw ValidationError("--acme-staging and --acme-directory exclude each other")
        }
        let url = directory ?? (staging ? ACMESettings.letsEncryptStaging : ACMESettings.letsEncryptProduction)
        guard let parsed = URL(string: url), parsed.scheme == "https" || parsed.scheme == "http", parsed.host != nil
        else { throw ValidationError("--acme-directory must be an http(s) URL, not '\(url)'") }
        let email = setting(acmeEmail, "HOPGATE_ACME_EMAIL")
        if let email, !(email.contains("@") && !email.contains(" ") && !email.hasPrefix("mailto:")) {
            throw ValidationError("--acme-email must be an address like ops@example.com, not '\(email)'")
        }
        let challengeText = setting(acmeChallenge, "HOPGATE_ACME_CHALLENGE") ?? "http-01"
        guard let challenge = ACMEChallengeRecord.Kind(rawValue: challengeText) else {
            throw ValidationError("--acme-challenge must be http-01 or tls-alpn-01, not '\(challengeText)'")
        }
        var trust = HTTPSRequest.Trust.system
        if let path = setting(acmeCaFile, "HOPGATE_ACME_CA_FILE") {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ValidationError("--acme-ca-file: cannot read \(path)")
            }
            trust = .caFile(path)
        }
        return ACMESettings(
            directoryURL: url,
            contactEmail: email,
            agreeToTerms: enabled(acmeAgreeTos, "HOPGATE_ACME_AGREE_TOS"),
            trust: trust,
            challenge: challenge
        )
    }
}
