import KafkaLog
import KafkaWire

// DescribeLogDirs: the one log directory, its partitions' sizes and the file system's space.

extension RequestDispatcher {
    /// Kafka's answer for a broker with one `log.dirs` entry: the directory (absolute path) with its
    /// total and usable bytes, and each requested partition held there (a null list: all of them;
    /// unknown topics and partitions are left out, as Kafka leaves them out). A single replica never
    /// lags: offsetLag is 0.
    func describeLogDirs(_ request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
        let logs = broker.logs.all
        var wanted: [TopicPartition]
        if let topics = request.topics {
            var seen: Set<TopicPartition> = []
            wanted = topics.flatMap { t in t.partitions.map { TopicPartition(t.topic, $0) } }.filter { logs[$0] != nil && seen.insert($0).inserted }
        } else {
            wanted = Array(logs.keys)
        }
        wanted.sort { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        var byTopic: [(String, [DescribeLogDirsResponse.DescribeLogDirsPartition])] = []
        for tp in wanted {
            guard let log = logs[tp] else { continue }
            let partition = DescribeLogDirsResponse.DescribeLogDirsPartition(partitionIndex: tp.partition, partitionSize: Int64(log.sizeInBytes),
                                                                            offsetLag: 0, isFutureKey: false)
            if byTopic.last?.0 == tp.topic { byTopic[byTopic.count - 1].1.append(partition) } else { byTopic.append((tp.topic, [partition])) }
        }
        let space = LogDirectory.space(broker.logs.directory)
        let result = DescribeLogDirsResponse.DescribeLogDirsResult(
            errorCode: 0, logDir: LogDirectory.absolutePath(broker.logs.directory),
            topics: byTopic.map { .init(name: $0.0, partitions: $0.1) },
            totalBytes: space?.total ?? -1, usableBytes: space?.usable ?? -1, isCordoned: false)
        return DescribeLogDirsResponse(throttleTimeMs: 0, errorCode: 0, results: [result])
    }
}
