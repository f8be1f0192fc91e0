// Which screen the bundled model gets, from the contract it states
// (EdgekitKit's KitModelContract.screen): an RGB or BGR model the photo
// picker, anything else the digit pad exactly as before (a grayscale model,
// or a model without edgekit's metadata; the pad shows a load error itself).
// Core ML: Apple platforms only.
#if canImport(CoreML)
import CoreML
import EdgekitKit
import SwiftUI

struct RootView: View {
    private enum Screen {
        case digitPad
        case photo(PhotoClassifier)
        case photoError(String)
    }

    private let screen: Screen

    init() {
        guard let model = try? DigitClassifier.bundledModel(),
              let contract = try? PhotoClassifier.contract(of: model), contract.screen == .photo else {
            screen = .digitPad
            return
        }
        do {
            screen = .photo(try PhotoClassifier(model: model))
        } catch {
            screen = .photoError(error.localizedDescription)
        }
    }

    var body: some View {
        switch screen {
        case .digitPad: ContentView()
        case .photo(let classifier): PhotoView(classifier: classifier)
        case .photoError(let text): Text(text).foregroundColor(.red).padding()
        }
    }
}
#endif
