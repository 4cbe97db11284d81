import AssistanceOpenAPI
import Hummingbird
import OpenAPIHummingbird
import ServiceSupport

/// The assistance service's routes: the generated operations on `AssistanceHandler`, and the document.
package enum AssistanceServer {
    package static let defaultPort = 8002

    package static func router(handler: some APIProtocol) throws -> Router<BasicRequestContext> {
        let router = ServiceRouter.make(document: OpenAPIDocumentPages(yaml: OpenAPIDocument.yaml, html: OpenAPIDocument.html,
                                                                      operations: OpenAPIDocument.operations))
        try handler.registerHandlers(on: router, configuration: ServiceRouter.openAPIConfiguration)
        return router
    }
}
