//! Helpers for `examples_e2e.rs`: a copy of one of the repository's examples in a temporary
//! directory, made a standalone package, the real `cargo hotswap run` started on it with its
//! output collected line by line, and a minimal HTTP/1.1 client for the server example.
//!
//! The copy is the example as a user would check it out: its `Cargo.toml` has every
//! workspace-inherited key (`version.workspace = true`, `hotswap.workspace = true`, ...) replaced
//! by the repository's value (`hotswap` as a path dependency, by absolute path), an empty
//! `[workspace]` table (so it is its own workspace), and the repository's `Cargo.lock` (the same
//! dependency versions, already downloaded). It builds into the shared `<repo>/target/e2e`
//! (see `support`), where the example package names are unique.
//!
//! Timeouts only bound a hang: nothing here asserts how long anything took.

#![allow(dead_code)] // each test uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::support::{self, e2e_target_dir, is_running, private_base, signal, workspace_root};

pub use crate::support::{FIRST_BUILD, OUTPUT, PATCH};

// ---------------------------------------------------------------------------------------------
// The copy of an example
// ---------------------------------------------------------------------------------------------

/// `examples/<name>` copied into a temporary directory (deleted when dropped).
pub struct Example {
    root: tempfile::TempDir,
    /// The example's directory: the root, or `examples/<name>` in a workspace of examples.
    dir: PathBuf,
    /// A private copy of `cargo-hotswap`: `cargo build` elsewhere in the repository may replace
    /// target/debug/cargo-hotswap while a test runs, and the command hands its own path to
    /// cargo (as RUSTC_WRAPPER and linker), which must stay valid for the whole test.
    tool: tempfile::TempDir,
    /// The package name (also the binary's).
    pub package: String,
}

impl Example {
    /// The example alone, as its own workspace.
    pub fn copy(name: &str) -> Example {
        let root = temp_dir(name);
        copy_example(name, root.path(), true);
        Example::new(name, root, PathBuf::new())
    }

    /// A workspace of the examples `names` (in `examples/<name>`), with the command to be run
    /// in the directory of `names[0]`.
    pub fn workspace(names: &[&str]) -> Example {
        let root = temp_dir(names[0]);
        let members: Vec<String> = names.iter().map(|n| format!("\"examples/{n}\"")).collect();
        std::fs::write(
            root.path().join("Cargo.toml"),
            format!(
                "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
                members.join(", ")
            ),
        )
        .unwrap();
        for name in names {
            copy_example(name, &root.path().join("examples").join(name), false);
        }
        Example::new(names[0], root, Path::new("examples").join(names[0]))
    }

    fn new(name: &str, root: tempfile::TempDir, dir: PathBuf) -> Example {
        let tool = tempfile::Builder::new()
            .prefix(&format!("hs-example-{name}-tool-"))
            .tempdir()
            .expect("cannot create a temporary directory");
        std::fs::copy(
            env!("CARGO_BIN_EXE_cargo-hotswap"),
            tool.path().join("cargo-hotswap"),
        )
        .expect("cannot copy cargo-hotswap");
        // The repository's lock file: the same dependency versions, already downloaded.
        let lock = workspace_root().join("Cargo.lock");
        if lock.exists() {
            std::fs::copy(&lock, root.path().join("Cargo.lock")).expect("copy Cargo.lock");
        }
        Example {
            dir: root.path().join(&dir),
            root,
            tool,
            package: name.to_owned(),
        }
    }

