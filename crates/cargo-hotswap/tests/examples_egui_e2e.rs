//! End to end: the egui example (`examples/egui`, an eframe window) run by the real
//! `cargo hotswap run` on a copy of it, on a virtual X display (`Xvfb`, software OpenGL),
//! edited while the window is open. The test reads the program's state from the lines it
//! prints, and what the window shows from screenshots of the display.
//!
//! Needs `Xvfb`, `xdotool`, ImageMagick's `import` and Mesa's software OpenGL; .ci/run
//! installs them. Without them the test fails (it never passes without having looked).

mod examples_support;
mod support;

use std::time::Duration;

use examples_support::{Example, Stream, Xvfb, OUTPUT};

/// The banner's colour in the example, as written, and the edit the test makes.
const OLD: [u8; 3] = [40, 110, 200];
const NEW: [u8; 3] = [200, 60, 40];

/// A bound on the first build (eframe and its dependencies with full debug information, on a
/// busy machine), not a measure.
const FIRST_BUILD: Duration = Duration::from_secs(1500);

/// One state line: `frame F clicks C count N text "T" banner #RRGGBB`.
#[derive(Debug, PartialEq)]
struct Report {
    frame: u64,
    clicks: u64,
    text: String,
    banner: String,
}

fn parse_report(line: &str) -> Option<Report> {
    let rest = line.strip_prefix("frame ")?;
    let (frame, rest) = rest.split_once(" clicks ")?;
    let (clicks, rest) = rest.split_once(' ')?;
    let (_, rest) = rest.split_once(" text ")?;
    let (text, banner) = rest.rsplit_once(" banner ")?;
    Some(Report {
        frame: frame.parse().ok()?,
        clicks: clicks.parse().ok()?,
        text: text.strip_prefix('"')?.strip_suffix('"')?.to_owned(),
        banner: banner.to_owned(),
    })
}

fn hex(colour: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", colour[0], colour[1], colour[2])
}

/// The indices of the pixels of exactly `colour`.
fn pixels_of(screen: &[[u8; 3]], colour: [u8; 3]) -> Vec<usize> {
    (0..screen.len()).filter(|&i| screen[i] == colour).collect()
}

