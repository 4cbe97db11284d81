import KafkaClient
import KafkaWire
@testable import Producers
import Testing

/// What the producer does with a failed batch, without a broker: retries within `retries` and
/// delivery.timeout.ms, and the idempotent producer's sequence and epoch rules (KIP-98, KIP-360).
struct BatchFailurePolicyTests {
    typealias Policy = BatchFailurePolicy

    static let idempotent = Policy.Producer(idempotent: true, transactional: false, currentEpoch: 3, ackedSequence: 100, retries: 5)
    static let plain = Policy.Producer(idempotent: false, transactional: false, currentEpoch: -1, ackedSequence: 0, retries: 5)

    static func batch(epoch: Int16 = 3, sequence: Int32 = 100, attempts: Int = 1, late: Bool = false, stamped: Bool = true) -> Policy.Batch {
        Policy.Batch(isStamped: stamped, producerEpoch: epoch, baseSequence: sequence, attempts: attempts, pastDeliveryTimeout: late)
    }

    static func broker(_ code: ErrorCode) -> KafkaClientError { KafkaClientError(.broker(code), "\(code)") }

    @Test func retriableErrorsAreRetriedWithinRetriesAndTheDeliveryTimeout() {
        let error = Self.broker(.notLeaderOrFollower)
        #expect(Policy.decide(error, batch: Self.batch(attempts: 5), producer: Self.plain)
                == .init(outcome: .retry, bumpsEpoch: false, refreshesMetadata: true))
        #expect(Policy.decide(error, batch: Self.batch(attempts: 6), producer: Self.plain)
                == .init(outcome: .fail(timedOut: false), bumpsEpoch: false, refreshesMetadata: true))
        #expect(Policy.decide(error, batch: Self.batch(late: true), producer: Self.plain)
                == .init(outcome: .fail(timedOut: true), bumpsEpoch: false, refreshesMetadata: true))
        // A dropped connection is retried and asks where the leaders are now.
        #expect(Policy.decide(KafkaClientError(.connection, "reset"), batch: Self.batch(), producer: Self.plain)
                == .init(outcome: .retry, bumpsEpoch: false, refreshesMetadata: true))
        // A timeout is retried; the leaders are not in doubt.
        #expect(Policy.decide(KafkaClientError(.timeout, "slow"), batch: Self.batch(), producer: Self.plain)
                == .init(outcome: .retry, bumpsEpoch: false, refreshesMetadata: false))
    }

    @Test func nonRetriableErrorsFailAtOnce() {
        for code in [ErrorCode.messageTooLarge, .invalidRecord, .topicAuthorizationFailed, .recordListTooLarge] {
            #expect(Policy.decide(Self.broker(code), batch: Self.batch(), producer: Self.plain)
                    == .init(outcome: .fail(timedOut: false), bumpsEpoch: false, refreshesMetadata: false))
        }
        #expect(Policy.decide(KafkaClientError(.closed, "closed"), batch: Self.batch(), producer: Self.plain).outcome == .fail(timedOut: false))
    }

    @Test func anIdempotentBatchThatFailsForGoodMovesTheProducerToANewEpoch() {
        // The sequence it held is never written: without a new epoch every later batch would be out of order.
        #expect(Policy.decide(Self.broker(.messageTooLarge), batch: Self.batch(), producer: Self.idempotent)
                == .init(outcome: .fail(timedOut: false), bumpsEpoch: true, refreshesMetadata: false))
        // One from an older epoch left no gap in the current one.
        #expect(Policy.decide(Self.broker(.messageTooLarge), batch: Self.batch(epoch: 2), producer: Self.idempotent).bumpsEpoch == false)
        // A batch never stamped holds no sequence.
        #expect(Policy.decide(Self.broker(.messageTooLarge), batch: Self.batch(stamped: false), producer: Self.idempotent).bumpsEpoch == false)
    }

    @Test func outOfOrderSequence() {
        let error = Self.broker(.outOfOrderSequenceNumber)
        // Behind a batch being retried (not the first unacknowledged one): it goes again after it.
        #expect(Policy.decide(error, batch: Self.batch(sequence: 150), producer: Self.idempotent).outcome == .retry)
        // Sent before an epoch bump: it goes again, in the new epoch.
        #expect(Policy.decide(error, batch: Self.batch(epoch: 2, sequence: 100), producer: Self.idempotent).outcome == .retry)
        // The first unacknowledged batch: the broker lost our sequence; this batch fails, a new epoch starts.
        #expect(Policy.decide(error, batch: Self.batch(sequence: 100), producer: Self.idempotent)
                == .init(outcome: .fail(timedOut: false), bumpsEpoch: true, refreshesMetadata: false))
    }

    @Test func unknownProducerIdRestartsTheProducerInANewEpochAndRetries() {
        #expect(Policy.decide(Self.broker(.unknownProducerId), batch: Self.batch(), producer: Self.idempotent)
                == .init(outcome: .retry, bumpsEpoch: true, refreshesMetadata: false))
        // Already from an older epoch: the bump happened.
        #expect(Policy.decide(Self.broker(.unknownProducerId), batch: Self.batch(epoch: 2), producer: Self.idempotent)
                == .init(outcome: .retry, bumpsEpoch: false, refreshesMetadata: false))
        // Out of retries: it fails, with one bump, not two.
        #expect(Policy.decide(Self.broker(.unknownProducerId), batch: Self.batch(attempts: 6), producer: Self.idempotent)
                == .init(outcome: .fail(timedOut: false), bumpsEpoch: true, refreshesMetadata: false))
    }

    @Test func fencedEpochs() {
        for code in [ErrorCode.invalidProducerEpoch, .producerFenced] {
            // A batch of the current epoch was fenced: it fails.
            #expect(Policy.decide(Self.broker(code), batch: Self.batch(), producer: Self.idempotent).outcome == .fail(timedOut: false))
            // One of an older epoch goes again in the current one.
            #expect(Policy.decide(Self.broker(code), batch: Self.batch(epoch: 2), producer: Self.idempotent).outcome == .retry)
        }
    }

    @Test func aTransactionalProducersEpochIsItsCoordinators() {
        var transactional = Self.idempotent
        transactional.transactional = true
        // Its failures abort the transaction; the epoch moves when the coordinator says so, not here.
        #expect(Policy.decide(Self.broker(.messageTooLarge), batch: Self.batch(), producer: transactional)
                == .init(outcome: .fail(timedOut: false), bumpsEpoch: false, refreshesMetadata: false))
        #expect(Policy.decide(Self.broker(.invalidProducerEpoch), batch: Self.batch(epoch: 2), producer: transactional).outcome
                == .fail(timedOut: false))
        #expect(Policy.decide(Self.broker(.unknownProducerId), batch: Self.batch(), producer: transactional)
                == .init(outcome: .retry, bumpsEpoch: false, refreshesMetadata: false))
    }
}
