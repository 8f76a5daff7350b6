import ArgumentParser
import HopGateStore

/// `hopgate domain ls`: the registered domains, never their keys.
struct DomainListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List registered domains (never their keys).",
        aliases: ["list"]
    )

    @OptionGroup var globals: GlobalOptions
    @OptionGroup var remote: RemoteAdminOptions

    @Flag(help: "Print a JSON array of {id, domain, memo, created_at, updated_at}.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let domains = try await globals.withDomainAdministration(remote: remote) { try await $0.list() }
            if json {
                try printJSON(domains)
            } else if domains.isEmpty {
                print("No domains registered. Add one with `hopgate domain add DOMAIN`.")
            } else {
                print(
                    formatTable(
                        header: ["DOMAIN", "MEMO", "CREATED", "UPDATED"],
                        rows: domains.map {
                            [$0.domain, $0.memo, displayTime($0.createdAt), displayTime($0.updatedAt)]
                        }
                    )
                )
            }
        }
    }
}
