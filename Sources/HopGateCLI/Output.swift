import FoundationEssentials
import HopGateCore

/// Prints `value` as JSON on standard output: keys sorted, so scripts and diffs see a stable shape.
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func printToStandardError(_ line: String) {
    writeAll(line + "\n", toDescriptor: 2)
}

/// A plain text table: a header row and columns padded to their widest cell, two spaces apart.
func formatTable(header: [String], rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
