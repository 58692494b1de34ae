//! Helpers shared by the tests that build and run real programs: scratch workspaces in temporary
//! directories, cargo with one shared target directory, child processes whose output is collected
//! line by line, and waiting for a line (never asserting on how long anything took).
//!
//! Every build of a scratch program goes to `<workspace root>/target/e2e`, so the dependencies
//! (hotswap, log, notify, object, ...) compile once for all such tests. Scratch crates sharing that
//! directory must have names unique to their test.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a reload may take to show up once the library is on disk. Generous: a loaded CI
/// machine is slow, and waiting longer than needed costs nothing when things work.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the first output of a freshly started program may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// This crate's directory (`crates/hotswap`).
pub fn hotswap_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root (the workspace containing `crates/hotswap`).
pub fn workspace_root() -> PathBuf {
    let root = hotswap_dir().join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The target directory shared by every end-to-end build.
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// Where cargo puts the debug binaries and `cdylib`s of scratch programs.
pub fn e2e_debug_dir() -> PathBuf {
    e2e_target_dir().join("debug")
}

/// A `cargo` command run in `dir` with the shared target directory and an environment cleaned of
/// whatever the outer `cargo test` (or the developer's shell) set that would change the build.
pub fn cargo(dir: &Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(dir);
    for name in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_BUILD_TARGET",
        "HOTSWAP_BUILD_TOKEN",
        "HOTSWAP_CONTROL",
        "HOTSWAP_LIB_DIR",
        "HOTSWAP_LOG",
    ] {
        command.env_remove(name);
    }
    command
        .env("CARGO_TARGET_DIR", e2e_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never");
    command
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

/// A dependency line for hotswap by absolute path (computed at run time: nothing machine-specific
/// is written in the repository).
pub fn hotswap_dependency(features: &[&str]) -> String {
    let features: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    format!(
        "hotswap = {{ path = {:?}, features = [{}] }}",
        hotswap_dir().display().to_string(),
        features.join(", ")
    )
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
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("cannot create a temporary directory");
        let lock = workspace_root().join("Cargo.lock");
        if lock.exists() {
            std::fs::copy(&lock, dir.path().join("Cargo.lock")).expect("cannot copy Cargo.lock");
        }
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative` (creating directories), replacing any previous file.
    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("cannot create a scratch directory");
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
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

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line a child printed, numbered in the order the readers received them.
#[derive(Clone, Debug)]
pub struct Line {
    pub seq: usize,
    pub stream: Stream,
    pub at: Instant,
    pub text: String,
}

impl Line {
    pub fn is_out(&self) -> bool {
        self.stream == Stream::Stdout
    }

    pub fn is_err(&self) -> bool {
        self.stream == Stream::Stderr
    }
}

#[derive(Default)]
struct Collected {
    lines: Vec<Line>,
    open_streams: usize,
}

#[derive(Default)]
struct Shared {
    collected: Mutex<Collected>,
    changed: Condvar,
}

/// A running child process with its stdout and stderr collected by reader threads. Dropping it
/// kills the child, on every exit path of a test (including a failed assertion).
pub struct Running {
    name: String,
    child: Child,
    shared: Arc<Shared>,
    started: Instant,
}

impl Running {
    /// Spawns `command` with piped output. `name` is used in failure messages.
    pub fn spawn(name: &str, mut command: Command) -> Running {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        let shared = Arc::new(Shared::default());
        shared.collected.lock().unwrap().open_streams = 2;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(Arc::clone(&shared), Stream::Stdout, stdout);
        spawn_reader(Arc::clone(&shared), Stream::Stderr, stderr);
        Running {
            name: name.to_owned(),
            child,
            shared,
            started: Instant::now(),
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.shared.collected.lock().unwrap().lines.clone()
    }

    /// The number of lines received so far: pass it to [`Running::wait_for`] to look only at
    /// lines that arrive after this point.
    pub fn mark(&self) -> usize {
        self.shared.collected.lock().unwrap().lines.len()
    }

    /// Waits until a line numbered `since` or later satisfies `matches`, and returns it. Panics,
    /// with everything the child printed, if `timeout` passes or the child closed its output
    /// first. The timeout only bounds a hang: nothing is asserted about how long it took.
    pub fn wait_for(
        &self,
        what: &str,
        since: usize,
        timeout: Duration,
        mut matches: impl FnMut(&Line) -> bool,
    ) -> Line {
        let deadline = Instant::now() + timeout;
        let mut collected = self.shared.collected.lock().unwrap();
        let mut checked = since;
        loop {
            while checked < collected.lines.len() {
                if matches(&collected.lines[checked]) {
                    return collected.lines[checked].clone();
                }
                checked += 1;
            }
            if collected.open_streams == 0 {
                drop(collected);
                panic!(
                    "{} ended its output before printing {what}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            let now = Instant::now();
            if now >= deadline {
                drop(collected);
                panic!(
                    "{} did not print {what} within {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            collected = self
                .shared
                .changed
                .wait_timeout(collected, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// Waits for `count` lines numbered `since` or later that satisfy `matches`; returns them.
    pub fn wait_for_count(
        &self,
        what: &str,
        since: usize,
        count: usize,
        timeout: Duration,
        mut matches: impl FnMut(&Line) -> bool,
    ) -> Vec<Line> {
        let mut found = Vec::new();
        let mut next = since;
        while found.len() < count {
            let line = self.wait_for(what, next, timeout, &mut matches);
            next = line.seq + 1;
            found.push(line);
        }
        found
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the child printed, with times relative to its start, for failure messages.
    pub fn transcript(&self) -> String {
        let collected = self.shared.collected.lock().unwrap();
        let mut text = format!("--- output of {} ---\n", self.name);
        let lines = &collected.lines;
        // Keep failure messages readable: the first and the last lines are what matter.
        let skip = lines.len().saturating_sub(400);
        for (index, line) in lines.iter().enumerate() {
            if index >= 100 && index < skip {
                if index == 100 {
                    text.push_str(&format!("[... {} lines ...]\n", skip - 100));
                }
                continue;
            }
            let at = line
                .at
                .saturating_duration_since(self.started)
                .as_secs_f64();
            let stream = match line.stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            text.push_str(&format!("{at:8.3}s {stream}| {}\n", line.text));
        }
        text.push_str("--- end ---");
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_reader(shared: Arc<Shared>, stream: Stream, pipe: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buffer)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    let mut collected = shared.collected.lock().unwrap();
                    let seq = collected.lines.len();
                    collected.lines.push(Line {
                        seq,
                        stream,
                        at: Instant::now(),
                        text,
                    });
                    shared.changed.notify_all();
                }
            }
        }
        shared.collected.lock().unwrap().open_streams -= 1;
        shared.changed.notify_all();
    });
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
        let host = Running::spawn(&self.host, self.host_command(lib_dir));
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
