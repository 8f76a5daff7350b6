/// How log records are written: one JSON object a line for log shippers, or text for a person at a terminal.
public enum LogFormat: String, CaseIterable, Sendable {
    case text
    case json
}
