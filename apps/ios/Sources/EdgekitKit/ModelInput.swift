// The model contract as the golden kit states it (input name, size, colour,
// preprocessing, class labels), and the pixel preprocessing that turns a
// grayscale or RGB(A) pixel buffer into the values the model takes: what
// edgekit fed the model when it computed the kit's expected outputs.
//
// A buffer of the model's size is mapped as it is; a photo of any other
// size is first resized the way the kit records (`resize`: Pillow's
// bilinear over the whole image, Resize.swift), so an app that decodes a
// photo into an RGBA/BGRA buffer at its own size gets what edgekit fed the
// model. Decoding the photo (PNG/JPEG -> pixels) needs Core Graphics: only
// a Mac and a device can check that step.
import Foundation

/// How an image of another size becomes the model's width x height, as the
/// kit or the model's metadata records it ("bilinear, whole image, no crop").
public enum ResizeMethod: Equatable {
    /// Pillow's bilinear over the whole image, no crop, aspect ratio not kept (train/data.py).
    case bilinear
    /// A method this package does not implement, as recorded.
    case unsupported(String)

    /// The method a recorded text names: its words before the first comma;
    /// none recorded is edgekit's only method (ModelIO's default, bilinear).
    public init(recorded text: String?) {
        let name = (text ?? "bilinear").split(separator: ",", maxSplits: 1).first
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        self = name == "bilinear" ? .bilinear : .unsupported(text ?? "")
    }
}

/// The channel order a model takes.
public enum ColorOrder: String, Equatable {
    case grayscale, rgb, bgr

    public var channels: Int { self == .grayscale ? 1 : 3 }
}

/// value = (pixel * scale - mean[c]) / std[c], per model channel c; or, when
/// the kit records the model's own mapping (`model.input.pixels`),
/// value = pixel * pixelScale[c] + bias[c], the arithmetic edgekit's
/// PixelMapping.apply does (the two forms state the same mapping and differ
/// by at most one float32 step).
public struct Preprocessing: Equatable {
    public let scale: Double
    public let mean: [Double]
    public let std: [Double]
    /// The model's per-channel mapping, if the kit has it (it then decides the values).
    public let pixelScale: [Double]?
    public let bias: [Double]?

    public init(scale: Double, mean: [Double], std: [Double], pixelScale: [Double]? = nil, bias: [Double]? = nil) {
        self.scale = scale
        self.mean = mean
        self.std = std
        self.pixelScale = pixelScale
        self.bias = bias
    }

    /// The model input value of an 8-bit `pixel` in model channel `channel`,
    /// computed in Double and rounded once to Float (as float32 p / 255 is).
    public func value(_ pixel: UInt8, channel: Int) -> Float {
        if let pixelScale, let bias {
            return Float(Double(pixel) * pixelScale[channel] + bias[channel])
        }
        return Float((Double(pixel) * scale - mean[channel]) / std[channel])
    }
}

/// What a model expects, read from a checked kit.
public struct KitModelContract: Equatable {
    public let inputName: String
    public let width: Int
    public let height: Int
    public let color: ColorOrder
    public let preprocessing: Preprocessing
    public let classLabels: [String]
    /// How a photo of another size is brought to width x height.
    public let resize: ResizeMethod

    public var channels: Int { color.channels }
    /// Input values per image: height x width x channels.
    public var valueCount: Int { width * height * channels }

    public init(inputName: String, width: Int, height: Int, color: ColorOrder, preprocessing: Preprocessing,
                classLabels: [String], resize: ResizeMethod = .bilinear) {
        self.inputName = inputName
        self.width = width
        self.height = height
        self.color = color
        self.preprocessing = preprocessing
        self.classLabels = classLabels
        self.resize = resize
    }

    public init(kit: GoldenKit) {
        // GoldenKit.decode has checked channels, colour, mean and std agree.
        let input = kit.model.input
        inputName = input.name
        width = input.width
        height = input.height
        color = ColorOrder(rawValue: input.color) ?? .grayscale
        let c = color.channels
        preprocessing = Preprocessing(scale: input.scale, mean: input.mean ?? Array(repeating: 0, count: c),
                                      std: input.std ?? Array(repeating: 1, count: c),
                                      pixelScale: input.pixels?.scale, bias: input.pixels?.bias)
        classLabels = kit.model.classNames
        resize = ResizeMethod(recorded: input.resize)
    }

    /// The model input values (row-major, top row first, channels
    /// interleaved in the model's colour order) for `image`.
    public func inputValues(_ image: PixelImage) throws -> [Float] {
        guard image.width == width, image.height == height else {
            throw PixelError.size(got: "\(image.width)x\(image.height)", needed: "\(width)x\(height)")
        }
        let source = try channelSource(image.format)
        var out: [Float] = []
        out.reserveCapacity(valueCount)
        let step = image.format.bytesPerPixel
        for y in 0..<height {
            let row = y * image.bytesPerRow
            for x in 0..<width {
                let px = row + x * step
                for (c, offset) in source.enumerated() {
                    out.append(preprocessing.value(image.bytes[px + offset], channel: c))
                }
            }
        }
        return out
    }

