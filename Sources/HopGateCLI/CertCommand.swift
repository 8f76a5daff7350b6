import ArgumentParser

/// `hopgate cert`: the certificates the edge serves.
struct CertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "List and renew the edge's certificates (kept in the store; a running edge picks changes up).",
        subcommands: [CertListCommand.self, CertRenewCommand.self]
    )
}
