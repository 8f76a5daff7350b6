import FoundationEssentials
import Logging
import Synchronization

/// Writes each log record as one line to standard error, as JSON or as text.
///
/// JSON lines carry `ts`, `level`, `msg`, `component` (the logger's label) and the metadata as fields, which is
/// what Loki, Vector or `jq` expect. Standard error keeps standard output free for a command's result, so
/// `hopgate domain add x --json | jq` works with logging on.
public struct HopGateLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: LogFormat
    private let sink: LogSink

    public init(label: String, level: Logger.Level, format: LogFormat, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Timestamp.format(Date(), fractionDigits: 3)
        let line: String
        switch format {
        case .json:
            var fields = [
                "\"ts\":\(JSONString.quoted(time))", "\"level\":\(JSONString.quoted(event.level.rawValue))",
                "\"msg\":\(JSONString.quoted(event.message.description))",
                "\"component\":\(JSONString.quoted(label))",
            ]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                fields.append("\(JSONString.quoted(key)):\(Self.json(value))")
            }
            line = "{" + fields.joined(separator: ",") + "}\n"
        case .text:
            var text = "\(time) \(event.level.rawValue) [\(label)] \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
            line = text + "\n"
        }
        sink.write(line)
    }

    private static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return JSONString.quoted(text)
        case .stringConvertible(let item): return JSONString.quoted(item.description)
        case .array(let items): return "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let entries):
            let fields = entries.sorted(by: { $0.key < $1.key }).map {
                "\(JSONString.quoted($0.key)):\(json($0.value))"
            }
            return "{" + fields.joined(separator: ",") + "}"
        }
    }
}

/// Where log lines go. Lines are written whole under a lock, so lines from several threads never interleave.
public final class LogSink: Sendable {
    private let output: @Sendable (String) -> Void
    private let lock = Mutex(())

    public init(_ output: @escaping @Sendable (String) -> Void) { self.output = output }

    public static let standardError = LogSink { line in writeAll(line, toDescriptor: 2) }

    func write(_ line: String) { lock.withLock { _ in output(line) } }
}
