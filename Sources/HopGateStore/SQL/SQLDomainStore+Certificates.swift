import FoundationEssentials
import HopGateCore

/// ACME state: accounts, certificates, pending challenges and order leases, in the same SQL for both dialects
/// (`ON CONFLICT` is PostgreSQL's and SQLite's since 3.24).
extension SQLDomainStore {
    func acmeAccount(directoryURL: String) async throws -> ACMEAccountRecord? {
        try await run("read the ACME account", isWrite: false) { connection in
            try connection.execute(
                "SELECT \(Self.accountColumns) FROM acme_accounts WHERE directory_url = $1",
                [directoryURL]
            ).rows.first.map(Self.decodeAccount)
        }
    }

    func saveACMEAccount(_ record: ACMEAccountRecord) async throws -> ACMEAccountRecord {
        try await run("save the ACME account", isWrite: true) { connection in
            _ = try connection.execute(
                """
                INSERT INTO acme_accounts (\(Self.accountColumns))
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (directory_url) DO NOTHING
                """,
                [
                    record.directoryURL, record.accountURL, record.privateKeyPEM, record.contact,
                    Timestamp.format(record.createdAt),
                ]
            )
            guard
                let row = try connection.execute(
                    "SELECT \(Self.accountColumns) FROM acme_accounts WHERE directory_url = $1",
                    [record.directoryURL]
                ).rows.first
            else { throw HopGateError(.internalError, "the ACME account just saved cannot be read back") }
            return try Self.decodeAccount(row)
        }
    }

    func certificate(for domain: String) async throws -> CertificateRecord? {
        try await run("read the certificate for \(domain)", isWrite: false) { connection in
            try connection.execute("SELECT \(Self.certificateColumns) FROM certificates WHERE domain = $1", [domain])
                .rows.first.map(Self.decodeCertificate)
        }
    }

    func allCertificates() async throws -> [CertificateRecord] {
        try await run("list certificates", isWrite: false) { connection in
            try connection.execute("SELECT \(Self.certificateColumns) FROM certificates ORDER BY domain").rows
                .map(Self.decodeCertificate)
        }
    }

    func saveCertificate(_ record: CertificateRecord) async throws {
        try await run("save the certificate for \(record.domain)", isWrite: true) { connection in
            _ = try connection.execute(
                """
                INSERT INTO certificates (\(Self.certificateColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (domain) DO UPDATE SET chain_pem = excluded.chain_pem,
                    private_key_pem = excluded.private_key_pem, not_before = excluded.not_before,
                    not_after = excluded.not_after, issuer = excluded.issuer,
                    serial_number = excluded.serial_number, updated_at = excluded.updated_at
                """,
                [
                    record.domain, record.chainPEM, record.privateKeyPEM, Timestamp.format(record.notBefore),
                    Timestamp.format(record.notAfter), record.issuer, record.serialNumber,
                    Timestamp.format(record.updatedAt),
                ]
            )
        }
    }

    func saveChallenge(_ record: ACMEChallengeRecord) async throws {
        try await run("save an ACME challenge for \(record.domain)", isWrite: true) { connection in
            // Answers the CA never fetched (an order abandoned by a crash) would otherwise stay forever.
            _ = try connection.execute(
                "DELETE FROM acme_challenges WHERE created_at < $1",
                [Timestamp.format(Date().addingTimeInterval(-86_400))]
            )
            _ = try connection.execute(
                """
                INSERT INTO acme_challenges (token, domain, kind, key_authorization, created_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (token) DO UPDATE SET domain = excluded.domain, kind = excluded.kind,
                    key_authorization = excluded.key_authorization, created_at = excluded.created_at
                """,
                [
                    record.token, record.domain, record.kind.rawValue, record.keyAuthorization,
                    Timestamp.format(record.createdAt),
                ]
            )
        }
    }

    func challenge(token: String) async throws -> ACMEChallengeRecord? {
        try await run("read an ACME challenge", isWrite: false) { connection in
            try connection.execute("SELECT \(Self.challengeColumns) FROM acme_challenges WHERE token = $1", [token])
                .rows.first.map(Self.decodeChallenge)
        }
    }

