// Draw a digit with a finger; the model's top 3 classes update on every stroke.
import SwiftUI

struct ContentView: View {
    @State private var strokes: [[CGPoint]] = []
    @State private var predictions: [Prediction] = []
    @State private var message: String?
    private let classifier: DigitClassifier?
    private let loadError: String?
    private let canvasSide: CGFloat = 280
    // On screen only; the model input gets MNIST's pen width (DigitImage.penWidth).
    private let lineWidth: CGFloat = 22

    init() {
        do {
            classifier = try DigitClassifier()
            loadError = nil
        } catch {
            classifier = nil
            loadError = error.localizedDescription
        }
    }

    var body: some View {
        VStack(spacing: 16) {
            Text("Draw a digit").font(.title2)
            Canvas { context, _ in
                for stroke in strokes where !stroke.isEmpty {
                    var path = Path()
                    path.addLines(stroke)
                    context.stroke(path, with: .color(.white),
                                   style: StrokeStyle(lineWidth: lineWidth, lineCap: .round, lineJoin: .round))
                }
            }
            .frame(width: canvasSide, height: canvasSide)
            .background(Color.black)
            .gesture(DragGesture(minimumDistance: 0)
                .onChanged { value in
                    if value.translation == .zero { strokes.append([]) }
                    strokes[strokes.count - 1].append(value.location)
                }
                .onEnded { _ in classify() })
            .accessibilityIdentifier("canvas")

            ForEach(Array(predictions.enumerated()), id: \.element.id) { rank, p in
                HStack {
                    Text("\(rank + 1). \(p.label)").font(rank == 0 ? .title : .body).bold(rank == 0)
                    Spacer()
                    Text(String(format: "%.1f%%", 100 * p.probability)).monospacedDigit()
                }
                .frame(width: canvasSide)
            }
            if let text = message ?? loadError {
                Text(text).foregroundColor(.red).font(.footnote).frame(width: canvasSide)
            }
            Button("Clear") { strokes = []; predictions = [] }
        }
        .padding()
    }

    private func classify() {
        guard let classifier else { return }
        guard let image = DigitImage.render(strokes: strokes) else { return }
        do {
            predictions = try classifier.classify(image, top: 3)
            message = nil
        } catch {
            message = error.localizedDescription
        }
    }
}
