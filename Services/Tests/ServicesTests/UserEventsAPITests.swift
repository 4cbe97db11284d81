import Foundation
import Hummingbird
import Logging
import Producers
import ServiceLifecycle
import ServiceSupport
import Testing
import UserEventModel
import UserEventsAPI
import UserEventsOpenAPI
import UserStatsService

/// The user-events API's routes over HTTP. No broker here: a submission to an unreachable one ends
/// `failed` with the reason, and one to a broker that never answers stays running; a real broker's
/// happy path is in Tests/Interop.
@Suite struct UserEventsAPITests {
    static func serve<T: Sendable>(statsPort: Int = closedPort, maxRunning: Int = 4, maxBlockMs: Int = 1500, brokerPort: Int = closedPort,
                                   _ test: @Sendable (HTTPTestClient) async throws -> T) async throws -> T {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:\(brokerPort)")
        configuration.deliveryTimeoutMs = maxBlockMs
        configuration.maxBlockMs = maxBlockMs
        configuration.requestTimeoutMs = maxBlockMs
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let (producer, reports) = try KafkaProducer.makeProducerWithDeliveryReports(configuration: configuration)
        var settings = Submissions.Settings()
        settings.maxRunning = maxRunning
        let submissions = Submissions(producer: producer, reports: reports, settings: settings, logger: configuration.logger)
        let stats = StatsClient(baseURL: try #require(URL(string: "http://127.0.0.1:\(statsPort)")), timeout: .seconds(2))
        let router = try UserEventsServer.router(handler: UserEventsHandler(submissions: submissions, stats: stats))
        return try await withServer(router, services: [producer, submissions], test)
    }

    @Test func badInputIsA400ProblemNeverA500() async throws {
        try await Self.serve { client in
            for (path, fragment) in [("/submit/0", "from 1 to 100000"), ("/submit/-3", "from 1 to 100000"),
                                     ("/submit/100001", "from 1 to 100000"), ("/submit/abc", "could not be read"),
                                     ("/submit/1.5", "could not be read"), ("/submit/99999999999999999999", "could not be read")] {
                let response = try await client.execute(path, method: "POST")
                #expect(response.status == 400, "\(path): \(response.text)")
                let problem = try response.problem()
                #expect(problem.status == 400 && problem.title == "Bad Request")
                #expect(problem.detail?.contains(fragment) == true, "\(path): \(problem.detail ?? "")")
            }
            let unknown = try await client.execute("/submissions/7d1f0c1e-0000-4000-8000-000000000000")
            #expect(unknown.status == 404)
            #expect(try unknown.problem().detail?.contains("no submission") == true)
            let long = try await client.execute("/submissions/" + String(repeating: "a", count: 65))
            #expect(long.status == 400)
            _ = try long.problem()
            let route = try await client.execute("/nowhere")
            #expect(route.status == 404)
            #expect(try route.problem().detail == "no route for GET /nowhere")
            for method in ["GET", "PUT", "QUERY"] {
                let response = try await client.execute("/submit/3", method: method)
                #expect(response.status == 405, "\(method)")
                #expect(response.headers["allow"] == "POST")
                _ = try response.problem()
            }
            #expect(try await client.execute("/report", method: "HEAD").status != 405)
        }
    }

    @Test func aSubmissionIsAcceptedAtOnceAndEndsFailedWhenTheBrokerIsDown() async throws {
        try await Self.serve { client in
            let accepted = try await client.execute("/submit/3", method: "POST")
            #expect(accepted.status == 202)
            let submission = try accepted.json(Components.Schemas.Submission.self)
            #expect(submission.state == .running && submission.requested == 3 && submission.delivered == 0)
            #expect(accepted.headers["location"] == "/submissions/\(submission.id)")
            var polled = submission
            let deadline = ContinuousClock.now + .seconds(20)
            while polled.state == .running, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                let response = try await client.execute("/submissions/\(submission.id)")
                #expect(response.status == 200)
                polled = try response.json(Components.Schemas.Submission.self)
            }
            #expect(polled.state == .failed)
            #expect(polled.delivered == 0 && polled.failed == 3)
            #expect(polled.reason?.contains("127.0.0.1:\(closedPort)") == true, "\(polled.reason ?? "no reason")")
            #expect(polled.finishedAt != nil)
            // The API stays up.
            #expect(try await client.execute("/health").status == 200)
        }
    }

    @Test func moreSubmissionsThanMaxRunningAreRefusedWith503() async throws {
        let hangingBroker = try SilentListener()
        try await Self.serve(maxRunning: 1, maxBlockMs: 3000, brokerPort: hangingBroker.port) { client in
            #expect(try await client.execute("/submit/5", method: "POST").status == 202)
            let refused = try await client.execute("/submit/5", method: "POST")
            #expect(refused.status == 503)
            #expect(try refused.problem().detail?.contains("submissions are running") == true)
        }
    }

    @Test func theReportIsUserStatsAnswerAnd502WhenUserStatsIsDown() async throws {
        try await Self.serve { client in
            let down = try await client.execute("/report")
            #expect(down.status == 502)
            #expect(try down.problem().detail?.contains("user-stats at http://127.0.0.1:\(closedPort)") == true)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try UserStore(path: directory.appendingPathComponent("stats.sqlite").path)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<25 { try await store.upsert(Places.randomUser(using: &rng)) }
        let expected = try await store.report()
        try await withServer(StatsServer.router(store: store)) { stats in
            let direct = try await stats.execute("/report")
            #expect(try direct.json(Report.self) == expected)
            try await Self.serve(statsPort: stats.port) { client in
                let response = try await client.execute("/report")
                #expect(response.status == 200)
                let report = try response.json(Components.Schemas.Report.self)
                #expect(report.totalUsers == 25 && report.skippedEvents == 0)
                #expect(report.cities.map { "\($0.city),\($0.state),\($0.users)" }
                        == expected.cities.map { "\($0.city),\($0.state),\($0.users)" })
            }
        }
    }

    @Test func theDocumentAndItsPageAreServed() async throws {
        try await Self.serve { client in
            let yaml = try await client.execute("/openapi.yaml")
            #expect(yaml.status == 200)
            let committed = try String(contentsOf: URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().appendingPathComponent("../../OpenAPI/user-events-api.yaml").standardized, encoding: .utf8)
            #expect(yaml.text == committed)
            let page = try await client.execute("/docs")
            #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("/submit/{n}") && page.text.contains("href='/openapi.yaml'"))
            #expect(try await client.execute("/health").text.contains("\"ok\""))
        }
    }
}
