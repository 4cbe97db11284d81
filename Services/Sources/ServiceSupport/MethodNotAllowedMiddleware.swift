import Hummingbird

/// A request for one of the document's paths with a method the document does not list — any method,
/// QUERY or PROPFIND as well as PUT — is a 405 naming the ones it does (`Allow`), not a 404.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let operations: [(template: [Substring], allow: [String])]

    public init(operations: [(path: String, methods: [String])]) {
        self.operations = operations.map { (Self.segments($0.path), $0.methods) }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let segments = Self.segments(request.uri.path)
        // HEAD is served wherever GET is (the router makes those endpoints).
        if let allowed = operations.first(where: { Self.matches($0.template, segments) })?.allow,
           !allowed.contains(request.method.rawValue), !(request.method == .head && allowed.contains("GET")) {
            let allow = allowed.joined(separator: ", ")
            throw HTTPError(.methodNotAllowed, headers: [.allow: allow],
                            message: "\(request.method) is not served at \(request.uri.path); \(allow) is")
        }
        return try await next(request, context)
    }

    static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// `{name}` in the template stands for any one segment.
    static func matches(_ template: [Substring], _ segments: [Substring]) -> Bool {
        template.count == segments.count && zip(template, segments).allSatisfy { pattern, segment in
            (pattern.first == "{" && pattern.last == "}") || pattern == segment
        }
    }
}
