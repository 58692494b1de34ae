//! Helpers for the end-to-end tests of `cargo hotswap run`: a scratch workspace (a binary and a
//! hot library) in a temporary directory, the real command started on it with its output
//! collected line by line, and waiting for a line (with generous timeouts that only bound a hang:
//! nothing here asserts how long anything took).
//!
//! Every scratch app builds into `<repository>/target/e2e` (the command adds `/hotswap`), so the
//! dependencies (hotswap, log, strsim, ...) compile once for all tests and runs. Scratch crates
//! sharing that directory get names unique to their test.

#![allow(dead_code, unused_imports)] // each test uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hotswap_testkit::{parent_of, runs_executable, Options, Process, Transcript};

pub mod session;

pub use hotswap_testkit::{
    e2e_target_dir, files_in, hotswap_dir, is_running, private_base, serial, signal, wait_gone,
    workspace_root, Line, Serial, Stream,
};

/// The first build of a scratch app (on a cold target directory it compiles every dependency).
pub const FIRST_BUILD: Duration = Duration::from_secs(600);
/// A rebuild and restart (only the scratch crates compile again).
pub const RESTART: Duration = Duration::from_secs(180);
/// A patch: replay one crate's rustc command, link, load.
pub const PATCH: Duration = Duration::from_secs(90);
/// Output of a running program.
pub const OUTPUT: Duration = Duration::from_secs(30);

/// A private copy of `cargo-hotswap` in a temporary directory named `<prefix>...`: `cargo build`
/// elsewhere in this repository may replace target/debug/cargo-hotswap while a test runs, and the
/// command hands its own path to cargo (as RUSTC_WRAPPER and linker), which must stay valid for
/// the whole test.
pub fn private_tool(prefix: &str) -> tempfile::TempDir {
    let tool = hotswap_testkit::temp_dir(prefix);
    std::fs::copy(
        env!("CARGO_BIN_EXE_cargo-hotswap"),
        tool.path().join("cargo-hotswap"),
    )
    .expect("cannot copy cargo-hotswap");
    tool
}

