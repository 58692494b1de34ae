//! Support code shared by the end-to-end tests of `hotswap` and `cargo-hotswap` (and the soak
//! example): where the repository and the shared target directory are, scratch workspaces in
//! temporary directories, cargo with a clean environment, one end-to-end test at a time across
//! processes, child processes whose output is collected line by line, waiting for a line (with
//! timeouts that only bound a hang: nothing here asserts how long anything took), and the
//! process and private-directory helpers.
//!
//! Every build of a scratch program goes to `<repository>/target/e2e`, so the dependencies
//! (hotswap, log, ...) compile once for all such tests. Scratch crates sharing that directory
//! must have names unique to their test.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The repository
// ---------------------------------------------------------------------------------------------

/// The repository root (the workspace containing `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The `hotswap` crate, for the scratch workspaces' path dependencies.
pub fn hotswap_dir() -> PathBuf {
    workspace_root().join("crates").join("hotswap")
}

/// The target directory shared by every end-to-end build.
pub fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target").join("e2e")
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

// ---------------------------------------------------------------------------------------------
// Scratch workspaces and files
// ---------------------------------------------------------------------------------------------

/// A temporary directory named `<prefix>...`, deleted when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// Copies the repository's `Cargo.lock` into `dir`, so a scratch workspace there resolves to the
/// same dependency versions as the repository (already downloaded, and compiled once in the
/// shared target directory; the host and a patch library must agree on `log` and `tracing`).
pub fn copy_lock_file(dir: &Path) {
    let lock = workspace_root().join("Cargo.lock");
    if lock.exists() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).expect("cannot copy Cargo.lock");
    }
}

/// A temporary directory named `<prefix>...` holding the repository's `Cargo.lock`.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let dir = temp_dir(prefix);
    copy_lock_file(dir.path());
    dir
}

/// Writes `contents` to `path` (creating directories), replacing any previous file, as a plain
/// (non-atomic) write.
pub fn write_file(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", parent.display()));
    }
    std::fs::write(path, contents)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

/// Saves `contents` to `path` at once: written to a hidden file in the same directory (which
/// `cargo hotswap run` ignores), then renamed over the original, so a watcher never sees a
/// half-written file.
pub fn save_file(path: &Path, contents: &str) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let temp = path.with_file_name(format!(".{name}.e2e-tmp"));
    std::fs::write(&temp, contents)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", temp.display()));
    std::fs::rename(&temp, path)
        .unwrap_or_else(|err| panic!("cannot rename to {}: {err}", path.display()));
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

// ---------------------------------------------------------------------------------------------
// Cargo
// ---------------------------------------------------------------------------------------------

/// What the outer `cargo test` (or a developer's shell) may have set that would change a build
/// of a scratch workspace or confuse the program built: removed from every command run on one.
pub const BUILD_ENV: &[&str] = &[
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
];

