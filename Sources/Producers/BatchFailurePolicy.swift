import KafkaClient
import KafkaWire

/// What the producer does with a batch whose ProduceRequest failed: retry it, or fail its records;
/// whether the idempotent producer moves to a new epoch (KIP-360) and whether metadata is asked for
/// again. A pure function of the facts, so the rules are tested without a broker; the sender
/// carries the decision out.
struct BatchFailurePolicy {
    /// The batch as it was sent.
    struct Batch: Equatable {
        /// It carries a producer id, epoch and sequence.
        var isStamped: Bool
        var producerEpoch: Int16
        var baseSequence: Int32
        /// Sends so far, this one included.
        var attempts: Int
        var pastDeliveryTimeout: Bool
    }

    /// The producer and the batch's partition now.
    struct Producer: Equatable {
        var idempotent: Bool
        var transactional: Bool
        var currentEpoch: Int16
        /// The sequence after the partition's last acknowledged batch, in the current epoch.
        var ackedSequence: Int32
        /// `retries`.
        var retries: Int
    }

    enum Outcome: Equatable {
        /// Back in its partition's queue, in sequence order, after retry.backoff.ms.
        case retry
        /// Its records fail; `timedOut` when a retriable error outlasted delivery.timeout.ms.
        case fail(timedOut: Bool)
    }

    struct Decision: Equatable {
        var outcome: Outcome
        /// The idempotent producer moves to the next epoch and restarts its sequences at 0, so the
        /// gap this batch leaves (or the producer state the broker lost) is no error.
        var bumpsEpoch: Bool
        /// The leaders may have moved: refresh metadata.
        var refreshesMetadata: Bool
    }

    static func decide(_ error: KafkaClientError, batch: Batch, producer: Producer) -> Decision {
        let code: ErrorCode? = if case .broker(let code) = error.kind { code } else { nil }
        // Sent in an epoch the producer has since left: its sequence means nothing any more.
        let oldEpoch = batch.isStamped && batch.producerEpoch != producer.currentEpoch
        let sequenced = producer.idempotent && batch.isStamped
        var retriable = error.isRetriable
        var bumpsEpoch = false
        if sequenced {
            switch code {
            case .outOfOrderSequenceNumber?:
                // Behind a batch that is itself being retried, or from before an epoch bump: retry.
                // As the first unacknowledged batch, the broker lost our sequence: give up on it.
                retriable = oldEpoch || batch.baseSequence != producer.ackedSequence
            case .invalidProducerEpoch?, .producerFenced?:
                // Only a batch of an older epoch may go again (in the new one); a transactional
                // producer's epoch is its coordinator's, and a fenced one is done.
                retriable = oldEpoch && !producer.transactional
            case .unknownProducerId?:
                // The broker no longer knows this producer (its state expired): a new epoch restarts it.
                retriable = true
                bumpsEpoch = !oldEpoch
            default:
                break
            }
        }
        let refreshesMetadata = error.kind == .connection
            || [ErrorCode.notLeaderOrFollower, .leaderNotAvailable, .unknownTopicOrPartition].contains(code)
        if retriable && batch.attempts <= producer.retries && !batch.pastDeliveryTimeout {
            return Decision(outcome: .retry, bumpsEpoch: bumpsEpoch && !producer.transactional, refreshesMetadata: refreshesMetadata)
        }
        // A sequence the broker never wrote leaves a gap: a new epoch starts past it.
        if sequenced && !oldEpoch { bumpsEpoch = true }
        return Decision(outcome: .fail(timedOut: retriable && batch.pastDeliveryTimeout),
                        bumpsEpoch: bumpsEpoch && !producer.transactional, refreshesMetadata: refreshesMetadata)
    }
}
