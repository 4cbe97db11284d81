import Foundation
import KafkaClient
import KafkaWire
import NIOPosix
import Testing

/// A real `minibroker` process on a free loopback port, for the client tests.
final class RunningBroker {
    private(set) var process = Process()
    let port: Int
    let directory = NSTemporaryDirectory() + "kafkaclient-test-" + UUID().uuidString
    private let overrides: [String]

    init(overrides: [String] = []) throws {
        port = Self.freePort()
        self.overrides = overrides
        try start()
    }

    /// Starts the broker on `port` and `directory` and waits until it accepts connections.
    func start() throws {
        // The broker binary is built beside the test bundle (`swift build --build-tests`), or named by MINIBROKER.
        let path = ProcessInfo.processInfo.environment["MINIBROKER"]
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("minibroker").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw KafkaClientError(.connection, "no minibroker binary at \(path): build it with `swift build --build-tests`")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--host", "127.0.0.1", "--port", "\(port)", "--data-dir", directory, "--log-level", "warning"]
            + overrides.flatMap { ["--override", $0] }
        try process.run()
        for _ in 0..<300 {
            if Self.canConnect(port) { return }
            usleep(20_000)
        }
        process.terminate()
        throw KafkaClientError(.connection, "minibroker did not start on port \(port)")
    }

    /// Stops the broker (SIGTERM, a clean shutdown) and starts it again on the same port and data.
    func restart() throws {
        stop()
        try start()
    }

    /// Stops the broker with SIGTERM (a clean shutdown); `start()` brings it back on the same port and data.
    func stop() {
        process.terminate()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var bootstrap: String { "127.0.0.1:\(port)" }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

@Suite(.serialized) struct KafkaClientTests {
    @Test func negotiatesVersionsAndReadsMetadata() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap, clientId: "client-test")
        let metadata = try await client.refreshMetadata(topics: ["auto-made"], allowAutoTopicCreation: true)
        #expect(metadata.brokers[0]?.port == broker.port && metadata.clusterId?.isEmpty == false)
        #expect(metadata.topics["auto-made"]?.partitions.count == 1)
        let connection = try await client.connection(to: 0)
        // The highest version both sides support: the broker serves Produce up to 13, Fetch up to 18.
        #expect(connection.version(of: .produce) == 13)
        #expect(connection.version(of: .fetch) == 18)
        #expect(connection.version(of: .createDelegationToken) == nil)
        await client.close()
    }

    @Test func pipelinedRequestsAreMatchedByCorrelationId() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        _ = try await client.refreshMetadata(topics: nil)
        let connection = try await client.connection(to: 0)
        // Many requests in flight at once on one connection; each answer belongs to its request.
        let names = (0..<50).map { "t\($0)" }
        try await withThrowingTaskGroup(of: (String, String?).self) { group in
            for name in names {
                group.addTask {
                    let response = try await connection.send(MetadataRequest(topics: [.init(name: name)], allowAutoTopicCreation: false))
                    return (name, response.topics.first?.name)
                }
            }
            for try await (asked, answered) in group { #expect(asked == answered) }
        }
        await client.close()
    }

    /// A request without an answer within its timeout fails as a timeout and closes the connection (as
    /// Kafka clients do: the answer may still come and must not be taken for another's); one answered in
    /// time leaves the connection open after its timer would have fired.
    @Test(.timeLimit(.minutes(1))) func aRequestUnansweredInTimeFailsAndClosesItsConnection() async throws {
        let proxy = try DelayingProxy(delay: .milliseconds(300))
        let broker = try RunningBroker()
        proxy.targetPort.withLockedValue { $0 = broker.port }
        let group = MultiThreadedEventLoopGroup.singleton
        let slow = try await BrokerConnection.connect(host: "127.0.0.1", port: proxy.port, clientId: "timeout-test", group: group)
        do {
            _ = try await slow.send(MetadataRequest(topics: [], allowAutoTopicCreation: false), timeout: .milliseconds(100))
            Issue.record("an answer 300 ms late came within 100 ms")
        } catch let error as KafkaClientError {
            #expect(error.kind == .timeout && error.message.contains("got no answer within 100 ms"), "\(error)")
        }
        for _ in 0..<100 where slow.isActive { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!slow.isActive, "the connection of a timed-out request is closed")

        let patient = try await BrokerConnection.connect(host: "127.0.0.1", port: proxy.port, clientId: "timeout-test", group: group)
        let answer = try await patient.send(MetadataRequest(topics: [], allowAutoTopicCreation: false), timeout: .milliseconds(600))
        #expect(answer.brokers.first?.port == Int32(broker.port))
        try await Task.sleep(for: .milliseconds(500))
        #expect(patient.isActive, "an answered request's timer does not close the connection")
        patient.close()
    }

