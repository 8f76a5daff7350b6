import ArgumentParser
import HopGateCore
import HopGateStore

/// `hopgate domain add`: registers a domain and prints its client API key, once.
struct DomainAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Register a domain and print its new client API key (shown only this once).",
        discussion: """
            The domain is a lowercase ASCII FQDN (a trailing dot is dropped); give internationalised names in their \
            xn-- form. The memo is one line of at most \(Memo.maximumLength) characters.
            """
    )

    @OptionGroup var globals: GlobalOptions
    @OptionGroup var remote: RemoteAdminOptions

    @Argument(help: ArgumentHelp("The domain name, for example app.example.com.", valueName: "domain"))
    var domain: String

    @Option(help: ArgumentHelp("A note for operators, shown by `domain ls`.", valueName: "text"))
    var memo: String = ""

    @Flag(help: "Print the new domain and its client_api_key as JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let name = try DomainName(validating: domain)
            let note = try Memo(validating: memo)
            let registered = try await globals.withDomainAdministration(remote: remote) {
                try await $0.register(name, memo: note)
            }
            if json {
                try printJSON(registered)
            } else {
                print("Registered \(registered.info.domain) (id \(registered.info.id.uuidString.lowercased())).")
                print("Client API key (shown only this once; `hopgate connect --key` needs it):")
                print(registered.clientAPIKey.secret)
            }
        }
    }
}
