import ArgumentParser
import HopGateCore

/// `hopgate keygen`: a new random key, and optionally its Argon2id hash for configuration files.
struct KeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new random key (32 bytes, 64 hex characters).",
        discussion: """
            Use it as an admin key. With --hash, also print its Argon2id hash, so the edge can be configured with \
            the hash instead of the key itself.
            """
    )

    @Flag(help: "Also print the key's Argon2id encoded hash.")
    var hash = false

    @Flag(help: "Print {\"key\": ..., \"hash\": ...} as JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let key = APIKey.generate()
            let encodedHash = hash ? try KeyHasher().hash(key.secret) : nil
            if json {
                try printJSON(KeygenOutput(key: key.secret, hash: encodedHash))
            } else if let encodedHash {
                print("key:  \(key.secret)")
                print("hash: \(encodedHash)")
            } else {
                print(key.secret)
            }
        }
    }
}

private struct KeygenOutput: Encodable {
    let key: String
    let hash: String?
}
