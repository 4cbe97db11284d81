import KafkaWire

/// Where a transactional id's transaction stands (Kafka's TransactionState, with its codes and names).
enum TransactionState: Int8, Sendable, CaseIterable {
    case empty = 0
    case ongoing = 1
    case prepareCommit = 2
    case prepareAbort = 3
    case completeCommit = 4
    case completeAbort = 5
    case dead = 6
    case prepareEpochFence = 7

    /// The name DescribeTransactions and ListTransactions report.
    var name: String {
        switch self {
        case .empty: return "Empty"
        case .ongoing: return "Ongoing"
        case .prepareCommit: return "PrepareCommit"
        case .prepareAbort: return "PrepareAbort"
        case .completeCommit: return "CompleteCommit"
        case .completeAbort: return "CompleteAbort"
        case .dead: return "Dead"
        case .prepareEpochFence: return "PrepareEpochFence"
        }
    }

    /// Markers are being written: the transaction's end has been decided, not yet finished.
    var isPreparing: Bool { self == .prepareCommit || self == .prepareAbort || self == .prepareEpochFence }
}

/// One transactional id as the coordinator keeps it, and as `__transaction_state` records it.
struct TransactionMetadata: Equatable, Sendable {
    let transactionalId: String
    var producerId: Int64
    /// The id before the last change (an epoch exhausted), for recognising a retried InitProducerId.
    var lastProducerId: Int64 = -1
    var producerEpoch: Int16
    var lastProducerEpoch: Int16 = -1
    var timeoutMs: Int32
    var state: TransactionState
    var partitions: Set<TopicPartition> = []
    /// When the open transaction began, -1 without one.
    var startTimestamp: Int64 = -1
    var lastUpdateTimestamp: Int64

    /// The epochs of the producer id are spent: the id goes on with `newId` at epoch 0, and the old id
    /// is kept to recognise a retry that still carries it.
    mutating func moveToProducerId(_ newId: Int64) {
        lastProducerId = producerId
        producerId = newId
        producerEpoch = 0
    }

    /// The partitions by topic, each topic's in order (DescribeTransactions, log records).
    var partitionsByTopic: [(topic: String, partitions: [Int32])] {
        Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { ($0.key, $0.value.map(\.partition).sorted()) }
    }
}
