// The names an application of this module needs from below it are part of its API (TopicPartition,
// RecordHeader and ErrorCode from the codec; KafkaClientError and KafkaClient from the shared client
// core; ByteBuffer, which keys and values are, from NIO): it imports Consumers alone.
@_exported import KafkaClient
@_exported import struct KafkaWire.TopicPartition
@_exported import struct KafkaWire.RecordHeader
@_exported import struct KafkaWire.ErrorCode
@_exported import struct NIOCore.ByteBuffer
