//! Helpers shared by the tests that build and run real programs: scratch workspaces in temporary
//! directories, cargo with one shared target directory, child processes whose output is collected
//! line by line, and waiting for a line (never asserting on how long anything took).
//!
//! Every build of a scratch program goes to `<workspace root>/target/e2e`, so the dependencies
//! (hotswap, log, notify, object, ...) compile once for all such tests. Scratch crates sharing that
//! directory must have names unique to their test.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hotswap_testkit::{Options, Process, Transcript};

pub use hotswap_testkit::{
    cargo, e2e_target_dir, hotswap_dependency, workspace_root, Line, Process as Running,
};

/// How long a reload may take to show up once the library is on disk. Generous: a loaded CI
/// machine is slow, and waiting longer than needed costs nothing when things work.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the first output of a freshly started program may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a host's output is shortened in failure messages: the first and the last lines are what
/// matter.
const HOST_TRANSCRIPT: Transcript = Transcript {
    head: 100,
    tail: 400,
    keep_stderr: false,
    numbered: false,
};

/// This crate's directory (`crates/hotswap`).
pub fn hotswap_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo puts the debug binaries and `cdylib`s of scratch programs.
pub fn e2e_debug_dir() -> PathBuf {
    e2e_target_dir().join("debug")
}

/// Runs `cargo <args>` in `dir` and returns its output, whatever the exit status.
pub fn cargo_output(dir: &Path, args: &[&str]) -> Output {
    let output = cargo(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run cargo {args:?} in {}: {err}", dir.display()));
    output
}

/// Runs `cargo <args>` in `dir` and panics with cargo's output if it fails.
pub fn cargo_ok(dir: &Path, args: &[&str]) -> Output {
    let output = cargo_output(dir, args);
    assert!(
        output.status.success(),
        "cargo {args:?} failed in {} ({}):\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A cargo workspace in a temporary directory, deleted when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// An empty workspace with the repository's `Cargo.lock`, so it resolves to the same versions
    /// as the repository (the host and a patch library must agree on `log` and `tracing`) and
    /// shares the compiled dependencies in the shared target directory.
    pub fn new(prefix: &str) -> Scratch {
        Scratch {
            dir: hotswap_testkit::scratch_dir(prefix),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative` (creating directories), replacing any previous file.
    pub fn write(&self, relative: &str, contents: &str) {
        hotswap_testkit::write_file(&self.dir.path().join(relative), contents);
    }

    /// `cargo <args>` in the workspace; panics with cargo's output if it fails.
    pub fn cargo_ok(&self, args: &[&str]) -> Output {
        cargo_ok(self.path(), args)
    }

    /// `cargo <args>` in the workspace, whatever the exit status.
    pub fn cargo_output(&self, args: &[&str]) -> Output {
        cargo_output(self.path(), args)
    }
}

// ---------------------------------------------------------------------------------------------
// The reload app: a host binary and a hot library, as a user of full library mode writes them.
// ---------------------------------------------------------------------------------------------

/// A two-crate app in a scratch workspace: `<prefix>_host` (a binary in hot mode) and
/// `<prefix>_game` (the hot library, `rlib` + `cdylib`, using `log`). Its builds go to the shared
/// target directory, so [`AppBinaries`] outlives the scratch sources.
pub struct ReloadApp {
    pub scratch: Scratch,
    pub binaries: AppBinaries,
}

impl std::ops::Deref for ReloadApp {
    type Target = AppBinaries;
    fn deref(&self) -> &AppBinaries {
        &self.binaries
    }
}

/// The built host and library of a [`ReloadApp`], by crate name.
#[derive(Clone)]
pub struct AppBinaries {
    pub host: String,
    pub game: String,
}

impl ReloadApp {
    /// Writes the workspace with version 1 of the library. Nothing is built yet.
    pub fn new(prefix: &str) -> ReloadApp {
        let scratch = Scratch::new(prefix);
        let host = format!("{prefix}_host");
        let game = format!("{prefix}_game");
        let hotswap = hotswap_dependency(&["hot"]);
        scratch.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"host\", \"game\"]\n",
        );
        scratch.write(
            "host/Cargo.toml",
            &format!(
                "[package]\nname = \"{host}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\n{game} = {{ path = \"../game\" }}\n\
                 {hotswap}\nlog = \"0.4\"\ntracing = \"0.1\"\n"
            ),
        );
        scratch.write("host/src/main.rs", &HOST_MAIN.replace("GAME", &game));
        scratch.write(
            "game/Cargo.toml",
            &format!(
                "[package]\nname = \"{game}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[lib]\ncrate-type = [\"rlib\", \"cdylib\"]\n\n\
                 [dependencies]\n{hotswap}\nlog = \"0.4\"\ntracing = \"0.1\"\n"
            ),
        );
        let app = ReloadApp {
            scratch,
            binaries: AppBinaries { host, game },
        };
        app.write_game(GAME_V1);
        app
    }

    /// Replaces the library's source.
    pub fn write_game(&self, source: &str) {
        self.scratch.write("game/src/lib.rs", source);
    }

    /// Builds host and library (the library also as `lib<game>.so` next to the host).
    pub fn build_all(&self) {
        self.scratch.cargo_ok(&["build"]);
    }

    /// Rebuilds only the library, as a user does after an edit.
    pub fn build_game(&self) {
        self.scratch.cargo_ok(&["build", "-p", &self.game]);
    }
}

impl AppBinaries {
    pub fn host_exe(&self) -> PathBuf {
        e2e_debug_dir().join(&self.host)
    }

    /// Where cargo writes the library: next to the host executable.
    pub fn built_library(&self) -> PathBuf {
        e2e_debug_dir().join(format!("lib{}.so", self.game))
    }

    /// A command that runs the host with the runtime's messages on stderr. `lib_dir`, if given,
    /// is where the runtime watches for the library instead of next to the executable.
    pub fn host_command(&self, lib_dir: Option<&Path>) -> Command {
        let mut command = Command::new(self.host_exe());
        command
            .env("HOTSWAP_LOG", "1")
            .env_remove("HOTSWAP_CONTROL")
            .env_remove("HOTSWAP_LIB_DIR")
            .env("RUST_BACKTRACE", "0");
        if let Some(dir) = lib_dir {
            command.env("HOTSWAP_LIB_DIR", dir);
        }
        command
    }

    /// Starts the host and waits until it runs version 1 and the runtime watches the library
    /// (a change made before the watch is in place could be missed).
    pub fn start_host(&self, lib_dir: Option<&Path>) -> Running {
        let host = Process::spawn(
            &self.host,
            self.host_command(lib_dir),
            Options::default(),
            &format!("output of {}", self.host),
            HOST_TRANSCRIPT,
        );
        host.wait_for("`hot mode: true`", 0, START_TIMEOUT, |line| {
            line.is_out() && line.text.starts_with("hot mode: ")
        });
        let mode = host
            .lines()
            .into_iter()
            .find(|line| line.text.starts_with("hot mode: "))
            .unwrap();
        assert_eq!(
            mode.text,
            "hot mode: true",
            "the host was not built in hot mode\n{}",
            host.transcript()
        );
        host.wait_for("the first tick of version 1", 0, START_TIMEOUT, |line| {
            line.is_out() && line.text.starts_with("out: v1 ")
        });
        host.wait_for("`[hotswap] watching ...`", 0, START_TIMEOUT, |line| {
            line.is_err()
                && line.text.starts_with("[hotswap] watching ")
                && line.text.ends_with(&format!("lib{}.so", self.game))
        });
        host
    }
}

/// The counter in an `out:` or `caught panic:` line of the reload app (`counter=N`).
pub fn counter_of(line: &str) -> Option<u64> {
    let rest = &line[line.find("counter=")? + "counter=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The host: installs a logger that prints `LOG: <msg>` and a `tracing` subscriber that prints
/// `TRACE: <msg>`, keeps the state, and calls the hot function every 50 ms inside
/// `catch_unwind`, printing `out: <result>` or `caught panic: <msg>`.
const HOST_MAIN: &str = r#"//! Host of a hot-reload test app (generated by hotswap's tests).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

struct PrintLogger;

impl log::Log for PrintLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        println!("LOG: {}", record.args());
    }
    fn flush(&self) {}
}

static LOGGER: PrintLogger = PrintLogger;

/// Prints the message of every event but the runtime's own (target `hotswap`).
struct PrintSubscriber;

impl tracing::Subscriber for PrintSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() != "hotswap" {
            let mut message = Message(String::new());
            event.record(&mut message);
            println!("TRACE: {}", message.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn main() {
    log::set_logger(&LOGGER).expect("no logger installed yet");
    log::set_max_level(log::LevelFilter::Info);
    tracing::subscriber::set_global_default(PrintSubscriber).expect("no subscriber yet");
    println!("hot mode: {}", hotswap::is_hot());
    let mut state = GAME::State::default();
    // Bounded (about five minutes) so a host whose test died without killing it stops anyway.
    for _ in 0..6000 {
        match catch_unwind(AssertUnwindSafe(|| GAME::step(&mut state))) {
            Ok(text) => println!("out: {text}"),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "<not a string>".to_owned());
                println!("caught panic: {message}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

/// Version 1 of the hot library, compiled into the host.
pub const GAME_V1: &str = r#"//! Hot library of a test app, version 1 (generated by hotswap's tests).

#[derive(Default)]
pub struct State {
    pub counter: u64,
}

#[hotswap::hot]
pub fn step(state: &mut State) -> String {
    state.counter += 1;
    if state.counter == 1 {
        log::info!("v1 started");
    }
    format!("v1 counter={}", state.counter)
}
"#;

/// Version 2: new text, logs on every call, and panics on every third call.
pub const GAME_V2: &str = r#"//! Hot library of a test app, version 2 (generated by hotswap's tests).

#[derive(Default)]
pub struct State {
    pub counter: u64,
}

#[hotswap::hot]
pub fn step(state: &mut State) -> String {
    state.counter += 1;
    let counter = state.counter;
    log::info!("v2 logged at counter={counter}");
    tracing::info!("v2 traced at counter={counter}");
    if counter % 3 == 0 {
        panic!("v2 panicked at counter={counter}");
    }
    describe(counter)
}

fn describe(counter: u64) -> String {
    format!("v2 counter={counter}")
}
"#;
