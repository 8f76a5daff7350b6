import ArgumentParser
import HopGateCore

/// `hopgate`: the root command. It only groups the subcommands; each lives in its own file.
public struct HopGateCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hopgate",
        abstract: "A self-hosted reverse HTTP gateway: a public edge tunnels requests to clients in private networks.",
        discussion: """
            Domains are registered on the edge's store; each gets a client API key that `hopgate connect` presents.

            EXIT STATUS
            \(ExitStatus.table)
            """,
        version: HopGateVersion.current,
        groupedSubcommands: [
            CommandGroup(name: "Tunnel", subcommands: [ServeCommand.self, ConnectCommand.self]),
            CommandGroup(name: "Domains", subcommands: [DomainCommand.self, CertCommand.self]),
            CommandGroup(name: "Setup", subcommands: [MigrateCommand.self, KeygenCommand.self]),
        ]
    )

    public init() {}
}
