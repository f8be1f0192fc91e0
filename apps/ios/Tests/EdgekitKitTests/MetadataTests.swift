// What the app reads from the model it ships (no kit on a phone): the
// contract in a converted file's `edgekit.preprocessing` metadata
// (metadata.json: read back by Python from a real Core ML package and a
// real TFLite file) is the kit's contract, gives the same input values for
// every sample, and picks the screen: the grayscale model the digit pad,
// the colour model the photo screen. Then Core ML's label dictionary in
// class order, and the top-3 lines.
import Foundation
import XCTest
@testable import EdgekitKit

/// One converted file's `edgekit.preprocessing` metadata, and the kit of its run.
struct MetadataEntry: Decodable {
    let kit: String
    let variant: String
    let preprocessing: String
}

final class MetadataTests: XCTestCase {
    func testTheModelsMetadataStatesTheKitsContract() throws {
        let entries = try JSONDecoder().decode([MetadataEntry].self, from: try Fixtures.data("metadata.json"))
        XCTAssertEqual(Set(entries.map(\.kit)), Set(realKits))
        XCTAssertTrue(entries.contains { $0.kit == "kit-rgb" && $0.variant.hasPrefix("coreml-") }, "a colour Core ML model")
        for entry in entries {
            let name = "\(entry.kit) \(entry.variant)"
            let kit = try Fixtures.kit(entry.kit)
            XCTAssertNotNil(kit.variants[entry.variant], "\(name): not a variant of the kit")
            let fromKit = KitModelContract(kit: kit)
            let fromModel = try KitModelContract(preprocessingJSON: entry.preprocessing, inputName: kit.model.input.name,
                                                 classLabels: kit.model.classNames)
            XCTAssertEqual([fromModel.width, fromModel.height], [fromKit.width, fromKit.height], name)
            XCTAssertEqual(fromModel.color, fromKit.color, name)
            XCTAssertEqual(fromModel.resize, .bilinear, name)
            XCTAssertEqual(fromModel.preprocessing.pixelScale, fromKit.preprocessing.pixelScale, name)
            XCTAssertEqual(fromModel.preprocessing.bias, fromKit.preprocessing.bias, name)
            XCTAssertEqual(fromModel.screen, entry.kit == "kit" ? .digitPad : .photo, name)
            XCTAssertEqual(fromKit.screen, fromModel.screen, name)
            for sample in kit.samples {
                XCTAssertEqual(try fromModel.inputValues(sample), try fromKit.inputValues(sample), "\(name) \(sample.id)")
            }
        }
    }

    func testMetadataThatGivesNoContractIsOneError() throws {
        let good: [String: Any] = ["height": 32, "width": 32, "color": "bgr", "resize": "bilinear, whole image",
                                   "pixels": ["scale": [0.01, 0.02, 0.03], "bias": [-1.0, -1.0, -1.0]]]
        func contract(_ change: (inout [String: Any]) -> Void) throws -> KitModelContract {
            var meta = good
            change(&meta)
            let json = String(decoding: try JSONSerialization.data(withJSONObject: meta), as: UTF8.self)
            return try KitModelContract(preprocessingJSON: json, inputName: "input", classLabels: ["a", "b"])
        }
        XCTAssertEqual(try contract { _ in }.screen, .photo)
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("width: missing", { $0["width"] = nil }),
            ("color \"cmyk\"", { $0["color"] = "cmyk" }),
            ("pixels has 1 scales and 3 biases for 3 channel(s)", { $0["pixels"] = ["scale": [0.01], "bias": [0.0, 0.0, 0.0]] }),
            ("pixels scale [0.0, 0.02, 0.03]", { $0["pixels"] = ["scale": [0.0, 0.02, 0.03], "bias": [0.0, 0.0, 0.0]] }),
            ("the input is 0x32", { $0["width"] = 0 }),
        ]
        for (words, change) in cases {
            XCTAssertThrowsError(try contract(change), words) { error in
                let text = "\(error)"
                XCTAssertTrue(error is ModelMetadataError, text)
                XCTAssertTrue(text.hasPrefix("model metadata edgekit.preprocessing: "), text)
                XCTAssertTrue(text.contains(words), "\"\(text)\" does not say \"\(words)\"")
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
        XCTAssertThrowsError(try KitModelContract(preprocessingJSON: "{\"height\": 3", inputName: "input", classLabels: ["a"]))
        XCTAssertThrowsError(try KitModelContract(preprocessingJSON: String(decoding: try JSONSerialization.data(
            withJSONObject: good), as: UTF8.self), inputName: "input", classLabels: []))
    }

    func testCoreMLsLabelDictionaryInClassOrderAndTheTop3Lines() throws {
        for name in realKits {
            let kit = try Fixtures.kit(name)
            let contract = KitModelContract(kit: kit)
            let p = kit.samples[0].original.probabilities
            // Core ML's classLabel_probs: label -> probability, in no order
            let byLabel = Dictionary(uniqueKeysWithValues: zip(contract.classLabels, p).reversed())
            XCTAssertEqual(try contract.probabilities(byLabel: byLabel), p, name)
            let lines = try contract.topKLines(p, k: 3)
            XCTAssertEqual(lines.count, 3, name)
            let best = kit.samples[0].original.top1
            XCTAssertEqual(lines[0], "1. \(contract.classLabels[best]) \(String(format: "%.1f", 100 * p[best]))%", name)
            var partial = byLabel
            partial[contract.classLabels[1]] = nil
            XCTAssertThrowsError(try contract.probabilities(byLabel: partial)) {
                XCTAssertTrue("\($0)".contains("no probability for \"\(contract.classLabels[1])\""), "\($0)")
            }
        }
        XCTAssertEqual(percentText(0.97349), "97.3%")
        XCTAssertEqual(percentText(1), "100.0%")
        XCTAssertEqual(percentText(0.00049), "0.0%")
        XCTAssertEqual(percentText(.nan), "n/a")
        XCTAssertEqual(percentText(-.infinity), "n/a")
    }
}
