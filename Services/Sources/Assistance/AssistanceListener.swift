import AssistanceOpenAPI
import Consumers
import Foundation
import Logging
import ServiceLifecycle

/// A department's listener: reads its topic in a consumer group and logs each assistance request.
/// On graceful shutdown it closes the consumer (final commit, LeaveGroup); the loop then ends.
package struct AssistanceListener: Service {
    package let consumer: KafkaConsumer
    package let logger: Logger

    package init(consumer: KafkaConsumer, logger: Logger) {
        self.consumer = consumer
        self.logger = logger
    }

    package func run() async throws {
        let decoder = JSONDecoder()
        do {
            try await listen(decoder)
        } catch {
            await consumer.close()
            throw error
        }
        // The loop ends once close() has begun; this returns when it is done (LeaveGroup).
        await consumer.close()
    }

    private func listen(_ decoder: JSONDecoder) async throws {
        let consumer = self.consumer
        try await withGracefulShutdownHandler {
            for try await record in consumer.records {
                let value = record.value.map { Data($0.readableBytesView) } ?? Data()
                guard let event = try? decoder.decode(AssistanceRequestEvent.self, from: value) else {
                    logger.warning("skipped a record at \(record.topic)-\(record.partition)@\(record.offset): not an assistance request")
                    continue
                }
                // The description is the sender's text: quoted and escaped, it cannot forge log lines.
                logger.info("assistance request \(event.id) at \(event.requestedAt) for \(event.topic): \(event.description.debugDescription)",
                            metadata: ["partition": "\(record.partition)", "offset": "\(record.offset)"])
            }
        } onGracefulShutdown: {
            Task { await consumer.close() }
        }
    }
}
