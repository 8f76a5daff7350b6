import Testing

@testable import HopGateEdge

/// Which request paths a client's path prefix serves.
@Suite struct PathPrefixTests {
    @Test func aPrefixServesItselfItsSubpathsAndItsQueriesOnly() {
        let serves = { (path: String, prefix: String) in TunnelSessionRegistry.path(path, isUnder: prefix) }
        #expect(serves("/", "/"))
        #expect(serves("/anything/at/all?x=1", "/"))
        #expect(serves("/admin", "/admin"))
        #expect(serves("/admin/users", "/admin"))
        #expect(serves("/admin?q=1", "/admin"))
        #expect(!serves("/administrator", "/admin"))
        #expect(!serves("/adm", "/admin"))
        #expect(serves("/api/v1", "/api/"))
        #expect(!serves("/api", "/api/"))
        #expect(serves("/café/menu", "/café"))
        #expect(!serves("/cafés", "/café"))
    }
}
