// A photo of any size becomes the model's input the way edgekit made every
// image it checked the model on: the resize equals what train/data.py's
// folder reader (Pillow, bilinear, whole image) gives, byte for byte
// (resize.json), and the colour kit's own photos, 40x40 as the dataset
// stored them, go through resize and preprocessing to exactly the sample
// pixels and the float32 values Python fed the model (preprocessing.json).
import Foundation
import XCTest
@testable import EdgekitKit

struct ResizeFile: Decodable {
    struct Case: Decodable {
        let color: String
        let width: Int
        let height: Int
        let pixels: [UInt8]
        let outWidth: Int
        let outHeight: Int
        let resized: [UInt8]
    }
    let method: String
    let cases: [Case]
}

struct PhotoFile: Decodable {
    struct Photo: Decodable {
        let id: String
        let file: String
        let width: Int
        let height: Int
        let pixels: [UInt8]
    }
    let kitRgbPhotos: [Photo]
}

/// `rgb` (R, G, B interleaved, w x h) as a Core Video style BGRA buffer:
/// B, G, R, A per pixel and `pad` junk bytes after every row.
func bgraBuffer(_ rgb: [UInt8], width w: Int, height h: Int, pad: Int = 12) throws -> PixelImage {
    var out: [UInt8] = []
    for y in 0..<h {
        for x in 0..<w {
            let i = (y * w + x) * 3
            out += [rgb[i + 2], rgb[i + 1], rgb[i], 255]
        }
        out += Array(repeating: 0xA5, count: pad)
    }
    return try PixelImage(width: w, height: h, format: .bgra8, bytesPerRow: w * 4 + pad, bytes: out)
}

/// How many positions of `a` and `b` hold different bytes (a length mismatch counts too):
/// a failure says how far off, not 3,000 numbers.
func differing(_ a: [UInt8], _ b: [UInt8]) -> Int {
    zip(a, b).filter { $0 != $1 }.count + abs(a.count - b.count)
}

/// The R, G, B bytes of every pixel of `image`, rows unpadded.
func rgbBytes(_ image: PixelImage) -> [UInt8] {
    let order: [Int]
    switch image.format {
    case .rgb8, .rgba8: order = [0, 1, 2]
    case .bgra8: order = [2, 1, 0]
    case .gray8: order = [0]
    }
    var out: [UInt8] = []
    for y in 0..<image.height {
        for x in 0..<image.width {
            let px = y * image.bytesPerRow + x * image.format.bytesPerPixel
            out += order.map { image.bytes[px + $0] }
        }
    }
    return out
}

