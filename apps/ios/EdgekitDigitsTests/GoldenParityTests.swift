// On-device parity: run Core ML models on every golden input of their kits
// and check the kit's rules (docs/GOLDEN.md), for grayscale and colour kits.
// The kits under test:
// - `golden/` with the app's bundled model (Model.mlpackage); the variant is
//   $EDGEKIT_VARIANT (scheme environment) or the kit's recommended iOS variant;
// - every `kits/<name>/` folder: a kit and one `<variant-id>.mlpackage`
//   beside it (compiled here), e.g. a colour run's kit and its coreml-fp32.
// The kit's types, loader, rules, contract and photo resize are the EdgekitKit
// package's (Sources/EdgekitKit), the same code `swift test` checks on Linux
// against Python; only running the model needs a Mac and a simulator or device.
// A grayscale kit goes through the digit pad's code (DigitImage,
// DigitClassifier), a colour one through the photo screen's (PhotoImage,
// PhotoClassifier): the code the app runs for that model.
#if canImport(CoreML) && canImport(Vision)
import CoreML
import EdgekitKit
import ImageIO
import Vision
import XCTest
@testable import EdgekitDigits

/// A kit, the variant it checks, that variant's Core ML model, and the
/// classifier the app's screen for it uses (digit pad or photo).
struct KitUnderTest {
    let name: String
    let folder: URL
    let kit: GoldenKit
    let variantId: String
    let variant: GoldenVariant
    let model: MLModel
    let contract: KitModelContract
    private let digit: DigitClassifier?
    private let photo: PhotoClassifier?

    init(name: String, folder: URL, kit: GoldenKit, variantId: String, variant: GoldenVariant, model: MLModel) throws {
        self.name = name
        self.folder = folder
        self.kit = kit
        self.variantId = variantId
        self.variant = variant
        self.model = model
        contract = KitModelContract(kit: kit)
        digit = contract.screen == .digitPad ? try DigitClassifier(model: model) : nil
        photo = contract.screen == .photo ? try PhotoClassifier(model: model) : nil
    }

    var isColour: Bool { photo != nil }

    func image(_ sample: GoldenSample) throws -> CGImage {
        let url = folder.appendingPathComponent(sample.png)
        let source = try XCTUnwrap(CGImageSourceCreateWithURL(url as CFURL, nil), "cannot open \(url.path)")
        return try XCTUnwrap(CGImageSourceCreateImageAtIndex(source, 0, nil), "cannot decode \(url.path)")
    }

    /// Every class probability for a sample, through the screen's code for this model.
    func probabilities(_ sample: GoldenSample) throws -> [Double] {
        if let photo { return try photo.probabilities(try image(sample)) }
        return try digit!.probabilities(try image(sample))
    }

    /// Vision's top-1 label for a sample, through the screen's code.
    func visionTop1(_ sample: GoldenSample) throws -> String? {
        if let photo { return try photo.visionClassify(try image(sample), top: 1).first?.label }
        return try digit!.classify(try image(sample), top: 1).first?.label
    }
}

final class GoldenParityTests: XCTestCase {
    private var kits: [KitUnderTest] = []

    override func setUpWithError() throws {
        let bundle = Bundle(for: GoldenParityTests.self)
        if let folder = bundle.url(forResource: ModelContract.goldenFolder, withExtension: nil) {
            let kit = try GoldenKit.load(from: folder)
            let requested = ProcessInfo.processInfo.environment["EDGEKIT_VARIANT"].flatMap { $0.isEmpty ? nil : $0 }
            let id = try XCTUnwrap(requested ?? (kit.recommended["ios"] ?? nil),
                                   "no EDGEKIT_VARIANT and the kit recommends no iOS variant")
            let variant = try kit.variant(id)
            let model = try DigitClassifier.bundledModel(configuration: configuration(variant),
                                                         bundle: Bundle(for: DigitClassifier.self))
            kits.append(try KitUnderTest(name: ModelContract.goldenFolder, folder: folder, kit: kit, variantId: id,
                                         variant: variant, model: model))
        }
        if let root = bundle.url(forResource: ModelContract.kitsFolder, withExtension: nil) {
            let folders = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
                .filter { $0.hasDirectoryPath }.sorted { $0.path < $1.path }
            for folder in folders { kits.append(try kitWithItsModel(folder)) }
        }
        XCTAssertFalse(kits.isEmpty, "copy a run's golden/ into EdgekitDigitsTests/golden, or kits into "
                       + "EdgekitDigitsTests/\(ModelContract.kitsFolder)/<name>/ (see README)")
        for k in kits {
            print("parity kit \(k.name): \(k.variantId), \(k.contract.color.rawValue) \(k.contract.width)x\(k.contract.height)")
            XCTAssertEqual(k.kit.schema, ModelContract.goldenSchema)
            XCTAssertEqual(k.variant.format, "coreml", "\(k.name): \(k.variantId)")
        }
    }

    /// float32 parity is defined at float32: keep the GPU/ANE (fp16) out of it.
    private func configuration(_ variant: GoldenVariant) -> MLModelConfiguration {
        let config = MLModelConfiguration()
        config.computeUnits = variant.kind == "float32" ? .cpuOnly : .all
        return config
    }

