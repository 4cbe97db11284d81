import KafkaWire
import MiniBroker

/// What the fuzzed sequence committed, as the broker acknowledged it: every acknowledged offset
/// must read back, across restarts, until the group or the offset is deleted.
struct OffsetModel {
    private(set) var committed: [String: [TopicPartition: Int64]] = [:]

    mutating func observe<R: KafkaRequest>(_ request: R, _ response: R.Response, version: Int16, topics: TopicRegistry) {
        switch (request, response) {
        case let (commit as OffsetCommitRequest, answer as OffsetCommitResponse):
            for (topic, topicAnswer) in zip(commit.topics, answer.topics) {
                let name = version >= 10 ? topics.topic(id: topic.topicId)?.name : topic.name
                guard let name else { continue }
                for (partition, partitionAnswer) in zip(topic.partitions, topicAnswer.partitions) where partitionAnswer.errorCode == 0 {
                    committed[commit.groupId, default: [:]][TopicPartition(name, partition.partitionIndex)] = partition.committedOffset
                }
            }
        case let (delete as DeleteGroupsRequest, answer as DeleteGroupsResponse):
            for result in answer.results where result.errorCode == 0 && delete.groupsNames.contains(result.groupId) {
                committed[result.groupId] = nil
            }
        case let (delete as OffsetDeleteRequest, answer as OffsetDeleteResponse) where answer.errorCode == 0:
            for topic in answer.topics {
                for partition in topic.partitions where partition.errorCode == 0 {
                    committed[delete.groupId]?[TopicPartition(topic.name, partition.partitionIndex)] = nil
                }
            }
            if committed[delete.groupId]?.isEmpty == true { committed[delete.groupId] = nil }
        default:
            break
        }
    }
}
