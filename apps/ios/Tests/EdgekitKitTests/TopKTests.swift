// Top-1 and top-k in numpy's order: the first of equal values wins, NaN last.
import XCTest
@testable import EdgekitKit

final class TopKTests: XCTestCase {
    func testTop1IsTheFirstOfEqualMaxima() {
        XCTAssertEqual(top1([0.1, 0.4, 0.4, 0.1]), 1)
        XCTAssertEqual(top1([.nan, 0.2, 0.3]), 2)
        XCTAssertEqual(top1([0.5]), 0)
        XCTAssertNil(top1([]))
    }

    func testTopKOrdersByProbabilityThenIndex() {
        let p = [0.1, 0.3, 0.05, 0.3, .nan, 0.25]
        XCTAssertEqual(topK(p, k: 4).map(\.index), [1, 3, 5, 0])
        XCTAssertEqual(topK(p, k: 10).map(\.index), [1, 3, 5, 0, 2, 4])
        XCTAssertEqual(topK(p, k: 0), [])
        XCTAssertEqual(topK(p, k: -1), [])
    }

    func testContractTopKNamesTheClasses() throws {
        for name in realKits {
            let kit = try Fixtures.kit(name)
            let contract = KitModelContract(kit: kit)
            let p = kit.samples[0].original.probabilities
            let top = try contract.topK(p, k: 3)
            XCTAssertEqual(top.count, min(3, kit.model.classNames.count))
            XCTAssertEqual(top[0].label, kit.model.classNames[kit.samples[0].original.top1], name)
            XCTAssertTrue(zip(top, top.dropFirst()).allSatisfy { $0.probability >= $1.probability }, name)
            XCTAssertThrowsError(try contract.topK([0.5, 0.5, 0.5, 0.5, 0.5], k: 1)) {
                XCTAssertEqual($0 as? PixelError, .classes(got: 5, needed: kit.model.classNames.count))
            }
        }
    }
}
