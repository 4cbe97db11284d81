// The names an application of this module needs from below it are part of its API (TopicPartition,
// CompressionCodec and ErrorCode from the codec; KafkaClientError and KafkaClient from the shared client
// core; ByteBuffer from NIO): it imports Producers alone.
@_exported import KafkaClient
@_exported import struct KafkaWire.TopicPartition
@_exported import enum KafkaWire.CompressionCodec
@_exported import struct KafkaWire.ErrorCode
@_exported import struct NIOCore.ByteBuffer
