import ArgumentParser
import FoundationEssentials
import HopGateCore
import HopGateStore

/// `hopgate domain`: register, unregister and list the domains clients may serve.
struct DomainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domain",
        abstract: "Register, unregister and list domains.",
        subcommands: [DomainAddCommand.self, DomainRemoveCommand.self, DomainListCommand.self]
    )
}

extension GlobalOptions {
    /// Runs `body` with domain administration: through the edge `remote` names, or on the store these options name.
    func withDomainAdministration<Result>(
        remote: RemoteAdminOptions,
        _ body: (any DomainAdministration) async throws -> Result
    ) async throws -> Result {
        if let administration = try remote.administration() { return try await body(administration) }
        return try await withStore { store, _ in try await body(StoreDomainAdministration(store: store)) }
    }
}

/// A domain as shown in text output: UTC to the second, which is what a person compares.
func displayTime(_ date: Date) -> String {
    Timestamp.format(date, fractionDigits: 0)
}