    func newestChallenge(domain: String, kind: ACMEChallengeRecord.Kind) async throws -> ACMEChallengeRecord? {
        try await run("read an ACME challenge for \(domain)", isWrite: false) { connection in
            try connection.execute(
                "SELECT \(Self.challengeColumns) FROM acme_challenges WHERE domain = $1 AND kind = $2 "
                    + "ORDER BY created_at DESC LIMIT 1",
                [domain, kind.rawValue]
            ).rows.first.map(Self.decodeChallenge)
        }
    }

    func deleteChallenge(token: String) async throws {
        try await run("delete an ACME challenge", isWrite: true) { connection in
            _ = try connection.execute("DELETE FROM acme_challenges WHERE token = $1", [token])
        }
    }

    func acquireLease(name: String, holder: String, expiresAt: Date) async throws -> Bool {
        try await run("take the lease \(name)", isWrite: true) { connection in
            try connection.execute(
                """
                INSERT INTO acme_leases (name, holder, expires_at) VALUES ($1, $2, $3)
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                WHERE acme_leases.holder = excluded.holder OR acme_leases.expires_at < $4
                """,
                [name, holder, Timestamp.format(expiresAt), Timestamp.format(Date())]
            ).affectedRows == 1
        }
    }

    func releaseLease(name: String, holder: String) async throws {
        try await run("release the lease \(name)", isWrite: true) { connection in
            _ = try connection.execute("DELETE FROM acme_leases WHERE name = $1 AND holder = $2", [name, holder])
        }
    }

    // MARK: - Rows

    private static let accountColumns = "directory_url, account_url, private_key_pem, contact, created_at"
    private static let certificateColumns =
        "domain, chain_pem, private_key_pem, not_before, not_after, issuer, serial_number, updated_at"
    private static let challengeColumns = "token, domain, kind, key_authorization, created_at"

    private static func date(_ text: String?, _ table: String, _ row: [String?]) throws -> Date {
        guard let text, let date = Timestamp.parse(text) else { throw unreadable(table, row) }
        return date
    }

    private static func unreadable(_ table: String, _ row: [String?]) -> HopGateError {
        HopGateError(.internalError, "an \(table) row cannot be read (\(row.count) columns)")
    }

    private static func decodeAccount(_ row: [String?]) throws -> ACMEAccountRecord {
        guard row.count == 5, let directory = row[0], let account = row[1], let key = row[2] else {
            throw unreadable("acme_accounts", row)
        }
        return ACMEAccountRecord(
            directoryURL: directory,
            accountURL: account,
            privateKeyPEM: key,
            contact: row[3] ?? "",
            createdAt: try date(row[4], "acme_accounts", row)
        )
    }

    private static func decodeCertificate(_ row: [String?]) throws -> CertificateRecord {
        guard row.count == 8, let domain = row[0], let chain = row[1], let key = row[2], let issuer = row[5],
            let serial = row[6]
        else { throw unreadable("certificates", row) }
        return CertificateRecord(
            domain: domain,
            chainPEM: chain,
            privateKeyPEM: key,
            notBefore: try date(row[3], "certificates", row),
            notAfter: try date(row[4], "certificates", row),
            issuer: issuer,
            serialNumber: serial,
            updatedAt: try date(row[7], "certificates", row)
        )
    }

    private static func decodeChallenge(_ row: [String?]) throws -> ACMEChallengeRecord {
        guard row.count == 5, let token = row[0], let domain = row[1], let kindText = row[2],
            let kind = ACMEChallengeRecord.Kind(rawValue: kindText), let keyAuthorization = row[3]
        else { throw unreadable("acme_challenges", row) }
        return ACMEChallengeRecord(
            token: token,
            domain: domain,
            kind: kind,
            keyAuthorization: keyAuthorization,
            createdAt: try date(row[4], "acme_challenges", row)
        )
    }
}
