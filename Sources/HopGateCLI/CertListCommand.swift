import ArgumentParser
import FoundationEssentials
import HopGateCore
import HopGateStore

/// `hopgate cert ls`: every stored certificate, with how long it has left.
struct CertListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List stored certificates: domain, issuer, expiry, days left.",
        aliases: ["list"]
    )

    @OptionGroup var globals: GlobalOptions

    @Flag(help: "Print a JSON array of {domain, issuer, serial, not_before, not_after, days_left}.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let certificates = try await globals.withStore { store, _ in try await store.allCertificates() }
            if json {
                try printJSON(certificates.map(CertificateInfo.init))
            } else if certificates.isEmpty {
                print("No certificates stored. `hopgate serve` gets them from ACME; `hopgate cert renew` orders now.")
            } else {
                print(
                    formatTable(
                        header: ["DOMAIN", "ISSUER", "NOT AFTER", "DAYS LEFT"],
                        rows: certificates.map {
                            [$0.domain, $0.issuer, displayTime($0.notAfter), "\(CertificateInfo.daysLeft($0))"]
                        }
                    )
                )
            }
        }
    }
}

/// One certificate as the CLI prints it (never its key).
struct CertificateInfo: Encodable {
    let domain: String
    let issuer: String
    let serial: String
    let notBefore: String
    let notAfter: String
    let daysLeft: Int

    init(_ record: CertificateRecord) {
        domain = record.domain
        issuer = record.issuer
        serial = record.serialNumber
        notBefore = Timestamp.format(record.notBefore, fractionDigits: 0)
        notAfter = Timestamp.format(record.notAfter, fractionDigits: 0)
        daysLeft = Self.daysLeft(record)
    }

    static func daysLeft(_ record: CertificateRecord) -> Int {
        Int((record.notAfter.timeIntervalSinceNow / 86_400).rounded(.down))
    }

    enum CodingKeys: String, CodingKey {
        case domain, issuer, serial
        case notBefore = "not_before"
        case notAfter = "not_after"
        case daysLeft = "days_left"
    }
}
