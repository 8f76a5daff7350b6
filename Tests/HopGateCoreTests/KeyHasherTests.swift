import HopGateCore
import NIOPosix
import Synchronization
import Testing

@Suite struct KeyHasherTests {
    @Test func hashVerifiesItsKeyAndNoOther() throws {
        let key = APIKey.generate().secret
        let hash = try KeyHasher().hash(key)
        #expect(hash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
        #expect(try KeyHasher.verify(key, against: hash))
        #expect(try !KeyHasher.verify(APIKey.generate().secret, against: hash))
        #expect(try !KeyHasher.verify(String(key.dropLast()) + "x", against: hash))
        #expect(try !KeyHasher.verify("", against: hash))
    }

    @Test func saltsEveryHash() throws {
        let hasher = KeyHasher(parameters: .minimal)
        #expect(try hasher.hash("same") != hasher.hash("same"))
    }

    @Test func parametersTravelInTheHash() throws {
        let cheap = try KeyHasher(parameters: .minimal).hash("k")
        #expect(cheap.contains("m=8,t=1,p=1"))
        #expect(try KeyHasher.verify("k", against: cheap))
    }

    @Test(arguments: ["", "plain", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=19$garbage"])
    func malformedHashesAreReportedNotTreatedAsWrongKeys(hash: String) {
        #expect(throws: HopGateError(.configuration, "")) { try KeyHasher.verify("k", against: hash) }
    }
}

@Suite struct KeyVerifierTests {
    /// A verifier whose slow path is real Argon2 at minimal cost, counted.
    private func makeVerifier(capacity: Int = 100) -> KeyVerifier {
        KeyVerifier(capacity: capacity)
    }

    @Test func aRepeatVerificationSkipsArgon2() async throws {
        let verifier = makeVerifier()
        let hash = try KeyHasher(parameters: .minimal).hash("right")
        #expect(try await verifier.verify("right", against: hash))
        #expect(try await verifier.verify("right", against: hash))
        #expect(try await verifier.verify("right", against: hash))
        #expect(verifier.argon2Verifications == 1)
    }

    @Test func wrongKeysAreNeverCached() async throws {
        let verifier = makeVerifier()
        let hash = try KeyHasher(parameters: .minimal).hash("right")
        #expect(try await !verifier.verify("wrong", against: hash))
        #expect(try await !verifier.verify("wrong", against: hash))
        #expect(verifier.argon2Verifications == 2)
    }

    @Test func aRotatedKeyDoesNotHitTheOldEntry() async throws {
        let verifier = makeVerifier()
        let hasher = KeyHasher(parameters: .minimal)
        let old = try hasher.hash("key")
        let rotated = try hasher.hash("other")
        #expect(try await verifier.verify("key", against: old))
        #expect(try await !verifier.verify("key", against: rotated))
    }

    @Test func theCacheIsBounded() async throws {
        let verifier = makeVerifier(capacity: 3)
        let hasher = KeyHasher(parameters: .minimal)
        let hashes = try (0..<5).map { try hasher.hash("k\($0)") }
        for (index, hash) in hashes.enumerated() { #expect(try await verifier.verify("k\(index)", against: hash)) }
        #expect(verifier.argon2Verifications == 5)
        // The two oldest were evicted; the three newest are still remembered.
        for index in 2..<5 { #expect(try await verifier.verify("k\(index)", against: hashes[index])) }
        #expect(verifier.argon2Verifications == 5)
        #expect(try await verifier.verify("k0", against: hashes[0]))
        #expect(verifier.argon2Verifications == 6)
    }

    @Test func runsArgon2OffTheCallingThread() async throws {
        let callingThread = pthread_self()
        let ranOn = Mutex<pthread_t?>(nil)
        let verifier = KeyVerifier(slowVerify: { key, hash in
            ranOn.withLock { $0 = pthread_self() }
            return try KeyHasher.verify(key, against: hash)
        })
        let hash = try KeyHasher(parameters: .minimal).hash("k")
        #expect(try await verifier.verify("k", against: hash))
        let thread = try #require(ranOn.withLock { $0 })
        #expect(pthread_equal(thread, callingThread) == 0)
    }
}
