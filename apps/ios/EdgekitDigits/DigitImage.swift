// Turns what the user drew (or a golden PNG) into the model's input:
// a 28x28 8-bit grayscale image (ModelContract), as a CGImage for Vision
// or a CVPixelBuffer (OneComponent8) for MLModel directly. Drawings are
// normalised like MNIST (size and position), or a digit drawn small in a
// corner would look like nothing the model was trained on.
// Core Graphics and Core Video: Apple platforms only.
#if canImport(CoreGraphics) && canImport(CoreVideo)
import CoreGraphics
import CoreVideo
import Foundation

enum DigitImage {
    /// MNIST's digits fit a 20x20 box centred in the 28x28 image, drawn with a pen ~2.5 px wide.
    static let digitBox: CGFloat = 20
    static let penWidth: CGFloat = 2.5

    /// Render strokes (points in canvas coordinates, origin top-left) the way
    /// MNIST digits were prepared: white on black, the drawing's bounding box
    /// scaled to fit `digitBox` and centred, a pen `penWidth` px wide.
    static func render(strokes: [[CGPoint]]) -> CGImage? {
        let width = ModelContract.inputWidth, height = ModelContract.inputHeight
        guard let ctx = CGContext(data: nil, width: width, height: height, bitsPerComponent: 8, bytesPerRow: width,
                                  space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGImageAlphaInfo.none.rawValue)
        else { return nil }
        let background: CGFloat = ModelContract.invertCanvas ? 0 : 1
        ctx.setFillColor(gray: background, alpha: 1)
        ctx.fill(CGRect(x: 0, y: 0, width: width, height: height))
        let points = strokes.joined()
        guard let minX = points.map(\.x).min(), let maxX = points.map(\.x).max(),
              let minY = points.map(\.y).min(), let maxY = points.map(\.y).max() else { return ctx.makeImage() }
        // Scale the longer side of the drawing to the digit box (a dot or a line stays finite).
        let scale = digitBox / max(maxX - minX, maxY - minY, 1)
        // Core Graphics has its origin bottom-left; the canvas top-left: flip y.
        ctx.translateBy(x: CGFloat(width) / 2, y: CGFloat(height) / 2)
        ctx.scaleBy(x: scale, y: -scale)
        ctx.translateBy(x: -(minX + maxX) / 2, y: -(minY + maxY) / 2)
        ctx.setStrokeColor(gray: 1 - background, alpha: 1)
        ctx.setLineWidth(penWidth / scale)
        ctx.setLineCap(.round)
        ctx.setLineJoin(.round)
        ctx.interpolationQuality = .high
        for stroke in strokes where !stroke.isEmpty {
            ctx.beginPath()
            ctx.move(to: stroke[0])
            for p in stroke.dropFirst() { ctx.addLine(to: p) }
            if stroke.count == 1 { ctx.addLine(to: stroke[0]) }
            ctx.strokePath()
        }
        return ctx.makeImage()
    }

    /// An OneComponent8 pixel buffer of the model's input size holding `image`'s gray levels.
    static func pixelBuffer(from image: CGImage) -> CVPixelBuffer? {
        let width = ModelContract.inputWidth, height = ModelContract.inputHeight
        var buffer: CVPixelBuffer?
        let attrs = [kCVPixelBufferCGImageCompatibilityKey: true, kCVPixelBufferCGBitmapContextCompatibilityKey: true] as CFDictionary
        guard CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_OneComponent8, attrs, &buffer)
                == kCVReturnSuccess, let pb = buffer else { return nil }
        CVPixelBufferLockBaseAddress(pb, [])
        defer { CVPixelBufferUnlockBaseAddress(pb, []) }
        guard let ctx = CGContext(data: CVPixelBufferGetBaseAddress(pb), width: width, height: height, bitsPerComponent: 8,
                                  bytesPerRow: CVPixelBufferGetBytesPerRow(pb), space: CGColorSpaceCreateDeviceGray(),
                                  bitmapInfo: CGImageAlphaInfo.none.rawValue) else { return nil }
        ctx.interpolationQuality = .none  // golden PNGs are already 28x28: copy the pixels exactly
        ctx.draw(image, in: CGRect(x: 0, y: 0, width: width, height: height))
        return pb
    }
}
#endif