/// `<tool>/cargo-hotswap` in `dir`, with the shared target directory and an environment cleaned
/// of what the outer `cargo test` set that would change the build (and of `extra_env`).
pub fn cli_command(tool: &Path, dir: &Path, extra_env: &[&str]) -> Command {
    let mut command = Command::new(tool.join("cargo-hotswap"));
    command.current_dir(dir);
    hotswap_testkit::remove_env(&mut command, hotswap_testkit::BUILD_ENV);
    hotswap_testkit::remove_env(&mut command, hotswap_testkit::JOBSERVER_ENV);
    hotswap_testkit::remove_env(&mut command, &["HOTSWAP_ROLE", "HOTSWAP_WARNINGS"]);
    hotswap_testkit::remove_env(&mut command, extra_env);
    command
        .env("CARGO_TARGET_DIR", e2e_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("NO_COLOR", "1");
    command
}

/// Starts the command, which dies with the test process if that dies without running
/// destructors (and the program, whose stdout then closes, on its next line). Failure messages
/// show the first `head` and the last `tail` lines of a long run, and in between the command's
/// own messages (the program's chatter there is dropped).
pub fn spawn_cli(command: Command, head: usize, tail: usize) -> Process {
    let style = Transcript {
        head,
        tail,
        keep_stderr: true,
        numbered: true,
    };
    Process::spawn(
        "cargo-hotswap",
        command,
        Options {
            stdin: false,
            die_with_test: true,
        },
        "output of cargo-hotswap and the program",
        style,
    )
}

/// Sends SIGINT to the command (as Ctrl-C in its terminal would, minus the program), waits for
/// it to exit, and checks it exits with the program's exit code (`expected_code`).
pub fn interrupt_and_wait(cli: &mut Process, expected_code: i32) {
    signal(cli.pid(), libc::SIGINT);
    let status = cli.wait_exit(OUTPUT);
    assert_eq!(
        status.code(),
        Some(expected_code),
        "cargo-hotswap should exit with the program's exit code\n{}",
        cli.transcript()
    );
}

/// The pids of the `started `program` (pid N)` lines of the command.
pub fn started_pids(cli: &Process, program: &str) -> Vec<u32> {
    let prefix = format!("[hotswap] started `{program}` (pid ");
    cli.texts(Stream::Err, 0)
        .into_iter()
        .filter_map(|(_, text)| text.strip_prefix(&prefix)?.split(')').next()?.parse().ok())
        .collect()
}

/// Whether `line` is the first outcome the command reports for a save: a line starting with
/// `patched` (the expected `[hotswap] <crate>: patched ...`), or a refusal, a compile error, the
/// last good code kept, or a restart; waiting for any of them makes a wrong outcome fail at once.
pub fn is_save_outcome(line: &Line, patched: &str) -> bool {
    line.stream == Stream::Err
        && (line.text.starts_with(patched)
            || line.text.contains("refused the patch")
            || line.text.contains("does not compile")
            || line.text.contains("keeps running the last good code")
            || line.text.starts_with("[hotswap] restarting "))
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
        // The repository's lock file: the same dependency versions as the repository, already
        // downloaded, and compiled once in the shared target directory.
        let dir = hotswap_testkit::scratch_dir(&format!("{prefix}-"));
        // Run a copy of the command (see `private_tool`).
        let tool = private_tool(&format!("{prefix}-tool-"));
        let app = format!("{prefix}_app");
        let game = format!("{prefix}_game");
        let scratch = Scratch {
            dir,
            tool,
            app,
            game,
        };
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
        hotswap_testkit::write_file(&self.path().join(relative), contents);
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).unwrap()
    }

    /// Saves `contents` to `relative` at once: written to a hidden file in the same directory
    /// (which the command ignores), then renamed over the original, so the command never sees
    /// a half-written file.
    pub fn save(&self, relative: &str, contents: &str) {
        hotswap_testkit::save_file(&self.path().join(relative), contents);
    }

    /// Saves a new version of the hot crate's `src/lib.rs`.
    pub fn save_game(&self, source: &str) {
        self.save("game/src/lib.rs", source);
    }

    /// `cargo-hotswap <args>` in the workspace, with the shared target directory and an
    /// environment cleaned of what the outer `cargo test` set that would change the build.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = cli_command(self.tool.path(), self.path(), &[]);
        command.args(args);
        command
    }

    /// Starts `cargo-hotswap <args>` here (for programs other than the default one, which
    /// [`Scratch::run`] waits for).
    pub fn start(&self, args: &[&str]) -> Cli {
        Cli::spawn(self, self.command(args))
    }

    /// Starts `command` (from [`Scratch::command`], perhaps with more environment) for the
    /// scratch app.
    pub fn start_command(&self, command: Command) -> Cli {
        Cli::spawn(self, command)
    }

    /// Starts `cargo-hotswap <args>` here for the program (binary or example) `program`.
    pub fn start_program(&self, args: &[&str], program: &str) -> Cli {
        Cli {
            process: spawn_cli(self.command(args), 100, 300),
            app_name: program.to_owned(),
        }
    }

    /// Starts `cargo-hotswap <args>` here and waits until the program runs its first step.
    pub fn run(&self, args: &[&str]) -> (Cli, Started) {
        let cli = Cli::spawn(self, self.command(args));
        let started = cli.wait_started(0, FIRST_BUILD);
        // From line 0, not from the `started` line: stdout and stderr are two pipes, and the
        // program's first line may arrive before the command's.
        cli.wait_out("the program's first step", 0, OUTPUT, |t| {
            t.starts_with("v1 counter=")
        });
        (cli, started)
    }
}

// ---------------------------------------------------------------------------------------------
// The running command
// ---------------------------------------------------------------------------------------------

/// `cargo-hotswap run` on a scratch app. Dropping it kills the programs it started (their pids
/// come from its `started` lines) and then the command, on every exit path of a test. The
/// collected output (`mark`, `wait_for`, `wait_out`, `wait_message`, `transcript`, ...) is that
/// of [`Process`].
pub struct Cli {
    process: Process,
    app_name: String,
}

hotswap_testkit::deref_to_process!(Cli, process);

/// A `started `app` (pid N)` line.
pub struct Started {
    pub seq: usize,
    pub pid: u32,
}

impl Cli {
    fn spawn(scratch: &Scratch, command: Command) -> Cli {
        Cli {
            process: spawn_cli(command, 100, 300),
            app_name: scratch.app.clone(),
        }
    }

    /// The command's private directory, `<tmp>/hotswap-<uid>/cli-<pid>`.
    pub fn private_dir(&self) -> PathBuf {
        private_base().join(format!("cli-{}", self.pid()))
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
        interrupt_and_wait(self, expected_code);
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
}

impl Drop for Cli {
    fn drop(&mut self) {
        self.print_transcript_if_asked();
        // The programs first, while the command is still their parent; one the command left
        // behind is recognised by its executable (so a pid reused meanwhile is never hit). The
        // command itself is killed when `process` drops (unless it was waited for).
        let me = self.pid();
        for pid in started_pids(&self.process, &self.app_name) {
            if is_running(pid)
                && (parent_of(pid) == Some(me) || runs_executable(pid, &self.app_name))
            {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}
