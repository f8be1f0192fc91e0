// Pick a photo; the colour model's top 3 classes with their probabilities.
// The photo is classified at its own size through PhotoClassifier (the
// package resizes it as edgekit did), shown scaled to fit.
// PhotosUI, ImageIO and Core ML: Apple platforms only.
#if canImport(PhotosUI) && canImport(ImageIO) && canImport(CoreML)
import ImageIO
import PhotosUI
import SwiftUI

struct PhotoView: View {
    let classifier: PhotoClassifier
    @State private var item: PhotosPickerItem?
    @State private var photo: CGImage?
    @State private var lines: [String] = []
    @State private var message: String?
    private let side: CGFloat = 280

    var body: some View {
        VStack(spacing: 16) {
            Text("Pick a photo").font(.title2)
            if let photo {
                Image(decorative: photo, scale: 1).resizable().scaledToFit().frame(maxWidth: side, maxHeight: side)
            }
            PhotosPicker("Choose a photo", selection: $item, matching: .images)
                .accessibilityIdentifier("photo-picker")
            ForEach(Array(lines.enumerated()), id: \.offset) { rank, line in
                Text(line).font(rank == 0 ? .title : .body).bold(rank == 0).monospacedDigit()
                    .frame(width: side, alignment: .leading)
            }
            if let message {
                Text(message).foregroundColor(.red).font(.footnote).frame(width: side)
            }
        }
        .padding()
        .onChange(of: item) { picked in Task { await classify(picked) } }
    }

    @MainActor
    private func classify(_ picked: PhotosPickerItem?) async {
        guard let picked else { return }
        do {
            guard let data = try await picked.loadTransferable(type: Data.self),
                  let source = CGImageSourceCreateWithData(data as CFData, nil),
                  let image = CGImageSourceCreateImageAtIndex(source, 0, nil) else {
                lines = []
                message = "cannot decode the photo"
                return
            }
            photo = image
            lines = try classifier.topLines(image, top: 3)
            message = nil
        } catch {
            lines = []
            message = error.localizedDescription
        }
    }
}
#endif
