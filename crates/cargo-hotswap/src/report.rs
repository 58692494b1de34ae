//! Report: what the user reads. Every line goes to stderr with a `[hotswap]` prefix so it never
//! mixes into the program's stdout; colour only when stderr is a terminal and `NO_COLOR` is
//! unset.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR
        .get_or_init(|| std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

fn line(code: &str, text: &str) {
    clear_progress();
    let mut err = std::io::stderr().lock();
    if colour() {
        let _ = writeln!(err, "\x1b[1;{code}m[hotswap]\x1b[0m {text}");
    } else {
        let _ = writeln!(err, "[hotswap] {text}");
    }
}

/// Something that went as planned.
pub fn ok(text: &str) {
    line("32", text);
}

/// Neutral information.
pub fn info(text: &str) {
    line("36", text);
}

/// Something the user should look at; the program keeps running.
pub fn warn(text: &str) {
    line("33", text);
}

/// Something failed.
pub fn error(text: &str) {
    line("31", text);
}

/// Compiler output, passed through as cargo shows it.
pub fn diagnostics(rendered: &[String]) {
    clear_progress();
    let mut err = std::io::stderr().lock();
    for text in rendered {
        let text = if colour() {
            text.clone()
        } else {
            strip_ansi(text)
        };
        let _ = err.write_all(text.as_bytes());
    }
}

static PROGRESS_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A status line that the next line replaces (terminal only).
pub fn progress(text: &str) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let width = 100;
    let text: String = text.chars().take(width).collect();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K\x1b[1;36m[hotswap]\x1b[0m {text}");
    let _ = err.flush();
    PROGRESS_SHOWN.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn clear_progress() {
    if PROGRESS_SHOWN.swap(false, std::sync::atomic::Ordering::Relaxed) {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
}

pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Removes ANSI escape sequences (for output that is not a terminal).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_ansi_keeps_text() {
        assert_eq!(super::strip_ansi("\x1b[1;31merror\x1b[0m: x"), "error: x");
    }
}
