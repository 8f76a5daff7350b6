import Foundation
import HopGateTestSupport
import Testing

/// A database for one CLI test, on either store.
enum CLIDatabase: String, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// A `--database` URL for a fresh database, migrated for PostgreSQL as an operator would have done.
    func freshURL() throws -> String {
        switch self {
        case .sqlite:
            return "sqlite:" + (try makeTemporaryDirectory("hopgate-cli")) + "/hopgate.db"
        case .postgres:
            let url = try PostgresServer.sharedURL()
            let migrated = try hopgate(["migrate", "--database", url])
            guard migrated.status == 0 else { throw ServerError("migrate failed: \(migrated.standardError)") }
            return url
        }
    }
}

/// Runs the built binary.
func hopgate(_ arguments: [String], environment: [String: String] = [:], input: String? = nil) throws -> ProcessOutput {
    try HopGateBinary.run(arguments, environment: environment, input: input)
}

/// Parses a command's JSON output.
func parseJSON<T>(_ output: ProcessOutput, as type: T.Type = [String: Any].self) throws -> T {
    let object = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))
    return try #require(object as? T, "unexpected JSON: \(output.standardOutput)")
}
