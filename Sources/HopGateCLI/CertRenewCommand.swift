import ArgumentParser
import FoundationEssentials
import HopGateACME
import HopGateCore
import HopGateStore

/// `hopgate cert renew`: orders certificates now, on the store. The running edge answers the CA's validation from
/// the store and serves the result at its next refresh.
struct CertRenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew certificates that are due (or --force), through the edge that shares this store.",
        discussion: """
            Runs the ACME order here and writes the challenge answer and the new certificate to the store; the edge \
            on the same store (it must be running, reachable by the CA on its HTTP or HTTPS port) answers the \
            validation and serves the new certificate within its --cert-refresh-interval, without a restart. \
            Without --domain it renews every stored certificate and registered domain that is due: missing, or \
            with less than a third of its lifetime left.
            """
    )

    @OptionGroup var globals: GlobalOptions
    @OptionGroup var acme: ACMEOptions

    @Option(help: ArgumentHelp("Renew only this domain.", valueName: "domain"))
    var domain: String?

    @Flag(help: "Renew even when the certificate is not due.")
    var force = false

    func run() async throws {
        try await reportingErrors {
            let settings = try acme.settings()
            guard settings.agreeToTerms else {
                throw ValidationError(
                    "read the terms of the CA at \(settings.directoryURL) and add --acme-agree-tos to order certificates"
                )
            }
            let only = try domain.map { name in
                do { return try DomainName(validating: name).value } catch {
                    throw ValidationError("--domain: \(error)")
                }
            }
            let logger = try globals.makeLogger(label: "hopgate.acme")
            let failures = try await globals.withStore { store, _ in
                let stored = Dictionary(
                    (try await store.allCertificates()).map { ($0.domain, $0) },
                    uniquingKeysWith: { first, _ in first }
                )
                let names =
                    if let only { [only] } else {
                        Set(stored.keys).union(try await store.allDomains().map(\.domain.value)).sorted()
                    }
                let issuer = CertificateIssuer(settings: settings, store: store, logger: logger)
                var failures = 0
                for name in names {
                    if !force, let record = stored[name], !CertificateManager.needsCertificate(record, now: Date()) {
                        print("\(name): not due (\(CertificateInfo.daysLeft(record)) days left); --force renews anyway")
                        continue
                    }
                    do {
                        let record = try await issuer.issue(for: name)
                        print(
                            "\(name): renewed, serial \(record.serialNumber), valid until "
                                + displayTime(record.notAfter)
                        )
                    } catch {
                        failures += 1
                        printToStandardError("error: \(name): \(error)")
                    }
                }
                if names.isEmpty { print("No certificates or domains to renew.") }
                return failures
            }
            if failures > 0 { throw HopGateError(.temporaryFailure, "\(failures) certificate(s) not renewed") }
        }
    }
}
