// Turns a photo (a decoded PNG/JPEG) into what the EdgekitKit package
// resizes and maps: its pixels at the photo's own size in a BGRA buffer
// (no scaling here: the package resizes the way edgekit did, Pillow's
// bilinear over the whole image), and the package's model-size result back
// into a 32BGRA CVPixelBuffer for MLModel, whose image input applies the
// model's colour order, scale and bias itself.
//
// Like edgekit's reader (Pillow: Image.open, convert("RGB")) the pixels are
// taken as stored: no EXIF rotation, no colour management (the image's own
// RGB colour space is the context's). Only a Mac and a device check this.
// Core Graphics and Core Video: Apple platforms only.
#if canImport(CoreGraphics) && canImport(CoreVideo)
import CoreGraphics
import CoreVideo
import EdgekitKit
import Foundation

enum PhotoImage {
    /// `image`'s pixels at its own size: B, G, R, unused byte per pixel.
    static func pixels(of image: CGImage) throws -> PixelImage {
        let width = image.width, height = image.height, row = width * 4
        // the photo's own RGB space, so drawing copies its values (Pillow converts no colour)
        let space = image.colorSpace.flatMap { $0.model == .rgb ? $0 : nil } ?? CGColorSpaceCreateDeviceRGB()
        let info = CGImageAlphaInfo.noneSkipFirst.rawValue | CGBitmapInfo.byteOrder32Little.rawValue
        var bytes = [UInt8](repeating: 0, count: row * height)
        let drawn = bytes.withUnsafeMutableBytes { buffer -> Bool in
            guard let ctx = CGContext(data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                      bytesPerRow: row, space: space, bitmapInfo: info) else { return false }
            ctx.interpolationQuality = .none  // same size: copy the pixels
            ctx.draw(image, in: CGRect(x: 0, y: 0, width: width, height: height))
            return true
        }
        guard drawn else { throw PixelError.buffer("cannot draw a \(width)x\(height) photo into a BGRA buffer") }
        return try PixelImage(width: width, height: height, format: .bgra8, bytesPerRow: row, bytes: bytes)
    }

    /// A 32BGRA pixel buffer holding `image` (a BGRA PixelImage, e.g. the
    /// package's resize of `pixels(of:)`), row by row into Core Video's padded rows.
    static func pixelBuffer(_ image: PixelImage) throws -> CVPixelBuffer {
        guard image.format == .bgra8 else { throw PixelError.buffer("a \(image.format) image is not BGRA") }
        var buffer: CVPixelBuffer?
        let attrs = [kCVPixelBufferCGImageCompatibilityKey: true, kCVPixelBufferCGBitmapContextCompatibilityKey: true] as CFDictionary
        guard CVPixelBufferCreate(kCFAllocatorDefault, image.width, image.height, kCVPixelFormatType_32BGRA, attrs, &buffer)
                == kCVReturnSuccess, let pb = buffer else {
            throw PixelError.buffer("cannot create a \(image.width)x\(image.height) BGRA pixel buffer")
        }
        CVPixelBufferLockBaseAddress(pb, [])
        defer { CVPixelBufferUnlockBaseAddress(pb, []) }
        let base = CVPixelBufferGetBaseAddress(pb)!.assumingMemoryBound(to: UInt8.self)
        let row = CVPixelBufferGetBytesPerRow(pb), length = image.width * 4
        image.bytes.withUnsafeBufferPointer { src in
            for y in 0..<image.height {
                (base + y * row).update(from: src.baseAddress! + y * image.bytesPerRow, count: length)
            }
        }
        return pb
    }
}
#endif
