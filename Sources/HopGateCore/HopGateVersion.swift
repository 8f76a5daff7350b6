/// HopGate's version, printed by `hopgate --version` and sent in the tunnel handshake.
public enum HopGateVersion {
    public static let current = "0.1.0"
}