    /// The example's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `relative` (to the example's directory) as the command shows it: relative to the root
    /// of the workspace.
    pub fn shown(&self, relative: &str) -> String {
        let dir = self.dir.strip_prefix(self.root.path()).unwrap();
        dir.join(relative).display().to_string()
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).unwrap()
    }

    /// Saves `contents` to `relative` at once: written to a hidden file in the same directory
    /// (which the command ignores), then renamed over the original.
    pub fn save(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let temp = path.with_file_name(format!(".{name}.e2e-tmp"));
        std::fs::write(&temp, contents)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", temp.display()));
        std::fs::rename(&temp, &path)
            .unwrap_or_else(|err| panic!("cannot rename to {}: {err}", path.display()));
    }

    /// `relative` with every `from` replaced by `to`; panics if `from` is not in it (so an edit
    /// of the example that the test no longer matches fails loudly instead of doing nothing).
    pub fn edited(&self, relative: &str, edits: &[(&str, &str)]) -> String {
        let mut text = self.read(relative);
        for (from, to) in edits {
            assert!(
                text.contains(from),
                "{relative} of example `{}` no longer contains {from:?}; update the test",
                self.package
            );
            text = text.replace(from, to);
        }
        text
    }

    /// `cargo-hotswap hotswap <args>` in the copy, with the shared target directory and an
    /// environment cleaned of what the outer `cargo test` set that would change the build.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.tool.path().join("cargo-hotswap"));
        command.arg("hotswap").args(args).current_dir(self.path());
        for name in CLEANED_ENV {
            command.env_remove(name);
        }
        command
            .env("CARGO_TARGET_DIR", e2e_target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env("NO_COLOR", "1");
        command
    }

    /// Starts `cargo hotswap <args>` here and waits until it started the program.
    pub fn run(&self, args: &[&str]) -> (Session, u32) {
        let session = Session::spawn(&self.package, self.command(args));
        let pid = session.wait_started(0, FIRST_BUILD);
        (session, pid)
    }

    /// Saves `contents` as `relative` and waits for the first outcome the command reports;
    /// asserts it is `<crate>: patched <functions>` `<what>` ` (<relative>) — version <version>`.
    /// Returns the number of the first line after the save and the `patched` line.
    pub fn patch(
        &self,
        session: &Session,
        relative: &str,
        contents: &str,
        functions: &str,
        version: u64,
    ) -> (usize, Line) {
        let before = session.mark();
        self.save(relative, contents);
        let patched = format!("[hotswap] {}: patched ", self.package);
        let line = session.wait_for(&format!("`{patched}...`"), before, PATCH, |line| {
            line.stream == Stream::Err
                && (line.text.starts_with(&patched)
                    || line.text.contains("refused the patch")
                    || line.text.contains("does not compile")
                    || line.text.contains("keeps running the last good code")
                    || line.text.starts_with("[hotswap] restarting "))
        });
        let expected_start = format!("{patched}{functions}");
        let expected_end = format!(" ({}) — version {version}; build ", self.shown(relative));
        assert!(
            line.text.starts_with(&expected_start) && line.text.contains(&expected_end),
            "expected `{expected_start}...{expected_end}...`, got {:?}\n{}",
            line.text,
            session.transcript()
        );
        (before, line)
    }
}

/// What the outer `cargo test` (or a developer's shell) may have set that would change the
/// build of the copy or confuse the command.
const CLEANED_ENV: &[&str] = &[
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
    "HOTSWAP_ON_PANIC",
    "LIFE_HEADLESS",
    "PORT",
];

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("hs-example-{name}-"))
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// Copies `examples/<name>` to `to` with a standalone manifest (its own workspace if `alone`).
fn copy_example(name: &str, to: &Path, alone: bool) {
    let source = workspace_root().join("examples").join(name);
    assert!(
        source.join("Cargo.toml").is_file(),
        "no example at {}",
        source.display()
    );
    copy_tree(&source, to);
    let manifest = std::fs::read_to_string(source.join("Cargo.toml")).unwrap();
    std::fs::write(to.join("Cargo.toml"), standalone_manifest(&manifest, alone)).unwrap();
}

/// Copies `from` into `to`, leaving out build output and hidden files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text.starts_with('.') || name_text == "target" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name))
                .unwrap_or_else(|err| panic!("cannot copy {}: {err}", path.display()));
        }
    }
}

