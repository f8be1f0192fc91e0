// Where the tests find what tests/ios/swift_fixtures.py writes: the folder
// $EDGEKIT_IOS_FIXTURES names, or apps/ios/Fixtures. Without it every test
// that needs it fails (never a silent pass); `make test` writes a fresh one
// (tests/ios/test_swift_package.py), or by hand:
//   .venv/bin/python tests/ios/swift_fixtures.py apps/ios/Fixtures
import Foundation
import XCTest
@testable import EdgekitKit

enum Fixtures {
    static var folder: URL {
        if let dir = ProcessInfo.processInfo.environment["EDGEKIT_IOS_FIXTURES"], !dir.isEmpty {
            return URL(fileURLWithPath: dir, isDirectory: true)
        }
        // apps/ios/Tests/EdgekitKitTests/Fixtures.swift -> apps/ios/Fixtures
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures", isDirectory: true)
    }

    static var kitFolder: URL { kitFolder("kit") }

    /// A kit folder the fixtures hold: "kit" (grayscale) or "kit-rgb" (a BGR colour model).
    static func kitFolder(_ name: String) -> URL { folder.appendingPathComponent(name, isDirectory: true) }

    /// The file's bytes, or a failure that says how to make the fixtures.
    static func data(_ name: String) throws -> Data {
        let url = folder.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw MissingFixture("no \(url.path): write the fixtures with "
                + "`.venv/bin/python tests/ios/swift_fixtures.py \(folder.path)` or run `make test`")
        }
        return try Data(contentsOf: url)
    }

    /// A real kit the golden stage wrote ("kit", or "kit-rgb").
    static func kit(_ name: String = "kit") throws -> GoldenKit {
        _ = try data("\(name)/golden.json")
        return try GoldenKit.load(from: kitFolder(name))
    }

    /// JSON with "nan", "inf" and "-inf" strings for the numbers JSON has no literal for.
    static func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                        negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(type, from: try data(name))
    }
}

/// A missing fixture: the test fails with how to write it (never a skip).
struct MissingFixture: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A copy of the real kit folder in a fresh temporary directory, for tests
/// that damage it; removed when `test` ends.
func copyOfKit(_ name: String = "kit", for test: XCTestCase) throws -> URL {
    _ = try Fixtures.data("\(name)/golden.json")
    let dst = FileManager.default.temporaryDirectory
        .appendingPathComponent("edgekit-kit-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.copyItem(at: Fixtures.kitFolder(name), to: dst)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dst) }
    return dst
}
