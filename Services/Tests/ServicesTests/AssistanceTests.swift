import Assistance
import AssistanceOpenAPI
import Foundation
import Hummingbird
import KafkaClient
import Logging
import Producers
import ServiceSupport
import Testing

/// The assistance service's checks through Hummingbird's test client. Every refused request is a 4xx
/// JSON problem; a request that passes them reaches the broker, here an unreachable one (503). The
/// broker's side (201, a missing topic's 404 that creates nothing) is in Tests/Interop.
@Suite struct AssistanceTests {
    static func serve<T: Sendable>(_ test: @Sendable (HTTPTestClient) async throws -> T) async throws -> T {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(closedPort)")
        configuration.allowAutoCreateTopics = false
        configuration.maxBlockMs = 1000
        configuration.deliveryTimeoutMs = 1000
        let producer = try KafkaProducer(configuration: configuration)
        let metadata = try KafkaClient(bootstrapServers: "127.0.0.1:\(closedPort)")
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let router = try AssistanceServer.router(handler: AssistanceHandler(producer: producer, metadata: metadata, logger: logger))
        return try await withServer(router, services: [producer], test)
    }

    @Test func refusedRequestsAre400Problems() async throws {
        let long = String(repeating: "x", count: 2001)
        let cases: [(body: String, fragment: String)] = [
            ("{", "could not be read"),
            ("not json", "could not be read"),
            ("[]", "could not be read"),
            (#"{"description": "help"}"#, "topic"),
            (#"{"topic": "sales"}"#, "description"),
            (#"{"topic": 7, "description": "help"}"#, "topic"),
            (#"{"topic": "sales", "description": ["a"]}"#, "description"),
            (#"{"topic": "", "description": "help"}"#, "topic must not be empty"),
            (#"{"topic": "sa les", "description": "help"}"#, "only ASCII letters"),
            (#"{"topic": "ventes-été", "description": "help"}"#, "only ASCII letters"),
            (#"{"topic": "..", "description": "help"}"#, "cannot be '.' or '..'"),
            (#"{"topic": "__consumer_offsets", "description": "help"}"#, "internal"),
            ("{\"topic\": \"\(String(repeating: "t", count: 250))\", \"description\": \"help\"}", "at most 249"),
            (#"{"topic": "sales", "description": "   "}"#, "description must not be empty"),
            ("{\"topic\": \"sales\", \"description\": \"\(long)\"}", "at most 2000"),
        ]
        try await Self.serve { client in
            for (body, fragment) in cases {
                let response = try await client.execute("/assistance", method: "POST", headers: jsonHeaders, body: body)
                #expect(response.status == 400, "\(body.prefix(60)): \(response.status) \(response.text)")
                let problem = try response.problem()
                #expect(problem.detail?.contains(fragment) == true, "\(body.prefix(60)): \(problem.detail ?? "")")
            }
            let noBody = try await client.execute("/assistance", method: "POST", headers: jsonHeaders)
            #expect(noBody.status == 400)
            _ = try noBody.problem()
            let wrongType = try await client.execute("/assistance", method: "POST", headers: ["Content-Type": "text/plain"],
                                                     body: #"{"topic": "sales", "description": "help"}"#)
            #expect(wrongType.status == 415)
            _ = try wrongType.problem()
            let huge = try await client.execute("/assistance", method: "POST", headers: jsonHeaders,
                                                body: "{\"topic\": \"sales\", \"description\": \"\(String(repeating: "y", count: 70_000))\"}")
            #expect(huge.status == 413)
            _ = try huge.problem()
        }
    }

    @Test func anAcceptableRequestWithTheBrokerDownIs503() async throws {
        try await Self.serve { client in
            let response = try await client.execute("/assistance", method: "POST", headers: jsonHeaders,
                                                    body: #"{"topic": "sales", "description": "the printer is on fire"}"#)
            #expect(response.status == 503)
            #expect(try response.problem().detail?.contains("cannot be asked about topic 'sales'") == true)
            #expect(try await client.execute("/health").status == 200)
            #expect(try await client.execute("/openapi.yaml").text.contains("/assistance:"))
        }
    }

    @Test func topicRules() {
        #expect(AssistanceRequestRules.problem(topic: "sales", description: "help") == nil)
        #expect(AssistanceRequestRules.problem(topic: "a.b_c-D9", description: "x") == nil)
        #expect(AssistanceRequestRules.problem(topic: String(repeating: "t", count: 249), description: "x") == nil)
        #expect(AssistanceRequestRules.problem(topic: ".", description: "x") != nil)
        #expect(AssistanceRequestRules.problem(topic: "__transaction_state", description: "x") != nil)
        #expect(AssistanceRequestRules.problem(topic: "sales", description: String(repeating: "é", count: 2000)) == nil)
    }
}
