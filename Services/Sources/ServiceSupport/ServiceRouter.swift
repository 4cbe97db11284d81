import Hummingbird
import OpenAPIRuntime

/// A router with what every service here answers the same way: JSON problems for every error,
/// bodies bounded before any route reads them, the OpenAPI document and its page.
public enum ServiceRouter {
    /// Bodies are small JSON documents; 64 KiB is far above the largest the documents allow.
    public static let maxBodyBytes = 64 * 1024

    /// Dates with milliseconds, as the events carry them.
    public static let openAPIConfiguration = Configuration(dateTranscoder: .iso8601WithFractionalSeconds)

    public static func make(document: OpenAPIDocumentPages?) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: BodyLimitMiddleware(maxBytes: maxBodyBytes))
        if let document {
            router.add(middleware: MethodNotAllowedMiddleware(operations: document.operations))
            document.addRoutes(to: router)
        }
        return router
    }
}
