import UserEventsOpenAPI
import Foundation
import Logging
import Producers
import ServiceLifecycle
import UserEventModel

/// The submissions of this process: each generates its users and produces them in the background
/// on one shared producer, and counts their delivery reports. The actor is the one owner of every
/// submission's state; the HTTP handlers only ask it.
///
/// As a `Service` it waits for graceful shutdown, then stops the running submissions from queuing
/// more users (those count as failed), waits until everything queued is delivered or failed, and
/// counts it; the producer, shut down after it, then closes.
package actor Submissions: Service {
    package struct Settings: Sendable {
        package var topic = "user-events"
        /// Submissions running at once; more are refused with 503 (each holds its users in memory).
        package var maxRunning = 4
        /// Finished submissions kept for polling; the oldest go first.
        package var keepFinished = 10_000

        package init() {}
    }

    private enum Outcome {
        case delivered
        case failed(String)
    }

    package enum StartResult: Sendable {
        case started(Components.Schemas.Submission)
        case busy(running: Int)
        case stopping
    }

    private let producer: KafkaProducer
    private let reports: DeliveryReports
    private let settings: Settings
    private let logger: Logger
    private var submissions: [String: Components.Schemas.Submission] = [:]
    private var finishedOrder: [String] = []
    /// The running submission each queued record belongs to.
    private var owners: [ProducerMessageID: String] = [:]
    /// Reports that arrived before `produce` returned their ids.
    private var early: [ProducerMessageID: Outcome] = [:]
    private var tasks: [String: Task<Void, Never>] = [:]
    /// Submissions not yet done or failed, and who waits for there to be none (shutdown).
    private var running = 0
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var stopping = false

    package init(producer: KafkaProducer, reports: DeliveryReports, settings: Settings, logger: Logger) {
        self.producer = producer
        self.reports = reports
        self.settings = settings
        self.logger = logger
    }

    package func start(count: Int) -> StartResult {
        guard !stopping else { return .stopping }
        guard tasks.count < settings.maxRunning else { return .busy(running: tasks.count) }
        let submission = Components.Schemas.Submission(
            id: UUID().uuidString.lowercased(), state: .running, requested: Int64(count), delivered: 0, failed: 0,
            createdAt: Date())
        submissions[submission.id] = submission
        running += 1
        let id = submission.id
        tasks[id] = Task { await self.produce(count, for: id) }
        logger.info("submission \(id): \(count) users")
        return .started(submission)
    }

    package func submission(_ id: String) -> Components.Schemas.Submission? {
        submissions[id]
    }

    /// Generates and queues the users one `produce` at a time: a call that throws has queued nothing,
    /// so every queued user has a known id and its report is counted.
    private func produce(_ count: Int, for id: String) async {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var rng = SystemRandomNumberGenerator()
        var queued = 0
        do {
            while queued < count {
                if stopping {
                    // A shutdown does not wait for users not yet generated: they fail, named as such.
                    fail(id, users: count - queued, reason: "the service stopped before \(count - queued) of the users were queued")
                    break
                }
                let user = Places.randomUser(using: &rng)
                let messageId = try await producer.produce(ProducerRecord(topic: settings.topic, key: user.id, value: try encoder.encode(user)))
                queued += 1
                if let outcome = early.removeValue(forKey: messageId) {
                    tally(outcome, for: id)
                } else {
                    owners[messageId] = id
                }
            }
        } catch {
            // Nothing more of it will be sent: the users not queued count as failed.
            fail(id, users: count - queued, reason: "\(error)")
        }
        tasks[id] = nil
    }

    private func fail(_ id: String, users: Int, reason: String) {
        guard var submission = submissions[id] else { return }
        submission.failed += Int64(users)
        if submission.reason == nil { submission.reason = reason }
        submissions[id] = submission
        finishIfComplete(id)
    }

    private func tally(_ outcome: Outcome, for id: String) {
        guard var submission = submissions[id] else { return }
        switch outcome {
        case .delivered:
            submission.delivered += 1
        case .failed(let reason):
            submission.failed += 1
            if submission.reason == nil { submission.reason = reason }
        }
        submissions[id] = submission
        finishIfComplete(id)
    }

    private func finishIfComplete(_ id: String) {
        guard var submission = submissions[id], submission.state == .running,
              submission.delivered + submission.failed >= submission.requested else { return }
        submission.state = submission.failed == 0 ? .done : .failed
        submission.finishedAt = Date()
        submissions[id] = submission
        running -= 1
        if running == 0 {
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters = []
        }
        logger.info("submission \(id) \(submission.state.rawValue): \(submission.delivered) delivered, \(submission.failed) failed\(submission.reason.map { " (\($0))" } ?? "")")
        finishedOrder.append(id)
        if finishedOrder.count > settings.keepFinished {
            let excess = finishedOrder.count - settings.keepFinished
            for old in finishedOrder[..<excess] { submissions[old] = nil }
            finishedOrder.removeFirst(excess)
        }
    }

    private func deliver(_ batch: DeliveryReportBatch) {
        for report in batch {
            let outcome: Outcome
            switch report.result {
            case .success: outcome = .delivered
            case .failure(let error): outcome = .failed(error.message)
            }
            if let owner = owners.removeValue(forKey: report.id) {
                tally(outcome, for: owner)
            } else {
                early[report.id] = outcome
            }
        }
    }

    package func run() async throws {
        let reports = self.reports
        let counting = Task { for await batch in reports.batches { self.deliver(batch) } }
        try? await gracefulShutdown()
        stopping = true
        for task in tasks.values { await task.value }
        await producer.flush()
        // Every queued user now has its report on the way; the last ones are counted before the
        // process goes on to close the producer.
        if running > 0 { await withCheckedContinuation { idleWaiters.append($0) } }
        counting.cancel()
    }
}
