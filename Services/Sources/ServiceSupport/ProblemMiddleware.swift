import Hummingbird
import Logging
import OpenAPIRuntime

/// Turns every error that leaves a route into a JSON problem with the right status: a request the
/// OpenAPI layer could not read (a path parameter that is not a number, malformed JSON, a wrong type,
/// a missing body) is a 400 or 415, an unknown route a 404, and anything else a 500 that is logged —
/// never Hummingbird's bare status or an HTML page.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            let status = error.httpStatus
            if status.kind == .serverError {
                context.logger.error("\(request.method) \(request.uri.path) failed: \(error.underlyingError)")
                return ProblemDetails(status: status).response()
            }
            return ProblemDetails(status: status, detail: Self.describe(error)).response()
        } catch let error as HTTPError {
            let detail = error.body ?? (error.status == .notFound ? "no route for \(request.method) \(request.uri.path)" : nil)
            return ProblemDetails(status: error.status, detail: detail).response(headers: error.headers)
        } catch let error as any HTTPResponseError {
            return ProblemDetails(status: error.status).response()
        } catch {
            context.logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            return ProblemDetails(status: .internalServerError).response()
        }
    }

    /// What the client got wrong, in the OpenAPI layer's words without its type dumps.
    static func describe(_ error: ServerError) -> String {
        if let decoding = error.underlyingError as? DecodingError {
            switch decoding {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context), .dataCorrupted(let context):
                let path = context.codingPath.map(\.stringValue).filter { !$0.isEmpty }.joined(separator: ".")
                return path.isEmpty ? "the request could not be read: \(context.debugDescription)"
                    : "'\(path)': \(context.debugDescription)"
            @unknown default:
                return "the request could not be read"
            }
        }
        return error.causeDescription
    }
}
