//! The linker role: links the program's executable so that patches can link against it.
//!
//! Two changes to the command rustc gives the C compiler driver:
//! - every rlib of the hot crates and of everything they depend on is linked whole
//!   (`--whole-archive`), including ones rustc left out because the program does not use them
//!   yet, so a patch may call a dependency function the program never called;
//! - every global symbol is exported (`--export-dynamic`), so a patch's undefined symbols
//!   resolve against the running program: one logger, one allocator, one copy of each static.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::capture::{self, Invocation, CAPTURE_DIR_ENV, HOT_CRATES_ENV, ROLE_ENV};

pub const ROLE_LINKER: &str = "linker";
/// The linker rustc would have used.
const REAL_LINKER_ENV: &str = "HOTSWAP_REAL_LINKER";

/// Written next to the captures after each link: which recorded commands built the hot crates
/// of which executable, and with which linker. Patches are built from these.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Linked {
    pub executable: PathBuf,
    pub linker: String,
    /// Capture of each hot crate, by crate name.
    pub hot: Vec<(String, Invocation)>,
}

impl Linked {
    pub fn path(capture_dir: &Path, executable_name: &str) -> PathBuf {
        let key = executable_name.replace('-', "_");
        capture_dir.join(format!("linked-{key}.json.link"))
    }

