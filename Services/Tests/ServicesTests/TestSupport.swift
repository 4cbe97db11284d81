import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import ServiceLifecycle
import ServiceSupport

/// A port nothing listens on: connecting is refused at once.
let closedPort = 1

/// Runs a router as a real server on a free loopback port (with the services it needs, under a
/// ServiceGroup as the executables run them) and hands the test a client for it. Real sockets and a
/// real HTTP client (URLSession), so what is tested is what a client of the service gets; it also
/// keeps AsyncHTTPClient and BoringSSL, which Hummingbird's testing module needs, out of the build.
func withServer<T: Sendable>(_ router: Router<BasicRequestContext>, services: [any Service] = [],
                             _ test: @Sendable (HTTPTestClient) async throws -> T) async throws -> T {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
                          logger: logger)
    let group = ServiceGroup(services: services + [app], logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        defer { tasks.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        do {
            let value = try await test(HTTPTestClient(port: port))
            await group.triggerGracefulShutdown()
            try await tasks.next()
            return value
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
    }
}

struct HTTPTestClient: Sendable {
    let port: Int

    func execute(_ path: String, method: String = "GET", headers: [String: String] = [:], body: String? = nil) async throws -> HTTPAnswer {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { throw URLError(.badURL) }
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body.map { Data($0.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return HTTPAnswer(status: http.statusCode, headers: fields, body: data)
    }
}

struct HTTPAnswer: Sendable {
    let status: Int
    /// Header names in lower case.
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The JSON problem every error of these services carries, checked to be one.
    func problem() throws -> ProblemDetails {
        guard headers["content-type"]?.hasPrefix(ProblemDetails.contentType) == true else {
            throw ProblemExpected(status: status, contentType: headers["content-type"], body: text)
        }
        return try JSONDecoder().decode(ProblemDetails.self, from: body)
    }

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder.withISODates.decode(T.self, from: body)
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

let jsonHeaders = ["Content-Type": "application/json"]

/// A loopback port that accepts connections (the kernel's backlog) and never answers: a broker that
/// hangs, so a submission stays running until max.block.ms.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, bound else {
            if fd >= 0 { close(fd) }
            throw POSIXError(.EADDRNOTAVAIL)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
