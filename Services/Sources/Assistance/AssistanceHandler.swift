import AssistanceOpenAPI
import Foundation
import KafkaClient
import Logging
import OpenAPIRuntime
import Producers
import ServiceSupport

/// `POST /assistance`: checks the request, checks that its topic exists (asking the broker's metadata
/// without auto-creation: this call never creates a topic), then publishes the event and answers 201
/// once the broker has stored it (acks=all, idempotent producer) with where it landed.
package struct AssistanceHandler: APIProtocol {
    package let producer: KafkaProducer
    /// For the existence check: metadata without allow_auto_topic_creation.
    package let metadata: KafkaClient
    package let logger: Logger

    package init(producer: KafkaProducer, metadata: KafkaClient, logger: Logger) {
        self.producer = producer
        self.metadata = metadata
        self.logger = logger
    }

    package func requestAssistance(_ input: Operations.RequestAssistance.Input) async throws -> Operations.RequestAssistance.Output {
        let request = switch input.body { case .json(let request): request }
        if let problem = AssistanceRequestRules.problem(topic: request.topic, description: request.description) {
            return .badRequest(.problem(400, problem))
        }
        switch await topicExists(request.topic) {
        case .exists: break
        case .missing:
            return .notFound(.problem(404, "topic '\(request.topic)' does not exist; this service does not create topics"))
        case .unavailable(let reason):
            return .serviceUnavailable(.problem(503, "the broker cannot be asked about topic '\(request.topic)': \(reason)"))
        }
        let now = Date()
        // The answer's requestedAt is written by the OpenAPI layer's transcoder; the event's by the same.
        let event = AssistanceRequestEvent(id: UUID().uuidString.lowercased(), topic: request.topic, description: request.description,
                                           requestedAt: try ServiceRouter.openAPIConfiguration.dateTranscoder.encode(now))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            let stored = try await producer.send(ProducerRecord(topic: event.topic, key: event.id, value: try encoder.encode(event)))
            logger.info("assistance request \(event.id) stored at \(stored.topic)-\(stored.partition)@\(stored.offset)")
            return .created(.init(body: .json(.init(id: event.id, topic: event.topic, description: event.description, requestedAt: now,
                                                    partition: stored.partition, offset: stored.offset))))
        } catch let error as KafkaClientError where error.kind == .broker(.unknownTopicOrPartition) {
            return .notFound(.problem(404, "topic '\(request.topic)' does not exist; this service does not create topics"))
        } catch {
            logger.warning("assistance request \(event.id) for \(event.topic) not stored: \(error)")
            return .serviceUnavailable(.problem(503, "the request was not stored: \(error)"))
        }
    }

    package func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    enum TopicState {
        case exists
        case missing
        case unavailable(String)
    }

    /// Asked with the admin client's Metadata call, which caches nothing: a request naming missing
    /// topics leaves no trace in this process.
    func topicExists(_ topic: String) async -> TopicState {
        do {
            let found = try await KafkaAdminClient(client: metadata).describeTopics([topic])
            return found.contains { $0.name == topic && !$0.partitions.isEmpty } ? .exists : .missing
        } catch let error as KafkaClientError where error.kind == .broker(.unknownTopicOrPartition) {
            return .missing
        } catch {
            return .unavailable("\(error)")
        }
    }
}

extension Components.Responses.Problem {
    static func problem(_ status: Int, _ detail: String) -> Self {
        .init(body: .applicationProblemJson(.init(_type: "about:blank", title: HTTPStatusTitle.of(status), status: status, detail: detail)))
    }
}
