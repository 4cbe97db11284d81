import Foundation
import Hummingbird
import HummingbirdTesting
import ServiceSupport

/// A port nothing listens on: connecting is refused at once.
let closedPort = 1

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The JSON problem every error of these services carries, checked to be one.
    func problem() throws -> ProblemDetails {
        guard headers[.contentType]?.hasPrefix(ProblemDetails.contentType) == true else {
            throw ProblemExpected(status: status.code, contentType: headers[.contentType], body: text)
        }
        return try JSONDecoder().decode(ProblemDetails.self, from: Data(buffer: body))
    }

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder.withISODates.decode(T.self, from: Data(buffer: body))
    }
}

struct ProblemExpected: Error {
    let status: Int
    let contentType: String?
    let body: String
}

extension JSONDecoder {
    static var withISODates: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a date: \(text)"))
            }
            return date
        }
        return decoder
    }
}

extension ByteBuffer {
    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]
