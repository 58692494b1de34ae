//! Helpers for the end-to-end tests of `cargo hotswap run`: a scratch workspace (a binary and a
//! hot library) in a temporary directory, the real command started on it with its output
//! collected line by line, and waiting for a line (with generous timeouts that only bound a hang:
//! nothing here asserts how long anything took).
//!
//! Every scratch app builds into `<repository>/target/e2e` (the command adds `/hotswap`), so the
//! dependencies (hotswap, log, strsim, ...) compile once for all tests and runs. Scratch crates
//! sharing that directory get names unique to their test.

#![allow(dead_code)] // each test uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The first build of a scratch app (on a cold target directory it compiles every dependency).
pub const FIRST_BUILD: Duration = Duration::from_secs(600);
/// A rebuild and restart (only the scratch crates compile again).
pub const RESTART: Duration = Duration::from_secs(180);
/// A patch: replay one crate's rustc command, link, load.
pub const PATCH: Duration = Duration::from_secs(90);
/// Output of a running program.
pub const OUTPUT: Duration = Duration::from_secs(30);

/// Held while a test runs: the tests share one target directory (and their scratch crates'
/// names, so two runs of this file must not overlap) and a loaded 2-core machine; one at a time,
/// a build never waits for another test's build lock.
pub struct Serial {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// Waits until no other test, of this process or of another run of these tests, runs.
pub fn serial() -> Serial {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = e2e_target_dir();
    std::fs::create_dir_all(&dir).expect("cannot create the shared target directory");
    let path = dir.join("cargo-hotswap-e2e.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()));
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "flock: {err}");
    }
    Serial {
        _file: file,
        _guard: guard,
    }
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The `hotswap` crate, for the scratch app's path dependency.
pub fn hotswap_dir() -> PathBuf {
    workspace_root().join("crates").join("hotswap")
}

/// The target directory shared by every scratch app.
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// `<tmp>/hotswap-<uid>`: where the command and the program keep their private directories.
pub fn private_base() -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("hotswap-{uid}"))
}

/// The names of the files in `dir` (none if it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether process `pid` still runs (a zombie does not).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Waits until process `pid` no longer runs; false if it still runs after `timeout`.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: sending a signal has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// The value after `key=` in `text`, up to the next space.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("{key}="))? + key.len() + 1;
    let rest = &text[start..];
    Some(rest.split(' ').next().unwrap_or(rest))
}

/// The `counter=N` of a line the program printed.
pub fn counter_of(text: &str) -> Option<u64> {
    field(text, "counter")?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The scratch app
// ---------------------------------------------------------------------------------------------

/// The program: installs a logger that prints to stdout, prints the `TypeId` of the hot crate's
/// state type, then calls the hot `step` every 50 ms under `catch_unwind` and prints what it
/// returns, or the message of its panic. The state (a counter the hot code increments) belongs
/// to this loop, not to the hot crate. With `--exit-42-on-sigint` it exits with code 42 on SIGINT
/// (otherwise SIGINT kills it).
const MAIN_RS: &str = r#"use std::any::TypeId;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use GAME as game;

struct StdoutLogger;

impl log::Log for StdoutLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        println!("LOG: {}", record.args());
    }
    fn flush(&self) {}
}

static LOGGER: StdoutLogger = StdoutLogger;

extern "C" fn exit_42(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) }
}

