import UserEventsOpenAPI
import Foundation
import OpenAPIRuntime
import ServiceSupport

/// The operations of OpenAPI/user-events-api.yaml. The generated layer has decoded the request and
/// checked its types; the limits the document states are checked here.
package struct UserEventsHandler: APIProtocol {
    /// The largest submission (the document's `maximum` for n).
    package static let maxUsers: Int64 = 100_000

    package let submissions: Submissions
    package let stats: StatsClient

    package init(submissions: Submissions, stats: StatsClient) {
        self.submissions = submissions
        self.stats = stats
    }

    package func submitUsers(_ input: Operations.SubmitUsers.Input) async throws -> Operations.SubmitUsers.Output {
        let n = input.path.n
        guard n >= 1, n <= Self.maxUsers else {
            return .badRequest(.problem(400, "n must be a whole number from 1 to \(Self.maxUsers), not \(n)"))
        }
        switch await submissions.start(count: Int(n)) {
        case .started(let submission):
            return .accepted(.init(headers: .init(location: "/submissions/\(submission.id)"), body: .json(submission)))
        case .busy(let running):
            return .serviceUnavailable(.problem(503, "\(running) submissions are running, the most this service runs at once; try again when one is done"))
        case .stopping:
            return .serviceUnavailable(.problem(503, "the service is stopping"))
        }
    }

    package func getSubmission(_ input: Operations.GetSubmission.Input) async throws -> Operations.GetSubmission.Output {
        let id = input.path.id
        guard id.utf8.count <= 64 else { return .badRequest(.problem(400, "a submission id has at most 64 characters")) }
        guard let submission = await submissions.submission(id) else {
            return .notFound(.problem(404, "no submission '\(id)' (ids come from POST /submit/{n}; finished ones are kept for a while)"))
        }
        return .ok(.init(body: .json(submission)))
    }

    package func getReport(_ input: Operations.GetReport.Input) async throws -> Operations.GetReport.Output {
        do {
            return .ok(.init(body: .json(try await stats.report())))
        } catch {
            return .badGateway(.problem(502, "\(error)"))
        }
    }

    package func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }
}

extension Components.Responses.Problem {
    static func problem(_ status: Int, _ detail: String) -> Self {
        let title = HTTPStatusTitle.of(status)
        return .init(body: .applicationProblemJson(.init(_type: "about:blank", title: title, status: status, detail: detail)))
    }
}
