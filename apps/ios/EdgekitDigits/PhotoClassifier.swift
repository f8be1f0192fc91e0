// Classifies a photo of any size with an RGB or BGR Core ML model edgekit
// converted, and returns the top 3. The model says what it takes in its
// `edgekit.preprocessing` metadata (size, colour order, pixel mapping,
// resize); the EdgekitKit package turns that into a contract, resizes the
// photo exactly as edgekit resized the images it checked the model on, and
// the model's image input does the rest. Vision's path (VNCoreMLRequest,
// .scaleFill: the whole image stretched to the model's size, no crop, the
// kit's recorded resize) is here too; its resampler is Vision's own, not
// Pillow's, so it can differ slightly, and the parity test compares its top-1.
// Core ML and Vision: Apple platforms only.
#if canImport(CoreML) && canImport(Vision)
import CoreML
import EdgekitKit
import Vision

final class PhotoClassifier {
    let model: MLModel
    let contract: KitModelContract
    private let visionModel: VNCoreMLModel

    init(model: MLModel) throws {
        self.model = model
        contract = try PhotoClassifier.contract(of: model)
        visionModel = try VNCoreMLModel(for: model)
    }

    /// What `model` states it takes: its edgekit.preprocessing metadata, the
    /// name of its image input and its classifier labels.
    static func contract(of model: MLModel) throws -> KitModelContract {
        let description = model.modelDescription
        let metadata = description.metadata[.creatorDefinedKey] as? [String: String] ?? [:]
        guard let json = metadata[preprocessingMetadataKey] else {
            throw ModelMetadataError("missing: the model was not converted by edgekit, it does not say how to feed it a photo")
        }
        guard let input = description.inputDescriptionsByName.values.first(where: { $0.type == .image }) else {
            throw ModelMetadataError("the model has no image input")
        }
        return try KitModelContract(preprocessingJSON: json, inputName: input.name,
                                    classLabels: (description.classLabels as? [String]) ?? [])
    }

    /// Every class probability (in `contract.classLabels` order) for a photo
    /// of any size: its pixels at its own size, resized by the package, then
    /// MLModel on a 32BGRA buffer of the model's size.
    func probabilities(_ photo: CGImage) throws -> [Double] {
        let image = try contract.modelImage(try PhotoImage.pixels(of: photo))
        let buffer = try PhotoImage.pixelBuffer(image)
        let input = try MLDictionaryFeatureProvider(dictionary: [contract.inputName: MLFeatureValue(pixelBuffer: buffer)])
        let output = try model.prediction(from: input)
        guard let dict = output.featureValue(for: ModelContract.probabilitiesOutput)?.dictionaryValue else {
            throw NSError(domain: "EdgekitDigits", code: 3, userInfo: [NSLocalizedDescriptionKey:
                "model has no \(ModelContract.probabilitiesOutput) output"])
        }
        var byLabel: [String: Double] = [:]
        for (key, value) in dict { if let label = key as? String { byLabel[label] = value.doubleValue } }
        return try contract.probabilities(byLabel: byLabel)
    }

    /// The screen's top-`k` lines ("1. red 97.3%") for a photo.
    func topLines(_ photo: CGImage, top k: Int = 3) throws -> [String] {
        try contract.topKLines(try probabilities(photo), k: k)
    }

    /// Top-`k` classes through Vision: the whole photo stretched to the
    /// model's size (.scaleFill), as edgekit resized it, by Vision's scaler.
    func visionClassify(_ photo: CGImage, top k: Int = 3) throws -> [Prediction] {
        try visionTopK(visionModel, photo, scaling: .scaleFill, k: k)
    }
}
#endif
