import HopGateCLI

@main
struct HopGate {
    static func main() async {
        await HopGateCommand.main()
    }
}
