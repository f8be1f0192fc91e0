// Turns what the user drew (or a golden PNG) into the model's input:
// a 28x28 8-bit grayscale image (ModelContract), as a CGImage for Vision
// or a CVPixelBuffer (OneComponent8) for MLModel directly.
import CoreGraphics
import CoreVideo
import Foundation

enum DigitImage {
    /// Render strokes (points in a `canvasSize` square) to a small grayscale image:
    /// white strokes on black (MNIST), scaled to the model's input size.
    static func render(strokes: [[CGPoint]], canvasSize: CGSize, lineWidth: CGFloat) -> CGImage? {
        let width = ModelContract.inputWidth, height = ModelContract.inputHeight
        guard let ctx = CGContext(data: nil, width: width, height: height, bitsPerComponent: 8, bytesPerRow: width,
                                  space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGImageAlphaInfo.none.rawValue)
        else { return nil }
        let background: CGFloat = ModelContract.invertCanvas ? 0 : 1
        ctx.setFillColor(gray: background, alpha: 1)
        ctx.fill(CGRect(x: 0, y: 0, width: width, height: height))
        // Core Graphics has its origin bottom-left; SwiftUI top-left.
        let sx = CGFloat(width) / canvasSize.width, sy = CGFloat(height) / canvasSize.height
        ctx.translateBy(x: 0, y: CGFloat(height))
        ctx.scaleBy(x: sx, y: -sy)
        ctx.setStrokeColor(gray: 1 - background, alpha: 1)
        ctx.setLineWidth(lineWidth)
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