    /// A broker that accepts connections and never answers (a proxy holding every byte for an hour) is
    /// an error after the client's request timeout — ApiVersions when connecting, then Metadata — not a
    /// hang: a producer's max.block.ms and a consumer's default.api.timeout.ms rest on it.
    @Test(.timeLimit(.minutes(1))) func aBrokerThatNeverAnswersIsAnErrorAfterTheRequestTimeout() async throws {
        let proxy = try DelayingProxy(delay: .hours(1))
        let broker = try RunningBroker()
        proxy.targetPort.withLockedValue { $0 = broker.port }
        let client = try KafkaClient(bootstrapServers: "127.0.0.1:\(proxy.port)", requestTimeout: .milliseconds(300))
        let started = ContinuousClock.now
        do {
            _ = try await client.refreshMetadata(topics: [])
            Issue.record("a broker that never answers gave metadata")
        } catch let error as KafkaClientError {
            #expect(error.message.contains("got no answer within 300 ms"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        await client.close()
    }

    @Test func unreachableBootstrapFailsClearly() async throws {
        let client = try KafkaClient(bootstrapServers: "127.0.0.1:\(RunningBroker.freePort())")
        do {
            _ = try await client.refreshMetadata(topics: nil)
            Issue.record("metadata from nowhere")
        } catch let error as KafkaClientError {
            #expect(error.message.contains("no bootstrap server reachable"))
        }
        #expect(throws: KafkaClientError.self) { try KafkaClient(bootstrapServers: "no-port") }
    }
}

/// Connection failures name the broker and say what went wrong in plain words (not NIO's dumps).
@Suite struct ConnectionErrorTests {
    @Test func aRefusedOrUnresolvableBrokerIsNamedWithTheCause() async throws {
        let port = RunningBroker.freePort()
        let refused = try KafkaClient(bootstrapServers: "127.0.0.1:\(port)")
        do {
            _ = try await refused.anyConnection()
            Issue.record("connected to a closed port")
        } catch let error as KafkaClientError {
            #expect(error.kind == .connection && error.message.hasSuffix("cannot connect to broker 127.0.0.1:\(port): connection refused"))
        }
        let unknown = try KafkaClient(bootstrapServers: "no-such-host.invalid:9092")
        do {
            _ = try await unknown.anyConnection()
            Issue.record("connected to a host that does not exist")
        } catch let error as KafkaClientError {
            #expect(error.message.hasSuffix("cannot connect to broker no-such-host.invalid:9092: the host name does not resolve"))
        }
    }
}

/// One classification of client errors for producer, consumer and admin client.
@Suite struct ErrorClassificationTests {
    @Test func retriableAndFatalAsKafkaDefinesThem() {
        func error(_ kind: KafkaClientError.Kind) -> KafkaClientError { KafkaClientError(kind, "") }
        #expect(error(.connection).isRetriable && error(.timeout).isRetriable)
        #expect(error(.broker(.notLeaderOrFollower)).isRetriable && error(.broker(.coordinatorLoadInProgress)).isRetriable)
        #expect(!error(.broker(.messageTooLarge)).isRetriable && !error(.broker(.messageTooLarge)).isFatal)
        // A closed client is not a connection problem: nothing to retry, and the end of that client.
        #expect(!error(.closed).isRetriable && error(.closed).isFatal && !KafkaClientError.Kind.closed.isRetriableConnectionProblem)
        #expect(error(.broker(.producerFenced)).isFatal && error(.broker(.fencedInstanceId)).isFatal)
        #expect(error(.configuration).isFatal && !error(.configuration).isRetriable)
        #expect(!error(.connection).isFatal && !error(.protocolViolation).isRetriable)
    }
}

@Suite struct ClosedClientTests {
    @Test func aClosedClientMakesNoConnections() async throws {
        let broker = try RunningBroker()
        let client = try KafkaClient(bootstrapServers: broker.bootstrap)
        _ = try await client.anyConnection()
        await client.close()
        do {
            _ = try await client.anyConnection()
            Issue.record("a closed client connected")
        } catch let error as KafkaClientError {
            #expect(error.kind == .closed)
        }
    }
}