/// The example's manifest made standalone: each `key.workspace = true` of `[package]` takes the
/// value of the repository's `[workspace.package]`; each dependency with `workspace = true`
/// takes the repository's `[workspace.dependencies]` entry (a `path` made absolute), keeping
/// the example's own `features` and `optional`; `[lints] workspace = true` is dropped; and, if
/// `alone`, an empty `[workspace]` table makes the copy its own workspace.
pub fn standalone_manifest(manifest: &str, alone: bool) -> String {
    use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};
    let root = workspace_root();
    let root_manifest: DocumentMut = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .expect("the repository's Cargo.toml parses");
    let inherited = |item: &Item| {
        item.as_table_like()
            .and_then(|t| t.get("workspace"))
            .and_then(Item::as_bool)
            == Some(true)
    };
    let mut doc: DocumentMut = manifest.parse().expect("the example's Cargo.toml parses");

    if let Some(package) = doc.get_mut("package").and_then(Item::as_table_like_mut) {
        let keys: Vec<String> = package
            .iter()
            .filter(|(_, item)| inherited(item))
            .map(|(key, _)| key.to_owned())
            .collect();
        for key in keys {
            let value = root_manifest["workspace"]["package"]
                .get(&key)
                .unwrap_or_else(|| panic!("[workspace.package] has no `{key}`"))
                .clone();
            package.insert(&key, value);
        }
    }

    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(deps) = doc.get_mut(section).and_then(Item::as_table_like_mut) else {
            continue;
        };
        let names: Vec<String> = deps
            .iter()
            .filter(|(_, item)| inherited(item))
            .map(|(name, _)| name.to_owned())
            .collect();
        for name in names {
            let shared = root_manifest["workspace"]["dependencies"]
                .get(&name)
                .unwrap_or_else(|| panic!("[workspace.dependencies] has no `{name}`"));
            let mut table = InlineTable::new();
            if let Some(version) = shared.as_str() {
                table.insert("version", version.into());
            } else if let Some(shared) = shared.as_table_like() {
                for (key, value) in shared.iter() {
                    let Some(value) = value.as_value() else {
                        continue;
                    };
                    if key == "path" {
                        let path = root.join(value.as_str().expect("a path is a string"));
                        table.insert("path", path.display().to_string().into());
                    } else {
                        table.insert(key, value.clone());
                    }
                }
            }
            if let Some(own) = deps.get(&name).and_then(Item::as_table_like) {
                for (key, value) in own.iter() {
                    if key == "workspace" {
                        continue;
                    }
                    let Some(value) = value.as_value() else {
                        continue;
                    };
                    match (key, table.get_mut("features").and_then(Value::as_array_mut)) {
                        ("features", Some(features)) => {
                            for feature in value.as_array().into_iter().flatten() {
                                features.push(feature.clone());
                            }
                        }
                        _ => {
                            table.insert(key, value.clone());
                        }
                    }
                }
            }
            deps.insert(&name, Item::Value(Value::InlineTable(table)));
        }
    }

    if doc.get("lints").is_some_and(inherited) {
        doc.remove("lints");
    }
    if alone {
        doc.insert("workspace", Item::Table(Table::new()));
    }
    doc.to_string()
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

/// `cargo hotswap run` on a copy of an example. Dropping it kills the programs it started and
/// then the command, on every exit path of a test.
pub struct Session {
    child: Child,
    shared: Arc<Shared>,
    started: Instant,
    exited: Option<ExitStatus>,
    program: String,
}

