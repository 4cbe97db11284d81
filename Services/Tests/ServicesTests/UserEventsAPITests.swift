import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Producers
import ServiceSupport
import Testing
import UserEventsAPI
import UserEventsOpenAPI
import UserStatsService
import UserEventModel

/// The user-events API's routes through Hummingbird's test client. No broker here: a submission to an
/// unreachable one ends `failed` with the reason; a broker's happy path is in Tests/Interop.
@Suite struct UserEventsAPITests {
    static func app(statsPort: Int = closedPort, maxRunning: Int = 4, maxBlockMs: Int = 1500) throws -> some ApplicationProtocol {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(closedPort)")
        configuration.deliveryTimeoutMs = maxBlockMs
        configuration.maxBlockMs = maxBlockMs
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        var settings = Submissions.Settings()
        settings.maxRunning = maxRunning
        let submissions = Submissions(producer: producer, reports: reports, settings: settings, logger: configuration.logger)
        let stats = StatsClient(baseURL: URL(string: "http://127.0.0.1:\(statsPort)")!, timeout: .seconds(2))
        let router = try UserEventsServer.router(handler: UserEventsHandler(submissions: submissions, stats: stats))
        return Application(router: router, services: [submissions])
    }

    @Test func badInputIsA400ProblemNeverA500() async throws {
        try await Self.app().test(.router) { client in
            for (path, fragment) in [("/submit/0", "from 1 to 100000"), ("/submit/-3", "from 1 to 100000"),
                                     ("/submit/100001", "from 1 to 100000"), ("/submit/abc", "could not be read"),
                                     ("/submit/1.5", "could not be read"), ("/submit/99999999999999999999", "could not be read")] {
                let response = try await client.execute(uri: path, method: .post)
                #expect(response.status == .badRequest, "\(path): \(response.text)")
                let problem = try response.problem()
                #expect(problem.status == 400 && problem.title == "Bad Request")
                #expect(problem.detail?.contains(fragment) == true, "\(path): \(problem.detail ?? "")")
            }
            let unknown = try await client.execute(uri: "/submissions/7d1f0c1e-0000-4000-8000-000000000000", method: .get)
            #expect(unknown.status == .notFound)
            #expect(try unknown.problem().detail?.contains("no submission") == true)
            let long = try await client.execute(uri: "/submissions/" + String(repeating: "a", count: 65), method: .get)
            #expect(long.status == .badRequest)
            _ = try long.problem()
            let route = try await client.execute(uri: "/nowhere", method: .get)
            #expect(route.status == .notFound)
            #expect(try route.problem().detail == "no route for GET /nowhere")
            for method in [HTTPRequest.Method.get, .put, HTTPRequest.Method("QUERY")!] {
                let response = try await client.execute(uri: "/submit/3", method: method)
                #expect(response.status == .methodNotAllowed, "\(method)")
                #expect(response.headers[.allow] == "POST")
                _ = try response.problem()
            }
        }
    }

    @Test func aSubmissionIsAcceptedAtOnceAndEndsFailedWhenTheBrokerIsDown() async throws {
        try await Self.app().test(.router) { client in
            let accepted = try await client.execute(uri: "/submit/3", method: .post)
            #expect(accepted.status == .accepted)
            let submission = try accepted.json(Components.Schemas.Submission.self)
            #expect(submission.state == .running && submission.requested == 3 && submission.delivered == 0)
            #expect(accepted.headers[.location] == "/submissions/\(submission.id)")
            var polled = submission
            let deadline = ContinuousClock.now + .seconds(20)
            while polled.state == .running, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                let response = try await client.execute(uri: "/submissions/\(submission.id)", method: .get)
                #expect(response.status == .ok)
                polled = try response.json(Components.Schemas.Submission.self)
            }
            #expect(polled.state == .failed)
            #expect(polled.delivered == 0 && polled.failed == 3)
            #expect(polled.reason?.contains("127.0.0.1:\(closedPort)") == true, "\(polled.reason ?? "no reason")")
            #expect(polled.finishedAt != nil)
            // The API stays up.
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
        }
    }

    @Test func moreSubmissionsThanMaxRunningAreRefusedWith503() async throws {
        try await Self.app(maxRunning: 1, maxBlockMs: 5000).test(.router) { client in
            #expect(try await client.execute(uri: "/submit/5", method: .post).status == .accepted)
            let refused = try await client.execute(uri: "/submit/5", method: .post)
            #expect(refused.status == .serviceUnavailable)
            #expect(try refused.problem().detail?.contains("submissions are running") == true)
        }
    }

    @Test func theReportIsUserStatsAnswerAnd502WhenUserStatsIsDown() async throws {
        try await Self.app().test(.router) { client in
            let down = try await client.execute(uri: "/report", method: .get)
            #expect(down.status == .badGateway)
            #expect(try down.problem().detail?.contains("user-stats at http://127.0.0.1:\(closedPort)") == true)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try UserStore(path: directory.appendingPathComponent("stats.sqlite").path)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<25 { try store.upsert(Places.randomUser(using: &rng)) }
        let expected = try await store.report()
        try await Application(router: StatsServer.router(store: store)).test(.live) { stats in
            let port = try #require(stats.port)
            try await Self.app(statsPort: port).test(.router) { client in
                let response = try await client.execute(uri: "/report", method: .get)
                #expect(response.status == .ok)
                let report = try response.json(Components.Schemas.Report.self)
                #expect(report.totalUsers == 25 && report.skippedEvents == 0)
                #expect(report.cities.map { "\($0.city),\($0.state),\($0.users)" }
                        == expected.cities.map { "\($0.city),\($0.state),\($0.users)" })
            }
        }
    }

    @Test func theDocumentAndItsPageAreServed() async throws {
        try await Self.app().test(.router) { client in
            let yaml = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(yaml.status == .ok)
            let committed = try String(contentsOf: URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().appendingPathComponent("../../OpenAPI/user-events-api.yaml").standardized, encoding: .utf8)
            #expect(yaml.text == committed)
            let page = try await client.execute(uri: "/docs", method: .get)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("/submit/{n}") && page.text.contains("href='/openapi.yaml'"))
            #expect(try await client.execute(uri: "/health", method: .get).text.contains("\"ok\""))
        }
    }
}