/// The outer cargo's jobserver.
pub const JOBSERVER_ENV: &[&str] = &["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];

/// Removes each of `names` from `command`'s environment.
pub fn remove_env(command: &mut Command, names: &[&str]) {
    for name in names {
        command.env_remove(name);
    }
}

/// A `cargo` command run in `dir` with the shared target directory and an environment cleaned of
/// [`BUILD_ENV`].
pub fn cargo(dir: &Path) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    command.current_dir(dir);
    remove_env(&mut command, BUILD_ENV);
    command
        .env("CARGO_TARGET_DIR", e2e_target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never");
    command
}

// ---------------------------------------------------------------------------------------------
// One test at a time
// ---------------------------------------------------------------------------------------------

/// Held while a test runs: the tests share one target directory (and their scratch crates'
/// names, so two runs of them must not overlap) and a loaded 2-core machine; one at a time, a
/// build never waits for another test's build lock.
pub struct Serial {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// Waits until no other test, of this process or of another run of the tests (or the soak's
/// build), holds the lock `<shared target directory>/cargo-hotswap-e2e.lock`.
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
// Processes and private directories
// ---------------------------------------------------------------------------------------------

pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// `<tmp>/hotswap-<uid>`: where the command and the programs keep their private directories.
pub fn private_base() -> PathBuf {
    std::env::temp_dir().join(format!("hotswap-{}", uid()))
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

/// The parent of process `pid`, if it runs.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether process `pid` runs an executable whose name starts with `name` (so a pid reused by
/// another program is never hit).
pub fn runs_executable(pid: u32, name: &str) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|exe| Some(exe.file_name()?.to_str()?.starts_with(name)))
        .unwrap_or(false)
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: sending a signal has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

// ---------------------------------------------------------------------------------------------
// A child process with its output collected
// ---------------------------------------------------------------------------------------------

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout (under `cargo hotswap run`, the program's, passed through).
    Out,
    /// The child's stderr (under `cargo hotswap run`, the command's messages and the program's
    /// stderr).
    Err,
}

/// One line a child printed, numbered in the order the reader threads received them. Lines of
/// one stream keep their order; between the two streams there is no order at all (two pipes,
/// two reader threads): never pass the `seq` of a line of one stream as `since` when waiting
/// for a line of the other. Wait from a [`Process::mark`] taken before the action instead, or
/// find the line by a fact it carries (a pid, a version, a counter) — e.g. a restarted
/// program's `host pid=N` line, with N from the command's `started` line, from the mark
/// before the save.
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

/// How a child is started by [`Process::spawn`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Pipe stdin (see [`Process::send_stdin`]); otherwise it is `/dev/null`.
    pub stdin: bool,
    /// If the test process dies without running destructors, the child dies with it
    /// (`PR_SET_PDEATHSIG`).
    pub die_with_test: bool,
}

/// How [`Process::transcript`] shortens a long output: the first `head` and the last `tail`
/// lines are always kept.
#[derive(Clone, Copy, Debug)]
pub struct Transcript {
    pub head: usize,
    pub tail: usize,
    /// In the middle, keep the stderr lines (a command's own messages) and drop only stdout (a
    /// program's chatter); otherwise drop every line there, leaving a `[... N lines ...]` mark.
    pub keep_stderr: bool,
    /// Start each line with its number.
    pub numbered: bool,
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

/// A running child process with its stdout and stderr collected by reader threads. Dropping it
/// kills the child (unless it was already waited for), on every exit path of a test (including
/// a failed assertion).
pub struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    started: Instant,
    header: String,
    style: Transcript,
}

impl Process {
    /// Spawns `command` with piped output. `name` is used in failure messages; the transcript
    /// starts with `--- {header} ---` and is shortened as `style` says.
    pub fn spawn(
        name: &str,
        mut command: Command,
        options: Options,
        header: &str,
        style: Transcript,
    ) -> Process {
        command
            .stdin(if options.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if options.die_with_test {
            // SAFETY: prctl is async-signal-safe and touches no memory of ours.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        let shared = Arc::new(Shared::default());
        shared.collected.lock().unwrap().open = 2;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        read_lines(Arc::clone(&shared), Stream::Out, stdout);
        read_lines(Arc::clone(&shared), Stream::Err, stderr);
        let stdin = child.stdin.take();
        Process {
            name: name.to_owned(),
            child,
            stdin,
            shared,
            started: Instant::now(),
            header: header.to_owned(),
            style,
        }
    }

    /// The name used in failure messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.shared.collected.lock().unwrap().lines.clone()
    }

    /// The number of lines received so far: pass it to [`Process::wait_for`] to look only at
    /// lines that arrive after this point.
    pub fn mark(&self) -> usize {
        self.shared.collected.lock().unwrap().lines.len()
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

    /// Waits for a line of stdout whose text `matches`.
    pub fn wait_out(
        &self,
        what: &str,
        since: usize,
        timeout: Duration,
        mut matches: impl FnMut(&str) -> bool,
    ) -> Line {
        self.wait_for(what, since, timeout, |line| {
            line.is_out() && matches(&line.text)
        })
    }

    /// Waits for a hotswap message on stderr (`[hotswap] ` is added to `prefix`).
    pub fn wait_message(&self, prefix: &str, since: usize, timeout: Duration) -> Line {
        let prefix = format!("[hotswap] {prefix}");
        self.wait_for(&format!("`{prefix}`"), since, timeout, |line| {
            line.is_err() && line.text.starts_with(&prefix)
        })
    }

    /// Writes `text` to the child's stdin (see [`Options::stdin`]).
    pub fn send_stdin(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the child's stdin (it reads end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the child is still running.
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

    /// Everything the child printed, with times relative to its start, for failure messages
    /// (the middle of a long output is elided, see [`Transcript`]).
    pub fn transcript(&self) -> String {
        let Transcript {
            head,
            tail,
            keep_stderr,
            numbered,
        } = self.style;
        let collected = self.shared.collected.lock().unwrap();
        let lines = &collected.lines;
        let mut text = format!("--- {} ---\n", self.header);
        let skip_to = lines.len().saturating_sub(tail);
        for (index, line) in lines.iter().enumerate() {
            if (head..skip_to).contains(&index) {
                if keep_stderr {
                    if line.is_out() {
                        continue;
                    }
                } else {
                    if index == head {
                        text.push_str(&format!("[... {} lines ...]\n", skip_to - head));
                    }
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
            if numbered {
                text.push_str(&format!("{index:5} "));
            }
            text.push_str(&format!("{at:8.3}s {stream}| {}\n", line.text));
        }
        text.push_str("--- end ---");
        text
    }

    /// Prints the transcript if `HOTSWAP_E2E_TRANSCRIPT` is set (to see a passing run's output).
    pub fn print_transcript_if_asked(&self) {
        if std::env::var_os("HOTSWAP_E2E_TRANSCRIPT").is_some() {
            eprintln!("{}", self.transcript());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Both do nothing if the child was already waited for (its pid may be reused by now).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the wrapper type `$wrapper` (with a [`Process`] in its field `$field`) dereference to
/// that process, so the wrapper adds its own methods (and `Drop`) to the collected output.
#[macro_export]
macro_rules! deref_to_process {
    ($wrapper:ty, $field:ident) => {
        impl ::std::ops::Deref for $wrapper {
            type Target = $crate::Process;
            fn deref(&self) -> &$crate::Process {
                &self.$field
            }
        }

        impl ::std::ops::DerefMut for $wrapper {
            fn deref_mut(&mut self) -> &mut $crate::Process {
                &mut self.$field
            }
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    const STYLE: Transcript = Transcript {
        head: 2,
        tail: 2,
        keep_stderr: false,
        numbered: true,
    };

    #[test]
    fn collects_both_streams_and_waits_for_a_line() {
        let process = Process::spawn(
            "sh",
            sh("echo one; echo two >&2; echo three"),
            Options::default(),
            "output of sh",
            STYLE,
        );
        let three = process.wait_out("three", 0, Duration::from_secs(30), |t| t == "three");
        assert_eq!(three.stream, Stream::Out);
        let two = process.wait_for("two", 0, Duration::from_secs(30), |l| l.is_err());
        assert_eq!(two.text, "two");
        assert_eq!(process.texts(Stream::Out, 0).len(), 2);
    }

    #[test]
    #[should_panic(expected = "waited for `never` from sh since line 0, but its output closed")]
    fn a_closed_output_fails_the_wait_at_once() {
        let process = Process::spawn("sh", sh("echo done"), Options::default(), "sh", STYLE);
        process.wait_for("`never`", 0, Duration::from_secs(60), |_| false);
    }

    #[test]
    fn stdin_and_exit() {
        let mut process = Process::spawn(
            "cat",
            Command::new("cat"),
            Options {
                stdin: true,
                die_with_test: true,
            },
            "cat",
            STYLE,
        );
        process.send_stdin("hello\n");
        process.wait_out("hello", 0, Duration::from_secs(30), |t| t == "hello");
        process.close_stdin();
        assert!(process.wait_exit(Duration::from_secs(30)).success());
        assert!(!process.is_running());
    }

    #[test]
    fn long_transcripts_are_shortened() {
        let process = Process::spawn(
            "seq",
            sh("seq 1 10"),
            Options::default(),
            "output of seq",
            STYLE,
        );
        process.wait_out("10", 0, Duration::from_secs(30), |t| t == "10");
        let transcript = process.transcript();
        assert!(
            transcript.starts_with("--- output of seq ---\n"),
            "{transcript}"
        );
        assert!(transcript.contains("[... 6 lines ...]"), "{transcript}");
        assert!(transcript.contains("s out| 10\n"), "{transcript}");
        assert!(!transcript.contains("| 5\n"), "{transcript}");
    }

    #[test]
    fn scratch_dirs_have_the_lock_file() {
        let dir = scratch_dir("testkit-");
        assert!(dir.path().join("Cargo.lock").is_file());
        write_file(&dir.path().join("a/b.txt"), "one");
        save_file(&dir.path().join("a/b.txt"), "two");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b.txt")).unwrap(),
            "two"
        );
        assert_eq!(files_in(&dir.path().join("a")), vec!["b.txt".to_owned()]);
    }
}
