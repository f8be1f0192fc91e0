// What the app needs from a converted model without a kit beside it: the
// contract the model states about itself (the `edgekit.preprocessing` JSON
// that edgekit's convert stage writes into the Core ML user-defined metadata
// and the TFLite metadata: size, colour, resize, pixel mapping), the screen
// that contract gets (a grayscale model: the digit pad; an RGB or BGR model:
// the photo screen), Core ML's label -> probability dictionary in the
// model's class order, and the top-k lines the screens show.
import Foundation

/// The metadata key convert writes the preprocessing under (convert/stage.py).
public let preprocessingMetadataKey = "edgekit.preprocessing"

/// A model whose metadata cannot give a contract: one line saying why.
public struct ModelMetadataError: Error, Equatable, CustomStringConvertible, LocalizedError {
    public let detail: String

    public init(_ detail: String) { self.detail = detail }

    public var description: String { "model metadata \(preprocessingMetadataKey): \(detail)" }
    public var errorDescription: String? { description }
}

/// The app's two screens: which one a model gets follows from its input colour.
public enum AppScreen: String, Equatable {
    /// Draw a digit (a grayscale model, like MNIST's).
    case digitPad
    /// Pick a photo (an RGB or BGR model).
    case photo
}

private struct PreprocessingMetadata: Decodable {
    struct Pixels: Decodable {
        let scale: [Double]
        let bias: [Double]
    }
    let height: Int
    let width: Int
    let color: String
    let resize: String?
    let pixels: Pixels
}

extension KitModelContract {
    /// The contract a converted model states in its `edgekit.preprocessing`
    /// metadata; `inputName` and `classLabels` come from the model's own
    /// description (its image input and classifier labels).
    public init(preprocessingJSON json: String, inputName: String, classLabels: [String]) throws {
        let meta: PreprocessingMetadata
        do {
            meta = try JSONDecoder().decode(PreprocessingMetadata.self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw ModelMetadataError(describe(error))
        }
        guard let color = ColorOrder(rawValue: meta.color) else {
            throw ModelMetadataError("color \"\(meta.color)\", expected grayscale, rgb or bgr")
        }
        let c = color.channels, px = meta.pixels
        guard (1...4096).contains(meta.width), (1...4096).contains(meta.height) else {
            throw ModelMetadataError("the input is \(meta.width)x\(meta.height)")
        }
        guard px.scale.count == c, px.bias.count == c else {
            throw ModelMetadataError("pixels has \(px.scale.count) scales and \(px.bias.count) biases for \(c) channel(s)")
        }
        guard (px.scale + px.bias).allSatisfy(\.isFinite), !px.scale.contains(0) else {
            throw ModelMetadataError("pixels scale \(px.scale), bias \(px.bias)")
        }
        guard !classLabels.isEmpty else { throw ModelMetadataError("the model has no class labels") }
        // The mean/std form of the same mapping, as golden.input_spec states it;
        // the values come from scale and bias (Preprocessing.value).
        let std = px.scale.map { 1 / (255 * $0) }
        let mean = zip(px.bias, std).map { -$0 * $1 }
        self.init(inputName: inputName, width: meta.width, height: meta.height, color: color,
                  preprocessing: Preprocessing(scale: 1 / 255, mean: mean, std: std, pixelScale: px.scale, bias: px.bias),
                  classLabels: classLabels, resize: ResizeMethod(recorded: meta.resize))
    }

    /// The screen this model gets: grayscale draws a digit, colour picks a photo.
    public var screen: AppScreen { color == .grayscale ? .digitPad : .photo }

    /// Core ML's classifier output (label -> probability) as one probability
    /// per class, in `classLabels` order; throws when a label is missing.
    public func probabilities(byLabel: [String: Double]) throws -> [Double] {
        let missing = classLabels.filter { byLabel[$0] == nil }
        guard missing.isEmpty else {
            throw ModelMetadataError("the model's output has no probability for \(listed(missing.map { "\"\($0)\"" }))")
        }
        return classLabels.map { byLabel[$0]! }
    }

    /// The top-`k` lines a screen shows, e.g. "1. red 97.3%".
    public func topKLines(_ probabilities: [Double], k: Int) throws -> [String] {
        try topK(probabilities, k: k).enumerated().map { "\($0.offset + 1). \($0.element.label) \(percentText($0.element.probability))" }
    }
}

/// A probability as the screens show it: a percentage with one decimal
/// ("97.3%"); NaN or infinity (a broken model) as "n/a", never a number.
public func percentText(_ probability: Double) -> String {
    probability.isFinite ? String(format: "%.1f%%", 100 * probability) : "n/a"
}
