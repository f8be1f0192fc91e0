// Preprocessing: the model input values Swift computes from the kit's
// pixels are the values Python fed the model (preprocessing.json, written by
// tests/ios/swift_fixtures.py with the run's model.io.pixels.apply, the call
// the check stage makes before it predicts), within float32 rounding: here,
// bit for bit.
//
// RGB: a real colour kit ("kit-rgb": `edgekit import` of a BGR model with a
// per-channel mean/std, checked, `edgekit golden`) gives the values Python fed
// that model, bit for bit; the RGB code is also tested on a synthetic buffer
// against edgekit.rundir.PixelMapping.apply with a mean/std mapping, and on
// buffer layouts (RGBA, BGRA, padded rows).
import Foundation
import XCTest
@testable import EdgekitKit

struct PreprocessingFile: Decodable {
    struct Sample: Decodable {
        let id: String
        let sha256: String
        let values: [Float]
    }
    struct RGB: Decodable {
        let height: Int
        let width: Int
        let mean: [Double]
        let std: [Double]
        let pixels: [UInt8]
        let values: [Float]
    }
    let samples: [Sample]
    let rgb: RGB
    /// The colour kit's samples, as `samples` for the grayscale one.
    let kitRGB: [Sample]?

    enum CodingKeys: String, CodingKey {
        case samples, rgb
        case kitRGB = "kit_rgb"
    }
}

/// How many float32 steps apart a and b are (0: the same value).
func ulps(_ a: Float, _ b: Float) -> Int {
    if a == b { return 0 }
    if a.isNaN || b.isNaN { return Int.max }
    let ia = Int64(Int32(bitPattern: a.bitPattern)), ib = Int64(Int32(bitPattern: b.bitPattern))
    let ka = ia < 0 ? Int64(Int32.min) - ia : ia, kb = ib < 0 ? Int64(Int32.min) - ib : ib
    return Int(min(abs(ka - kb), Int64(Int.max)))
}

final class PreprocessingTests: XCTestCase {
    func testKitSamplesGiveTheValuesPythonFedTheModel() throws {
        let kit = try Fixtures.kit()
        let file = try Fixtures.decode(PreprocessingFile.self, "preprocessing.json")
        let contract = KitModelContract(kit: kit)
        XCTAssertEqual(file.samples.map(\.id), kit.samples.map(\.id))
        var worst = 0
        for (sample, python) in zip(kit.samples, file.samples) {
            let swift = try contract.inputValues(sample)
            XCTAssertEqual(swift.count, python.values.count, sample.id)
            for (s, p) in zip(swift, python.values) { worst = max(worst, ulps(s, p)) }
            XCTAssertEqual(python.sha256.count, 64)
        }
        // float32 p / 255 (Python) and Float(Double(p) * (1/255)) (Swift) are the same number.
        XCTAssertEqual(worst, 0, "Swift's input values differ from Python's by up to \(worst) float32 steps")
    }

    /// The real colour kit: samples are RGB (PNG and `pixels`), the model takes
    /// BGR with a per-channel mapping; Swift's values are the ones the check
    /// stage fed the model (its dataset's BGR image through io.pixels), bit for bit.
    func testTheRGBKitsSamplesGiveTheValuesPythonFedTheBGRModel() throws {
        let kit = try Fixtures.kit("kit-rgb")
        let python = try XCTUnwrap(try Fixtures.decode(PreprocessingFile.self, "preprocessing.json").kitRGB)
        let contract = KitModelContract(kit: kit)
        XCTAssertEqual(contract.color, .bgr)
        XCTAssertEqual(kit.model.input.sampleChannelOrder, "rgb")
        XCTAssertEqual(kit.model.input.modelChannelOrder, "bgr")
        XCTAssertEqual(contract.channels, 3)
        XCTAssertEqual(python.map(\.id), kit.samples.map(\.id))
        var worst = 0
        for (sample, fed) in zip(kit.samples, python) {
            XCTAssertEqual(sample.pixels.count, contract.valueCount, sample.id)
            let swift = try contract.inputValues(sample)
            XCTAssertEqual(swift.count, fed.values.count, sample.id)
            for (s, p) in zip(swift, fed.values) { worst = max(worst, ulps(s, p)) }
        }
        XCTAssertEqual(worst, 0, "Swift's input values differ from Python's by up to \(worst) float32 steps")
        // and the channel order matters: the same pixels read as an RGB model's differ
        let asRGB = KitModelContract(inputName: contract.inputName, width: contract.width, height: contract.height,
                                     color: .rgb, preprocessing: contract.preprocessing, classLabels: contract.classLabels)
        XCTAssertNotEqual(try asRGB.inputValues(kit.samples[0]), python[0].values)
    }

