//! The hot part of the egui example: `update`, the whole user interface, is hot. Edit it while
//! the window is open (the colour of the banner, `BANNER` below, is the simplest edit) and save:
//! the next frame is drawn by the new code, with the same counters, text and frame count.

use eframe::egui;

/// What the window shows and keeps. eframe owns this value (`main` hands it over once); every
/// patch of `update` works on the same value, so nothing here is reset by an edit.
#[derive(Default)]
pub struct App {
    /// How often the `+1` button was clicked.
    pub clicks: u64,
    /// The counter the `+1` / `-1` buttons change.
    pub count: i64,
    /// The text field's contents.
    pub text: String,
    /// Frames drawn so far.
    pub frames: u64,
    /// Print a state line every this many frames (0: never).
    pub report_every: u64,
    /// Close the window after this many frames (0: never).
    pub frame_limit: u64,
}

impl App {
    /// The initial state, from the environment: `EGUI_APP_TEXT` (the text field),
    /// `EGUI_APP_REPORT_EVERY` (default 30) and `EGUI_APP_FRAMES` (close after that many frames).
    pub fn from_env() -> App {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse().ok())
                .unwrap_or(default)
        };
        App {
            text: std::env::var("EGUI_APP_TEXT").unwrap_or_default(),
            report_every: number("EGUI_APP_REPORT_EVERY", 30),
            frame_limit: number("EGUI_APP_FRAMES", 0),
            ..App::default()
        }
    }
}

#[hotswap::hot]
impl eframe::App for App {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        // The banner's colour: change it and save.
        const BANNER: egui::Color32 = egui::Color32::from_rgb(40, 110, 200);

        self.frames += 1;
        if self.report_every > 0 && self.frames.is_multiple_of(self.report_every) {
            println!(
                "frame {} clicks {} count {} text {:?} banner #{:02x}{:02x}{:02x}",
                self.frames,
                self.clicks,
                self.count,
                self.text,
                BANNER.r(),
                BANNER.g(),
                BANNER.b()
            );
        }

        egui::TopBottomPanel::top("banner")
            .exact_height(120.0)
            .frame(egui::Frame::new().fill(BANNER).inner_margin(16.0))
            .show(ctx, |ui| {
                ui.heading(
                    egui::RichText::new("hotswap + egui")
                        .color(egui::Color32::WHITE)
                        .size(32.0),
                );
                ui.label(
                    egui::RichText::new("edit `update` in src/lib.rs and save")
                        .color(egui::Color32::WHITE),
                );
            });

        let mut widgets = Vec::new();
        egui::CentralPanel::default().show(ctx, |ui| {
            ui.horizontal(|ui| {
                let plus = ui.button("+1");
                if plus.clicked() {
                    self.clicks += 1;
                    self.count += 1;
                }
                widgets.push(plus.rect);
                if ui.button("-1").clicked() {
                    self.count -= 1;
                }
                ui.label(format!(
                    "count {}   clicks {}   frame {}",
                    self.count, self.clicks, self.frames
                ));
            });
            ui.horizontal(|ui| {
                ui.label("text:");
                widgets.push(ui.text_edit_singleline(&mut self.text).rect);
            });
            ui.separator();
            plot(ui, self.frames);
        });

        if self.frames == 1 && self.report_every > 0 {
            // Where to click (for scripts: `xdotool`): the centres of the `+1` button and of
            // the text field, in pixels from the window's top left corner.
            let ppp = ctx.pixels_per_point();
            let at = |rect: &egui::Rect| {
                let c = rect.center();
                format!("{} {}", (c.x * ppp).round(), (c.y * ppp).round())
            };
            println!("widgets plus {} text {}", at(&widgets[0]), at(&widgets[1]));
        }

        if self.frame_limit > 0 && self.frames >= self.frame_limit {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        // egui draws on input; keep drawing (about 30 frames a second) so the frames count on.
        ctx.request_repaint_after(std::time::Duration::from_millis(33));
    }
}

/// A sine wave that moves with the frame count, drawn with the painter.
fn plot(ui: &mut egui::Ui, frames: u64) {
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), 160.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, egui::Color32::from_gray(30));
    let phase = frames as f32 * 0.05;
    let points: Vec<egui::Pos2> = (0..=200)
        .map(|i| {
            let t = i as f32 / 200.0;
            let y = (t * std::f32::consts::TAU * 2.0 + phase).sin();
            egui::pos2(
                rect.left() + t * rect.width(),
                rect.center().y - y * rect.height() * 0.4,
            )
        })
        .collect();
    painter.add(egui::Shape::line(
        points,
        egui::Stroke::new(2.0, egui::Color32::from_rgb(250, 200, 60)),
    ));
}
