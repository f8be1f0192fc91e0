// Cross-language conformance: for every case tests/ios/swift_fixtures.py
// wrote (a variant of the real kit, one row of probabilities per sample, and
// what edgekit.runtime.golden.verify reported for them), the Swift rule
// reports exactly the same failure lines, or the same kind of error.
import Foundation
import XCTest
@testable import EdgekitKit

struct ConformanceFile: Decodable {
    let schema: String
    let kit: String
    let cases: [ConformanceCase]
}

struct ConformanceCase: Decodable {
    let name: String
    /// The kit folder the case is for; nil: the file's `kit`.
    let kit: String?
    let variant: String
    let probabilities: [[Double]]
    /// What Python reported; nil when it raised `error` instead.
    let failures: [String]?
    /// "ShapeError" (not one row per sample) or "ConfigError" (no such variant).
    let error: String?
}

/// What the Swift rule says about a case, in the case file's terms.
func swiftOutcome(kit: GoldenKit, _ c: ConformanceCase) -> (failures: [String]?, error: String?) {
    do {
        return (try goldenFailures(kit: kit, variant: try kit.variant(c.variant), probabilities: c.probabilities), nil)
    } catch GoldenRuleError.rowCount {
        return (nil, "ShapeError")
    } catch GoldenRuleError.unknownVariant {
        return (nil, "ConfigError")
    } catch {
        return (nil, "\(error)")
    }
}

final class ConformanceTests: XCTestCase {
    func testSwiftReportsWhatPythonReportsForEveryCase() throws {
        let file = try Fixtures.decode(ConformanceFile.self, "cases.json")
        XCTAssertEqual(file.schema, "edgekit.ios-conformance/1")
        var kits: [String: GoldenKit] = [:]
        var agree = 0
        for c in file.cases {
            let folder = c.kit ?? file.kit
            if kits[folder] == nil { kits[folder] = try Fixtures.kit(folder) }
            let swift = swiftOutcome(kit: kits[folder]!, c)
            if swift.failures == c.failures && swift.error == c.error {
                agree += 1
            } else {
                XCTFail("""
                    case "\(c.name)":
                      Python: \(c.failures.map { "\($0)" } ?? "error \(c.error ?? "?")")
                      Swift:  \(swift.failures.map { "\($0)" } ?? "error \(swift.error ?? "?")")
                    """)
            }
        }
        print("conformance: \(agree) of \(file.cases.count) cases agree with edgekit.runtime.golden.verify")
        XCTAssertGreaterThanOrEqual(file.cases.count, 20, "the case file is missing cases")
        XCTAssertEqual(Set(kits.keys), ["kit", "kit-rgb"], "cases for the grayscale and the RGB kit")
    }

    /// The case file covers every kind of case the issue names (so a
    /// shrunken file cannot pass by having nothing to disagree on).
    func testTheCasesCoverEveryRule() throws {
        let file = try Fixtures.decode(ConformanceFile.self, "cases.json")
        let names = file.cases.map(\.name).joined(separator: "\n")
        for needed in ["exact match", "known flip", "not a known flip", "near-tie", "exactly at the tolerance",
                       "one step above the tolerance", "one step below the tolerance", "NaN", "values in a row",
                       "one row too few", "a variant the kit does not have"] {
            XCTAssertTrue(names.contains(needed), "no case named like \"\(needed)\"")
        }
        let failing = file.cases.filter { !($0.failures ?? []).isEmpty }
        let passing = file.cases.filter { $0.failures == [] }
        XCTAssertFalse(failing.isEmpty)
        XCTAssertFalse(passing.isEmpty)
        XCTAssertTrue(failing.contains { $0.failures!.contains { $0.contains("top-1") } })
        XCTAssertTrue(failing.contains { $0.failures!.contains { $0.contains("max abs probability difference") } })
        XCTAssertTrue(failing.contains { $0.failures!.contains { $0.contains(" or ") } }, "no relaxed top-1 failure")
    }

    func testEachVariantsExpectedOutputsPassItsOwnRules() throws {
        for name in ["kit", "kit-rgb"] {
            let kit = try Fixtures.kit(name)
            for (id, v) in kit.variants {
                XCTAssertEqual(try goldenFailures(kit: kit, variant: v, probabilities: v.expected.map(\.probabilities)),
                               [], "\(name) \(id)")
            }
        }
    }
}
