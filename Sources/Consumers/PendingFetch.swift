import KafkaClient
import KafkaWire
import NIOCore
import NIOConcurrencyHelpers
import Synchronization

/// A Fetch on the wire and what it asked for, so that a stale answer (after a seek, a pause or a
/// rebalance) is recognised and dropped.
struct PendingFetch: Sendable {
    var requested: [TopicPartition: Int64]
    var generation: Int
    var response: AnswerSlot<FetchResponse>
    /// The Fetch written from the event loop when this one's answer came while the consumer waited.
    var followUp: FollowUpSlot

    /// Writes `request` to `connection`. If its answer comes while the consumer is waiting for it, the
    /// next Fetch (the same partitions, each from after the answer's complete batches) is written from
    /// the event loop before the consumer wakes: the broker sends again while the consumer takes in
    /// this answer, with no hop to the consumer and back in between. An answer that comes before the
    /// consumer waits sends nothing (the consumer is behind and sends the next Fetch itself when it
    /// gets there), so no more answers wait unread than when the consumer sends every Fetch.
    ///
    /// Nor does an answer to a Fetch sent before the consumer's `epoch` moved (a seek, pause, resume or
    /// rebalance): the Fetch after it would be stale, and one at the log end would wait fetch.max.wait.ms
    /// at the broker in front of the consumer's own next Fetch (a broker answers a connection in order).
    static func send(_ request: FetchRequest, requested: [TopicPartition: Int64], generation: Int,
                     epoch: FetchEpoch, sentAt: Int, on connection: BrokerConnection, timeout: TimeAmount) throws -> PendingFetch {
        let followUp = FollowUpSlot()
        let answer = AnswerSlot<FetchResponse> { response in
            guard epoch.current == sentAt,
                  let (next, nextRequested) = following(request, requested: requested, answer: response) else { return }
            followUp.store(try? send(next, requested: nextRequested, generation: generation, epoch: epoch, sentAt: sentAt,
                                     on: connection, timeout: timeout))
        }
        try connection.write(request, timeout: timeout, completion: answer.fill)
        return PendingFetch(requested: requested, generation: generation, response: answer, followUp: followUp)
    }

    /// The Fetch after `request` once `answer` came: each partition from after its complete batches
    /// (read from the batch headers). Nil when the answer moved nothing or carries an error, which the
    /// consumer deals with before fetching again.
    static func following(_ request: FetchRequest, requested: [TopicPartition: Int64],
                          answer: FetchResponse) -> (FetchRequest, [TopicPartition: Int64])? {
        guard answer.errorCode == 0 else { return nil }
        var names: [KafkaUUID: String] = [:]
        for topic in request.topics { names[topic.topicId] = topic.topic }
        var next = requested
        for topic in answer.responses {
            let name = topic.topic.isEmpty ? names[topic.topicId] ?? "" : topic.topic
            for data in topic.partitions {
                let partition = TopicPartition(name, data.partitionIndex)
                guard data.errorCode == 0, let from = requested[partition] else { return nil }
                if let records = data.records { next[partition] = FetchedRecordSet.offset(after: records, from: from) }
            }
        }
        guard next != requested else { return nil }
        var following = request
        for t in following.topics.indices {
            let topic = following.topics[t].topic
            for p in following.topics[t].partitions.indices {
                if let offset = next[TopicPartition(topic, following.topics[t].partitions[p].partition)] {
                    following.topics[t].partitions[p].fetchOffset = offset
                }
            }
        }
        return (following, next)
    }
}

/// A counter the consumer moves and the event loop reads.
final class FetchEpoch: Sendable {
    private let value = Atomic<Int>(0)

    var current: Int { value.load(ordering: .acquiring) }
    func advance() { value.add(1, ordering: .releasing) }
}

/// Where the event loop leaves the Fetch it wrote ahead, for the consumer to take.
final class FollowUpSlot: Sendable {
    private let fetch = NIOLockedValueBox<PendingFetch?>(nil)

    func store(_ pending: PendingFetch?) { fetch.withLockedValue { $0 = pending } }
    func take() -> PendingFetch? { fetch.withLockedValue { $0.take() } }
}
