// The shared client core's names (TopicPartition, KafkaClientError, KafkaClient) are part of this
// module's API: an application imports Consumers alone.
@_exported import KafkaClient
