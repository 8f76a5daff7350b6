import Foundation
import HopGateTestSupport
import Testing

/// The running edge against `openapi/admin.json`: every documented operation is called, each answer's status must
/// be one the document lists for it, and each body must match the documented schema (required members and JSON
/// types, following `$ref` and `allOf`).
@Suite struct AdminAPIContractTests {
    static let documentPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("openapi/admin.json").path

    struct Call {
        let operation: String  // "post /domains/register"
        let path: String
        let body: String?
        var key: String? = EdgeUnderTest.adminKey
        var contentType = "application/json"
    }

    @Test(.timeLimit(.minutes(2)))
    func theServerAnswersAsTheDocumentSays() async throws {
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.documentPath)))
                as? [String: Any]
        )
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0) \(path)" } })

        let edge = try await EdgeUnderTest()
        let service = try await LocalService(name: "app")
        let setupKey = try await edge.register("connected.localhost")
        let client = try await edge.connect(
            domain: "connected.localhost",
            key: setupKey,
            arguments: ["--to", "\(service.port)"]
        )

        var registeredKey = ""
        let calls: [Call] = [
            Call(operation: "post /domains/register", path: "/domains/register", body: #"{"domain":"c.localhost"}"#),
            Call(operation: "post /domains/register", path: "/domains/register", body: #"{"domain":"c.localhost"}"#),
            Call(operation: "post /domains/register", path: "/domains/register", body: "[1,2"),
            Call(operation: "post /domains/register", path: "/domains/register", body: "{}", contentType: "text/plain"),
            Call(operation: "post /domains/register", path: "/domains/register", body: "{}", key: nil),
            Call(operation: "get /domains", path: "/domains", body: nil),
            Call(operation: "get /domains/{domain}", path: "/domains/connected.localhost", body: nil),
            Call(operation: "get /domains/{domain}", path: "/domains/missing.localhost", body: nil),
            Call(
                operation: "post /domains/unregister",
                path: "/domains/unregister",
                body: #"{"domain":"c.localhost","client_api_key":"\#(String(repeating: "0", count: 64))"}"#
            ),
            Call(operation: "post /domains/unregister", path: "/domains/unregister", body: nil),
        ]
        #expect(Set(calls.map(\.operation)) == documented, "every documented operation is called, and no other")

        var statuses: [String: Set<Int>] = [:]
        for call in calls + [
            Call(operation: "post /domains/unregister", path: "/domains/unregister", body: "KEY")
        ] {
            var body = call.body
            if body == "KEY" { body = #"{"domain":"c.localhost","client_api_key":"\#(registeredKey)"}"# }
            if body == nil && call.operation.hasPrefix("post") {
                body = #"{"domain":"nope.localhost","client_api_key":"\#(String(repeating: "0", count: 64))"}"#
            }
            var arguments = ["-X", call.operation.hasPrefix("post") ? "POST" : "GET"]
            if let key = call.key { arguments += ["-H", "Authorization: Bearer \(key)"] }
            if let body { arguments += ["-H", "Content-Type: \(call.contentType)", "--data-binary", body] }
            let result = try await edge.curl(
                arguments + [edge.url("edge.localhost", "/api/v1/admin" + call.path)],
                host: "edge.localhost"
            )
            let operationPath = String(call.operation.split(separator: " ")[1])
            let method = String(call.operation.split(separator: " ")[0])
            let operation = try #require(paths[operationPath]?[method] as? [String: Any])
            let responses = try #require(operation["responses"] as? [String: Any])
            guard let response = responses["\(result.status)"] else {
                Issue.record("\(call.operation) answered \(result.status), which the document does not list")
                continue
            }
            statuses[call.operation, default: []].insert(result.status)
            let schema = try Self.schema(of: response, in: document)
            let json = try JSONSerialization.jsonObject(with: Data(result.body.utf8))
            let problems = Self.validate(json, against: schema, in: document, at: "body")
            #expect(problems.isEmpty, "\(call.operation) \(result.status): \(problems) in \(result.body)")
            if result.status == 201, let object = json as? [String: Any] {
                registeredKey = object["client_api_key"] as? String ?? ""
            }
        }
        #expect(statuses["post /domains/register"] == [201, 409, 400, 415, 401])
        #expect(statuses["post /domains/unregister"] == [403, 404, 200])
        #expect(statuses["get /domains/{domain}"] == [200, 404])
        await client.stop()
        await edge.stop()
    }

    /// The JSON schema of a documented response (following a `$ref` to `components/responses`).
    static func schema(of response: Any, in document: [String: Any]) throws -> [String: Any] {
        var response = try #require(response as? [String: Any])
        if let reference = response["$ref"] as? String {
            response = try #require(resolve(reference, in: document))
        }
        let content = try #require(response["content"] as? [String: Any])
        let json = try #require(content["application/json"] as? [String: Any])
        return try #require(json["schema"] as? [String: Any])
    }

    static func resolve(_ reference: String, in document: [String: Any]) -> [String: Any]? {
        var node: Any = document
        for part in reference.dropFirst(2).split(separator: "/") {
            guard let object = node as? [String: Any], let next = object[String(part)] else { return nil }
            node = next
        }
        return node as? [String: Any]
    }

    /// What does not match: missing required members and wrong JSON types.
    static func validate(
        _ value: Any,
        against schema: [String: Any],
        in document: [String: Any],
        at path: String
    )
        -> [String]
    {
        if let reference = schema["$ref"] as? String {
            guard let target = resolve(reference, in: document) else { return ["\(path): unresolved \(reference)"] }
            return validate(value, against: target, in: document, at: path)
        }
        var problems: [String] = []
        for part in schema["allOf"] as? [[String: Any]] ?? [] {
            problems += validate(value, against: part, in: document, at: path)
        }
        if value is NSNull {
            return schema["nullable"] as? Bool == true ? problems : problems + ["\(path): null"]
        }
        switch schema["type"] as? String {
        case "object":
            guard let object = value as? [String: Any] else { return problems + ["\(path): not an object"] }
            for name in schema["required"] as? [String] ?? [] where object[name] == nil {
                problems.append("\(path).\(name): missing")
            }
            for (name, property) in schema["properties"] as? [String: [String: Any]] ?? [:] {
                if let member = object[name] {
                    problems += validate(member, against: property, in: document, at: "\(path).\(name)")
                }
            }
        case "array":
            guard let array = value as? [Any] else { return problems + ["\(path): not an array"] }
            if let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() {
                    problems += validate(item, against: items, in: document, at: "\(path)[\(index)]")
                }
            }
        case "string":
            if !(value is String) { problems.append("\(path): not a string") }
        case "integer":
            if value as? Int == nil { problems.append("\(path): not an integer") }
        case "boolean":
            if value as? Bool == nil { problems.append("\(path): not a boolean") }
        default:
            break
        }
        return problems
    }
}