    /// `photo` at the model's size: as it is when it already has that size,
    /// otherwise resized with the contract's method (the whole image, no crop).
    public func modelImage(_ photo: PixelImage) throws -> PixelImage {
        _ = try channelSource(photo.format)
        if photo.width == width && photo.height == height { return photo }
        switch resize {
        case .bilinear: return try photo.resizedBilinear(width: width, height: height)
        case .unsupported(let text): throw PixelError.resize(text)
        }
    }

    /// The model input values for a photo of any size: resized as the kit
    /// records (`modelImage`), then mapped like a buffer of the model's size.
    public func inputValues(photo: PixelImage) throws -> [Float] {
        try inputValues(try modelImage(photo))
    }

    /// The model input values for one of the kit's samples (its `pixels`).
    public func inputValues(_ sample: GoldenSample) throws -> [Float] {
        try inputValues(PixelImage(sample: sample, width: width, height: height, channels: channels))
    }

    /// Where each model channel is in a `format` pixel; throws when that
    /// buffer cannot feed this model (gray for colour or the other way round).
    private func channelSource(_ format: PixelFormat) throws -> [Int] {
        switch (color, format) {
        case (.grayscale, .gray8): return [0]
        case (.rgb, .rgb8), (.rgb, .rgba8): return [0, 1, 2]
        case (.bgr, .rgb8), (.bgr, .rgba8): return [2, 1, 0]
        case (.rgb, .bgra8): return [2, 1, 0]
        case (.bgr, .bgra8): return [0, 1, 2]
        default: throw PixelError.format(got: format, model: color)
        }
    }

    /// The `k` most probable classes with their labels, most probable first.
    public func topK(_ probabilities: [Double], k: Int) throws -> [(label: String, probability: Double)] {
        guard probabilities.count == classLabels.count else {
            throw PixelError.classes(got: probabilities.count, needed: classLabels.count)
        }
        return EdgekitKit.topK(probabilities, k: k).map { (classLabels[$0.index], $0.probability) }
    }
}

/// How a pixel's bytes are laid out in a buffer.
public enum PixelFormat: Equatable {
    /// one byte per pixel (Core Video OneComponent8)
    case gray8
    /// R, G, B
    case rgb8
    /// R, G, B, A (alpha ignored)
    case rgba8
    /// B, G, R, A (Core Video 32BGRA; alpha ignored)
    case bgra8

    public var bytesPerPixel: Int {
        switch self {
        case .gray8: return 1
        case .rgb8: return 3
        case .rgba8, .bgra8: return 4
        }
    }
}

public enum PixelError: Error, Equatable, CustomStringConvertible {
    case size(got: String, needed: String)
    case format(got: PixelFormat, model: ColorOrder)
    case buffer(String)
    case classes(got: Int, needed: Int)
    case resize(String)

    public var description: String {
        switch self {
        case .resize(let method): return "the model's images were resized \"\(method)\"; this package resizes bilinear only"
        case .size(let got, let needed): return "the image is \(got), the model takes \(needed) (resize it first)"
        case .format(let got, let model): return "a \(got) buffer cannot feed a \(model.rawValue) model"
        case .buffer(let why): return "bad pixel buffer: \(why)"
        case .classes(let got, let needed): return "\(got) probabilities for \(needed) class labels"
        }
    }
}

/// An 8-bit pixel buffer: `bytesPerRow` may pad rows (as Core Video's do).
public struct PixelImage {
    public let width: Int
    public let height: Int
    public let format: PixelFormat
    public let bytesPerRow: Int
    public let bytes: [UInt8]

    public init(width: Int, height: Int, format: PixelFormat, bytesPerRow: Int? = nil, bytes: [UInt8]) throws {
        let row = bytesPerRow ?? width * format.bytesPerPixel
        guard width > 0, height > 0 else { throw PixelError.buffer("\(width)x\(height) pixels") }
        guard row >= width * format.bytesPerPixel else {
            throw PixelError.buffer("\(row) bytes per row for \(width) \(format) pixels")
        }
        guard bytes.count >= row * (height - 1) + width * format.bytesPerPixel else {
            throw PixelError.buffer("\(bytes.count) bytes for \(height) rows of \(row)")
        }
        self.width = width
        self.height = height
        self.format = format
        self.bytesPerRow = row
        self.bytes = bytes
    }

    /// A kit sample's pixels (gray, or interleaved RGB when channels = 3).
    public init(sample: GoldenSample, width: Int, height: Int, channels: Int) throws {
        try self.init(width: width, height: height, format: channels == 3 ? .rgb8 : .gray8, bytes: sample.pixels)
    }
}
