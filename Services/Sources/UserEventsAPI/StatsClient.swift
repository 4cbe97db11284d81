import UserEventsOpenAPI
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Asks the user-stats service for its report over HTTP (`GET <stats-url>/report`): the API keeps no
/// copy of the users, so the two services share nothing but that answer.
package struct StatsClient: Sendable {
    package struct Unavailable: Error, CustomStringConvertible {
        package let description: String
    }

    package let baseURL: URL
    package let timeout: Duration

    package init(baseURL: URL, timeout: Duration = .seconds(5)) {
        self.baseURL = baseURL
        self.timeout = timeout
    }

    package func report() async throws -> Components.Schemas.Report {
        let url = baseURL.appendingPathComponent("report")
        var request = URLRequest(url: url)
        request.timeoutInterval = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Unavailable(description: "user-stats at \(baseURL.absoluteString) cannot be reached: \(error.localizedDescription)")
        }
        guard let status = (response as? HTTPURLResponse)?.statusCode, status == 200 else {
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            throw Unavailable(description: "user-stats at \(baseURL.absoluteString) answered \(status) to GET /report")
        }
        do {
            return try JSONDecoder().decode(Components.Schemas.Report.self, from: data)
        } catch {
            throw Unavailable(description: "user-stats at \(baseURL.absoluteString) sent a report this API cannot read")
        }
    }
}
