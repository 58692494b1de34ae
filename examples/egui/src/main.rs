//! Opens the window and hands eframe the app state. See `src/lib.rs` and examples/README.md.

use eframe::egui;

fn main() -> eframe::Result {
    let app = egui_app::App::from_env();
    println!("egui-app pid {}", std::process::id());
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("hotswap egui")
            .with_position([0.0, 0.0])
            .with_inner_size([640.0, 480.0]),
        // Exact colours on screen (the end-to-end test compares pixels).
        dithering: false,
        ..Default::default()
    };
    eframe::run_native("hotswap egui", options, Box::new(|_cc| Ok(Box::new(app))))
}
