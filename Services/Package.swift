// swift-tools-version:6.2
// The original system's services on the Swift clients: user-events (the CLI and the HTTP API),
// user-stats (the group consumer with its report) and the assistance service. A package of its own,
// so the toolkit's builds (and projects depending on the clients) never build Hummingbird or GRDB.
// The toolkit is reached through the `swift-kafka` link to the repository root: a path dependency's
// identity is its last path component, which must not depend on where the repository was cloned.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]
/// The generator's output imports more than it uses; its warnings are not ours to fix.
let generated: [SwiftSetting] = [.unsafeFlags(["-suppress-warnings"])]

let package = Package(
    name: "SwiftKafkaServices",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "user-events", targets: ["UserEvents"]),
        .executable(name: "user-stats", targets: ["UserStats"]),
        .executable(name: "assistance", targets: ["AssistanceMain"]),
    ],
    dependencies: [
        .package(path: "swift-kafka"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // Without its default traits: swift-configuration and the full-Foundation extras go unused here.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
        // `make generate-openapi` / `make check-generated`: the generator's CLI (never built by `swift build`).
        .package(url: "https://github.com/apple/swift-openapi-generator", from: "1.14.3"),
    ],
    targets: [
        // The user event both services share, and the fake users.
        .target(name: "UserEventModel", path: "Sources/UserEventModel", swiftSettings: strict),
        // What every HTTP service here shares: JSON problems for every error, /openapi.yaml and its docs
        // page, /health, settings from flags and the environment, and the run under ServiceLifecycle.
        .target(
            name: "ServiceSupport",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "KafkaClient", package: "swift-kafka"),
            ],
            path: "Sources/ServiceSupport",
            swiftSettings: strict
        ),
        // Generated from OpenAPI/*.yaml by `make generate-openapi` (swift-openapi-generator and
        // scripts/openapi-embed.py), never edited: the types, the server side, the document itself.
        // Apart from the hand-written code, and without its warnings-as-errors.
        .target(
            name: "UserEventsOpenAPI",
            dependencies: [.product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")],
            path: "Sources/UserEventsOpenAPI",
            swiftSettings: generated
        ),
        .target(
            name: "AssistanceOpenAPI",
            dependencies: [.product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")],
            path: "Sources/AssistanceOpenAPI",
            swiftSettings: generated
        ),
        // The user-events HTTP API (spec-first: OpenAPI/user-events-api.yaml) and its submissions.
        .target(
            name: "UserEventsAPI",
            dependencies: [
                "UserEventModel", "ServiceSupport", "UserEventsOpenAPI",
                .product(name: "Producers", package: "swift-kafka"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/UserEventsAPI",
            swiftSettings: strict
        ),
        // `user-events submit N` (the CLI) and `user-events serve` (the HTTP API).
        .executableTarget(
            name: "UserEvents",
            dependencies: [
                "UserEventModel", "UserEventsAPI", "ServiceSupport",
                .product(name: "Producers", package: "swift-kafka"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/UserEvents",
            swiftSettings: strict
        ),
        // The stats service: a group consumer that stores users in SQLite, logs a per-city report and
        // answers it over HTTP.
        .target(
            name: "UserStatsService",
            dependencies: [
                "UserEventModel", "ServiceSupport",
                .product(name: "Consumers", package: "swift-kafka"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/UserStatsService",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "UserStats",
            dependencies: [
                "UserStatsService", "ServiceSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/UserStats",
            swiftSettings: strict
        ),
        // The assistance service (spec-first: OpenAPI/assistance.yaml) and the department listener.
        .target(
            name: "Assistance",
            dependencies: [
                "ServiceSupport", "AssistanceOpenAPI",
                .product(name: "Producers", package: "swift-kafka"),
                .product(name: "Consumers", package: "swift-kafka"),
                .product(name: "KafkaClient", package: "swift-kafka"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Assistance",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AssistanceMain",
            dependencies: [
                "Assistance", "ServiceSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/AssistanceMain",
            swiftSettings: strict
        ),
        // The routes over HTTP on a loopback port, without a broker where none is needed (real sockets
        // and URLSession: Hummingbird's testing module would bring AsyncHTTPClient and BoringSSL into
        // every build of the tests).
        .testTarget(
            name: "ServicesTests",
            dependencies: [
                "UserEventsAPI", "UserStatsService", "Assistance", "ServiceSupport", "UserEventModel",
                .product(name: "Producers", package: "swift-kafka"),
                .product(name: "KafkaClient", package: "swift-kafka"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ServicesTests",
            swiftSettings: strict
        ),
    ]
)
