import Foundation
import HopGateTestSupport
import Testing

/// The admin API, the client's stops and restarts, and graceful shutdown, with the real binary.
@Suite(.serialized) struct AdminAndLifecycleEndToEndTests {
    private func admin(
        _ edge: EdgeUnderTest,
        _ method: String,
        _ path: String,
        body: String? = nil,
        key: String? = EdgeUnderTest.adminKey
    ) async throws -> EdgeUnderTest.CurlResult {
        var arguments = ["-X", method]
        if let key { arguments += ["-H", "Authorization: Bearer \(key)"] }
        if let body { arguments += ["-H", "Content-Type: application/json", "--data", body] }
        return try await edge.curl(
            arguments + [edge.url("edge.localhost", "/api/v1/admin" + path)],
            host: "edge.localhost"
        )
    }

    @Test(.timeLimit(.minutes(2)))
    func theAdminAPIRegistersListsAndUnregistersAndEndsSessions() async throws {
        let edge = try await EdgeUnderTest()
        let missing = try await admin(edge, "GET", "/domains", key: nil)
        #expect(missing.status == 401)
        let wrong = try await admin(edge, "GET", "/domains", key: String(repeating: "00", count: 32))
        #expect(wrong.status == 401)

        let registered = try await admin(
            edge,
            "POST",
            "/domains/register",
            body: #"{"domain":"api.localhost","memo":"m"}"#
        )
        #expect(registered.status == 201)
        let object = try JSONSerialization.jsonObject(with: Data(registered.body.utf8)) as? [String: Any]
        let key = try #require(object?["client_api_key"] as? String)
        #expect(key.count == 64)
        #expect(object?["domain"] as? String == "api.localhost")

        let duplicate = try await admin(edge, "POST", "/domains/register", body: #"{"domain":"api.localhost"}"#)
        #expect(duplicate.status == 409)
        let badJSON = try await admin(edge, "POST", "/domains/register", body: "{nope")
        #expect(badJSON.status == 400)
        let badDomain = try await admin(edge, "POST", "/domains/register", body: #"{"domain":"no spaces.x"}"#)
        #expect(badDomain.status == 400)
        #expect(badDomain.body.contains("\"code\":\"invalid_input\""))
        let numberDomain = try await admin(edge, "POST", "/domains/register", body: #"{"domain":7,"memo":{}}"#)
        #expect(numberDomain.status == 400)
        #expect(numberDomain.body.contains(#"needs a string \"domain\""#), "\(numberDomain.body)")
        let array = try await admin(edge, "POST", "/domains/register", body: #"["api.localhost"]"#)
        #expect(array.status == 400)
        #expect(array.body.contains("\"code\":\"invalid_json\""), "\(array.body)")
        let unknown = try await admin(edge, "GET", "/domains/other.localhost")
        #expect(unknown.status == 404)

        let service = try await LocalService(name: "api")
        let client = try await edge.connect(domain: "api.localhost", key: key, arguments: ["--to", "\(service.port)"])
        let list = try await admin(edge, "GET", "/domains")
        #expect(list.status == 200)
        #expect(list.body.contains("\"domain\":\"api.localhost\""))
        let status = try await admin(edge, "GET", "/domains/api.localhost")
        #expect(status.body.contains("\"connected\":true"), "\(status.body)")
        let escaped = try await admin(edge, "GET", "/domains/api%2Elocalhost")
        #expect(escaped.body.contains("\"connected\":true"), "\(escaped.body)")

        let wrongKey = try await admin(
            edge,
            "POST",
            "/domains/unregister",
            body: #"{"domain":"api.localhost","client_api_key":"\#(String(repeating: "11", count: 32))"}"#
        )
        #expect(wrongKey.status == 403)
        let started = ContinuousClock.now
        let unregistered = try await admin(
            edge,
            "POST",
            "/domains/unregister",
            body: #"{"domain":"api.localhost","client_api_key":"\#(key)"}"#
        )
        #expect(unregistered.status == 200)
        // The client hears close_notify at once, tries again, and stops for good: the domain is gone.
        let exit = try await client.waitForExit(timeout: .seconds(10))
        #expect(exit == 66, "\(client.standardError)")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(3), "the client took \(elapsed) to notice")
        #expect(client.standardError.contains("reconnecting"))
        let after = try await edge.curl([edge.url("api.localhost", "/")], host: "api.localhost")
        #expect(after.status == 502)
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func domainCommandsWorkRemotelyThroughTheAdminAPIAndPrintWhatLocalModePrints() async throws {
        let edge = try await EdgeUnderTest()
        let remote = [
            "--server", "https://127.0.0.1:\(edge.https)", "--admin-key", EdgeUnderTest.adminKey, "--admin-insecure",
        ]
        let added = try await HopGateBinary.run(["domain", "add", "remote.localhost", "--memo", "via API"] + remote)
        #expect(added.status == 0, "\(added.standardError)")
        #expect(added.standardOutput.hasPrefix("Registered remote.localhost (id "))
        let key = try #require(added.standardOutput.split(separator: "\n").last.map(String.init))
        #expect(key.count == 64)

        for format in [[], ["--json"]] {
            let local = try await HopGateBinary.run(["domain", "ls"] + format, environment: edge.storeEnvironment)
            let viaAPI = try await HopGateBinary.run(["domain", "ls"] + format + remote)
            #expect(viaAPI.status == 0, "\(viaAPI.standardError)")
            #expect(viaAPI.standardOutput == local.standardOutput, "domain ls \(format)")
        }
        let duplicate = try await HopGateBinary.run(["domain", "add", "remote.localhost"] + remote)
        #expect(duplicate.status == 73)
        let wrongAdmin = try await HopGateBinary.run(
            [
                "domain", "ls", "--server", "https://127.0.0.1:\(edge.https)", "--admin-key",
                "x" + EdgeUnderTest.adminKey,
                "--admin-insecure",
            ])
        #expect(wrongAdmin.status == 77)
        let wrongKey = try await HopGateBinary.run(
            ["domain", "rm", "remote.localhost", "--key", String(repeating: "33", count: 32)] + remote
        )
        #expect(wrongKey.status == 77)
        let removed = try await HopGateBinary.run(["domain", "rm", "remote.localhost", "--key", key] + remote)
        #expect(removed.status == 0, "\(removed.standardError)")
        #expect(removed.standardOutput == "Unregistered remote.localhost.\n")
        let gone = try await HopGateBinary.run(["domain", "rm", "remote.localhost", "--key", key] + remote)
        #expect(gone.status == 66)
        let untrusted = try await HopGateBinary.run(
            ["domain", "ls", "--server", "https://127.0.0.1:\(edge.https)", "--admin-key", EdgeUnderTest.adminKey])
        #expect(untrusted.status != 0, "a self-signed edge is refused without --admin-insecure or --admin-ca-file")
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func aWrongKeyStopsTheClientWithoutRetrying() async throws {
        let edge = try await EdgeUnderTest()
        _ = try await edge.register("app.localhost")
        let client = try await edge.connect(
            domain: "app.localhost",
            key: String(repeating: "22", count: 32),
            arguments: ["--to", "9"],
            waitForConnected: false
        )
        let exit = try await client.waitForExit(timeout: .seconds(10))
        #expect(exit == 77)
        #expect(client.standardError.contains("refused the client API key"))
        #expect(!client.standardError.contains("reconnecting"), "no retry for a wrong key")
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func certificateFailuresAndBadSettingsSayWhatIsWrong() async throws {
        let edge = try await EdgeUnderTest()
        let key = try await edge.register("app.localhost")
        // Someone else's certificate: a clear message, and the client keeps trying (the edge may be fixed).
        let wrong = try BackgroundProcess(
            HopGateBinary.path,
            [
                "connect", "--server", "127.0.0.1:\(edge.dtls)", "--server-fingerprint",
                String(repeating: "ab", count: 32),
                "--domain", "app.localhost", "--key", key, "--to", "9",
            ],
            environment: edge.environment,
            name: "client with the wrong fingerprint"
        )
        let output = try await wrong.waitForOutput(containing: "\"reconnecting\"")
        #expect(output.contains("certificate was not accepted"), "\(output)")
        await wrong.stop()
        // A malformed fingerprint is a usage error at once (64), not a retry loop.
        let malformed = try await HopGateBinary.run(
            [
                "connect", "--server", "127.0.0.1:\(edge.dtls)", "--server-fingerprint", "00", "--domain",
                "app.localhost",
                "--key", key, "--to", "9",
            ])
        #expect(malformed.status == 64)
        #expect(malformed.standardError.contains("64 hex characters"))
        // A second edge on the first one's DTLS port fails at once instead of quietly taking its clients.
        let second = try await HopGateBinary.run(
            [
                "serve", "--dev", "--https-listen", "127.0.0.1:0", "--http-listen", "off", "--metrics-listen", "off",
                "--dtls-listen", "127.0.0.1:\(edge.dtls)",
            ],
            environment: ["HOPGATE_DATABASE": "sqlite:\(edge.directory)/second.db"]
        )
        #expect(second.status == 78)
        #expect(
            second.standardError.contains(
                "error: the DTLS listener cannot bind 127.0.0.1:\(edge.dtls)/udp: address already in use"
            ),
            "\(second.standardError)"
        )
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func theClientReconnectsAfterTheEdgeRestarts() async throws {
        var edge = try await EdgeUnderTest()
        let service = try await LocalService(name: "app")
        let key = try await edge.register("app.localhost")
        let client = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(service.port)"])
        let first = try await edge.curl([edge.url("app.localhost", "/one")], host: "app.localhost")
        #expect(first.body == "app /one")

        // A new edge on the same store and ports: the client must find it again by itself.
        await edge.process.stop()
        edge = try await EdgeUnderTest(reusing: edge)
        try await edge.waitUntilRoutable("app.localhost")
        let second = try await edge.curl([edge.url("app.localhost", "/two")], host: "app.localhost")
        #expect(second.body == "app /two")
        #expect(client.standardError.contains("reconnecting"))
        await client.stop()
        await edge.stop()
    }

    @Test(.timeLimit(.minutes(2)))
    func sigtermLetsADownloadInFlightFinishThenExitsZero() async throws {
        let edge = try await EdgeUnderTest(extraArguments: ["--shutdown-grace", "20"])
        let service = try await LocalService(name: "app")
        let key = try await edge.register("app.localhost")
        let client = try await edge.connect(domain: "app.localhost", key: key, arguments: ["--to", "\(service.port)"])
        let (finished, verdict) = try await edge.slowDownload(count: 8 * 1024 * 1024) {
            edge.process.signal(SIGTERM)
        }
        #expect(finished.status == 200, "\(finished.standardError)")
        #expect(verdict == "ok")
        let exit = try await edge.process.waitForExit(timeout: .seconds(20))
        #expect(exit == 0, "\(edge.process.standardError)")
        await client.stop()
    }
}