    /// `folder`'s kit and the one `<variant-id>.mlpackage` in it, compiled on the device.
    private func kitWithItsModel(_ folder: URL) throws -> KitUnderTest {
        let kit = try GoldenKit.load(from: folder)
        let packages = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "mlpackage" }
        XCTAssertEqual(packages.count, 1, "\(folder.lastPathComponent): one <variant-id>.mlpackage beside golden.json")
        let package = try XCTUnwrap(packages.first)
        let id = package.deletingPathExtension().lastPathComponent
        let variant = try kit.variant(id)
        let model = try MLModel(contentsOf: try MLModel.compileModel(at: package), configuration: configuration(variant))
        return try KitUnderTest(name: folder.lastPathComponent, folder: folder, kit: kit, variantId: id, variant: variant,
                            model: model)
    }

    func testModelMatchesTheContract() throws {
        for k in kits {
            let description = k.model.modelDescription, contract = k.contract
            let input = try XCTUnwrap(description.inputDescriptionsByName[contract.inputName], k.name)
            let constraint = try XCTUnwrap(input.imageConstraint, k.name)
            XCTAssertEqual(constraint.pixelsWide, contract.width, k.name)
            XCTAssertEqual(constraint.pixelsHigh, contract.height, k.name)
            if k.isColour {
                XCTAssertTrue([kCVPixelFormatType_32BGRA, kCVPixelFormatType_32ARGB].contains(constraint.pixelFormatType),
                              "\(k.name): a colour image input")
            } else {
                XCTAssertEqual(constraint.pixelFormatType, kCVPixelFormatType_OneComponent8, k.name)
            }
            XCTAssertNotNil(description.outputDescriptionsByName[ModelContract.probabilitiesOutput], k.name)
            XCTAssertEqual(description.predictedFeatureName, ModelContract.labelOutput, k.name)
            XCTAssertEqual((description.classLabels as? [String]) ?? [], k.kit.model.classNames, k.name)
            // What the model states about itself (the app's screen choice and the photo path) is the kit's contract.
            let stated = try PhotoClassifier.contract(of: k.model)
            XCTAssertEqual([stated.width, stated.height], [contract.width, contract.height], k.name)
            XCTAssertEqual(stated.color, contract.color, k.name)
            XCTAssertEqual(stated.preprocessing.pixelScale, contract.preprocessing.pixelScale, k.name)
            XCTAssertEqual(stated.preprocessing.bias, contract.preprocessing.bias, k.name)
            XCTAssertEqual(stated.screen, k.isColour ? .photo : .digitPad, k.name)
            guard !k.isColour else { continue }
            // The digit pad's constants are the grayscale model's.
            XCTAssertEqual(contract.inputName, ModelContract.inputName)
            XCTAssertEqual([contract.width, contract.height], [ModelContract.inputWidth, ModelContract.inputHeight])
            XCTAssertEqual(contract.classLabels, ModelContract.classLabels)
        }
    }

    func testGoldenPNGsHoldTheKitPixels() throws {
        for k in kits {
            for sample in k.kit.samples {
                XCTAssertEqual(try decodedPixels(k, sample), sample.pixels, "\(k.name) sample \(sample.id): PNG decoding changed the pixels")
            }
        }
    }

    /// A kit PNG decoded the way the screen's code decodes an image: gray into
    /// the digit pad's OneComponent8 buffer, colour into the photo path's BGRA
    /// buffer (as R, G, B, the kit's order).
    private func decodedPixels(_ k: KitUnderTest, _ sample: GoldenSample) throws -> [UInt8] {
        let image = try k.image(sample)
        if k.isColour {
            let bgra = try PhotoImage.pixels(of: image)
            var rgb: [UInt8] = []
            for y in 0..<bgra.height {
                for x in 0..<bgra.width {
                    let px = y * bgra.bytesPerRow + x * 4
                    rgb += [bgra.bytes[px + 2], bgra.bytes[px + 1], bgra.bytes[px]]
                }
            }
            return rgb
        }
        let buffer = try XCTUnwrap(DigitImage.pixelBuffer(from: image))
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        let base = CVPixelBufferGetBaseAddress(buffer)!.assumingMemoryBound(to: UInt8.self)
        let row = CVPixelBufferGetBytesPerRow(buffer)
        var pixels: [UInt8] = []
        for y in 0..<ModelContract.inputHeight { for x in 0..<ModelContract.inputWidth { pixels.append(base[y * row + x]) } }
        return pixels
    }

    func testEveryGoldenInputAgreesWithinTolerance() throws {
        for k in kits {
            var failures: [String] = []
            for (i, sample) in k.kit.samples.enumerated() {
                failures += goldenFailures(kit: k.kit, variant: k.variant, sample: i, probabilities: try k.probabilities(sample))
            }
            XCTAssertTrue(failures.isEmpty, "\(k.name) \(k.variantId): \(failures.count) failures\n"
                          + failures.prefix(20).joined(separator: "\n"))
        }
    }

    func testVisionPathGivesTheSameTop1() throws {
        // The app's Vision path: the same top-1 as the kit's rules allow.
        for k in kits {
            var failures: [String] = []
            for (i, sample) in k.kit.samples.enumerated() {
                let top = try XCTUnwrap(try k.visionTop1(sample))
                let expected = k.variant.expected[i].top1
                let relaxed = k.variant.knownFlips.contains(sample.id) || k.variant.nearTies.contains(sample.id)
                let allowed = relaxed ? [expected, sample.original.top1] : [expected]
                if !allowed.map({ k.kit.model.classNames[$0] }).contains(top) {
                    failures.append("\(k.name) sample \(sample.id): Vision says \(top), expected \(k.kit.model.classNames[expected])")
                }
            }
            XCTAssertTrue(failures.isEmpty, failures.prefix(20).joined(separator: "\n"))
        }
    }
}
#endif
