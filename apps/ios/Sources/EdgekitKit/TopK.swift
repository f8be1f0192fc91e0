// Top-1 and top-k over a probability vector, in the order numpy's argmax
// and a stable sort give: the first of equal values wins, NaN ranks last.
import Foundation

/// The index of the largest value (the first of equal maxima; NaN never
/// wins over a number); nil for an empty vector.
public func top1(_ p: [Double]) -> Int? {
    guard !p.isEmpty else { return nil }
    var best = 0
    for i in p.indices.dropFirst() where p[i] > p[best] || (p[best].isNaN && !p[i].isNaN) { best = i }
    return best
}

public struct Ranked: Equatable {
    public let index: Int
    public let probability: Double

    public init(index: Int, probability: Double) {
        self.index = index
        self.probability = probability
    }
}

/// The `k` most probable classes, most probable first; equal values keep
/// index order and NaN comes after every number. k is clamped to [0, count].
public func topK(_ p: [Double], k: Int) -> [Ranked] {
    let order = p.indices.sorted { a, b in
        if p[a].isNaN != p[b].isNaN { return !p[a].isNaN }
        if p[a] != p[b] && !p[a].isNaN { return p[a] > p[b] }
        return a < b
    }
    return order.prefix(max(0, min(k, p.count))).map { Ranked(index: $0, probability: p[$0]) }
}
