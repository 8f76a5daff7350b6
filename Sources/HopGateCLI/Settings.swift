import FoundationEssentials

/// One setting from its flag, else the first of its environment variables that is set (HopGate's own name first,
/// then the predecessor's aliases), else nil.
func setting(_ flag: String?, _ variables: String...) -> String? {
    if let flag { return flag }
    let environment = ProcessInfo.processInfo.environment
    for name in variables {
        if let value = environment[name], !value.isEmpty { return value }
    }
    return nil
}

/// A yes/no setting from a flag or an environment variable (1, true, yes).
func enabled(_ flag: Bool, _ variables: String...) -> Bool {
    if flag { return true }
    let environment = ProcessInfo.processInfo.environment
    return variables.contains { ["1", "true", "yes"].contains(environment[$0]?.lowercased() ?? "") }
}
