// SwiftUI entry point: the screen the bundled model's contract asks for (RootView):
// draw a digit (grayscale model) or pick a photo (colour model), and the top 3.
import SwiftUI

@main
struct EdgekitDigitsApp: App {
    var body: some Scene {
        WindowGroup {
            RootView()
        }
    }
}
