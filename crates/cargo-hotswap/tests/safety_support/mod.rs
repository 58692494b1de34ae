//! Helpers for the safety tests in which the test itself plays `cargo hotswap run`: a scratch
//! workspace with a hot-mode program and its hot crate, thin patches built and linked the way the
//! command builds them, the program started with its output collected line by line, and the
//! control channel (a Unix socket in a private directory) driven by hand.
//!
//! Also used by the soak command (`examples/soak.rs`, through `#[path]`), so nothing here needs
//! the `cargo-hotswap` binary: the program is built with plain cargo.
//!
//! How the program is built without the command: the hot crate depends on `hotswap` with its
//! `hot` feature (hot mode, as `--cfg hotswap` gives under the command), the program's build
//! script links it with `--export-dynamic` (so a patch's undefined symbols resolve against it),
//! and `HOTSWAP_BUILD_TOKEN` is set for the build (the command sets a random one per session). A
//! patch is the hot crate's rlib, rebuilt by cargo after an edit (same flags, so the same symbol
//! names), linked alone into a shared object with `cc -shared -Wl,-Bsymbolic-functions` and the
//! command's version script, as `cargo hotswap run` links it.
//!
//! Timeouts only bound a hang: nothing asserts how long anything took.

#![allow(dead_code)] // each user (test file, soak) uses a different part

pub mod swaps;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hotswap::protocol::{ToApp, ToCli};

/// A build of a scratch workspace (the first one compiles `hotswap` and its dependencies).
pub const BUILD: Duration = Duration::from_secs(900);
/// Output of a running program.
pub const OUTPUT: Duration = Duration::from_secs(60);
/// The program's answer to a patch message.
pub const ANSWER: Duration = Duration::from_secs(120);

/// The repository root.
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The `hotswap` crate, for the scratch workspace's path dependencies.
pub fn hotswap_dir() -> PathBuf {
    workspace_root().join("crates").join("hotswap")
}

/// The target directory shared by every end-to-end build.
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
}

/// `<tmp>/hotswap-<uid>`: where programs keep their private (staging) directories.
pub fn private_base() -> PathBuf {
    std::env::temp_dir().join(format!("hotswap-{}", uid()))
}

pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
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

/// A fresh token, as `cargo hotswap run` makes one per session.
pub fn token(salt: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{salt}-{:x}-{:x}", std::process::id(), nanos as u64)
}

// ---------------------------------------------------------------------------------------------
// One test at a time
// ---------------------------------------------------------------------------------------------

