import Foundation
import HopGateTestSupport
import Testing

/// A WebSocket through the edge and the tunnel: Python's `websockets` (Debian's python3-websockets) at both ends.
@Suite struct WebSocketEndToEndTests {
    static let server = """
        import asyncio, sys, websockets
        async def echo(socket, path=None):
            async for message in socket:
                await socket.send(message)
        async def main():
            async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None):
                print("READY", flush=True)
                await asyncio.Future()
        asyncio.run(main())
        """

    static let client = """
        import asyncio, os, ssl, sys, websockets
        async def main():
            context = ssl._create_unverified_context()
            uri = f"wss://app.localhost:{sys.argv[1]}/ws"
            async with websockets.connect(uri, ssl=context, host="127.0.0.1", port=int(sys.argv[1]),
                                          max_size=None) as socket:
                await socket.send("hello")
                assert await socket.recv() == "hello"
                blob = os.urandom(3 * 1024 * 1024)
                await socket.send(blob)
                assert await socket.recv() == blob, "the binary message changed"
                for i in range(200):
                    await socket.send(f"message {i}")
                for i in range(200):
                    assert await socket.recv() == f"message {i}"
            print("OK", flush=True)
        asyncio.run(main())
        """

    @Test(.timeLimit(.minutes(2)))
    func aWebSocketEchoesThroughTheTunnel() async throws {
        let edge = try await EdgeUnderTest()
        let directory = try makeTemporaryDirectory("hopgate-ws")
        try Data(Self.server.utf8).write(to: URL(fileURLWithPath: directory + "/server.py"))
        let port = try freeLoopbackPort()
        let server = try BackgroundProcess(
            "/usr/bin/python3",
            [directory + "/server.py", "\(port)"],
            environment: ["PATH": "/usr/bin:/bin"],
            name: "websocket server"
        )
        try await server.waitForOutput(containing: "READY")
        let key = try await edge.register("app.localhost")
        let client = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(port)"])
        let https = edge.https
        let result = try await offload {
            try runProcess("/usr/bin/python3", ["-c", Self.client, "\(https)"])
        }
        #expect(result.standardOutput.contains("OK"), "\(result.standardOutput)\(result.standardError)")
        #expect(result.status == 0)
        await client.stop()
        await server.stop()
        await edge.stop()
    }
}