    func testSyntheticRGBBufferMatchesPythonsMeanStdMapping() throws {
        let rgb = try Fixtures.decode(PreprocessingFile.self, "preprocessing.json").rgb
        let contract = KitModelContract(inputName: "input", width: rgb.width, height: rgb.height, color: .rgb,
                                        preprocessing: Preprocessing(scale: 1 / 255, mean: rgb.mean, std: rgb.std),
                                        classLabels: ["a", "b"])
        let image = try PixelImage(width: rgb.width, height: rgb.height, format: .rgb8, bytes: rgb.pixels)
        let swift = try contract.inputValues(image)
        XCTAssertEqual(swift.count, rgb.values.count)
        // Python computes pixel * (1/(255 std)) + (-mean/std), Swift (pixel/255 - mean)/std: both in
        // float64, rounded once to float32, so at most one float32 step apart.
        let worst = zip(swift, rgb.values).map { ulps($0, $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1, "RGB values differ from PixelMapping.apply by \(worst) float32 steps")
    }

    /// With the model's own mapping (pixel * scale + bias, as newer kits
    /// record it) Swift does PixelMapping.apply's arithmetic: bit for bit.
    func testSyntheticRGBBufferWithTheModelsMappingIsExact() throws {
        let rgb = try Fixtures.decode(PreprocessingFile.self, "preprocessing.json").rgb
        let scale = rgb.std.map { 1 / (255 * $0) }, bias = zip(rgb.mean, rgb.std).map { -$0 / $1 }
        let contract = KitModelContract(inputName: "input", width: rgb.width, height: rgb.height, color: .rgb,
                                        preprocessing: Preprocessing(scale: 1 / 255, mean: rgb.mean, std: rgb.std,
                                                                     pixelScale: scale, bias: bias),
                                        classLabels: ["a", "b"])
        let image = try PixelImage(width: rgb.width, height: rgb.height, format: .rgb8, bytes: rgb.pixels)
        XCTAssertEqual(try contract.inputValues(image), rgb.values)
    }

    /// The same picture as RGB, RGBA and BGRA buffers (rows padded, as Core
    /// Video pads them) gives the same input values; a BGR model swaps them.
    func testEveryBufferLayoutGivesTheSameValues() throws {
        let w = 5, h = 3
        let rgb: [UInt8] = (0..<(w * h * 3)).map { UInt8(($0 * 37 + 11) % 256) }
        let contract = KitModelContract(inputName: "input", width: w, height: h, color: .rgb,
                                        preprocessing: Preprocessing(scale: 1 / 255, mean: [0.5, 0.4, 0.3],
                                                                     std: [0.2, 0.25, 0.3]),
                                        classLabels: ["a", "b"])
        let reference = try contract.inputValues(try PixelImage(width: w, height: h, format: .rgb8, bytes: rgb))
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<3 {
                    let p = Double(rgb[(y * w + x) * 3 + c])
                    let want = Float((p / 255 - [0.5, 0.4, 0.3][c]) / [0.2, 0.25, 0.3][c])
                    XCTAssertLessThanOrEqual(ulps(reference[(y * w + x) * 3 + c], want), 1)
                }
            }
        }
        let pad = 3
        func padded(_ bytesPerPixel: Int, _ pixel: (Int) -> [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            for y in 0..<h {
                for x in 0..<w { out += pixel(y * w + x) }
                out += Array(repeating: 0xEE, count: pad)
            }
            return out
        }
        let rgba = padded(4) { i in [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 0x7F] }
        let bgra = padded(4) { i in [rgb[i * 3 + 2], rgb[i * 3 + 1], rgb[i * 3], 0x7F] }
        XCTAssertEqual(try contract.inputValues(try PixelImage(width: w, height: h, format: .rgba8,
                                                               bytesPerRow: w * 4 + pad, bytes: rgba)), reference)
        XCTAssertEqual(try contract.inputValues(try PixelImage(width: w, height: h, format: .bgra8,
                                                               bytesPerRow: w * 4 + pad, bytes: bgra)), reference)

        let bgrModel = KitModelContract(inputName: "input", width: w, height: h, color: .bgr,
                                        preprocessing: Preprocessing(scale: 1 / 255, mean: [0.3, 0.4, 0.5],
                                                                     std: [0.3, 0.25, 0.2]),
                                        classLabels: ["a", "b"])
        let bgr = try bgrModel.inputValues(try PixelImage(width: w, height: h, format: .bgra8,
                                                          bytesPerRow: w * 4 + pad, bytes: bgra))
        for i in 0..<(w * h) {
            XCTAssertEqual(Array(bgr[(i * 3)..<(i * 3 + 3)]), Array(reference[(i * 3)..<(i * 3 + 3)].reversed()))
        }
    }

