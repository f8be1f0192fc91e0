// On-device parity: run the bundled Core ML model on every golden input and
// check the kit's rules (docs/GOLDEN.md). The variant is $EDGEKIT_VARIANT
// (scheme environment) or the kit's recommended iOS variant; the bundled
// Model.mlpackage must be that variant's file. The kit's types, loader and
// rules are the EdgekitKit package's (Sources/EdgekitKit), the same code
// `swift test` checks on Linux against Python's verify; only running the
// model needs a Mac and a simulator or device.
#if canImport(CoreML) && canImport(Vision)
import CoreML
import EdgekitKit
import ImageIO
import Vision
import XCTest
@testable import EdgekitDigits

final class GoldenParityTests: XCTestCase {
    private var kit: GoldenKit!
    private var variantId: String!
    private var variant: GoldenVariant!
    private var folder: URL!

    override func setUpWithError() throws {
        let bundle = Bundle(for: GoldenParityTests.self)
        folder = try XCTUnwrap(bundle.url(forResource: ModelContract.goldenFolder, withExtension: nil),
                               "copy a run's golden/ into EdgekitDigitsTests/golden (see README)")
        kit = try GoldenKit.load(from: folder)
        XCTAssertEqual(kit.schema, ModelContract.goldenSchema)
        let requested = ProcessInfo.processInfo.environment["EDGEKIT_VARIANT"].flatMap { $0.isEmpty ? nil : $0 }
        variantId = try XCTUnwrap(requested ?? (kit.recommended["ios"] ?? nil),
                                  "no EDGEKIT_VARIANT and the kit recommends no iOS variant")
        variant = try kit.variant(variantId)
        XCTAssertEqual(variant.format, "coreml")
    }

    private func classifier() throws -> DigitClassifier {
        let config = MLModelConfiguration()
        // float32 parity is defined at float32: keep the GPU/ANE (fp16) out of it.
        config.computeUnits = variant.kind == "float32" ? .cpuOnly : .all
        return try DigitClassifier(configuration: config, bundle: Bundle(for: DigitClassifier.self))
    }

    private func image(_ sample: GoldenSample) throws -> CGImage {
        let url = folder.appendingPathComponent(sample.png)
        let source = try XCTUnwrap(CGImageSourceCreateWithURL(url as CFURL, nil), "cannot open \(url.path)")
        return try XCTUnwrap(CGImageSourceCreateImageAtIndex(source, 0, nil), "cannot decode \(url.path)")
    }

    func testModelMatchesTheContract() throws {
        let model = try classifier().model
        let input = try XCTUnwrap(model.modelDescription.inputDescriptionsByName[ModelContract.inputName])
        let constraint = try XCTUnwrap(input.imageConstraint)
        XCTAssertEqual(constraint.pixelsWide, ModelContract.inputWidth)
        XCTAssertEqual(constraint.pixelsHigh, ModelContract.inputHeight)
        XCTAssertEqual(constraint.pixelFormatType, kCVPixelFormatType_OneComponent8)
        XCTAssertNotNil(model.modelDescription.outputDescriptionsByName[ModelContract.probabilitiesOutput])
        XCTAssertEqual(model.modelDescription.predictedFeatureName, ModelContract.labelOutput)
        let labels = (model.modelDescription.classLabels as? [String]) ?? []
        XCTAssertEqual(labels, ModelContract.classLabels)
        XCTAssertEqual(kit.model.classNames, ModelContract.classLabels)
        XCTAssertEqual(kit.model.input.width, ModelContract.inputWidth)
        XCTAssertEqual(kit.model.input.height, ModelContract.inputHeight)
        // The package's contract, read from the kit, is the app's.
        let fromKit = KitModelContract(kit: kit)
        XCTAssertEqual(fromKit.inputName, ModelContract.inputName)
        XCTAssertEqual([fromKit.width, fromKit.height], [ModelContract.inputWidth, ModelContract.inputHeight])
        XCTAssertEqual(fromKit.color, .grayscale)
        XCTAssertEqual(fromKit.classLabels, ModelContract.classLabels)
    }

    func testGoldenPNGsHoldTheKitPixels() throws {
        for sample in kit.samples {
            let buffer = try XCTUnwrap(DigitImage.pixelBuffer(from: try image(sample)))
            CVPixelBufferLockBaseAddress(buffer, .readOnly)
            defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
            let base = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
            let row = CVPixelBufferGetBytesPerRow(buffer)
            var pixels: [UInt8] = []
            for y in 0..<ModelContract.inputHeight { for x in 0..<ModelContract.inputWidth { pixels.append(base[y * row + x]) } }
            XCTAssertEqual(pixels, sample.pixels, "sample \(sample.id): PNG decoding changed the pixels")
        }
    }

    func testEveryGoldenInputAgreesWithinTolerance() throws {
        let classifier = try classifier()
        var failures: [String] = []
        for (i, sample) in kit.samples.enumerated() {
            let probs = try classifier.probabilities(try image(sample))
            failures += goldenFailures(kit: kit, variant: variant, sample: i, probabilities: probs)
        }
        XCTAssertTrue(failures.isEmpty, "\(variantId!): \(failures.count) failures\n" + failures.prefix(20).joined(separator: "\n"))
    }

    func testVisionPathGivesTheSameTop1() throws {
        // The app's own path (Vision): the same top-1 as the kit's rules allow.
        let classifier = try classifier()
        var failures: [String] = []
        for (i, sample) in kit.samples.enumerated() {
            let top = try XCTUnwrap(try classifier.classify(try image(sample), top: 1).first)
            let expected = variant.expected[i].top1
            let relaxed = variant.knownFlips.contains(sample.id) || variant.nearTies.contains(sample.id)
            let allowed = relaxed ? [expected, sample.original.top1] : [expected]
            if !allowed.map({ kit.model.classNames[$0] }).contains(top.label) {
                failures.append("sample \(sample.id): Vision says \(top.label), expected \(kit.model.classNames[expected])")
            }
        }
        XCTAssertTrue(failures.isEmpty, failures.prefix(20).joined(separator: "\n"))
    }
}
#endif
