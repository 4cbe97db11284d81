import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// The transaction coordinator through the request layer: producer ids and fencing, the states a
/// transaction passes through, KIP-890 verification, transactional offsets, and restarts.
@Suite struct TransactionCoordinatorTests {
    static func fixture() throws -> BrokerFixture {
        let fixture = try BrokerFixture()
        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "out", numPartitions: 2, replicationFactor: 1),
                                                          .init(name: "in", numPartitions: 1, replicationFactor: 1)]), version: 7)
        return fixture
    }

    static func initId(_ fixture: BrokerFixture, _ id: String, timeoutMs: Int32 = 60_000, producerId: Int64 = -1,
                       epoch: Int16 = -1, version: Int16 = 5) throws -> InitProducerIdResponse {
        try fixture.send(InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: timeoutMs, producerId: producerId,
                                               producerEpoch: epoch), version: version)
    }

    static func add(_ fixture: BrokerFixture, _ id: String, _ p: InitProducerIdResponse, _ partitions: [Int32] = [0],
                    topic: String = "out") throws -> [Int16] {
        let response = try fixture.send(AddPartitionsToTxnRequest(v3AndBelowTransactionalId: id, v3AndBelowProducerId: p.producerId,
                                                                  v3AndBelowProducerEpoch: p.producerEpoch,
                                                                  v3AndBelowTopics: [.init(name: topic, partitions: partitions)]), version: 3)
        return response.resultsByTopicV3AndBelow.flatMap { $0.resultsByPartition.map(\.partitionErrorCode) }
    }

    static func end(_ fixture: BrokerFixture, _ id: String, _ p: InitProducerIdResponse, commit: Bool) throws -> Int16 {
        try fixture.send(EndTxnRequest(transactionalId: id, producerId: p.producerId, producerEpoch: p.producerEpoch, committed: commit),
                         version: 4).errorCode
    }

    static func produce(_ fixture: BrokerFixture, _ id: String?, _ p: InitProducerIdResponse, sequence: Int32, partition: Int32 = 0,
                        value: String = "v") throws -> ProduceResponse.PartitionProduceResponse? {
        let batch = try RecordBatch(isTransactional: true, producerId: p.producerId, producerEpoch: p.producerEpoch, baseSequence: sequence,
                                    records: [Record(offset: 0, timestamp: 1, key: nil, value: ByteBuffer(string: value))]).encoded()
        let response = try fixture.send(ProduceRequest(transactionalId: id, acks: -1, timeoutMs: 1000, topicData: [
            .init(name: "out", partitionData: [.init(index: partition, records: batch)]),
        ]), version: 9)
        return response.responses.first?.partitionResponses.first
    }

    static func lastStable(_ fixture: BrokerFixture, partition: Int32 = 0) throws -> Int64 {
        let response = try fixture.send(ListOffsetsRequest(replicaId: -1, isolationLevel: 1, topics: [
            .init(name: "out", partitions: [.init(partitionIndex: partition, timestamp: -1)]),
        ]), version: 5)
        return response.topics[0].partitions[0].offset
    }

    @Test func initProducerIdHandsOutAnIdAndBumpsItsEpochFencingTheOlderOne() throws {
        let fixture = try Self.fixture()
        let first = try Self.initId(fixture, "app")
        #expect(first.errorCode == 0 && first.producerEpoch == 0)
        let second = try Self.initId(fixture, "app")
        #expect(second.errorCode == 0 && second.producerId == first.producerId && second.producerEpoch == 1)
        // The fenced producer cannot add partitions (PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before).
        #expect(try Self.add(fixture, "app", first) == [ErrorCode.producerFenced.rawValue])
        // KIP-360: a producer naming an epoch that is not the current one is fenced.
        #expect(try Self.initId(fixture, "app", producerId: first.producerId, epoch: 0).errorCode == ErrorCode.producerFenced.rawValue)
        #expect(try Self.initId(fixture, "app", producerId: first.producerId, epoch: 0, version: 3).errorCode
                == ErrorCode.invalidProducerEpoch.rawValue)
        // A transaction timeout above transaction.max.timeout.ms is refused.
        #expect(try Self.initId(fixture, "slow", timeoutMs: 900_001).errorCode == ErrorCode.invalidTransactionTimeout.rawValue)
        #expect(try Self.initId(fixture, "", timeoutMs: 1000).errorCode == ErrorCode.invalidRequest.rawValue)
    }

    @Test func aTransactionCommitsWithMarkersAndTheLastStableOffsetFollows() throws {
        let fixture = try Self.fixture()
        let p = try Self.initId(fixture, "app")
        // Unknown partitions fail the request; the others are not attempted and nothing is added.
        #expect(try Self.add(fixture, "app", p, [0, 7]) == [ErrorCode.operationNotAttempted.rawValue, ErrorCode.unknownTopicOrPartition.rawValue])
        // KIP-890: a transactional produce to a partition outside the transaction is refused.
        #expect(try Self.produce(fixture, "app", p, sequence: 0)?.errorCode == ErrorCode.invalidTxnState.rawValue)
        #expect(try Self.add(fixture, "app", p, [0, 1]) == [0, 0])
        #expect(try Self.produce(fixture, "app", p, sequence: 0)?.errorCode == 0)
        #expect(try Self.lastStable(fixture) == 0)
        let described = try fixture.send(DescribeTransactionsRequest(transactionalIds: ["app", "nope"]), version: 0)
        #expect(described.transactionStates[0].transactionState == "Ongoing")
        #expect(described.transactionStates[0].topics.map(\.partitions) == [[0, 1]])
        #expect(described.transactionStates[1].errorCode == ErrorCode.transactionalIdNotFound.rawValue)
        #expect(try Self.end(fixture, "app", p, commit: true) == 0)
        // The record and a marker in partition 0; a marker alone in partition 1.
        #expect(try Self.lastStable(fixture) == 2)
        #expect(try Self.lastStable(fixture, partition: 1) == 1)
        // A retried EndTxn is answered as the first; the other end, or one with nothing open, is not.
        #expect(try Self.end(fixture, "app", p, commit: true) == 0)
        #expect(try Self.end(fixture, "app", p, commit: false) == ErrorCode.invalidTxnState.rawValue)
        let listed = try fixture.send(ListTransactionsRequest(stateFilters: ["CompleteCommit", "Bogus"], producerIdFilters: [], durationFilter: -1), version: 1)
        #expect(listed.transactionStates.map(\.transactionalId) == ["app"] && listed.unknownStateFilters == ["Bogus"])
        // v2's pattern (KIP-1152): the whole id must match; a pattern that does not compile, or one past
        // 1,000 bytes, is INVALID_REGULAR_EXPRESSION.
        func listing(_ pattern: String) throws -> ListTransactionsResponse {
            try fixture.send(ListTransactionsRequest(stateFilters: [], producerIdFilters: [], durationFilter: -1,
                                                     transactionalIdPattern: pattern), version: 2)
        }
        #expect(try listing("a.p").transactionStates.map(\.transactionalId) == ["app"])
        #expect(try listing("ap").transactionStates.isEmpty)
        #expect(try listing("(").errorCode == ErrorCode.invalidRegularExpression.rawValue)
        #expect(try listing(String(repeating: "a", count: 1001)).errorCode == ErrorCode.invalidRegularExpression.rawValue)
    }

    @Test func transactionalOffsetsCountOnlyOnceTheTransactionCommits() throws {
        let fixture = try Self.fixture()
        let p = try Self.initId(fixture, "eos")
        func commitOffset(_ offset: Int64) throws -> Int16 {
            let add = try fixture.send(AddOffsetsToTxnRequest(transactionalId: "eos", producerId: p.producerId, producerEpoch: p.producerEpoch,
                                                              groupId: "g"), version: 3)
            #expect(add.errorCode == 0)
            let response = try fixture.send(TxnOffsetCommitRequest(transactionalId: "eos", groupId: "g", producerId: p.producerId,
                                                                   producerEpoch: p.producerEpoch, topics: [
                .init(name: "in", partitions: [.init(partitionIndex: 0, committedOffset: offset, committedMetadata: nil)]),
            ]), version: 3)
            return response.topics[0].partitions[0].errorCode
        }
        func fetched(requireStable: Bool = false) throws -> (Int64, Int16) {
            let response = try fixture.send(OffsetFetchRequest(groupId: "g", topics: [.init(name: "in", partitionIndexes: [0])],
                                                               requireStable: requireStable), version: 7)
            let partition = response.topics[0].partitions[0]
            return (partition.committedOffset, partition.errorCode)
        }
        #expect(try commitOffset(5) == 0)
        #expect(try fetched() == (-1, 0))
        #expect(try fetched(requireStable: true) == (-1, ErrorCode.unstableOffsetCommit.rawValue))
        #expect(try Self.end(fixture, "eos", p, commit: false) == 0)
        #expect(try fetched(requireStable: true) == (-1, 0))
        #expect(try commitOffset(7) == 0)
        #expect(try Self.end(fixture, "eos", p, commit: true) == 0)
        #expect(try fetched(requireStable: true) == (7, 0))
        // A restart replays the offsets log: the aborted offset stays out, the committed one in.
        let restarted = try fixture.restart(clean: false)
        let response = try restarted.send(OffsetFetchRequest(groupId: "g", topics: [.init(name: "in", partitionIndexes: [0])]), version: 7)
        #expect(response.topics[0].partitions[0].committedOffset == 7)
    }

    @Test func offsetsOutsideTheOpenTransactionOrFromAFencedEpochAreRefused() throws {
        let fixture = try Self.fixture()
        let p = try Self.initId(fixture, "eos")
        func commitOffset(_ producer: InitProducerIdResponse) throws -> Int16 {
            try fixture.send(TxnOffsetCommitRequest(transactionalId: "eos", groupId: "g", producerId: producer.producerId,
                                                   producerEpoch: producer.producerEpoch, topics: [
                .init(name: "in", partitions: [.init(partitionIndex: 0, committedOffset: 3, committedMetadata: nil)]),
            ]), version: 3).topics[0].partitions[0].errorCode
        }
        // No AddOffsetsToTxn: the offsets are not part of any open transaction.
        #expect(try commitOffset(p) == ErrorCode.invalidTxnState.rawValue)
        let added = try fixture.send(AddOffsetsToTxnRequest(transactionalId: "eos", producerId: p.producerId, producerEpoch: p.producerEpoch,
                                                           groupId: "g"), version: 3)
        #expect(added.errorCode == 0)
        // A new producer fences this one (and aborts its transaction): its late offsets are refused.
        #expect(try Self.initId(fixture, "eos").errorCode == ErrorCode.concurrentTransactions.rawValue)
        #expect(try commitOffset(p) == ErrorCode.producerFenced.rawValue)
        let fetched = try fixture.send(OffsetFetchRequest(groupId: "g", topics: [.init(name: "in", partitionIndexes: [0])], requireStable: true),
                                       version: 7)
        #expect(fetched.topics[0].partitions[0].errorCode == 0 && fetched.topics[0].partitions[0].committedOffset == -1)
    }

    @Test func aNewProducerAbortsTheTransactionItsPredecessorLeftOpenEvenAfterARestart() throws {
        let fixture = try Self.fixture()
        let old = try Self.initId(fixture, "app")
        #expect(try Self.add(fixture, "app", old) == [0])
        #expect(try Self.produce(fixture, "app", old, sequence: 0)?.errorCode == 0)
        let restarted = try fixture.restart(clean: false)
        #expect(try Self.lastStable(restarted) == 0)
        // The first InitProducerId fences and aborts, and asks to be retried.
        #expect(try Self.initId(restarted, "app").errorCode == ErrorCode.concurrentTransactions.rawValue)
        #expect(try Self.lastStable(restarted) == 2)
        let new = try Self.initId(restarted, "app")
        #expect(new.errorCode == 0 && new.producerId == old.producerId && new.producerEpoch == 2)
        // The zombie's late produce is refused with its old epoch.
        #expect(try Self.produce(restarted, "app", old, sequence: 1)?.errorCode == ErrorCode.invalidProducerEpoch.rawValue)
    }

    @Test func aTransactionPastItsTimeoutIsAbortedByTheCoordinator() throws {
        let fixture = try BrokerFixture(overrides: ["transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"])
        _ = try fixture.send(CreateTopicsRequest(topics: [.init(name: "out", numPartitions: 1, replicationFactor: 1)]), version: 7)
        let p = try Self.initId(fixture, "slow", timeoutMs: 1)
        #expect(try Self.add(fixture, "slow", p) == [0])
        #expect(try Self.produce(fixture, "slow", p, sequence: 0)?.errorCode == 0)
        Thread.sleep(forTimeInterval: 0.01)
        fixture.loop.advanceTime(by: .milliseconds(150))
        #expect(try Self.lastStable(fixture) == 2)
        let described = try fixture.send(DescribeTransactionsRequest(transactionalIds: ["slow"]), version: 0)
        #expect(described.transactionStates[0].transactionState == "CompleteAbort" && described.transactionStates[0].producerEpoch == 1)
        #expect(try Self.end(fixture, "slow", p, commit: true) == ErrorCode.producerFenced.rawValue)
    }
}
