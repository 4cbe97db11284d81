import KafkaWire
import NIOConcurrencyHelpers

/// The records of the last poll, shared by every iterator of `records`: breaking out of one
/// `for try await` loop and starting another goes on with the next record, none is skipped. Taking
/// a record under a lock costs far less than an actor hop per record; the consumer folds how far
/// the iterators got into its commit positions before a commit and before the next poll.
final class FetchedRecords: Sendable {
    private struct State {
        var records: [ConsumerRecord] = []
        /// Records before `handed` went to the application; those before `folded` are in `consumed`.
        var folded = 0
        var handed = 0
        /// Set by `close()`: nothing more is handed out.
        var stopped = false
    }
    private let state = NIOLockedValueBox(State())

    /// A new poll's records (the previous ones are all handed out and folded).
    func start(_ records: [ConsumerRecord]) {
        state.withLockedValue { $0 = State(records: records, stopped: $0.stopped) }
    }

    /// Hands out nothing more (the consumer is closing).
    func stop() {
        state.withLockedValue { $0.stopped = true }
    }

    /// The next record not handed out yet.
    func next() -> ConsumerRecord? {
        state.withLockedValue { state in
            guard !state.stopped, state.handed < state.records.count else { return nil }
            state.handed += 1
            return state.records[state.handed - 1]
        }
    }

    /// Every record not handed out yet (they share the poll's storage; nothing is copied).
    func nextBatch() -> ArraySlice<ConsumerRecord>? {
        state.withLockedValue { state in
            guard !state.stopped, state.handed < state.records.count else { return nil }
            let batch = state.records[state.handed...]
            state.handed = state.records.count
            return batch
        }
    }

    /// The next offset per partition after the records handed out since the last call.
    func take() -> [TopicPartition: Int64] {
        state.withLockedValue { state in
            var next: [TopicPartition: Int64] = [:]
            // A poll's records come a partition at a time: one entry per run, not per record.
            var index = state.folded
            while index < state.handed {
                let first = state.records[index]
                var last = index
                while last + 1 < state.handed, state.records[last + 1].partition == first.partition,
                      state.records[last + 1].topic == first.topic { last += 1 }
                next[first.topicPartition] = state.records[last].offset + 1
                index = last + 1
            }
            state.folded = state.handed
            return next
        }
    }

    /// Drops the records not handed out yet of the partitions `matching`; returns, per partition,
    /// the offset of the first dropped record (where its fetching has to start again).
    func discard(_ matching: (TopicPartition) -> Bool) -> [TopicPartition: Int64] {
        state.withLockedValue { state in
            var firstDropped: [TopicPartition: Int64] = [:]
            var kept = Array(state.records[..<state.handed])
            for record in state.records[state.handed...] {
                let partition = record.topicPartition
                if matching(partition) {
                    if firstDropped[partition] == nil { firstDropped[partition] = record.offset }
                } else {
                    kept.append(record)
                }
            }
            if !firstDropped.isEmpty { state.records = kept }
            return firstDropped
        }
    }
}
