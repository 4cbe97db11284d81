// The names an application of this module needs from below it are part of its API (TopicPartition
// from the codec; KafkaClientError and KafkaClient from the shared client core): it imports Producers alone.
@_exported import KafkaClient
@_exported import struct KafkaWire.TopicPartition
