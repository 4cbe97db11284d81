// The README's client examples, compiled and run by `make test` against a real broker.
//
//     swift run Quickstart 127.0.0.1:9092 orders
//
// Produces 100 records (one `send` awaited, the rest queued with `produce`), then consumes them as a
// group member run by a ServiceGroup, and prints what it read.
import Consumers
import Foundation
import Logging
import Producers
import ServiceLifecycle

let arguments = CommandLine.arguments
let bootstrap = arguments.count > 1 ? arguments[1] : "127.0.0.1:9092"
let topic = arguments.count > 2 ? arguments[2] : "orders"
let count = 100

// Producing. An awaited `send` returns once the broker has the record (after up to lingerMs):
// awaited one by one in a loop, each waits its own linger — queue many with `produce` instead.
var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: bootstrap)
producerConfiguration.compression = .zstd
let producer = try KafkaProducer(configuration: producerConfiguration)
let first = try await producer.send(ProducerRecord(topic: topic, key: "id-0", value: "{\"n\":0}"))
print("first record at partition \(first.partition) offset \(first.offset)")
for n in 1..<count {
    try await producer.produce(ProducerRecord(topic: topic, key: "id-\(n)", value: Data("{\"n\":\(n)}".utf8)))
}
await producer.close()  // flushes what is queued

// Consuming, as a service: the ServiceGroup runs the consumer and shuts it down (final commit,
// leaving the group) on SIGTERM/SIGINT or, here, once everything was read.
var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, groupId: "quickstart")
consumerConfiguration.autoOffsetReset = .earliest
let consumer = try KafkaConsumer(configuration: consumerConfiguration)
try await consumer.subscribe(topics: [topic])
let services = ServiceGroup(configuration: .init(services: [consumer], gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: Logger(label: "quickstart")))
let running = Task { try await services.run() }
var read = 0
for try await record in consumer.records {
    read += 1
    if read == count {
        print("last record: key \(record.keyString ?? "null") value \(record.valueString ?? "null")")
        break
    }
}
await services.triggerGracefulShutdown()
try await running.value
print("read \(read) records")

// One client core for several clients of a process: one metadata cache and one set of connections
// (a consumer's Fetches and group requests keep their own). Closing a producer leaves the client open.
let client = try KafkaClient(bootstrapServers: bootstrap, clientId: "quickstart-shared")
let admin = KafkaAdminClient(client: client)
let sharedProducer = try KafkaProducer(configuration: producerConfiguration, client: client)
let extra = try await sharedProducer.send(ProducerRecord(topic: topic, key: "id-extra", value: "{}"))
await sharedProducer.close()
let partitions = try await admin.listTopics()[topic] ?? 0
print("shared client: \(topic) has \(partitions) partition(s), the extra record is at offset \(extra.offset)")
await client.close()
