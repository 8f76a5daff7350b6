import HopGateCore
import HopGateStore
import Testing

@Suite struct DatabaseLocationTests {
    @Test(arguments: [
        ("sqlite:/var/lib/hopgate/x.db", DatabaseLocation.sqlite(path: "/var/lib/hopgate/x.db")),
        ("sqlite:///var/lib/hopgate/x.db", .sqlite(path: "/var/lib/hopgate/x.db")),
        ("sqlite://relative.db", .sqlite(path: "relative.db")),
        ("sqlite:relative.db", .sqlite(path: "relative.db")),
        ("postgres://u@h/db", .postgres(connectionString: "postgres://u@h/db")),
        (
            "postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write",
            .postgres(connectionString: "postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write")
        ),
    ])
    func parses(text: String, expected: DatabaseLocation) throws {
        #expect(try DatabaseLocation(parsing: text) == expected)
    }

    @Test(arguments: ["", "mysql://x", "/plain/path.db", "sqlite:", "sqlite://"])
    func refusesWithAConfigurationError(text: String) {
        #expect(throws: HopGateError(.configuration, "")) { try DatabaseLocation(parsing: text) }
    }

    @Test func neverShowsPasswords() throws {
        let location = try DatabaseLocation(
            parsing: "postgres://hop:s3cret@db.internal:5432/hop?sslmode=require&password=other"
        )
        #expect("\(location)" == "postgres://hop:***@db.internal:5432/hop?sslmode=require&password=***")
        #expect(!"\(location)".contains("s3cret") && !"\(location)".contains("other"))
        let error = #expect(throws: HopGateError.self) { try DatabaseLocation(parsing: "mysql://root:hunter2@x/db") }
        #expect(error?.message.contains("hunter2") == false)
    }
}