    pub fn load(capture_dir: &Path, executable_name: &str) -> Result<Linked, String> {
        let path = Self::path(capture_dir, executable_name);
        let bytes = std::fs::read(&path).map_err(|err| {
            format!(
                "cannot read {}: {err} (was the program built by cargo hotswap?)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|err| format!("{}: {err}", path.display()))
    }
}

/// Called by the rustc wrapper for the program's crate: make rustc link through this binary.
pub fn route_link_through_us(args: &mut Vec<String>, command: &mut Command) {
    let mut real = None;
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut iter = std::mem::take(args).into_iter();
    while let Some(arg) = iter.next() {
        if arg == "-C" {
            match iter.next() {
                Some(value) if value.starts_with("linker=") => {
                    real = Some(value["linker=".len()..].to_owned());
                }
                Some(value) => {
                    out.push(arg);
                    out.push(value);
                }
                None => out.push(arg),
            }
        } else if let Some(value) = arg.strip_prefix("-Clinker=") {
            real = Some(value.to_owned());
        } else {
            out.push(arg);
        }
    }
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cargo-hotswap"));
    out.push("-C".into());
    out.push(format!("linker={}", me.display()));
    *args = out;
    command.env(ROLE_ENV, ROLE_LINKER);
    command.env(REAL_LINKER_ENV, real.unwrap_or_else(|| "cc".into()));
}

pub fn main() -> i32 {
    let args = expand_response_files(std::env::args_os().skip(1).collect());
    let real = std::env::var(REAL_LINKER_ENV).unwrap_or_else(|_| "cc".into());
    let args = match std::env::var_os(CAPTURE_DIR_ENV) {
        Some(dir) => match rewrite(Path::new(&dir), &real, args.clone()) {
            Ok(args) => args,
            Err(err) => {
                eprintln!("cargo-hotswap (linker): {err}; linking without hot-swap support");
                args
            }
        },
        None => args,
    };
    let mut command = Command::new(&real);
    command.env_remove(ROLE_ENV);
    // Long command lines go through a response file, as rustc does.
    let total: usize = args.iter().map(|a| a.len() + 1).sum();
    if total > 100_000 {
        let file = std::env::temp_dir().join(format!("hotswap-link-{}.args", std::process::id()));
        let text: Vec<String> = args
            .iter()
            .map(|a| escape_response(&a.to_string_lossy()))
            .collect();
        if std::fs::write(&file, text.join("\n")).is_ok() {
            let mut at = OsString::from("@");
            at.push(&file);
            let status = command.arg(at).status();
            let _ = std::fs::remove_file(&file);
            return match status {
                Ok(status) => status.code().unwrap_or(1),
                Err(err) => {
                    eprintln!("cargo-hotswap: cannot run the linker `{real}`: {err}");
                    1
                }
            };
        }
    }
    let err = command.args(&args).exec();
    eprintln!("cargo-hotswap: cannot run the linker `{real}`: {err}");
    1
}

fn rewrite(capture_dir: &Path, real: &str, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let all = Invocation::load_all(capture_dir);
    let hot_names: Vec<String> = std::env::var(HOT_CRATES_ENV)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let on_line = |path: &Path| args.iter().any(|a| Path::new(a) == path);
    let mut hot: Vec<(String, &Invocation)> = Vec::new();
    for name in &hot_names {
        let mut candidates: Vec<&Invocation> = all
            .iter()
            .filter(|inv| &inv.crate_name == name && inv.is_library())
            .collect();
        // The capture whose rlib this link uses (the newest if several match). A hot crate
        // this program does not link (another member of the workspace) is left out: linking
        // it whole would pull in an unrelated, possibly stale, library that may not even link.
        candidates.retain(|inv| on_line(&inv.rlib()));
        candidates.sort_by_key(|inv| {
            std::fs::metadata(inv.rlib())
                .and_then(|m| m.modified())
                .ok()
        });
        if let Some(inv) = candidates.pop() {
            hot.push((name.clone(), inv));
        }
    }
    let roots: Vec<&Invocation> = hot.iter().map(|(_, inv)| *inv).collect();
    let closure = capture::library_closure(&all, &roots);

    let mut out: Vec<OsString> = Vec::with_capacity(args.len() + closure.len() * 3 + 4);
    let mut inserted = false;
    let whole = |out: &mut Vec<OsString>, path: &Path| {
        out.push("-Wl,--whole-archive".into());
        out.push(path.as_os_str().to_owned());
        out.push("-Wl,--no-whole-archive".into());
    };
    let mut output = None;
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "-o" {
            output = iter.peek().map(PathBuf::from);
        }
        let path = Path::new(arg);
        let is_rlib = path.extension().is_some_and(|ext| ext == "rlib");
        if is_rlib && !inserted {
            inserted = true;
            for extra in closure.iter().filter(|p| !on_line(p)) {
                whole(&mut out, extra);
            }
        }
        if is_rlib && closure.iter().any(|p| p == path) {
            whole(&mut out, path);
        } else {
            out.push(arg.clone());
        }
    }
    out.push("-Wl,--export-dynamic".into());
    // Rlibs carry a metadata member without a `.note.GNU-stack` section; linked whole it
    // would otherwise ask for an executable stack.
    out.push("-Wl,-z,noexecstack".into());

    if let Some(executable) = output {
        let name = executable
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Cargo links into deps/<name>-<hash> and then hard-links to <name>; key by the
        // stem before the hash so the CLI finds it from the final name.
        let key = name
            .rsplit_once('-')
            .map_or(name.as_str(), |(stem, _)| stem);
        let linked = Linked {
            executable,
            linker: real.to_owned(),
            hot: hot.into_iter().map(|(n, inv)| (n, inv.clone())).collect(),
        };
        let bytes = serde_json::to_vec(&linked).map_err(|e| e.to_string())?;
        std::fs::write(Linked::path(capture_dir, key), bytes)
            .map_err(|err| format!("cannot record the link: {err}"))?;
    }
    Ok(out)
}

/// Replaces `@file` arguments by the arguments the file holds (one per line, as rustc writes
/// them for GNU-like linkers, with `\` escapes).
fn expand_response_files(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let text = arg.to_string_lossy();
        if let Some(file) = text.strip_prefix('@') {
            if let Ok(contents) = std::fs::read_to_string(file) {
                out.extend(
                    contents
                        .lines()
                        .map(|line| OsString::from(unescape_response(line))),
                );
                continue;
            }
        }
        out.push(arg);
    }
    out
}

fn unescape_response(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escape_response(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    for c in arg.chars() {
        if c == '\\' || c == ' ' || c == '"' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_file_escapes_round_trip() {
        for arg in ["plain", "with space", r"back\slash", "quote\"d"] {
            assert_eq!(unescape_response(&escape_response(arg)), arg);
        }
    }
}
