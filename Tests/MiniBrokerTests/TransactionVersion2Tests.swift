import Foundation
import KafkaLog
import KafkaWire
@testable import MiniBroker
import NIOCore
import Testing

/// Transaction version 2 (KIP-890 part 2) through the request layer: the feature level and the
/// versions it advertises, an epoch bump at every EndTxn v5 (and the old epoch fenced), partitions
/// added by Produce v12+ and offsets by TxnOffsetCommit v5, and version 1 still served beside it.
@Suite struct TransactionVersion2Tests {
    typealias T = TransactionCoordinatorTests

    static func produce(_ fixture: BrokerFixture, _ id: String, producerId: Int64, epoch: Int16, sequence: Int32, partition: Int32 = 0,
                        version: Int16 = 12) throws -> ProduceResponse.PartitionProduceResponse? {
        let batch = try RecordBatch(isTransactional: true, producerId: producerId, producerEpoch: epoch, baseSequence: sequence,
                                    records: [Record(offset: 0, timestamp: 1, key: nil, value: ByteBuffer(string: "v"))]).encoded()
        let response = try fixture.send(ProduceRequest(transactionalId: id, acks: -1, timeoutMs: 1000, topicData: [
            .init(name: "out", partitionData: [.init(index: partition, records: batch)]),
        ]), version: version)
        return response.responses.first?.partitionResponses.first
    }

    static func end(_ fixture: BrokerFixture, _ id: String, producerId: Int64, epoch: Int16, commit: Bool,
                    version: Int16 = 5) throws -> EndTxnResponse {
        try fixture.send(EndTxnRequest(transactionalId: id, producerId: producerId, producerEpoch: epoch, committed: commit), version: version)
    }

    static func advertised(_ fixture: BrokerFixture) throws -> [ApiKey: Int16] {
        let versions = try fixture.send(ApiVersionsRequest(clientSoftwareName: "test", clientSoftwareVersion: "1"), version: 3)
        return Dictionary(uniqueKeysWithValues: versions.apiKeys.compactMap { key in ApiKey(rawValue: key.apiKey).map { ($0, key.maxVersion) } })
    }

    @Test func theFeatureLevelDecidesWhatIsAdvertised() throws {
        let fixture = try T.fixture()
        let v2 = try Self.advertised(fixture)
        #expect(v2[.endTxn] == 5 && v2[.txnOffsetCommit] == 5 && v2[.addPartitionsToTxn] == 5)
        let lowered = try fixture.send(UpdateFeaturesRequest(timeoutMs: 1000, featureUpdates: [
            .init(feature: "transaction.version", maxVersionLevel: 1, upgradeType: 2),
        ], validateOnly: false), version: 1)
        #expect(lowered.errorCode == 0)
        let v1 = try Self.advertised(fixture)
        #expect(v1[.endTxn] == 4 && v1[.txnOffsetCommit] == 4 && v1[.addPartitionsToTxn] == 4)
        #expect(v1[.produce] == v2[.produce])
    }

