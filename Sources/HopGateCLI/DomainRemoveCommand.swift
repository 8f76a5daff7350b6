import ArgumentParser
import FoundationEssentials
import Glibc
import HopGateCore
import HopGateStore

/// `hopgate domain rm`: unregisters a domain, proving its client API key or, as the operator, with --force.
struct DomainRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Unregister a domain.",
        discussion: """
            Like the admin API's unregister, this takes the domain's client API key: from --key, from \
            HOPGATE_CLIENT_API_KEY, typed at a prompt, or as one line on standard input. An operator with access \
            to the store may remove a domain without its key with --force.
            """,
        aliases: ["remove"]
    )

    @OptionGroup var globals: GlobalOptions
    @OptionGroup var remote: RemoteAdminOptions

    @Argument(help: ArgumentHelp("The domain to unregister.", valueName: "domain"))
    var domain: String

    @Option(help: ArgumentHelp("The domain's client API key. (env: HOPGATE_CLIENT_API_KEY)", valueName: "key"))
    var key: String?

    @Flag(help: "Remove the domain without its client API key.")
    var force = false

    @Flag(help: "Print the removed domain as JSON.")
    var json = false

    func validate() throws {
        if force && key != nil { throw ValidationError("give either --key or --force, not both") }
    }

    func run() async throws {
        try await reportingErrors {
            let name = try DomainName(validating: domain)
            let authorization: UnregisterAuthorization =
                force ? .force : .clientAPIKey(try APIKey(validating: try readKey(for: name)).secret)
            let removed = try await globals.withDomainAdministration(remote: remote) {
                try await $0.unregister(name, authorization: authorization)
            }
            if json {
                try printJSON(removed)
            } else {
                print("Unregistered \(removed.domain).")
            }
        }
    }

    private func readKey(for name: DomainName) throws -> String {
        if let key { return key }
        if let key = ProcessInfo.processInfo.environment["HOPGATE_CLIENT_API_KEY"], !key.isEmpty { return key }
        let typed: String?
        if isatty(STDIN_FILENO) == 1 {
            // getpass reads from the terminal without echo, so the key stays off the screen.
            typed = getpass("Client API key for \(name): ").map { String(cString: $0) }
        } else {
            typed = readLine(strippingNewline: true)
        }
        guard let typed, !typed.isEmpty else {
            throw ValidationError(
                "give the client API key of \(name) with --key, HOPGATE_CLIENT_API_KEY or standard input, "
                    + "or remove it without the key with --force"
            )
        }
        return typed
    }
}
