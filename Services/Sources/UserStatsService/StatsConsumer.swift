import Consumers
import Foundation
import Logging
import ServiceLifecycle
import UserEventModel

/// The stats service's consumer loop as a `Service`: stores each user event (once per id), skips
/// malformed ones (recorded once by position), commits after the write (at least once), and logs a
/// report every interval. On graceful shutdown it closes the consumer, which stops handing out
/// records, commits and leaves the group; the loop then ends.
package struct StatsConsumer: Service {
    package let consumer: KafkaConsumer
    package let store: UserStore
    package let reportInterval: Duration
    package let logger: Logger

    package init(consumer: KafkaConsumer, store: UserStore, reportInterval: Duration, logger: Logger) {
        self.consumer = consumer
        self.store = store
        self.reportInterval = reportInterval
        self.logger = logger
    }

    package func run() async throws {
        let consumer = self.consumer
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await logReports() }
                group.addTask { for await event in consumer.events { logger.info("rebalance: \(event)") } }
                defer { group.cancelAll() }
                try await consume()
            }
        } onGracefulShutdown: {
            Task { await consumer.close() }
        }
        // The loop ends once close() has begun; this returns when it is done (commit, LeaveGroup).
        await consumer.close()
        if let report = try? await store.report() {
            logger.info("user-stats stopped with \(report.totalUsers) users stored")
        }
    }

    private func consume() async throws {
        let decoder = JSONDecoder()
        do {
            for try await record in consumer.records {
                let value = record.value.map { Data($0.readableBytesView) } ?? Data()
                do {
                    let user = try decoder.decode(UserEvent.self, from: value)
                    guard UUID(uuidString: user.id) != nil else { throw MalformedEvent(reason: "id '\(user.id)' is not a UUID") }
                    if try await store.upsert(user) {
                        logger.info("New user inserted: \(String(decoding: value, as: UTF8.self))")
                    }
                } catch is DecodingError {
                    try await store.skip(topic: record.topic, partition: record.partition, offset: record.offset, reason: "not a user event")
                    logger.warning("skipped a malformed event at \(record.topic)-\(record.partition)@\(record.offset): not a user event")
                } catch let error as MalformedEvent {
                    try await store.skip(topic: record.topic, partition: record.partition, offset: record.offset, reason: error.reason)
                    logger.warning("skipped a malformed event at \(record.topic)-\(record.partition)@\(record.offset): \(error.reason)")
                }
                // At least once: the offset moves only after the user is stored.
                try await consumer.commit(offsets: [record.topicPartition: record.offset + 1])
            }
        } catch let error as KafkaClientError where error.kind == .closed {
            // Closed by a graceful shutdown between a write and its commit: the record comes again to
            // the next member and is stored once (upsert by id).
        } catch {
            logger.error("user-stats stopped: \(error)")
            await consumer.close()
            throw error
        }
    }

    private func logReports() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: reportInterval)
            guard !Task.isCancelled, let report = try? await store.report() else { continue }
            let counts = report.cities.map { "\($0.city): \($0.users)" }.joined(separator: ", ")
            logger.info("New report generated (\(report.totalUsers) users, \(report.skippedEvents) skipped): \(counts)")
        }
    }
}

struct MalformedEvent: Error {
    let reason: String
}
