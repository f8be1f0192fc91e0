// Classifies a digit image with the bundled Core ML model through Vision
// (VNCoreMLRequest -> VNClassificationObservation) and returns the top 3.
// Core ML and Vision exist on Apple platforms only: on Linux this file is
// empty (the package in Sources/ holds the plain-Swift part, tested there).
#if canImport(CoreML) && canImport(Vision)
import CoreML
import Vision

struct Prediction: Identifiable, Equatable {
    let label: String
    let probability: Float
    var id: String { label }
}

/// Vision's top-`k` classes for `image`, most probable first, the image
/// brought to the model's input size by `scaling`.
func visionTopK(_ model: VNCoreMLModel, _ image: CGImage, scaling: VNImageCropAndScaleOption, k: Int) throws -> [Prediction] {
    let request = VNCoreMLRequest(model: model)
    request.imageCropAndScaleOption = scaling
    try VNImageRequestHandler(cgImage: image, options: [:]).perform([request])
    let observations = (request.results as? [VNClassificationObservation]) ?? []
    return observations.sorted { $0.confidence > $1.confidence }.prefix(k)
        .map { Prediction(label: $0.identifier, probability: $0.confidence) }
}

final class DigitClassifier {
    let model: MLModel
    private let visionModel: VNCoreMLModel

    init(configuration: MLModelConfiguration = MLModelConfiguration(), bundle: Bundle = .main) throws {
        try self.init(model: try DigitClassifier.bundledModel(configuration: configuration, bundle: bundle))
    }

    /// A classifier of an already loaded model (the parity test loads kits' models itself).
    init(model: MLModel) throws {
        self.model = model
        visionModel = try VNCoreMLModel(for: model)
    }

    /// The app's compiled model (Model.mlpackage -> Model.mlmodelc in the bundle).
    static func bundledModel(configuration: MLModelConfiguration = MLModelConfiguration(), bundle: Bundle = .main) throws -> MLModel {
        guard let url = bundle.url(forResource: ModelContract.modelResource, withExtension: "mlmodelc") else {
            throw NSError(domain: "EdgekitDigits", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "\(ModelContract.modelResource).mlmodelc is not in the bundle: copy a run's Model.mlpackage into EdgekitDigits/ (see README)"])
        }
        return try MLModel(contentsOf: url, configuration: configuration)
    }

    /// Top-`k` classes for a grayscale image, most probable first.
    func classify(_ image: CGImage, top k: Int = 3) throws -> [Prediction] {
        // The image is already the model's size; scaleFit keeps a drawn digit's aspect ratio.
        try visionTopK(visionModel, image, scaling: .scaleFit, k: k)
    }

    /// All class probabilities (in ModelContract.classLabels order) from MLModel directly,
    /// with the image given as a pixel buffer: no Vision scaling in between.
    func probabilities(_ image: CGImage) throws -> [Double] {
        guard let buffer = DigitImage.pixelBuffer(from: image) else {
            throw NSError(domain: "EdgekitDigits", code: 2, userInfo: [NSLocalizedDescriptionKey: "cannot make a pixel buffer"])
        }
        let input = try MLDictionaryFeatureProvider(dictionary: [ModelContract.inputName: MLFeatureValue(pixelBuffer: buffer)])
        let output = try model.prediction(from: input)
        guard let dict = output.featureValue(for: ModelContract.probabilitiesOutput)?.dictionaryValue else {
            throw NSError(domain: "EdgekitDigits", code: 3, userInfo: [NSLocalizedDescriptionKey:
                "model has no \(ModelContract.probabilitiesOutput) output"])
        }
        return ModelContract.classLabels.map { dict[$0 as NSString]?.doubleValue ?? .nan }
    }
}
#endif
