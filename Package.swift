// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SwiftKafka",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KafkaWire", targets: ["KafkaWire"]),
        .executable(name: "kafkawire-generator", targets: ["KafkaWireGenerator"]),
        .executable(name: "kafkawire-check", targets: ["KafkaWireCheck"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
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
            path: "Sources/KafkaWire"
        ),
        // Reads the Kafka JSON message specs and writes Sources/KafkaWire/Generated.
        .executableTarget(name: "KafkaWireGenerator", path: "Sources/KafkaWireGenerator"),
        // JSON-lines front end to the codec, driven by the Python interop tests.
        .executableTarget(
            name: "KafkaWireCheck",
            dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Sources/KafkaWireCheck"
        ),
        .testTarget(
            name: "KafkaWireTests",
            dependencies: ["KafkaWire", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/KafkaWireTests"
        ),
    ]
)
