// The golden kit (docs/GOLDEN.md, schema edgekit.golden/1) as Swift types.
// Decoded with .convertFromSnakeCase: `testIndex` reads "test_index". The
// strategy also rewrites dictionary keys with underscores, which is why
// edgekit's variant ids use hyphens (coreml-pal4), never underscores.
// tests/apps/test_ios_contract.py checks every property here against a real kit.
import Foundation

struct GoldenKit: Decodable {
    let schema: String
    let count: Int
    let model: GoldenModel
    let recommended: [String: String?]
    let samples: [GoldenSample]
    let variants: [String: GoldenVariant]

    static func load(from folder: URL) throws -> GoldenKit {
        let data = try Data(contentsOf: folder.appendingPathComponent("golden.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(GoldenKit.self, from: data)
    }
}

struct GoldenModel: Decodable {
    let input: GoldenInput
    let classNames: [String]
}

struct GoldenInput: Decodable {
    let name: String
    let height: Int
    let width: Int
    let color: String
}

struct GoldenOutput: Decodable {
    let top1: Int
    let probabilities: [Double]
}

struct GoldenSample: Decodable {
    let id: String
    let testIndex: Int
    let label: Int
    let png: String
    let pixels: [UInt8]
    let original: GoldenOutput
}

struct GoldenTolerance: Decodable {
    let maxAbsProbDiff: Double
}

struct GoldenVariant: Decodable {
    let format: String
    let kind: String?
    let backend: String?
    let tolerance: GoldenTolerance
    let knownFlips: [String]
    let nearTies: [String]
    let expected: [GoldenOutput]
}

/// The kit's rules (docs/GOLDEN.md), the same as edgekit.runtime.golden.verify.
func goldenFailures(kit: GoldenKit, variant: GoldenVariant, sample index: Int, probabilities p: [Double]) -> [String] {
    let sample = kit.samples[index], expected = variant.expected[index]
    var failures: [String] = []
    let top1 = p.indices.max { p[$0] < p[$1] } ?? -1
    let relaxed = variant.knownFlips.contains(sample.id) || variant.nearTies.contains(sample.id)
    let allowed: Set<Int> = relaxed ? [expected.top1, sample.original.top1] : [expected.top1]
    if !allowed.contains(top1) {
        failures.append("sample \(sample.id) (test #\(sample.testIndex)): top-1 \(top1), expected \(allowed.sorted())")
    }
    let diff = zip(p, expected.probabilities).map { abs($0 - $1) }.max() ?? .infinity
    if !(diff <= variant.tolerance.maxAbsProbDiff) {
        failures.append("sample \(sample.id): max abs probability difference \(diff) > \(variant.tolerance.maxAbsProbDiff)")
    }
    return failures
}
