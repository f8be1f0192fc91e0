// swift-tools-version:5.9
// EdgekitKit: the part of the on-device parity check that is plain Swift
// (Foundation only), so it builds and is tested with `swift test` on Linux:
// the golden kit's types and loader, the parity rule, the model contract
// read from the kit, pixel preprocessing and top-k. The app and its Core ML /
// Vision code live in the XcodeGen project (project.yml), which depends on
// this package. No outside dependencies: it builds without a network.
import PackageDescription

let package = Package(
    name: "EdgekitKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "EdgekitKit", targets: ["EdgekitKit"]),
    ],
    targets: [
        .target(name: "EdgekitKit"),
        // Reads the kit and the conformance cases tests/ios/swift_fixtures.py
        // writes (into Fixtures/, or $EDGEKIT_IOS_FIXTURES); fails without them.
        .testTarget(name: "EdgekitKitTests", dependencies: ["EdgekitKit"]),
    ]
)
