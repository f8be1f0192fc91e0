// Resizing a photo of any size to the model's input size the way edgekit
// resized every image it trained and checked the model on: train/data.py
// reads a folder image with Pillow and calls Image.resize(..., BILINEAR)
// over the whole image (no crop, aspect ratio not kept); the kit and the
// model metadata record that as "bilinear, whole image, no crop".
//
// Pillow's 8-bit bilinear resample (libImaging/Resample.c) is reproduced
// here step for step, so a phone feeds the model the same bytes Python did:
// a triangle filter whose support widens with the downscale factor (so it
// averages, i.e. antialiases, when shrinking), weights normalised per output
// pixel and rounded to 22-bit fixed point, a horizontal pass into 8-bit
// rows, then a vertical pass, each rounding and clamping to 0...255. A
// plain "interpolate the 4 nearest pixels" bilinear differs from it on every
// downscale; tests/ios/swift_fixtures.py writes Pillow's outputs (through
// train/data.py's own reader) and ResizeTests asserts equality byte for byte.
import Foundation

/// Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2.
private let precisionBits = 22

/// One output pixel's source range and fixed-point weights along one axis.
private struct Taps {
    let start: Int
    let weights: [Int]
}

/// Pillow's precompute_coeffs with its bilinear filter (support 1), then
/// normalize_coeffs_8bpc; `inSize` source pixels to `outSize`.
private func bilinearTaps(inSize: Int, outSize: Int) -> [Taps] {
    let scale = Double(inSize) / Double(outSize)
    let filterScale = max(scale, 1)
    let support = 1.0 * filterScale
    let ss = 1.0 / filterScale  // multiplied, not divided by filterScale: Pillow's rounding
    func triangle(_ x: Double) -> Double { abs(x) < 1 ? 1 - abs(x) : 0 }
    return (0..<outSize).map { xx in
        let center = (Double(xx) + 0.5) * scale
        // C's (int) cast truncates toward zero, as Int(_: Double) does.
        let lo = max(Int(center - support + 0.5), 0)
        let count = min(Int(center + support + 0.5), inSize) - lo
        let raw = (0..<count).map { triangle((Double($0 + lo) - center + 0.5) * ss) }
        let total = raw.reduce(0, +)
        // bilinear weights are never negative, so Pillow's (int)(0.5 + w * 2^22) branch applies
        let fixed = raw.map { Int(0.5 + (total != 0 ? $0 / total : $0) * Double(1 << precisionBits)) }
        return Taps(start: lo, weights: fixed)
    }
}

/// Pillow's rounding and clamping of a fixed-point sum to one byte.
@inline(__always)
private func clip8(_ sum: Int) -> UInt8 {
    UInt8(clamping: sum >> precisionBits)
}

extension PixelImage {
    /// This image resized to `width` x `height` over the whole image (no
    /// crop, aspect ratio not kept) with Pillow's 8-bit bilinear resample,
    /// what edgekit did to every image before the model saw it. Every byte
    /// of a pixel is resampled on its own (alpha too; the model ignores it);
    /// the result has the same format and unpadded rows.
    public func resizedBilinear(width outWidth: Int, height outHeight: Int) throws -> PixelImage {
        guard outWidth > 0, outHeight > 0 else { throw PixelError.buffer("cannot resize to \(outWidth)x\(outHeight)") }
        let step = format.bytesPerPixel
        // Tightly packed copy of the source (drops Core Video's row padding).
        var rows = [UInt8](repeating: 0, count: width * height * step)
        for y in 0..<height {
            let src = y * bytesPerRow, dst = y * width * step
            rows.replaceSubrange(dst..<(dst + width * step), with: bytes[src..<(src + width * step)])
        }
        var w = width, h = height
        // Pillow: the horizontal pass first, each pass only when that side changes.
        if outWidth != w {
            let taps = bilinearTaps(inSize: w, outSize: outWidth)
            var out = [UInt8](repeating: 0, count: outWidth * h * step)
            for y in 0..<h {
                let row = y * w * step
                for (xx, t) in taps.enumerated() {
                    for c in 0..<step {
                        var sum = 1 << (precisionBits - 1)
                        for (i, k) in t.weights.enumerated() { sum += Int(rows[row + (t.start + i) * step + c]) * k }
                        out[(y * outWidth + xx) * step + c] = clip8(sum)
                    }
                }
            }
            rows = out
            w = outWidth
        }
        if outHeight != h {
            let taps = bilinearTaps(inSize: h, outSize: outHeight)
            var out = [UInt8](repeating: 0, count: w * outHeight * step)
            for (yy, t) in taps.enumerated() {
                for x in 0..<(w * step) {
                    var sum = 1 << (precisionBits - 1)
                    for (i, k) in t.weights.enumerated() { sum += Int(rows[(t.start + i) * w * step + x]) * k }
                    out[yy * w * step + x] = clip8(sum)
                }
            }
            rows = out
            h = outHeight
        }
        return try PixelImage(width: w, height: h, format: format, bytes: rows)
    }
}
