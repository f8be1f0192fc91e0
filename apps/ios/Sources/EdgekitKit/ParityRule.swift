// The kit's rules (docs/GOLDEN.md): what "the phone agrees" means. The same
// rules, and the same failure lines, as edgekit.runtime.golden.verify in
// Python; tests/ios/swift_fixtures.py writes cases with what Python reports
// and the conformance test asserts Swift reports exactly that.
import Foundation

/// Probabilities the rules cannot be applied to as a whole.
public enum GoldenRuleError: Error, Equatable, CustomStringConvertible {
    case unknownVariant(String, available: [String])
    case rowCount(got: Int, needed: Int)

    public var description: String {
        switch self {
        case .unknownVariant(let id, let available):
            return "the kit has no variant \(id); it has \(available.joined(separator: ", "))"
        case .rowCount(let got, let needed):
            return "\(got) rows of probabilities, the kit needs \(needed) (one per sample)"
        }
    }
}

extension GoldenKit {
    public func variant(_ id: String) throws -> GoldenVariant {
        guard let v = variants[id] else { throw GoldenRuleError.unknownVariant(id, available: variants.keys.sorted()) }
        return v
    }
}

/// Every way `probabilities` (one row per sample, in the kit's order) breaks
/// the kit's rules for `variant`; empty: it passes. Throws when the number
/// of rows is not the number of samples.
public func goldenFailures(kit: GoldenKit, variant: GoldenVariant, probabilities: [[Double]]) throws -> [String] {
    guard probabilities.count == kit.samples.count else {
        throw GoldenRuleError.rowCount(got: probabilities.count, needed: kit.samples.count)
    }
    return probabilities.indices.flatMap { goldenFailures(kit: kit, variant: variant, sample: $0, probabilities: probabilities[$0]) }
}

/// The rules for one sample: a row of the wrong length, or holding NaN or
/// infinity, is its one failure; otherwise
/// 1. top-1: argmax(p) (the first of equal maxima) must be the variant's
///    expected top-1, or, for a known flip or near-tie, the original's;
/// 2. probabilities: max |p[c] - expected[c]| <= the variant's tolerance.
public func goldenFailures(kit: GoldenKit, variant: GoldenVariant, sample index: Int, probabilities p: [Double]) -> [String] {
    let sample = kit.samples[index], expected = variant.expected[index]
    let classes = kit.model.classNames.count
    let at = "sample \(sample.id) (test #\(sample.testIndex))"
    if p.count != classes { return ["\(at): \(p.count) probabilities, the kit has \(classes) classes"] }
    if let c = p.firstIndex(where: { !$0.isFinite }) { return ["\(at): probability \(p[c]) at class \(c)"] }

    var failures: [String] = []
    let got = top1(p)!
    let relaxed = variant.knownFlips.contains(sample.id) || variant.nearTies.contains(sample.id)
    let allowed = Set(relaxed ? [expected.top1, sample.original.top1] : [expected.top1]).sorted()
    if !allowed.contains(got) {
        failures.append("\(at): top-1 \(got), expected \(allowed.map(String.init).joined(separator: " or "))")
    }
    let tolerance = variant.tolerance.maxAbsProbDiff
    let diff = zip(p, expected.probabilities).map { abs($0 - $1) }.max() ?? 0
    let withinTolerance = diff <= tolerance
    if !withinTolerance {
        // %.3g and %g: the numbers as Python's f"{diff:.3g} > {tol:g}" prints them.
        failures.append("\(at): max abs probability difference \(String(format: "%.3g", diff)) > \(String(format: "%g", tolerance))")
    }
    return failures
}
