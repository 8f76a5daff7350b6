import FoundationEssentials
import Glibc
import HopGateLossyRelay
import NIOCore

/// `hopgate-lossy-relay TARGET_PORT LOSS [SEED]`: a UDP relay on 127.0.0.1 that drops, duplicates and reorders
/// datagrams on their way to 127.0.0.1:TARGET_PORT (loss LOSS, duplication LOSS/5, reordering LOSS). Prints
/// `PORT n` once it listens and runs until killed. For the benchmark and for trying a client on a bad link.
@main
enum LossyRelayTool {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard arguments.count >= 2, let target = Int(arguments.first!), let loss = Double(arguments.dropFirst().first!),
            (0...1).contains(loss)
        else {
            writeLine("usage: hopgate-lossy-relay TARGET_PORT LOSS [SEED]", to: 2)
            exit(64)
        }
        let seed = arguments.count > 2 ? UInt64(arguments.dropFirst(2).first!) ?? 1 : 1
        let relay = try await LossyRelay.start(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: target),
            configuration: LossyRelayConfiguration(
                lossRate: loss,
                duplicationRate: loss / 5,
                reorderRate: loss,
                seed: seed
            )
        )
        writeLine("PORT \(relay.port)", to: 1)
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// Unbuffered: the test that starts this tool reads the PORT line from a pipe.
private func writeLine(_ line: String, to descriptor: Int32) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}
