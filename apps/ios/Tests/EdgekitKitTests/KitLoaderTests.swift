// The real kit decodes into the package's types, and a damaged kit is one
// GoldenKitError naming the file and what is wrong: a truncated golden.json,
// a wrong schema, counts that disagree, a missing PNG.
import Foundation
import XCTest
@testable import EdgekitKit

/// The real kits: grayscale ("kit") and colour ("kit-rgb", a BGR model): every
/// test here runs on both.
let realKits = ["kit", "kit-rgb"]

final class KitLoaderTests: XCTestCase {
    func testTheRealKitsDecode() throws {
        for name in realKits {
            let kit = try Fixtures.kit(name)
            XCTAssertEqual(kit.schema, GoldenKit.supportedSchema)
            XCTAssertEqual(kit.count, kit.samples.count)
            XCTAssertGreaterThan(kit.count, 0)
            let contract = KitModelContract(kit: kit)
            XCTAssertEqual(contract.inputName, kit.model.input.name)
            XCTAssertEqual(contract.classLabels.count, kit.model.output.classes)
            XCTAssertEqual(contract.preprocessing.scale, 1 / 255)
            XCTAssertEqual(contract.resize, .bilinear, name)
            if let px = kit.model.input.pixels {  // the model's own mapping, in kits that record it
                XCTAssertEqual(contract.preprocessing.pixelScale, px.scale)
                XCTAssertEqual(contract.preprocessing.bias, px.bias)
            }
            for sample in kit.samples {
                XCTAssertEqual(sample.pixels.count, contract.valueCount, "\(name) \(sample.id)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: Fixtures.kitFolder(name)
                    .appendingPathComponent(sample.png).path))
                XCTAssertEqual(sample.original.probabilities.count, contract.classLabels.count)
            }
            XCTAssertFalse(kit.variants.isEmpty)
            for (id, v) in kit.variants {
                XCTAssertEqual(v.expected.count, kit.count, id)
                XCTAssertFalse(id.contains("_"), "variant ids are hyphenated: convertFromSnakeCase would rename \(id)")
            }
            if let ios = kit.recommended["ios"] ?? nil { XCTAssertEqual(try kit.variant(ios).format, "coreml") }
        }
        let gray = KitModelContract(kit: try Fixtures.kit("kit"))
        XCTAssertEqual(gray.color, .grayscale)
        XCTAssertEqual(gray.preprocessing.mean, [0])
        XCTAssertEqual(gray.preprocessing.std, [1])
        XCTAssertTrue(try Fixtures.kit("kit").variants.values.contains { !$0.knownFlips.isEmpty },
                      "the fixture kit has known flips")
        // the colour kit: a BGR model with a per-channel mean/std (support.colour's h5 model)
        let rgbKit = try Fixtures.kit("kit-rgb")
        let rgb = KitModelContract(kit: rgbKit)
        XCTAssertEqual(rgb.color, .bgr)
        XCTAssertEqual(rgb.preprocessing.mean, rgbKit.model.input.mean)
        XCTAssertEqual(rgb.preprocessing.std, rgbKit.model.input.std)
        XCTAssertEqual(Set(rgb.preprocessing.std).count, 3, "a different std per channel")
    }

    // MARK: damaged kits

    private func expectError(_ kind: GoldenKitError.Kind, in folder: URL, mentioning words: [String],
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GoldenKit.load(from: folder), file: file, line: line) { error in
            guard let e = error as? GoldenKitError else {
                return XCTFail("not a GoldenKitError: \(error)", file: file, line: line)
            }
            XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
            XCTAssertTrue(e.file.hasSuffix("golden.json"), e.file, file: file, line: line)
            let text = "\(e)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for w in words { XCTAssertTrue(text.contains(w), "\"\(text)\" does not say \"\(w)\"", file: file, line: line) }
        }
    }

    private func edit(_ folder: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = folder.appendingPathComponent(GoldenKit.fileName)
        var top = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as! [String: Any]
        change(&top)
        try JSONSerialization.data(withJSONObject: top).write(to: url)
    }

    func testTruncatedGoldenJSON() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            let url = folder.appendingPathComponent(GoldenKit.fileName)
            let data = try Data(contentsOf: url)
            try data.prefix(data.count / 2).write(to: url)
            expectError(.notJSON, in: folder, mentioning: ["not valid JSON", "truncated", "\(data.count / 2) bytes"])
        }
    }

    func testWrongSchema() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            try edit(folder) { $0["schema"] = "edgekit.golden/2" }
            expectError(.wrongSchema, in: folder, mentioning: ["\"edgekit.golden/2\"", "reads \"edgekit.golden/1\""])
        }
    }

    func testNoSchema() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            try edit(folder) { $0["schema"] = nil }
            expectError(.wrongSchema, in: folder, mentioning: ["schema missing"])
        }
    }

    func testCountThatDisagreesWithTheSamples() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            var n = 0
            try edit(folder) { n = ($0["samples"] as! [Any]).count; $0["count"] = n + 1 }
            expectError(.inconsistent, in: folder, mentioning: ["count is \(n + 1) but there are \(n) samples"])
        }
    }

    func testExpectedOutputsThatDisagreeWithTheSamples() throws {
        for name in realKits { try expectedOutputsThatDisagree(name) }
    }

    private func expectedOutputsThatDisagree(_ name: String) throws {
        let folder = try copyOfKit(name, for: self)
        var id = ""
        try edit(folder) { top in
            var variants = top["variants"] as! [String: Any]
            id = variants.keys.sorted()[0]
            var v = variants[id] as! [String: Any]
            v["expected"] = Array((v["expected"] as! [Any]).dropLast())
            variants[id] = v
            top["variants"] = variants
        }
        expectError(.inconsistent, in: folder, mentioning: ["variants.\(id).expected has"])
    }

    func testPixelsThatDisagreeWithTheInputSize() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            try edit(folder) { top in
                var samples = top["samples"] as! [[String: Any]]
                samples[1]["pixels"] = [0, 1, 2]
                top["samples"] = samples
            }
            expectError(.inconsistent, in: folder, mentioning: ["samples[1].pixels has 3 values"])
        }
    }

    func testAPixelMappingForTheWrongChannelCount() throws {
        // three scales for the grayscale kit's one channel, one for the colour kit's three
        for (name, n, channels) in [("kit", 3, 1), ("kit-rgb", 1, 3)] {
            let folder = try copyOfKit(name, for: self)
            try edit(folder) { top in
                var model = top["model"] as! [String: Any]
                var input = model["input"] as! [String: Any]
                input["pixels"] = ["scale": Array(repeating: 0.1, count: n), "bias": Array(repeating: 0.0, count: n)]
                model["input"] = input
                top["model"] = model
            }
            expectError(.inconsistent, in: folder,
                        mentioning: ["model.input.pixels has \(n) scales and \(n) biases for \(channels) channel(s)"])
        }
    }

    func testSamplesInAnotherChannelOrderThanRGB() throws {
        let folder = try copyOfKit("kit-rgb", for: self)
        try edit(folder) { top in
            var model = top["model"] as! [String: Any]
            var input = model["input"] as! [String: Any]
            input["sample_channel_order"] = "bgr"
            model["input"] = input
            top["model"] = model
        }
        expectError(.inconsistent, in: folder, mentioning: ["sample_channel_order is \"bgr\""])
    }

    func testTheRealRGBKitDecodes() throws {
        let kit = try Fixtures.kit("kit-rgb")
        XCTAssertEqual(kit.model.input.channels, 3)
        XCTAssertEqual(kit.model.input.resize?.hasPrefix("bilinear, whole image"), true)
        for sample in kit.samples { XCTAssertEqual(sample.pixels.count, kit.model.input.width * kit.model.input.height * 3) }
        XCTAssertEqual(kit.model.input.pixels?.scale.count, 3)
    }

    func testMissingPNG() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            let kit = try GoldenKit.load(from: folder)
            try FileManager.default.removeItem(at: folder.appendingPathComponent(kit.samples[2].png))
            expectError(.missingPNG, in: folder, mentioning: ["1 sample PNG(s) missing", kit.samples[2].png])
        }
    }

    func testMissingField() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            try edit(folder) { top in
                var samples = top["samples"] as! [[String: Any]]
                samples[3]["test_index"] = nil
                top["samples"] = samples
            }
            expectError(.badField, in: folder, mentioning: ["samples[3].test_index: missing"])
        }
    }

    func testNoGoldenJSON() throws {
        for name in realKits {
            let folder = try copyOfKit(name, for: self)
            try FileManager.default.removeItem(at: folder.appendingPathComponent(GoldenKit.fileName))
            expectError(.unreadable, in: folder, mentioning: ["cannot read the kit"])
        }
    }
}