    @Test func everyEndBumpsTheEpochAndFencesTheOldOne() throws {
        let fixture = try T.fixture()
        let p = try T.initId(fixture, "tv2")
        #expect(p.errorCode == 0 && p.producerEpoch == 0)
        // Produce v12 adds the partition itself: no AddPartitionsToTxn.
        #expect(try Self.produce(fixture, "tv2", producerId: p.producerId, epoch: 0, sequence: 0)?.errorCode == 0)
        let described = try fixture.send(DescribeTransactionsRequest(transactionalIds: ["tv2"]), version: 0)
        #expect(described.transactionStates[0].transactionState == "Ongoing" && described.transactionStates[0].topics.map(\.partitions) == [[0]])
        let ended = try Self.end(fixture, "tv2", producerId: p.producerId, epoch: 0, commit: true)
        #expect(ended.errorCode == 0 && ended.producerId == p.producerId && ended.producerEpoch == 1)
        #expect(try T.lastStable(fixture) == 2, "the record and its marker")
        // The marker carries the new epoch: the partition fences the old one from then on.
        let log = try #require(fixture.broker.topics.log("out", 0))
        guard case .slice(let slice) = try log.read(from: 0, maxBytes: 1 << 20, minOneBatch: true) else {
            Issue.record("nothing to read")
            return
        }
        let batches = try RecordBatch.decodeAll(try slice.file.read(at: slice.position, length: slice.length))
        #expect(batches.map(\.isControl) == [false, true] && batches.map(\.producerEpoch) == [0, 1])
        // A late write of the ended transaction (the old epoch) is fenced, not taken into a new one.
        #expect(try Self.produce(fixture, "tv2", producerId: p.producerId, epoch: 0, sequence: 1)?.errorCode
                == ErrorCode.invalidProducerEpoch.rawValue)
        #expect(try T.lastStable(fixture) == 2)
        // A retried EndTxn (the answer was lost) comes with the old epoch: answered as the first was.
        let retried = try Self.end(fixture, "tv2", producerId: p.producerId, epoch: 0, commit: true)
        #expect(retried.errorCode == 0 && retried.producerEpoch == 1)
        // The other end with the old epoch is fenced.
        #expect(try Self.end(fixture, "tv2", producerId: p.producerId, epoch: 0, commit: false).errorCode == ErrorCode.producerFenced.rawValue)
        // The next transaction, in the new epoch: its sequences start at 0; an abort bumps again.
        #expect(try Self.produce(fixture, "tv2", producerId: p.producerId, epoch: 1, sequence: 0)?.errorCode == 0)
        let aborted = try Self.end(fixture, "tv2", producerId: p.producerId, epoch: 1, commit: false)
        #expect(aborted.errorCode == 0 && aborted.producerEpoch == 2)
        #expect(try T.lastStable(fixture) == 4)
        // What the coordinator wrote survives a restart.
        let restarted = try fixture.restart(clean: false)
        let after = try restarted.send(DescribeTransactionsRequest(transactionalIds: ["tv2"]), version: 0)
        #expect(after.transactionStates[0].producerEpoch == 2 && after.transactionStates[0].transactionState == "CompleteAbort")
    }

    @Test func anAbortWithNothingOpenStillMovesToTheNextEpoch() throws {
        let fixture = try T.fixture()
        let p = try T.initId(fixture, "empty")
        // The producer may have sent a Produce that never arrived: its abort must fence that epoch.
        let aborted = try Self.end(fixture, "empty", producerId: p.producerId, epoch: 0, commit: false)
        #expect(aborted.errorCode == 0 && aborted.producerId == p.producerId && aborted.producerEpoch == 1)
        #expect(try Self.produce(fixture, "empty", producerId: p.producerId, epoch: 0, sequence: 0)?.errorCode
                == ErrorCode.invalidProducerEpoch.rawValue)
        // Its retry is answered as it was; a commit with nothing open is refused.
        #expect(try Self.end(fixture, "empty", producerId: p.producerId, epoch: 0, commit: false).producerEpoch == 1)
        #expect(try Self.end(fixture, "empty", producerId: p.producerId, epoch: 1, commit: true).errorCode == ErrorCode.invalidTxnState.rawValue)
        // Version 1 moves no epoch for an abort with nothing open.
        let other = try T.initId(fixture, "empty-v1")
        #expect(try Self.end(fixture, "empty-v1", producerId: other.producerId, epoch: 0, commit: false, version: 4).errorCode
                == ErrorCode.invalidTxnState.rawValue)
    }

    @Test func offsetsJoinTheTransactionWithTxnOffsetCommitV5() throws {
        let fixture = try T.fixture()
        let p = try T.initId(fixture, "eos2")
        func commitOffset(_ offset: Int64, epoch: Int16, version: Int16) throws -> Int16 {
            try fixture.send(TxnOffsetCommitRequest(transactionalId: "eos2", groupId: "g", producerId: p.producerId, producerEpoch: epoch,
                                                   topics: [.init(name: "in", partitions: [.init(partitionIndex: 0, committedOffset: offset,
                                                                                                 committedMetadata: nil)])]),
                             version: version).topics[0].partitions[0].errorCode
        }
        // Version 1's TxnOffsetCommit still needs AddOffsetsToTxn first.
        #expect(try commitOffset(5, epoch: 0, version: 4) == ErrorCode.invalidTxnState.rawValue)
        #expect(try commitOffset(5, epoch: 0, version: 5) == 0)
        let ended = try Self.end(fixture, "eos2", producerId: p.producerId, epoch: 0, commit: true)
        #expect(ended.errorCode == 0 && ended.producerEpoch == 1)
        let fetched = try fixture.send(OffsetFetchRequest(groupId: "g", topics: [.init(name: "in", partitionIndexes: [0])], requireStable: true),
                                       version: 7)
        #expect(fetched.topics[0].partitions[0].committedOffset == 5)
        // The old epoch's offsets are fenced.
        #expect(try commitOffset(9, epoch: 0, version: 5) == ErrorCode.producerFenced.rawValue)
    }

    @Test func versionOneStaysAsItWasBesideIt() throws {
        let fixture = try T.fixture()
        let p = try T.initId(fixture, "tv1")
        // Produce below v12 adds nothing: KIP-890's verification refuses a partition not added.
        #expect(try Self.produce(fixture, "tv1", producerId: p.producerId, epoch: 0, sequence: 0, version: 11)?.errorCode
                == ErrorCode.invalidTxnState.rawValue)
        #expect(try T.add(fixture, "tv1", p) == [0])
        #expect(try Self.produce(fixture, "tv1", producerId: p.producerId, epoch: 0, sequence: 0, version: 11)?.errorCode == 0)
        // EndTxn v4 keeps the epoch (and answers no id).
        let ended = try Self.end(fixture, "tv1", producerId: p.producerId, epoch: 0, commit: true, version: 4)
        #expect(ended.errorCode == 0)
        let described = try fixture.send(DescribeTransactionsRequest(transactionalIds: ["tv1"]), version: 0)
        #expect(described.transactionStates[0].producerEpoch == 0)

        // With transaction.version 1, Produce v12 adds nothing either.
        _ = try fixture.send(UpdateFeaturesRequest(timeoutMs: 1000, featureUpdates: [
            .init(feature: "transaction.version", maxVersionLevel: 1, upgradeType: 2),
        ], validateOnly: false), version: 1)
        #expect(try Self.produce(fixture, "tv1", producerId: p.producerId, epoch: 0, sequence: 1, version: 12)?.errorCode
                == ErrorCode.invalidTxnState.rawValue)
    }
}
