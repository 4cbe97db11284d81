import UserEventsOpenAPI
import Foundation
import Hummingbird
import OpenAPIHummingbird
import ServiceSupport

/// The user-events API's routes: the generated operations on `UserEventsHandler`, and the document.
package enum UserEventsServer {
    /// The original system's port.
    package static let defaultPort = 8000

    package static func router(handler: UserEventsHandler) throws -> Router<BasicRequestContext> {
        let router = ServiceRouter.make(document: OpenAPIDocumentPages(yaml: OpenAPIDocument.yaml, html: OpenAPIDocument.html,
                                                                      operations: OpenAPIDocument.operations))
        router.add(middleware: LocationHeaderMiddleware())
        try handler.registerHandlers(on: router, configuration: ServiceRouter.openAPIConfiguration)
        return router
    }
}

/// The generated server writes a string header as a percent-encoded URI component
/// (`%2Fsubmissions%2F…`); a Location is a URI reference and goes out as one.
struct LocationHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if let location = response.headers[.location], let decoded = location.removingPercentEncoding {
            response.headers[.location] = decoded
        }
        return response
    }
}