/// Held while a test (or the soak's build) runs. The same lock file as `tests/support`, so these
/// tests never build or run at the same time as the other end-to-end tests of this crate, from
/// this process or another.
pub struct Serial {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

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

// ---------------------------------------------------------------------------------------------
// The scratch workspace
// ---------------------------------------------------------------------------------------------

/// `cargo` in `dir`, with the shared target directory and an environment cleaned of what the
/// outer `cargo test` (or the developer's shell) set that would change the build.
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
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WRAPPER",
        "HOTSWAP_ROLE",
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

/// The version script `cargo hotswap run` links every patch with (`src/patch.rs`, keep the two
/// in step): the manifest and the slots stay local to the patch, so the loader cannot bind the
/// patch's registrations to the program's entries of the same names.
const VERSION_SCRIPT: &str =
    "{\n  local: *__hotswap_entry_v1_*; *__HOTSWAP_STATE_*; *__hotswap_slot_*;\n};\n";

/// Links `rlib` alone into the shared object `out`, as `cargo hotswap run` links a thin patch:
/// its other symbols stay undefined and resolve against the running program; calls between its
/// own functions bind inside it; its manifest stays local.
pub fn link_patch(rlib: &Path, out: &Path) {
    let script = out.with_extension("ver");
    std::fs::write(&script, VERSION_SCRIPT).unwrap();
    link(
        rlib,
        out,
        &[&format!("-Wl,--version-script={}", script.display())],
    );
    std::fs::remove_file(&script).unwrap();
}

/// Links `rlib` as [`link_patch`] does but without the version script: a patch whose manifest
/// symbols are global (as a hand-made or another tool's link would leave them).
pub fn link_patch_with_global_manifest(rlib: &Path, out: &Path) {
    link(rlib, out, &[]);
}

fn link(rlib: &Path, out: &Path, extra: &[&str]) {
    let output = Command::new("cc")
        .arg("-shared")
        .arg("-Wl,-Bsymbolic-functions")
        .arg("-Wl,-z,noexecstack")
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg("-Wl,--whole-archive")
        .arg(rlib)
        .arg("-Wl,--no-whole-archive")
        .output()
        .expect("cannot run cc");
    assert!(
        output.status.success(),
        "linking {} failed:\n{}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A shared object with no hotswap manifest (a plain C library).
pub fn build_plain_c_library(dir: &Path) -> PathBuf {
    let source = dir.join("plain.c");
    std::fs::write(&source, "int plain_function(void) { return 42; }\n").unwrap();
    let out = dir.join("libplain.so");
    let output = Command::new("cc")
        .arg("-shared")
        .arg("-fPIC")
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .output()
        .expect("cannot run cc");
    assert!(
        output.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A scratch workspace in a temporary directory (deleted when dropped):
/// - `app/` (package `<prefix>_app`): the program, linked with `--export-dynamic`;
/// - `game/` (package `<prefix>_game`): the hot crate, `hotswap` in hot mode;
/// - `other/` (package `<prefix>_other`): a `cdylib` with `#[hot]` functions of its own, i.e. a
///   library built for another program.
pub struct HotWorkspace {
    dir: tempfile::TempDir,
    pub app: String,
    pub game: String,
    pub other: String,
    release: bool,
}

/// What cargo says it built.
#[derive(serde::Deserialize)]
struct Artifact {
    reason: String,
    #[serde(default)]
    target: Option<ArtifactTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct ArtifactTarget {
    name: String,
}

impl HotWorkspace {
    /// `main_rs` is the program (`GAME` in it is replaced by the hot crate's name), `game_rs` the
    /// first version of the hot crate. `release` builds everything with `--release`.
    pub fn new(prefix: &str, main_rs: &str, game_rs: &str, release: bool) -> HotWorkspace {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        let ws = HotWorkspace {
            dir,
            app: format!("{prefix}_app"),
            game: format!("{prefix}_game"),
            other: format!("{prefix}_other"),
            release,
        };
        // The repository's lock file: the same dependency versions, already downloaded, and
        // compiled once in the shared target directory.
        let lock = workspace_root().join("Cargo.lock");
        if lock.exists() {
            std::fs::copy(&lock, ws.path().join("Cargo.lock")).expect("copy Cargo.lock");
        }
        let hotswap = format!(
            "hotswap = {{ path = {:?}, features = [\"hot\"] }}",
            hotswap_dir().display().to_string()
        );
        ws.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"app\", \"game\", \"other\"]\n",
        );
        let package = |name: &str| {
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 publish = false\n"
            )
        };
        ws.write(
            "app/Cargo.toml",
            &format!(
                "{}build = \"build.rs\"\n\n[dependencies]\n{} = {{ path = \"../game\" }}\n{hotswap}\n",
                package(&ws.app),
                ws.game
            ),
        );
        // What `cargo hotswap run`'s linker adds that thin patches need: every symbol of the
        // program exported, so a patch's undefined symbols resolve against it.
        ws.write(
            "app/build.rs",
            "fn main() {\n    println!(\"cargo:rustc-link-arg-bins=-Wl,--export-dynamic\");\n}\n",
        );
        ws.write("app/src/main.rs", &main_rs.replace("GAME", &ws.game));
        ws.write(
            "game/Cargo.toml",
            &format!("{}\n[dependencies]\n{hotswap}\n", package(&ws.game)),
        );
        ws.write("game/src/lib.rs", game_rs);
        ws.write(
            "other/Cargo.toml",
            &format!(
                "{}\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n{hotswap}\n",
                package(&ws.other)
            ),
        );
        ws.write(
            "other/src/lib.rs",
            "#[hotswap::hot]\npub fn step(n: u64) -> String {\n    format!(\"other step={n}\")\n}\n",
        );
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }

    /// `cargo build -p <package>` with `HOTSWAP_BUILD_TOKEN=<token>`; the artifacts of
    /// `target` (its files, and its executable if any).
    fn build(&self, package: &str, target: &str, token: &str) -> (Vec<PathBuf>, Option<PathBuf>) {
        let mut command = cargo(self.path());
        command
            .args(["build", "--message-format=json", "-p", package])
            .env("HOTSWAP_BUILD_TOKEN", token)
            .stdin(Stdio::null());
        if self.release {
            command.arg("--release");
        }
        let output = command.output().expect("cannot run cargo");
        assert!(
            output.status.success(),
            "cargo build -p {package} failed in {}:\n{}",
            self.path().display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        for line in stdout.lines() {
            let Ok(artifact) = serde_json::from_str::<Artifact>(line) else {
                continue;
            };
            if artifact.reason == "compiler-artifact"
                && artifact.target.as_ref().is_some_and(|t| t.name == target)
            {
                return (artifact.filenames, artifact.executable);
            }
        }
        panic!("cargo built no `{target}`:\n{stdout}");
    }

    /// Builds the program (with the hot crate as it is now) carrying build token `token`;
    /// returns its executable.
    pub fn build_host(&self, token: &str) -> PathBuf {
        let (_, executable) = self.build(&self.app, &self.app, token);
        executable.expect("the program has no executable")
    }

    /// Saves `source` as the hot crate, rebuilds it with build token `token`, and links it into
    /// the thin patch `out`. Returns the rlib (valid until the next build of the hot crate).
    pub fn build_patch(&self, source: &str, token: &str, out: &Path) -> PathBuf {
        self.write("game/src/lib.rs", source);
        let (files, _) = self.build(&self.game, &self.game, token);
        let rlib = files
            .into_iter()
            .find(|f| f.extension().is_some_and(|e| e == "rlib"))
            .expect("the hot crate's build made no rlib");
        link_patch(&rlib, out);
        rlib
    }

    /// Builds the `other` crate: a complete `cdylib` with `#[hot]` functions that no program
    /// built from this workspace has.
    pub fn build_other(&self, token: &str, out: &Path) {
        let (files, _) = self.build(&self.other, &self.other, token);
        let so = files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "so"))
            .unwrap_or_else(|| panic!("no shared object among {files:?}"));
        std::fs::copy(so, out).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// A running program
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

#[derive(Clone, Debug)]
pub struct Line {
    pub seq: usize,
    pub stream: Stream,
    pub at: Instant,
    pub text: String,
}

impl Line {
    pub fn is_out(&self) -> bool {
        self.stream == Stream::Out
    }
    pub fn is_err(&self) -> bool {
        self.stream == Stream::Err
    }
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

/// A child process with its stdout and stderr collected by reader threads. Dropping it kills
/// the child.
pub struct Running {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    started: Instant,
}

impl Running {
    /// Starts `executable` as a hot-mode program: `control` in `HOTSWAP_CONTROL` (unless
    /// `None`), the runtime's messages on stderr (`HOTSWAP_LOG=1`), stdin piped.
    pub fn host(executable: &Path, control: Option<&Path>, envs: &[(&str, &str)]) -> Running {
        let mut command = Command::new(executable);
        for name in [
            "HOTSWAP_BUILD_TOKEN",
            "HOTSWAP_CONTROL",
            "HOTSWAP_LIB_DIR",
            "HOTSWAP_ON_PANIC",
        ] {
            command.env_remove(name);
        }
        command.env("HOTSWAP_LOG", "1");
        if let Some(socket) = control {
            command.env(hotswap::protocol::CONTROL_ENV, socket);
        }
        for (name, value) in envs {
            command.env(name, value);
        }
        Running::spawn(
            executable
                .file_name()
                .map_or("the program".into(), |n| n.to_string_lossy().into_owned()),
            command,
        )
    }

    pub fn spawn(name: String, mut command: Command) -> Running {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If this process dies without running destructors, the child dies with it.
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
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
        let stdin = child.stdin.take();
        Running {
            name,
            child,
            stdin,
            shared,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The number of lines so far; lines from here on are "new".
    pub fn mark(&self) -> usize {
        self.shared.collected.lock().unwrap().lines.len()
    }

    pub fn lines(&self) -> Vec<Line> {
        self.shared.collected.lock().unwrap().lines.clone()
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
                    "its output closed".to_owned()
                } else {
                    format!("{timeout:?} passed")
                };
                drop(collected);
                panic!(
                    "waited for {what} from {} since line {since}, but {why}\n{}",
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

    /// Waits for a line of stdout starting with `prefix`.
    pub fn wait_out(&self, prefix: &str, since: usize) -> Line {
        self.wait_for(&format!("`{prefix}...` on stdout"), since, OUTPUT, |line| {
            line.is_out() && line.text.starts_with(prefix)
        })
    }

    /// Waits for a line of stderr containing `text`.
    pub fn wait_err(&self, text: &str, since: usize) -> Line {
        self.wait_for(
            &format!("`...{text}...` on stderr"),
            since,
            OUTPUT,
            |line| line.is_err() && line.text.contains(text),
        )
    }

    /// Writes `text` to the child's stdin.
    pub fn send_stdin(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the child's stdin (it reads end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the child still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the child to exit; panics with the transcript after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not exit within {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything collected, for failure messages (the middle of a long run is elided).
    pub fn transcript(&self) -> String {
        let collected = self.shared.collected.lock().unwrap();
        let lines = &collected.lines;
        let mut text = format!("--- output of {} ---\n", self.name);
        let skip_to = lines.len().saturating_sub(300);
        for (index, line) in lines.iter().enumerate() {
            if (100..skip_to).contains(&index) {
                if index == 100 {
                    text.push_str(&format!("[... {} lines ...]\n", skip_to - 100));
                }
                continue;
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
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::env::var_os("HOTSWAP_E2E_TRANSCRIPT").is_some() {
            eprintln!("{}", self.transcript());
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

// ---------------------------------------------------------------------------------------------
// The control channel, the command's end of it
// ---------------------------------------------------------------------------------------------

/// A listening control socket in a private directory of its own (mode 0700), as
/// `cargo hotswap run` makes one. Deleted when dropped.
pub struct Control {
    dir: tempfile::TempDir,
    pub socket: PathBuf,
    listener: UnixListener,
}

impl Control {
    pub fn new(prefix: &str) -> Control {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-control-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.path().join("control.sock");
        let listener = UnixListener::bind(&socket)
            .unwrap_or_else(|err| panic!("cannot listen on {}: {err}", socket.display()));
        listener.set_nonblocking(true).unwrap();
        Control {
            dir,
            socket,
            listener,
        }
    }

    /// The directory the socket is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection waiting to be accepted, if any.
    pub fn try_accept(&self) -> Option<UnixStream> {
        match self.listener.accept() {
            Ok((stream, _)) => Some(stream),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(err) => panic!("accept: {err}"),
        }
    }

    /// Waits for `host` to connect and say hello; checks the hello comes from its pid.
    pub fn accept(&self, host: &mut Running) -> Channel {
        let deadline = Instant::now() + OUTPUT;
        loop {
            if let Some(stream) = self.try_accept() {
                let mut channel = Channel::new(stream);
                match channel.read() {
                    ToCli::Hello { pid, version } => {
                        assert_eq!(pid, host.pid(), "hello from another process");
                        assert_eq!(version, 0, "a fresh program is at version 0");
                    }
                    other => panic!("the first message was not a hello: {other:?}"),
                }
                return channel;
            }
            assert!(
                host.is_running() && Instant::now() < deadline,
                "the program did not connect to the control socket\n{}",
                host.transcript()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One program's connection.
pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    fn new(stream: UnixStream) -> Channel {
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(ANSWER)).unwrap();
        let writer = stream.try_clone().unwrap();
        Channel {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// The program's next message; panics if none comes.
    pub fn read(&mut self) -> ToCli {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the program closed the control channel"),
            Ok(_) => serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("the program sent {line:?}: {err}")),
            Err(err) => panic!("no message from the program within {ANSWER:?}: {err}"),
        }
    }

    /// Sends `bytes` as one line.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the program");
        if !bytes.ends_with(b"\n") {
            self.writer.write_all(b"\n").expect("write to the program");
        }
    }

    pub fn send_patch(&mut self, id: u64, path: &Path) {
        let mut line = serde_json::to_vec(&ToApp::Patch {
            id,
            path: path.display().to_string(),
        })
        .unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// Sends a patch message and returns the answer to it.
    pub fn patch(&mut self, id: u64, path: &Path) -> ToCli {
        self.send_patch(id, path);
        self.read()
    }
}

/// Resident and mapped memory of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kb: u64,
    pub size_kb: u64,
    pub mappings: u64,
    /// Files deleted from disk that the process still maps (their space is freed only when
    /// it exits).
    pub deleted_files: u64,
}

pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut deleted: Vec<&str> = maps
        .lines()
        .filter(|line| line.ends_with(" (deleted)"))
        .filter_map(|line| line.split_whitespace().nth(4))
        .collect();
    deleted.sort_unstable();
    deleted.dedup();
    Memory {
        rss_kb: field("VmRSS:"),
        size_kb: field("VmSize:"),
        mappings: maps.lines().count() as u64,
        deleted_files: deleted.len() as u64,
    }
}