    func testGrayscaleRowsArePaddedLikeCoreVideos() throws {
        let contract = KitModelContract(inputName: "input", width: 3, height: 2, color: .grayscale,
                                        preprocessing: Preprocessing(scale: 1 / 255, mean: [0], std: [1]),
                                        classLabels: ["a", "b"])
        let image = try PixelImage(width: 3, height: 2, format: .gray8, bytesPerRow: 8,
                                   bytes: [0, 51, 255, 9, 9, 9, 9, 9, 102, 153, 204])
        XCTAssertEqual(try contract.inputValues(image), [0, 0.2, 1, 0.4, 0.6, 0.8].map { Float($0) })
    }

    func testBuffersThatCannotFeedTheModelAreOneError() throws {
        let gray = KitModelContract(inputName: "input", width: 2, height: 2, color: .grayscale,
                                    preprocessing: Preprocessing(scale: 1 / 255, mean: [0], std: [1]),
                                    classLabels: ["a", "b"])
        let rgbImage = try PixelImage(width: 2, height: 2, format: .rgb8, bytes: Array(repeating: 1, count: 12))
        XCTAssertThrowsError(try gray.inputValues(rgbImage)) {
            XCTAssertEqual($0 as? PixelError, .format(got: .rgb8, model: .grayscale))
        }
        let big = try PixelImage(width: 3, height: 2, format: .gray8, bytes: Array(repeating: 1, count: 6))
        XCTAssertThrowsError(try gray.inputValues(big)) {
            XCTAssertEqual("\($0)", "the image is 3x2, the model takes 2x2 (resize it first)")
        }
        XCTAssertThrowsError(try PixelImage(width: 2, height: 2, format: .rgba8, bytes: Array(repeating: 1, count: 15)))
        XCTAssertThrowsError(try PixelImage(width: 2, height: 2, format: .gray8, bytesPerRow: 1, bytes: [1, 2, 3, 4]))
        XCTAssertThrowsError(try PixelImage(width: 0, height: 2, format: .gray8, bytes: []))
    }

    /// An RGB kit in the mean/std form only (the grayscale kit with every
    /// sample's pixels as R = G = B, no `pixels` mapping: what an older kit
    /// states) decodes, and its contract preprocesses each channel with its
    /// own mean and std.
    func testAnRGBKitDecodesAndPreprocessesPerChannel() throws {
        var top = try JSONSerialization.jsonObject(with: try Fixtures.data("kit/golden.json")) as! [String: Any]
        var model = top["model"] as! [String: Any]
        var input = model["input"] as! [String: Any]
        input["channels"] = 3
        input["color"] = "rgb"
        input["mean"] = [0.485, 0.456, 0.406]
        input["std"] = [0.229, 0.224, 0.225]
        input["pixels"] = nil  // the mean/std form only
        model["input"] = input
        top["model"] = model
        top["samples"] = (top["samples"] as! [[String: Any]]).map { s -> [String: Any] in
            var s = s
            s["pixels"] = (s["pixels"] as! [Int]).flatMap { [$0, $0, $0] }
            return s
        }
        let kit = try GoldenKit.decode(try JSONSerialization.data(withJSONObject: top), file: "rgb.json")
        let contract = KitModelContract(kit: kit)
        XCTAssertEqual(contract.color, .rgb)
        XCTAssertEqual(contract.valueCount, kit.model.input.width * kit.model.input.height * 3)
        let mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225]
        for sample in kit.samples {
            let values = try contract.inputValues(sample)
            XCTAssertEqual(values.count, sample.pixels.count)
            for (i, p) in sample.pixels.enumerated() {
                let c = i % 3
                XCTAssertLessThanOrEqual(ulps(values[i], Float((Double(p) / 255 - mean[c]) / std[c])), 1)
            }
        }
        // A black pixel is -mean/std: a different value in each channel.
        let black = Preprocessing(scale: 1 / 255, mean: mean, std: std)
        XCTAssertEqual(Set((0..<3).map { black.value(0, channel: $0) }).count, 3)
    }
}
