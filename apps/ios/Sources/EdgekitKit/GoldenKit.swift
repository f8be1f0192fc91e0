// The golden kit (docs/GOLDEN.md, schema edgekit.golden/1) as Swift types,
// and its loader: golden.json read, checked for its schema, decoded, checked
// for counts that agree, and every sample's PNG found, or one GoldenKitError
// saying which file and what is wrong.
//
// Decoded with .convertFromSnakeCase: `testIndex` reads "test_index". The
// strategy also rewrites dictionary keys with underscores, which is why
// edgekit's variant ids use hyphens (coreml-pal4), never underscores
// (tests/apps/test_ios_contract.py checks the shipped ids).
import Foundation

public struct GoldenKit: Decodable {
    /// The schema this package reads.
    public static let supportedSchema = "edgekit.golden/1"
    /// The kit's JSON inside its folder.
    public static let fileName = "golden.json"

    public let schema: String
    public let run: String?
    public let count: Int
    public let model: GoldenModel
    /// "ios" / "android" -> the variant to ship, or null.
    public let recommended: [String: String?]
    public let samples: [GoldenSample]
    public let variants: [String: GoldenVariant]
}

public struct GoldenModel: Decodable {
    public let input: GoldenInput
    public let output: GoldenModelOutput
    public let classNames: [String]
}

/// The model's input as the kit records it. `pixels` hold height x width x
/// channels uint8 values, row-major, top row first, channels interleaved in
/// RGB order (channels = 3); the model's input value for a pixel p of
/// channel c (in the model's `color` order) is (p * scale - mean[c]) / std[c],
/// mean 0 and std 1 when the kit has none.
public struct GoldenInput: Decodable {
    public let name: String
    public let height: Int
    public let width: Int
    public let channels: Int
    /// "grayscale" (channels 1), "rgb" or "bgr" (channels 3): the channel order the model takes.
    public let color: String
    public let pixelDtype: String?
    public let scale: Double
    public let mean: [Double]?
    public let std: [Double]?
    /// The model's own mapping, input = pixel * scale[c] + bias[c] (newer kits).
    public let pixels: GoldenPixelMapping?
    public let layout: String?
    /// How every image was resized to width x height ("bilinear, whole image, no crop ...").
    public let resize: String?
    /// Colour kits: the channel order of `pixels` and the PNGs ("rgb") and the model's ("rgb" or "bgr").
    public let sampleChannelOrder: String?
    public let modelChannelOrder: String?
}

public struct GoldenPixelMapping: Decodable {
    public let scale: [Double]
    public let bias: [Double]
}

public struct GoldenModelOutput: Decodable {
    public let name: String
    public let classes: Int
}

public struct GoldenOutput: Decodable {
    public let top1: Int
    public let probabilities: [Double]
}

public struct GoldenSample: Decodable {
    public let id: String
    public let testIndex: Int
    public let label: Int
    public let labelName: String?
    /// The PNG's path inside the kit folder.
    public let png: String
    public let pixels: [UInt8]
    public let original: GoldenOutput
    public let flippedIn: [String]?
}

public struct GoldenTolerance: Decodable {
    public let maxAbsProbDiff: Double
}

public struct GoldenVariant: Decodable {
    public let format: String
    public let kind: String?
    public let backend: String?
    public let file: String?
    public let passedCheck: Bool?
    public let tolerance: GoldenTolerance
    public let knownFlips: [String]
    public let nearTies: [String]
    /// One per sample, in the kit's sample order.
    public let expected: [GoldenOutput]
}

/// A kit that cannot be used, with the file and what is wrong in one line.
public struct GoldenKitError: Error, Equatable, CustomStringConvertible, LocalizedError {
    public enum Kind: Equatable {
        case unreadable     // golden.json missing or unreadable
        case notJSON        // truncated or corrupt JSON
        case wrongSchema    // another (or no) schema id
        case badField       // a field missing or of the wrong type
        case inconsistent   // counts or references that disagree
        case missingPNG     // a sample's PNG is not in the kit folder
    }

    public let kind: Kind
    public let file: String
    public let detail: String

    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    public var description: String { "\(file): \(detail)" }
    public var errorDescription: String? { description }
}