/// The egui example, edited as examples/README.md says: the banner's colour in `update`
/// changes. The patch is applied to the open window: the banner's pixels change from the old
/// colour to the new one, and the app's state (the text set at start, the frame count) carries
/// on in the same process.
///
/// Fails if: the app does not draw under Xvfb, the edit is not patched in (no `patched`
/// message, no line printed by the new code, or the banner keeps its old colour on screen), or
/// the state is reset (the program restarted, the frames do not count on, the text is lost).
#[test]
fn egui_example_is_patched_and_keeps_its_state() {
    let _serial = support::serial();
    let xvfb = Xvfb::start();
    let example = Example::copy("egui");
    let every = 30;
    let mut command = example.command(&["run"]);
    command
        .env("DISPLAY", &xvfb.display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("EGUI_APP_TEXT", "hello")
        .env("EGUI_APP_REPORT_EVERY", every.to_string());
    let (mut session, pid) = example.run_command(command, FIRST_BUILD);
    session.wait_out("`egui-app pid N`", 0, OUTPUT, |t| {
        t == format!("egui-app pid {pid}")
    });
    // Where the `+1` button and the text field are (the window is at the screen's top left
    // corner: there is no window manager to move it).
    let widgets = session.wait_out("`widgets plus X Y text X Y`", 0, OUTPUT, |t| {
        t.starts_with("widgets plus ")
    });
    let at: Vec<&str> = widgets.text.split(' ').collect();
    let (plus, field) = ((at[2], at[3]), (at[5], at[6]));
    // A report: the window is shown and has drawn frames (eframe shows it after the first).
    session.wait_out("a first report", widgets.seq + 1, OUTPUT, |t| {
        parse_report(t).is_some()
    });
    // Click `+1` twice and type in the field, as a user does (`xdotool`: X input events).
    for clicks in 1..=2 {
        let since = session.mark();
        xvfb.tool("xdotool", &["mousemove", plus.0, plus.1, "click", "1"]);
        session.wait_out(
            &format!("a report of {clicks} clicks"),
            since,
            OUTPUT,
            |t| parse_report(t).is_some_and(|r| r.clicks == clicks),
        );
    }
    let window = xvfb.tool("xdotool", &["search", "--name", "hotswap egui"]);
    let window = String::from_utf8(window).unwrap();
    let window = window.lines().next().expect("the app's window").to_owned();
    xvfb.tool("xdotool", &["windowfocus", "--sync", &window]);
    xvfb.tool("xdotool", &["mousemove", field.0, field.1, "click", "1"]);
    let since = session.mark();
    xvfb.tool("xdotool", &["type", " world"]);
    session.wait_out("a report of the typed text", since, OUTPUT, |t| {
        parse_report(t).is_some_and(|r| r.text == "hello world")
    });

    // Two reports: the window has drawn at least `every` frames (each frame's `update` runs
    // after the last one was drawn).
    let old = hex(OLD);
    let first = session.wait_out("a report", since, OUTPUT, |t| {
        parse_report(t).is_some_and(|r| r.banner == old)
    });
    session.wait_out("a second report", first.seq + 1, OUTPUT, |t| {
        parse_report(t).is_some_and(|r| r.banner == old)
    });
    let before_shot = xvfb.screenshot();
    let banner = pixels_of(&before_shot, OLD);
    // The banner: 640 × 120 pixels, less its text.
    assert!(
        banner.len() > 640 * 100,
        "only {} pixels of the banner's colour {old} on screen\n{}",
        banner.len(),
        session.transcript()
    );
    assert!(pixels_of(&before_shot, NEW).is_empty());

    let edited = example.edited(
        "src/lib.rs",
        &[(
            "Color32::from_rgb(40, 110, 200)",
            "Color32::from_rgb(200, 60, 40)",
        )],
    );
    let (before, line) = example.patch(&session, "src/lib.rs", &edited, "1 function", 1);
    assert!(
        line.text
            .contains("code changed: `<egui_app::App as eframe::epi::App>::update`"),
        "{:?}",
        line.text
    );
    let new = hex(NEW);
    let first_new = session.wait_out("a report of the new code", before, OUTPUT, |t| {
        parse_report(t).is_some_and(|r| r.banner == new)
    });
    session.wait_out(
        "a second report of the new code",
        first_new.seq + 1,
        OUTPUT,
        |t| parse_report(t).is_some_and(|r| r.banner == new),
    );
    let after_shot = xvfb.screenshot();
    let changed = banner.iter().filter(|&&i| after_shot[i] == NEW).count();
    assert_eq!(
        changed,
        banner.len(),
        "of the {} pixels of the banner, {changed} have the new colour {new}; at one that \
         has not: {:?}",
        banner.len(),
        banner.iter().map(|&i| after_shot[i]).find(|&p| p != NEW)
    );
    assert!(pixels_of(&after_shot, OLD).is_empty());

    // One process, whose state carried on: every report, old code and new, in order; the
    // frames count on by `every`, the text stays, and the colour changes once.
    let out = session.texts(Stream::Out, 0);
    let pids = out
        .iter()
        .filter(|(_, t)| t.starts_with("egui-app pid "))
        .count();
    assert_eq!(
        pids,
        1,
        "the program was started again\n{}",
        session.transcript()
    );
    let reports: Vec<Report> = out.iter().filter_map(|(_, t)| parse_report(t)).collect();
    for (n, report) in reports.iter().enumerate() {
        assert_eq!(
            report.frame,
            (n as u64 + 1) * every,
            "the frames did not count on\n{}",
            session.transcript()
        );
    }
    let switch = reports.iter().position(|r| r.banner == new).unwrap();
    assert!(switch >= 2 && reports[..switch].iter().all(|r| r.banner == old));
    // What was clicked and typed before the edit is still there after it.
    for report in &reports[switch - 2..] {
        assert_eq!(
            (report.clicks, report.text.as_str()),
            (2, "hello world"),
            "the state was lost: {report:?}\n{}",
            session.transcript()
        );
    }
    assert!(reports[switch..].iter().all(|r| r.banner == new));
    let restarts: Vec<String> = session
        .texts(Stream::Err, 0)
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("[hotswap] restart"))
        .collect();
    assert!(restarts.is_empty(), "{restarts:?}");
    session.interrupt_and_check(pid, 130);
}
