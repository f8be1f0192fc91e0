// The contract between this app and the Core ML model edgekit converts.
//
// Every name the Swift code uses to talk to the model lives here, and only
// here: tests/apps/test_ios_contract.py parses these lines and checks them
// against the spec of a real converted edgekit Core ML variant and a real
// golden kit, so a change on either side fails a test instead of a phone.
// Keep each constant on one line in the form `static let name = value`.

import Foundation

enum ModelContract {
    /// Resource name of the compiled model in the app bundle (Model.mlpackage -> Model.mlmodelc).
    static let modelResource = "Model"
    /// The image input: 28x28, one 8-bit gray channel; the model scales by 1/255 itself.
    static let inputName = "image"
    static let inputWidth = 28
    static let inputHeight = 28
    static let inputColorSpace = "GRAYSCALE"
    /// MNIST convention: a white digit on a black background.
    static let invertCanvas = true
    /// Classifier outputs: the top label and the label -> probability dictionary.
    static let labelOutput = "classLabel"
    static let probabilitiesOutput = "classLabel_probs"
    /// The class labels in index order (the model's classifier labels).
    static let classLabels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    /// The golden kit's folder in the test bundle and its schema.
    static let goldenFolder = "golden"
    /// More kits in the test bundle, each folder a kit and its `<variant-id>.mlpackage` (e.g. a colour model's).
    static let kitsFolder = "kits"
    static let goldenSchema = "edgekit.golden/1"
}
