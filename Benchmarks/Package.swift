// swift-tools-version:6.1
// Microbenchmarks of the hot paths (package-benchmark). Kept in their own package so the main
// build and `make test` do not compile the benchmark harness. Run with `make bench`.
import PackageDescription

/// A package-benchmark executable: the harness, its plugin and NIOCore, plus what it measures.
func benchmarkTarget(_ name: String, measuring dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [
            .product(name: "Benchmark", package: "benchmark"),
            .product(name: "NIOCore", package: "swift-nio"),
        ] + dependencies,
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "SwiftKafka", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        benchmarkTarget("KafkaWireBenchmarks", measuring: [.product(name: "KafkaWire", package: "SwiftKafka")]),
        benchmarkTarget("KafkaLogBenchmarks", measuring: [
            .product(name: "KafkaLog", package: "SwiftKafka"),
            .product(name: "KafkaWire", package: "SwiftKafka"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
