import Hummingbird

/// The OpenAPI document a service is generated from, as committed (`/openapi.yaml`), and a readable
/// page of it (`/docs`, also `/`) made from the same document when the code was generated — no script
/// or stylesheet from elsewhere, so it reads the same offline.
public struct OpenAPIDocumentPages: Sendable {
    public let yaml: String
    public let html: String
    /// The document's paths and their methods: another method on one of them is a 405 with `Allow`.
    public let operations: [(path: String, methods: [String])]

    public init(yaml: String, html: String, operations: [(path: String, methods: [String])]) {
        self.yaml = yaml
        self.html = html
        self.operations = operations
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        let yaml = ByteBuffer(string: yaml)
        let html = ByteBuffer(string: html)
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"], body: .init(byteBuffer: yaml))
        }
        for path in ["docs", "/"] {
            router.get(RouterPath(path)) { _, _ in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: html))
            }
        }
    }
}
