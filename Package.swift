// swift-tools-version:6.1
import PackageDescription

// The house (../shared/DESIGN.md §1): arrows point down. The executable is one file; the CLI sits on the
// feature modules; every C library stays behind a system-library target imported by exactly one Swift module.
let package = Package(
    name: "hopgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hopgate", targets: ["hopgate"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // MARK: - Executable
        .executableTarget(
            name: "hopgate",
            dependencies: ["HopGateCLI"]
        ),

        // MARK: - Commands
        .target(
            name: "HopGateCLI",
            dependencies: [
                "HopGateCore",
                "HopGateStore",
                "HopGateEdge",
                "HopGateClient",
                "HopGateACME",
                "HopGateHTTPClient",
                "HopGateDTLS",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: - Certificates
        .target(
            name: "HopGateACME",
            dependencies: [
                "HopGateCore", "HopGateStore", "HopGateHTTPClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // One HTTPS request and its whole response, for the ACME client and the CLI's remote admin commands.
        .target(
            name: "HopGateHTTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),

        // MARK: - Storage
        .target(
            name: "HopGateStore",
            dependencies: [
                "HopGateCore",
                "CHopGatePQ",
                "CSQLite3",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        // MARK: - Shared values
        .target(
            name: "HopGateCore",
            dependencies: [
                "CArgon2",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        // MARK: - The edge
        .target(
            name: "HopGateEdge",
            dependencies: [
                "HopGateCore", "HopGateStore", "HopGateTunnel", "HopGateDTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: - The client
        .target(
            name: "HopGateClient",
            dependencies: [
                "HopGateCore", "HopGateTunnel", "HopGateDTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: - The tunnel protocol
        .target(
            name: "HopGateTunnel",
            dependencies: [
                "CHopGateSCTP", "HopGateCore",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(name: "CHopGateSCTP", dependencies: ["CUsrSCTP"]),

        // MARK: - Datagram TLS
        .target(
            name: "HopGateDTLS",
            dependencies: [
                "CHopGateDTLS",
                "COpenSSL",
                "HopGateCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(name: "CHopGateDTLS", dependencies: ["COpenSSL"]),

        // MARK: - Test and benchmark tools
        .executableTarget(
            name: "hopgate-dtls-bench",
            dependencies: [
                "HopGateDTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "hopgate-lossy-relay",
            dependencies: ["HopGateLossyRelay", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "HopGateLossyRelay",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        // MARK: - C libraries (Debian -dev packages)
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CUsrSCTP", pkgConfig: "usrsctp", providers: [.apt(["libusrsctp-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        // libpq is loaded at run time (only PostgreSQL needs it); its header comes from libpq-dev.
        .target(name: "CHopGatePQ"),
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // MARK: - Tests
        .target(
            name: "HopGateTestSupport",
            dependencies: [],
            path: "Tests/HopGateTestSupport"
        ),
        .testTarget(
            name: "HopGateCoreTests",
            dependencies: [
                "HopGateCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HopGateStoreTests",
            dependencies: ["HopGateStore", "HopGateTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "HopGateCLITests", dependencies: ["HopGateCore", "HopGateTestSupport"]),
        .testTarget(name: "HopGateEndToEndTests", dependencies: ["HopGateTestSupport"]),
        .testTarget(
            name: "HopGateEdgeTests",
            dependencies: [
                "HopGateEdge", "HopGateStore", "HopGateTunnel", "HopGateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HopGateTunnelTests",
            dependencies: [
                "HopGateTunnel", "HopGateDTLS", "HopGateLossyRelay", "HopGateEdge", "HopGateClient",
                "HopGateStore", "HopGateCore", "HopGateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HopGateACMETests",
            dependencies: [
                "HopGateACME", "HopGateStore", "HopGateEdge", "HopGateTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "HopGateDTLSTests",
            dependencies: [
                "HopGateDTLS",
                "HopGateLossyRelay",
                "HopGateTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
