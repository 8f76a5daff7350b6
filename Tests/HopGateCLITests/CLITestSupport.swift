import Foundation
import HopGateTestSupport
import Testing

extension TestDatabase {
    /// A `--database` URL for a fresh database, migrated as an operator would have done (SQLite migrates itself).
    func freshMigratedURL() async throws -> String {
        let url = try await freshURL()
        if self == .postgres {
            let migrated = try await hopgate(["migrate", "--database", url])
            guard migrated.status == 0 else { throw ServerError("migrate failed: \(migrated.standardError)") }
        }
        return url
    }
}

/// Runs the built binary.
func hopgate(
    _ arguments: [String],
    environment: [String: String] = [:],
    input: String? = nil
) async throws
    -> ProcessOutput
{
    try await HopGateBinary.run(arguments, environment: environment, input: input)
}

/// Parses a command's JSON output.
func parseJSON<T>(_ output: ProcessOutput, as type: T.Type = [String: Any].self) throws -> T {
    let object = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))
    return try #require(object as? T, "unexpected JSON: \(output.standardOutput)")
}