final class ResizeTests: XCTestCase {
    private func file() throws -> ResizeFile {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ResizeFile.self, from: try Fixtures.data("resize.json"))
    }

    func testResizeIsWhatEdgekitsReaderGivesByteForByte() throws {
        let file = try file()
        XCTAssertEqual(file.method, "bilinear", "train/data.py resizes another way now: Resize.swift must follow")
        XCTAssertGreaterThanOrEqual(file.cases.count, 8)
        var checked = 0
        for c in file.cases {
            let name = "\(c.color) \(c.width)x\(c.height) -> \(c.outWidth)x\(c.outHeight)"
            let photo = try PixelImage(width: c.width, height: c.height, format: c.color == "grayscale" ? .gray8 : .rgb8,
                                       bytes: c.pixels)
            let out = try photo.resizedBilinear(width: c.outWidth, height: c.outHeight)
            XCTAssertEqual([out.width, out.height], [c.outWidth, c.outHeight], name)
            XCTAssertEqual(differing(rgbBytes(out), c.resized), 0, "\(name): bytes differ from Pillow's")
            checked += 1
            guard c.color == "rgb" else { continue }
            // what a phone decodes a photo into: BGRA with padded rows; the same bytes come out
            let bgra = try bgraBuffer(c.pixels, width: c.width, height: c.height)
            XCTAssertEqual(differing(rgbBytes(try bgra.resizedBilinear(width: c.outWidth, height: c.outHeight)), c.resized),
                           0, "\(name), from a padded BGRA buffer")
        }
        print("resize: \(checked) of \(file.cases.count) photos resized exactly as edgekit's reader resizes them")
    }

    /// Sensitivity: a plain 4-neighbour bilinear (what "bilinear" means to
    /// most image APIs) gives other bytes on a downscale, so the byte-for-byte
    /// test above could fail for a resize that is merely close.
    func testAFourNeighbourBilinearWouldNotPass() throws {
        let c = try XCTUnwrap(try file().cases.first { $0.width > 2 * $0.outWidth && $0.color == "rgb" })
        var naive: [UInt8] = []
        let sx = Double(c.width) / Double(c.outWidth), sy = Double(c.height) / Double(c.outHeight)
        for y in 0..<c.outHeight {
            let fy = max(0, (Double(y) + 0.5) * sy - 0.5), y0 = min(Int(fy), c.height - 1), y1 = min(y0 + 1, c.height - 1)
            for x in 0..<c.outWidth {
                let fx = max(0, (Double(x) + 0.5) * sx - 0.5), x0 = min(Int(fx), c.width - 1), x1 = min(x0 + 1, c.width - 1)
                for ch in 0..<3 {
                    func p(_ xx: Int, _ yy: Int) -> Double { Double(c.pixels[(yy * c.width + xx) * 3 + ch]) }
                    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * (fx - Double(x0))
                    let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * (fx - Double(x0))
                    naive.append(UInt8((top + (bottom - top) * (fy - Double(y0))).rounded()))
                }
            }
        }
        XCTAssertGreaterThan(differing(naive, c.resized), c.resized.count / 4, "the resize cases cannot tell Pillow's filter from a naive one")
    }

    /// The colour kit end to end: each sample's 40x40 source photo, as a
    /// phone holds it (BGRA, padded rows), resized by the kit's contract to
    /// the model's 32x32, is the sample's pixels, and its input values are
    /// the ones Python fed the BGR model, bit for bit.
    func testTheRGBKitsPhotosGiveTheValuesPythonFedTheModel() throws {
        let kit = try Fixtures.kit("kit-rgb")
        let contract = KitModelContract(kit: kit)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let photos = try decoder.decode(PhotoFile.self, from: try Fixtures.data("preprocessing.json")).kitRgbPhotos
        let fed = try XCTUnwrap(try Fixtures.decode(PreprocessingFile.self, "preprocessing.json").kitRGB)
        XCTAssertEqual(photos.map(\.id), kit.samples.map(\.id))
        for ((sample, photo), python) in zip(zip(kit.samples, photos), fed) {
            XCTAssertNotEqual([photo.width, photo.height], [contract.width, contract.height], "nothing to resize")
            let buffer = try bgraBuffer(photo.pixels, width: photo.width, height: photo.height)
            XCTAssertEqual(differing(rgbBytes(try contract.modelImage(buffer)), sample.pixels), 0,
                           "\(sample.id) (\(photo.file)): the resized photo is not the sample's pixels")
            let values = try contract.inputValues(photo: buffer)
            XCTAssertEqual(values.count, python.values.count, sample.id)
            XCTAssertEqual(zip(values, python.values).map { ulps($0, $1) }.max(), 0,
                           "\(sample.id) (\(photo.file)): not the float32 values Python fed the model")
        }
    }

    func testAPhotoOfTheModelsSizeIsNotResampled() throws {
        let kit = try Fixtures.kit("kit-rgb")
        let contract = KitModelContract(kit: kit)
        let sample = kit.samples[0]
        let image = try PixelImage(sample: sample, width: contract.width, height: contract.height, channels: 3)
        XCTAssertEqual(try contract.inputValues(photo: image), try contract.inputValues(sample))
        // and resampling to the same size is the identity too (Pillow's taps are 1 and 0)
        XCTAssertEqual(try image.resizedBilinear(width: image.width, height: image.height).bytes, sample.pixels)
    }

    func testPhotosThatCannotFeedTheModelAreOneError() throws {
        let rgb = KitModelContract(kit: try Fixtures.kit("kit-rgb"))
        let gray = try PixelImage(width: 40, height: 40, format: .gray8, bytes: Array(repeating: 7, count: 1600))
        XCTAssertThrowsError(try rgb.inputValues(photo: gray)) {
            XCTAssertEqual($0 as? PixelError, .format(got: .gray8, model: .bgr))
        }
        let other = KitModelContract(inputName: rgb.inputName, width: rgb.width, height: rgb.height, color: rgb.color,
                                     preprocessing: rgb.preprocessing, classLabels: rgb.classLabels,
                                     resize: ResizeMethod(recorded: "bicubic, whole image"))
        let photo = try PixelImage(width: 40, height: 40, format: .rgb8, bytes: Array(repeating: 7, count: 4800))
        XCTAssertThrowsError(try other.inputValues(photo: photo)) {
            XCTAssertEqual("\($0)", "the model's images were resized \"bicubic, whole image\"; this package resizes bilinear only")
        }
        XCTAssertThrowsError(try photo.resizedBilinear(width: 0, height: 3))
        XCTAssertEqual(ResizeMethod(recorded: nil), .bilinear)
        XCTAssertEqual(ResizeMethod(recorded: "bilinear, whole image, no crop (aspect ratio not kept)"), .bilinear)
        XCTAssertEqual(ResizeMethod(recorded: "nearest"), .unsupported("nearest"))
    }
}