fn main() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    // Panics of the hot code are reported below, once, on stdout.
    std::panic::set_hook(Box::new(|_| {}));
    if std::env::args().any(|arg| arg == "--exit-42-on-sigint") {
        // SAFETY: the handler only calls an async-signal-safe function.
        unsafe {
            libc::signal(libc::SIGINT, exit_42 as *const () as libc::sighandler_t);
        }
    }
    let host_type = TypeId::of::<game::State>();
    println!("host pid={} type_id={host_type:?}", std::process::id());
    let mut state = game::State::default();
    loop {
        match catch_unwind(AssertUnwindSafe(|| game::step(&mut state, host_type))) {
            Ok(line) => println!("{line}"),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a payload that is not a string".into());
                println!("caught panic: {message}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

/// Version `VERSION` of the hot crate: `step` increments the counter and reports it, whether the
/// `TypeId` of `State` computed here equals the one the host computed, and this `TypeId`.
/// `EXTRA` is spliced into the body before the line is formatted (it may set `extra`).
const LIB_RS: &str = r#"use std::any::TypeId;

/// The program's state; the program owns it, patches only change the code that updates it.
#[derive(Default)]
pub struct State {
    pub counter: u64,
}

#[hotswap::hot]
pub fn step(state: &mut State, host_type: TypeId) -> RETURN {
    state.counter += 1;
    let mut extra = String::new();
    EXTRA
    let _ = &mut extra;
    let here = TypeId::of::<State>();
    format!(
        "VERSION counter={} same_type={} type_id={here:?}{extra}",
        state.counter,
        here == host_type
    )
    .into()
}
"#;

/// The source of the hot crate: version `version` (`v1`, `v2`, ...), returning `ret` (`String`
/// unless a test changes the signature), with `extra` statements in the body.
pub fn game_source(version: &str, ret: &str, extra: &str) -> String {
    LIB_RS
        .replace("VERSION", version)
        .replace("RETURN", ret)
        .replace("EXTRA", extra)
}

/// A scratch workspace: `app/` (package `<prefix>_app`, the binary) and `game/` (package
/// `<prefix>_game`, the hot library with `log` and `strsim`, a
/// crates.io dependency that nothing else in the program uses). Deleted when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
    /// A private copy of `cargo-hotswap` (see [`Scratch::new`]).
    tool: tempfile::TempDir,
    pub app: String,
    pub game: String,
}

impl Scratch {
    pub fn new(prefix: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        // Run a copy of the command: `cargo build` elsewhere in this repository may replace
        // target/debug/cargo-hotswap while a test runs, and the command hands its own path to
        // cargo (as RUSTC_WRAPPER and linker), which must stay valid for the whole test.
        let tool = tempfile::Builder::new()
            .prefix(&format!("{prefix}-tool-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        std::fs::copy(
            env!("CARGO_BIN_EXE_cargo-hotswap"),
            tool.path().join("cargo-hotswap"),
        )
        .expect("cannot copy cargo-hotswap");
        let app = format!("{prefix}_app");
        let game = format!("{prefix}_game");
        let scratch = Scratch {
            dir,
            tool,
            app,
            game,
        };
        // The repository's lock file: the same dependency versions as the repository, already
        // downloaded, and compiled once in the shared target directory.
        let lock = workspace_root().join("Cargo.lock");
        if lock.exists() {
            std::fs::copy(&lock, scratch.path().join("Cargo.lock")).expect("copy Cargo.lock");
        }
        scratch.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"app\", \"game\"]\n",
        );
        scratch.write(
            "app/Cargo.toml",
            &format!(
                "[package]\nname = \"{app}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\n{game} = {{ path = \"../game\" }}\n\
                 libc = \"0.2\"\nlog = \"0.4\"\n",
                app = scratch.app,
                game = scratch.game,
            ),
        );
        scratch.write(
            "game/Cargo.toml",
            &format!(
                "[package]\nname = \"{game}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[dependencies]\nhotswap = {{ path = {hotswap:?} }}\n\
                 log = \"0.4\"\nstrsim = \"0.11\"\n",
                game = scratch.game,
                hotswap = hotswap_dir().display().to_string(),
            ),
        );
        scratch.write("app/src/main.rs", &MAIN_RS.replace("GAME", &scratch.game));
        scratch.write("game/src/lib.rs", &game_source("v1", "String", ""));
        scratch
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file as a plain (non-atomic) write; for the initial files only.
    fn write(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).unwrap()
    }

    /// Saves `contents` to `relative` at once: written to a hidden file in the same directory
    /// (which the command ignores), then renamed over the original, so the command never sees
    /// a half-written file.
    pub fn save(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let temp = path.with_file_name(format!(".{name}.e2e-tmp"));
        std::fs::write(&temp, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", temp.display()));
        std::fs::rename(&temp, &path)
            .unwrap_or_else(|err| panic!("cannot rename to {}: {err}", path.display()));
    }

    /// Saves a new version of the hot crate's `src/lib.rs`.
    pub fn save_game(&self, source: &str) {
        self.save("game/src/lib.rs", source);
    }

    /// `cargo-hotswap <args>` in the workspace, with the shared target directory and an
    /// environment cleaned of what the outer `cargo test` set that would change the build.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.tool.path().join("cargo-hotswap"));
        command.args(args).current_dir(self.path());
        for name in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_BUILD_BUILD_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
            "MAKEFLAGS",
            "MFLAGS",
            "HOTSWAP_ROLE",
            "HOTSWAP_BUILD_TOKEN",
            "HOTSWAP_CONTROL",
            "HOTSWAP_LIB_DIR",
            "HOTSWAP_LOG",
            "HOTSWAP_WARNINGS",
        ] {
            command.env_remove(name);
        }
        command
            .env("CARGO_TARGET_DIR", e2e_target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env("NO_COLOR", "1");
        command
    }

    /// Starts `cargo-hotswap <args>` here and waits until the program runs its first step.
    pub fn run(&self, args: &[&str]) -> (Cli, Started) {
        let cli = Cli::spawn(self, self.command(args));
        let started = cli.wait_started(0, FIRST_BUILD);
        cli.wait_out("the program's first step", started.seq, OUTPUT, |t| {
            t.starts_with("v1 counter=")
        });
        (cli, started)
    }
}

// ---------------------------------------------------------------------------------------------
// The running command
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The program's stdout (the command passes it through).
    Out,
    /// The command's messages (and the program's stderr).
    Err,
}

/// One line, numbered in the order the reader threads received them. Lines of one stream keep
/// their order; between the two streams the order is only approximate.
#[derive(Clone, Debug)]
pub struct Line {
    pub seq: usize,
    pub stream: Stream,
    pub at: Instant,
    pub text: String,
}

#[derive(Default)]
struct Collected {
    lines: Vec<Line>,
    open: usize,
}

#[derive(Default)]
struct Shared {
    collected: Mutex<Collected>,
    changed: Condvar,
}

/// `cargo-hotswap run` on a scratch app. Dropping it kills the programs it started (their pids
/// come from its `started` lines) and then the command, on every exit path of a test.
pub struct Cli {
    child: Child,
    shared: Arc<Shared>,
    started: Instant,
    exited: Option<ExitStatus>,
    app_name: String,
}

/// A `started `app` (pid N)` line.
pub struct Started {
    pub seq: usize,
    pub pid: u32,
}

impl Cli {
    fn spawn(scratch: &Scratch, mut command: Command) -> Cli {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If this test process dies without running destructors, the command dies with it
        // (and the program, whose stdout then closes, on its next line).
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("cannot start cargo-hotswap");
        let shared = Arc::new(Shared::default());
        shared.collected.lock().unwrap().open = 2;
        read_lines(
            Arc::clone(&shared),
            Stream::Out,
            child.stdout.take().unwrap(),
        );
        read_lines(
            Arc::clone(&shared),
            Stream::Err,
            child.stderr.take().unwrap(),
        );
        Cli {
            child,
            shared,
            started: Instant::now(),
            exited: None,
            app_name: scratch.app.clone(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command's private directory, `<tmp>/hotswap-<uid>/cli-<pid>`.
    pub fn private_dir(&self) -> PathBuf {
        private_base().join(format!("cli-{}", self.pid()))
    }

    /// The number of lines so far; lines from here on are "new".
    pub fn mark(&self) -> usize {
        self.shared.collected.lock().unwrap().lines.len()
    }

    pub fn lines(&self) -> Vec<Line> {
        self.shared.collected.lock().unwrap().lines.clone()
    }

    /// Lines of `stream` from `since` on.
    pub fn texts(&self, stream: Stream, since: usize) -> Vec<(usize, String)> {
        let collected = self.shared.collected.lock().unwrap();
        collected.lines[since.min(collected.lines.len())..]
            .iter()
            .filter(|line| line.stream == stream)
            .map(|line| (line.seq, line.text.clone()))
            .collect()
    }

    /// Waits for a line numbered `since` or later that `matches`; panics with the transcript if
    /// `timeout` passes or the output closes first.
    pub fn wait_for(
        &self,
        what: &str,
        since: usize,
        timeout: Duration,
        mut matches: impl FnMut(&Line) -> bool,
    ) -> Line {
        let deadline = Instant::now() + timeout;
        let mut collected = self.shared.collected.lock().unwrap();
        let mut next = since;
        loop {
            while next < collected.lines.len() {
                if matches(&collected.lines[next]) {
                    return collected.lines[next].clone();
                }
                next += 1;
            }
            let now = Instant::now();
            if collected.open == 0 || now >= deadline {
                let why = if collected.open == 0 {
                    "the output closed".to_owned()
                } else {
                    format!("{timeout:?} passed")
                };
                drop(collected);
                panic!(
                    "waited for {what} since line {since}, but {why}\n{}",
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

    /// Waits for a line of the program's stdout.
    pub fn wait_out(
        &self,
        what: &str,
        since: usize,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Line {
        self.wait_for(what, since, timeout, |line| {
            line.stream == Stream::Out && matches(&line.text)
        })
    }

    /// Waits for a message of the command (`[hotswap] ` is added to `prefix`).
    pub fn wait_message(&self, prefix: &str, since: usize, timeout: Duration) -> Line {
        let prefix = format!("[hotswap] {prefix}");
        self.wait_for(&format!("`{prefix}`"), since, timeout, |line| {
            line.stream == Stream::Err && line.text.starts_with(&prefix)
        })
    }

    /// Waits for `[hotswap] started `app` (pid N) after a ... build` and returns N.
    pub fn wait_started(&self, since: usize, timeout: Duration) -> Started {
        let prefix = format!("started `{}` (pid ", self.app_name);
        let started = format!("[hotswap] {prefix}");
        // A failed build is reported at once rather than after the timeout.
        let line = self.wait_for(&format!("`{started}`"), since, timeout, |line| {
            line.stream == Stream::Err
                && (line.text.starts_with(&started)
                    || line.text.starts_with("[hotswap] the build failed"))
        });
        assert!(
            line.text.starts_with(&started),
            "the build failed\n{}",
            self.transcript()
        );
        let pid = line.text["[hotswap] ".len() + prefix.len()..]
            .split(')')
            .next()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {:?}\n{}", line.text, self.transcript()));
        assert!(
            line.text.contains(") after a ") && line.text.ends_with(" build"),
            "unexpected start message {:?}",
            line.text
        );
        Started { seq: line.seq, pid }
    }

    /// Sends SIGINT to the command (as Ctrl-C in its terminal would, minus the program).
    pub fn interrupt(&self) {
        signal(self.pid(), libc::SIGINT);
    }

    /// Waits for the command to exit; panics with the transcript after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "cargo-hotswap did not exit within {timeout:?}\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends the session as a user does (Ctrl-C) and checks what that promises: the command exits
    /// with the program's exit code (`expected_code`), the program is gone, and the command's
    /// private directory is gone with all its files.
    pub fn interrupt_and_check(&mut self, app_pid: u32, expected_code: i32) {
        let private_dir = self.private_dir();
        assert!(
            private_dir.is_dir(),
            "the command has no private directory at {} while it runs",
            private_dir.display()
        );
        self.interrupt();
        let status = self.wait_exit(OUTPUT);
        assert_eq!(
            status.code(),
            Some(expected_code),
            "cargo-hotswap should exit with the program's exit code\n{}",
            self.transcript()
        );
        assert!(
            !is_running(app_pid),
            "the program (pid {app_pid}) still runs after the command exited"
        );
        let left = files_in(&private_dir);
        assert!(
            !private_dir.exists() && left.is_empty(),
            "the command left {} behind: {left:?}",
            private_dir.display()
        );
    }

    /// Everything collected, for failure messages (the middle of a long run is elided).
    pub fn transcript(&self) -> String {
        let collected = self.shared.collected.lock().unwrap();
        let lines = &collected.lines;
        let mut text = String::from("--- output of cargo-hotswap and the program ---\n");
        let skip_to = lines.len().saturating_sub(300);
        for (index, line) in lines.iter().enumerate() {
            if (100..skip_to).contains(&index) {
                // Keep the command's own messages, drop the program's chatter.
                if line.stream == Stream::Out {
                    continue;
                }
            }
            let at = line
                .at
                .saturating_duration_since(self.started)
                .as_secs_f64();
            let stream = match line.stream {
                Stream::Out => "out",
                Stream::Err => "err",
            };
            text.push_str(&format!("{index:5} {at:8.3}s {stream}| {}\n", line.text));
        }
        text.push_str("--- end ---");
        text
    }

    /// Whether process `pid` runs this test's program.
    fn is_app(&self, pid: u32) -> bool {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|exe| Some(exe.file_name()?.to_str()?.starts_with(&self.app_name)))
            .unwrap_or(false)
    }

    fn app_pids(&self) -> Vec<u32> {
        let prefix = format!("[hotswap] started `{}` (pid ", self.app_name);
        self.texts(Stream::Err, 0)
            .into_iter()
            .filter_map(|(_, text)| text.strip_prefix(&prefix)?.split(')').next()?.parse().ok())
            .collect()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if std::env::var_os("HOTSWAP_E2E_TRANSCRIPT").is_some() {
            eprintln!("{}", self.transcript());
        }
        // The programs first, while the command is still their parent; one the command left
        // behind is recognised by its executable (so a pid reused meanwhile is never hit).
        let me = self.pid();
        for pid in self.app_pids() {
            if is_running(pid) && (parent_of(pid) == Some(me) || self.is_app(pid)) {
                signal(pid, libc::SIGKILL);
            }
        }
        if self.exited.is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(shared: Arc<Shared>, stream: Stream, pipe: impl Read + Send + 'static) {
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
        shared.collected.lock().unwrap().open -= 1;
        shared.changed.notify_all();
    });
}
