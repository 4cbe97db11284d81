// swift-tools-version:6.2
// An application that uses the Swift clients, as a project of yours would. In your Package.swift the
// dependency is `.package(url: "<this repository's URL>", branch: "main")` and the products are named
// with `package: "<the URL's last path component>"`; here the repository is reached through the path
// `make example` links (.build-example/swift-kafka), so its identity is "swift-kafka".
import PackageDescription

let package = Package(
    name: "Quickstart",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../../.build-example/swift-kafka"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "Quickstart",
            dependencies: [
                .product(name: "Producers", package: "swift-kafka"),
                .product(name: "Consumers", package: "swift-kafka"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
