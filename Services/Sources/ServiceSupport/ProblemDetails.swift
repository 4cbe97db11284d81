import Foundation
import HTTPTypes
import Hummingbird

/// An error answer as RFC 9457 describes it (`application/problem+json`): every 4xx and 5xx of these
/// services carries one, so a client never has to parse an HTML page or an empty body.
public struct ProblemDetails: Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?

    public init(status: HTTPResponse.Status, detail: String? = nil) {
        self.type = "about:blank"
        self.title = HTTPStatusTitle.of(status.code)
        self.status = status.code
        self.detail = detail
    }

    public static let contentType = "application/problem+json"

    /// The problem as a response with its status.
    public func response(headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = Self.contentType
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(self)) ?? Data(#"{"title":"Internal Server Error","status":500}"#.utf8)
        return Response(status: HTTPResponse.Status(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The reason phrase of a status code, the title of its problems (a status made from a bare code
/// has none).
public enum HTTPStatusTitle {
    public static func of(_ code: Int) -> String {
        let known: [HTTPResponse.Status] = [
            .badRequest, .notFound, .methodNotAllowed, .notAcceptable, .contentTooLarge, .unsupportedMediaType,
            .unprocessableContent, .internalServerError, .badGateway, .serviceUnavailable,
        ]
        return known.first { $0.code == code }?.reasonPhrase ?? HTTPResponse.Status(code: code).reasonPhrase
    }
}
