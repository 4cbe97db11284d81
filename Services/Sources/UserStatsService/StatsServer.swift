import Foundation
import Hummingbird
import ServiceSupport

/// user-stats over HTTP: `GET /report` (the per-city report as JSON, what the user-events API's
/// `/report` passes on) and `GET /health`. Reads go to GRDB's queue, never blocking a server thread.
package enum StatsServer {
    package static let defaultPort = 8001

    package static func router(store: UserStore) -> Router<BasicRequestContext> {
        let router = ServiceRouter.make(document: nil)
        router.get("report") { _, _ in
            try json(try await store.report())
        }
        router.get("health") { _, _ in
            try json(["status": "ok"])
        }
        return router
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
