// swift-tools-version:6.2
import PackageDescription

/// Our own targets build without warnings: a warning is an error (dependencies keep their own settings).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "SwiftKafka",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "KafkaWire", targets: ["KafkaWire"]),
        .executable(name: "kafkawire-generator", targets: ["KafkaWireGenerator"]),
        .executable(name: "kafkawire-check", targets: ["KafkaWireCheck"]),
        .library(name: "KafkaLog", targets: ["KafkaLog"]),
        .library(name: "MiniBroker", targets: ["MiniBroker"]),
        .executable(name: "minibroker", targets: ["MiniBrokerMain"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
        .library(name: "KafkaSASL", targets: ["KafkaSASL"]),
        .library(name: "Producers", targets: ["Producers"]),
        .executable(name: "kafka-bench", targets: ["KafkaBench"]),
        .library(name: "Consumers", targets: ["Consumers"]),
        .executable(name: "kfk", targets: ["KafkaCLI"]),
        .executable(name: "minibroker-fuzz", targets: ["MiniBrokerFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // SCRAM's hashes and HMACs (SASL); 3.x or 4.x, whichever the rest of an application resolves.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // TLS listeners and TLS client connections (SSL, SASL_SSL).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // `make docs`: DocC for the client products (a plugin; nothing of it is built by `swift build`).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System C libraries for the four Kafka compression codecs.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy"),
        // CRC32C with the SSE4.2 instruction and a portable fallback.
        .target(name: "CKafkaShim", path: "Sources/CKafkaShim"),
        .target(
            name: "KafkaWire",
            dependencies: [
                "CKafkaShim", "CZlib", "CLZ4", "CZstd", "CSnappy",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/KafkaWire",
            swiftSettings: strict
        ),
        // Reads the Kafka JSON message specs and writes Sources/KafkaWire/Generated.
        .executableTarget(name: "KafkaWireGenerator", path: "Sources/KafkaWireGenerator", swiftSettings: strict),
        // JSON-lines front end to the codec, driven by the Python interop tests.
        .executableTarget(
            name: "KafkaWireCheck",
            dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/KafkaWireCheck",
            swiftSettings: strict
        ),
        // The durable segment log: files, indexes, recovery, retention. Knows record batches, not requests.
        .target(
            name: "KafkaLog",
            dependencies: [
                "KafkaWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/KafkaLog",
            swiftSettings: strict
        ),
        // The broker: configuration, the request layer (protocol <-> log) and the network server.
        .target(
            name: "MiniBroker",
            dependencies: [
                "KafkaWire", "KafkaLog", "KafkaSASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/MiniBroker",
            swiftSettings: strict
        ),
        // The operator CLI on the admin client and the clients: any Kafka broker's topics, groups,
        // cluster and quotas, and a quick produce/consume.
        .executableTarget(
            name: "KafkaCLI",
            dependencies: [
                "KafkaClient",
                "KafkaWire",
                "Producers",
                "Consumers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/KafkaCLI",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "MiniBrokerMain",
            dependencies: [
                "MiniBroker", "KafkaSASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Sources/MiniBrokerMain",
            swiftSettings: strict
        ),
        // SASL's mechanisms (PLAIN, SCRAM-SHA-256/512) as pure message exchanges, for the broker and the clients.
        .target(
            name: "KafkaSASL",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/KafkaSASL",
            swiftSettings: strict
        ),
        // The client core shared by the producer and the consumer: connections, versions, metadata.
        .target(
            name: "KafkaClient",
            dependencies: [
                "KafkaWire", "KafkaSASL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            path: "Sources/KafkaClient",
            swiftSettings: strict
        ),
        // The pure-Swift producer.
        .target(
            name: "Producers",
            dependencies: [
                "KafkaClient", "KafkaWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Producers",
            swiftSettings: strict
        ),
        // The pure-Swift group consumer.
        .target(
            name: "Consumers",
            dependencies: [
                "KafkaClient", "KafkaWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Consumers",
            swiftSettings: strict
        ),
        // Load generator for any broker, on our clients (Benchmarks/ also holds the microbenchmarks).
        .executableTarget(
            name: "KafkaBench",
            dependencies: [
                "Producers", "Consumers", "KafkaClient", "KafkaWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/KafkaBench",
            swiftSettings: strict
        ),
        // Random values for every message of the specs (generated) and the source they draw from:
        // the codec's property tests and the broker fuzzer share them.
        .target(
            name: "KafkaWireRandom",
            dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/KafkaWireRandom",
            swiftSettings: strict
        ),
        // The stateful request fuzzer: request sequences against the request layer in-process, with
        // restarts, checking that nothing traps, every answer decodes and committed offsets survive.
        .target(
            name: "BrokerFuzzer",
            dependencies: [
                "MiniBroker", "KafkaLog", "KafkaWire", "KafkaWireRandom",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/BrokerFuzzer",
            swiftSettings: strict
        ),
        // `make fuzz`: runs the fuzzer for as long as asked and keeps failing sequences as files.
        .executableTarget(
            name: "MiniBrokerFuzz",
            dependencies: ["BrokerFuzzer", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Fuzz/MiniBrokerFuzz",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KafkaClientTests",
            dependencies: ["KafkaClient", "Producers", "Consumers", "KafkaWire", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "MetricsTestKit", package: "swift-metrics")],
            path: "Tests/KafkaClientTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KafkaLogTests",
            dependencies: ["KafkaLog", "KafkaWire", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            path: "Tests/KafkaLogTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "MiniBrokerTests",
            dependencies: [
                "MiniBroker", "KafkaWire", "KafkaLog", "BrokerFuzzer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/MiniBrokerTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KafkaSASLTests",
            dependencies: ["KafkaSASL"],
            path: "Tests/KafkaSASLTests",
            swiftSettings: strict
        ),
        .testTarget(
            name: "KafkaWireTests",
            dependencies: ["KafkaWire", "KafkaWireRandom", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/KafkaWireTests",
            swiftSettings: strict
        ),
    ]
)
