// SwiftUI entry point: one screen to draw a digit and see the model's top 3.
import SwiftUI

@main
struct EdgekitDigitsApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