extension GoldenKit {
    /// Load `folder/golden.json` and check it, and that every sample's PNG is in `folder`.
    public static func load(from folder: URL) throws -> GoldenKit {
        let url = folder.appendingPathComponent(fileName)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GoldenKitError(.unreadable, file: url.path, "cannot read the kit: \(error.localizedDescription)")
        }
        let kit = try decode(data, file: url.path)
        var missing: [String] = []
        for sample in kit.samples {
            let png = folder.appendingPathComponent(sample.png)
            if !FileManager.default.fileExists(atPath: png.path) { missing.append(sample.png) }
        }
        if !missing.isEmpty {
            throw GoldenKitError(.missingPNG, file: url.path,
                                 "\(missing.count) sample PNG(s) missing from the kit folder: \(listed(missing))")
        }
        return kit
    }

    /// Decode and check golden.json's bytes (`file` names it in errors); PNGs are not looked at.
    public static func decode(_ data: Data, file: String) throws -> GoldenKit {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw GoldenKitError(.notJSON, file: file,
                                 "not valid JSON (a truncated or corrupt file?), \(data.count) bytes")
        }
        guard let top = object as? [String: Any] else {
            throw GoldenKitError(.notJSON, file: file, "the kit must be a JSON object")
        }
        let schema = top["schema"] as? String
        guard schema == supportedSchema else {
            throw GoldenKitError(.wrongSchema, file: file,
                                 "schema \(schema.map { "\"\($0)\"" } ?? "missing"), this app reads \"\(supportedSchema)\"")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let kit: GoldenKit
        do {
            kit = try decoder.decode(GoldenKit.self, from: data)
        } catch let error as DecodingError {
            throw GoldenKitError(.badField, file: file, describe(error))
        }
        let problems = kit.problems()
        if !problems.isEmpty {
            throw GoldenKitError(.inconsistent, file: file, listed(problems))
        }
        return kit
    }

    /// Every way the kit's parts disagree with each other (empty: consistent).
    func problems() -> [String] {
        var out: [String] = []
        let input = model.input, classes = model.classNames.count
        if count != samples.count { out.append("count is \(count) but there are \(samples.count) samples") }
        if model.output.classes != classes {
            out.append("model.output.classes is \(model.output.classes) but there are \(classes) class_names")
        }
        if !(1...4096).contains(input.width) || !(1...4096).contains(input.height) {
            out.append("model.input is \(input.width)x\(input.height)")
        }
        switch (input.channels, input.color) {
        case (1, "grayscale"), (3, "rgb"), (3, "bgr"): break
        default: out.append("model.input: \(input.channels) channel(s) with color \"\(input.color)\"")
        }
        // samples are RGB (what a photo gives an app); the model's order is its colour
        if let order = input.sampleChannelOrder, order != "rgb" {
            out.append("model.input.sample_channel_order is \"\(order)\", this package reads \"rgb\" samples")
        }
        if let order = input.modelChannelOrder, order != input.color {
            out.append("model.input.model_channel_order \"\(order)\" disagrees with color \"\(input.color)\"")
        }
        if !input.scale.isFinite || input.scale == 0 { out.append("model.input.scale is \(input.scale)") }
        for (key, values) in [("mean", input.mean), ("std", input.std)] {
            guard let values else { continue }
            if values.count != input.channels {
                out.append("model.input.\(key) has \(values.count) values for \(input.channels) channel(s)")
            } else if values.contains(where: { !$0.isFinite }) || (key == "std" && values.contains(0)) {
                out.append("model.input.\(key) is \(values)")
            }
        }
        if let px = input.pixels {
            if px.scale.count != input.channels || px.bias.count != input.channels {
                out.append("model.input.pixels has \(px.scale.count) scales and \(px.bias.count) biases "
                           + "for \(input.channels) channel(s)")
            } else if (px.scale + px.bias).contains(where: { !$0.isFinite }) || px.scale.contains(0) {
                out.append("model.input.pixels is scale \(px.scale), bias \(px.bias)")
            }
        }
        let pixelCount = input.width * input.height * input.channels
        var ids = Set<String>()
        for (i, s) in samples.enumerated() {
            if !ids.insert(s.id).inserted { out.append("samples[\(i)]: id \(s.id) repeats") }
            if s.pixels.count != pixelCount {
                out.append("samples[\(i)].pixels has \(s.pixels.count) values, the input needs \(pixelCount)")
            }
            out += outputProblems(s.original, "samples[\(i)].original", classes)
            if s.png.hasPrefix("/") || s.png.split(separator: "/").contains("..") {
                out.append("samples[\(i)].png \(s.png) is outside the kit folder")
            }
        }
        for (id, v) in variants.sorted(by: { $0.key < $1.key }) {
            if v.expected.count != samples.count {
                out.append("variants.\(id).expected has \(v.expected.count) outputs for \(samples.count) samples")
            }
            for (i, e) in v.expected.enumerated() { out += outputProblems(e, "variants.\(id).expected[\(i)]", classes) }
            let unknown = (v.knownFlips + v.nearTies).filter { !ids.contains($0) }
            if !unknown.isEmpty { out.append("variants.\(id) names unknown samples \(listed(unknown))") }
            let tol = v.tolerance.maxAbsProbDiff
            if !tol.isFinite || tol < 0 { out.append("variants.\(id).tolerance.max_abs_prob_diff is \(tol)") }
        }
        for (platform, id) in recommended.sorted(by: { $0.key < $1.key }) {
            if let id, variants[id] == nil { out.append("recommended.\(platform) is \(id), not a variant of the kit") }
        }
        return out
    }
}

private func outputProblems(_ o: GoldenOutput, _ at: String, _ classes: Int) -> [String] {
    var out: [String] = []
    if o.probabilities.count != classes {
        out.append("\(at).probabilities has \(o.probabilities.count) values for \(classes) classes")
    }
    if !(0..<classes).contains(o.top1) { out.append("\(at).top1 is \(o.top1), not a class index") }
    return out
}

/// At most five items, then how many more: error lines stay one line.
func listed(_ items: [String]) -> String {
    let head = items.prefix(5).joined(separator: "; ")
    return items.count > 5 ? "\(head); and \(items.count - 5) more" : head
}

/// "samples[3].test_index: missing" from a DecodingError, in golden.json's own key names.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + snakeCase(key.stringValue) }
        }
        return out.isEmpty ? "the kit" : out
    }
    switch error {
    case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])): missing"
    case .typeMismatch(let type, let ctx): return "\(path(ctx.codingPath)): not a \(type)"
    case .valueNotFound(let type, let ctx): return "\(path(ctx.codingPath)): null where a \(type) is needed"
    case .dataCorrupted(let ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    @unknown default: return "\(error)"
    }
}

private func snakeCase(_ name: String) -> String {
    var out = ""
    for ch in name {
        if ch.isUppercase, !out.isEmpty { out += "_" }
        out += ch.lowercased()
    }
    return out
}