impl Session {
    fn spawn(program: &str, mut command: Command) -> Session {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If this test process dies without running destructors, the command dies with it.
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
        Session {
            child,
            shared,
            started: Instant::now(),
            exited: None,
            program: program.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The number of lines so far; lines from here on are "new".
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

    /// Waits for `[hotswap] started `program` (pid N) after a ... build` and returns N.
    pub fn wait_started(&self, since: usize, timeout: Duration) -> u32 {
        let started = format!("[hotswap] started `{}` (pid ", self.program);
        // A failed build is reported at once rather than after the timeout.
        let line = self.wait_for(&format!("`{started}`"), since, timeout, |line| {
            line.stream == Stream::Err
                && (line.text.starts_with(&started)
                    || line.text.starts_with("[hotswap] the build failed")
                    || line.text.starts_with("[hotswap] error"))
        });
        assert!(
            line.text.starts_with(&started),
            "the program did not start\n{}",
            self.transcript()
        );
        line.text[started.len()..]
            .split(')')
            .next()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {:?}\n{}", line.text, self.transcript()))
    }

    /// Ends the session as a user does (Ctrl-C) and checks what that promises: the command
    /// exits with the program's exit code (`expected_code`), and the program is gone.
    pub fn interrupt_and_check(&mut self, app_pid: u32, expected_code: i32) {
        signal(self.pid(), libc::SIGINT);
        let deadline = Instant::now() + OUTPUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                break status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "cargo-hotswap did not exit within {OUTPUT:?} of Ctrl-C\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            status.code(),
            Some(expected_code),
            "cargo-hotswap should exit with the program's exit code\n{}",
            self.transcript()
        );
        assert!(
            support::wait_gone(app_pid, OUTPUT),
            "the program (pid {app_pid}) still runs after the command exited"
        );
        let private = private_base().join(format!("cli-{}", self.pid()));
        assert!(
            !private.exists(),
            "the command left {} behind",
            private.display()
        );
    }

    /// Everything collected, for failure messages (the middle of a long run is elided).
    pub fn transcript(&self) -> String {
        let collected = self.shared.collected.lock().unwrap();
        let lines = &collected.lines;
        let mut text = String::from("--- output of cargo-hotswap and the program ---\n");
        let skip_to = lines.len().saturating_sub(200);
        for (index, line) in lines.iter().enumerate() {
            // Keep the command's own messages, drop the program's chatter in the middle.
            if (60..skip_to).contains(&index) && line.stream == Stream::Out {
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

    fn app_pids(&self) -> Vec<u32> {
        let prefix = format!("[hotswap] started `{}` (pid ", self.program);
        self.texts(Stream::Err, 0)
            .into_iter()
            .filter_map(|(_, text)| text.strip_prefix(&prefix)?.split(')').next()?.parse().ok())
            .collect()
    }

    /// Whether process `pid` runs this session's program (so a reused pid is never hit).
    fn is_app(&self, pid: u32) -> bool {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .and_then(|exe| Some(exe.file_name()?.to_str()?.starts_with(&self.program)))
            .unwrap_or(false)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if std::env::var_os("HOTSWAP_E2E_TRANSCRIPT").is_some() {
            eprintln!("{}", self.transcript());
        }
        for pid in self.app_pids() {
            if is_running(pid) && self.is_app(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
// A minimal HTTP/1.1 client (127.0.0.1 only)
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 connection, kept alive across requests.
pub struct Http {
    reader: BufReader<TcpStream>,
    /// The client side's address: the same for every request of this connection.
    pub local: SocketAddr,
}

/// A response's status line, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A bound on one read or write, so a hung server fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

impl Http {
    pub fn connect(port: u16) -> std::io::Result<Http> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Http {
            local: stream.local_addr()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `GET path` and reads the status line and headers; the body is read by
    /// [`Http::body`] (whole) or [`Http::chunks`] (as it arrives).
    pub fn send(&mut self, path: &str) -> std::io::Result<Response> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: e2e\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes())?;
        let status_line = self.line()?;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Response {
            status,
            headers,
            body: String::new(),
        })
    }

    /// `GET path` with the whole body.
    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        let mut response = self.send(path)?;
        let mut body = Vec::new();
        self.chunks(&response, |chunk| body.extend_from_slice(chunk))?;
        response.body = String::from_utf8_lossy(&body).into_owned();
        Ok(response)
    }

    /// Reads the body of `response` (`Content-Length` or chunked), handing each piece to
    /// `each` as it arrives.
    pub fn chunks(
        &mut self,
        response: &Response,
        mut each: impl FnMut(&[u8]),
    ) -> std::io::Result<()> {
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if !chunked {
            let length: usize = response
                .header("content-length")
                .ok_or_else(|| invalid("neither a length nor chunked".into()))?
                .parse()
                .map_err(|_| invalid("bad content-length".into()))?;
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            each(&body);
            return Ok(());
        }
        loop {
            let size_line = self.line()?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers (none expected), then the empty line.
                while !self.line()?.is_empty() {}
                return Ok(());
            }
            let mut chunk = vec![0; size];
            self.reader.read_exact(&mut chunk)?;
            each(&chunk);
            let end = self.line()?;
            if !end.is_empty() {
                return Err(invalid(format!("no CRLF after a chunk: {end:?}")));
            }
        }
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// The path of a binary of the shared end-to-end target directory's `profile`.
pub fn e2e_binary(profile: &str, name: &str) -> PathBuf {
    e2e_target_dir().join(profile).join(name)
}
