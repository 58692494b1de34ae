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

#![allow(dead_code, unused_imports)] // each test uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hotswap_testkit::{runs_executable, Process};

use crate::support::{
    self, cli_command, e2e_target_dir, is_running, private_base, private_tool, signal,
    started_pids, workspace_root,
};

pub use crate::support::{Line, Stream};

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
        let tool = private_tool(&format!("hs-example-{name}-tool-"));
        // The repository's lock file: the same dependency versions, already downloaded.
        hotswap_testkit::copy_lock_file(root.path());
        let package = package_name(&root.path().join(&dir).join("Cargo.toml"));
        Example {
            dir: root.path().join(&dir),
            root,
            tool,
            package,
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
        hotswap_testkit::save_file(&self.path().join(relative), contents);
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
        let mut command = cli_command(self.tool.path(), self.path(), EXAMPLE_ENV);
        command.arg("hotswap").args(args);
        command
    }

    /// Starts `cargo hotswap <args>` here and waits until it started the program.
    pub fn run(&self, args: &[&str]) -> (Session, u32) {
        self.run_command(self.command(args), FIRST_BUILD)
    }

    /// Starts `command` (made by [`Example::command`], with more settings) and waits until it
    /// started the program, at most `first_build` (a bound on a hang, not a measure).
    pub fn run_command(&self, command: Command, first_build: Duration) -> (Session, u32) {
        let session = Session::spawn(&self.package, command);
        let pid = session.wait_started(0, first_build);
        (session, pid)
    }

    /// Starts `command` (`cargo hotswap run --lib … -- <host>`) and waits until it started the
    /// host, which it names as `host` (the command after `--`); returns the host's pid.
    pub fn run_host(&self, command: Command, host: &str, first_build: Duration) -> (Session, u32) {
        let session = Session::spawn(host, command);
        let pid = session.wait_started(0, first_build);
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
            support::is_save_outcome(line, &patched)
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
/// build of the copy or confuse the command, besides what [`cli_command`] cleans: the examples'
/// own settings.
const EXAMPLE_ENV: &[&str] = &[
    "HOTSWAP_ON_PANIC",
    "LIFE_HEADLESS",
    "PORT",
    "EGUI_APP_TEXT",
    "EGUI_APP_REPORT_EVERY",
    "EGUI_APP_FRAMES",
];

/// The `[package] name` of the manifest at `path` (the example's directory name may differ:
/// `examples/egui` is the package `egui-app`).
fn package_name(path: &Path) -> String {
    let manifest: toml_edit::DocumentMut = std::fs::read_to_string(path)
        .unwrap()
        .parse()
        .expect("the example's Cargo.toml parses");
    manifest["package"]["name"]
        .as_str()
        .expect("the example's package has a name")
        .to_owned()
}

fn temp_dir(name: &str) -> tempfile::TempDir {
    hotswap_testkit::temp_dir(&format!("hs-example-{name}-"))
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

/// `cargo hotswap run` on a copy of an example. Dropping it kills the programs it started and
/// then the command, on every exit path of a test. The collected output (`mark`, `wait_for`,
/// `wait_out`, `wait_message`, `texts`, `transcript`, ...) is that of [`Process`].
pub struct Session {
    process: Process,
    program: String,
}

hotswap_testkit::deref_to_process!(Session, process);

impl Session {
    fn spawn(program: &str, command: Command) -> Session {
        Session {
            process: support::spawn_cli(command, 60, 200),
            program: program.to_owned(),
        }
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
        support::interrupt_and_wait(self, expected_code);
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
}

impl Drop for Session {
    fn drop(&mut self) {
        self.print_transcript_if_asked();
        // Only a process that runs this session's program (so a reused pid is never hit); the
        // command itself is killed when `process` drops (unless it was waited for).
        for pid in started_pids(&self.process, &self.program) {
            if is_running(pid) && runs_executable(pid, &self.program) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
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

// ---------------------------------------------------------------------------------------------
// A virtual X display (the egui example)
// ---------------------------------------------------------------------------------------------

/// The width and height of the [`Xvfb`] screen, in pixels.
pub const SCREEN: (usize, usize) = (800, 600);

/// An `Xvfb` server on a display number it picked itself (`-displayfd`: no race with another
/// server), killed when dropped (on every exit path of a test, panics too).
pub struct Xvfb {
    child: std::process::Child,
    /// `:N`, for `DISPLAY`.
    pub display: String,
}

impl Xvfb {
    /// Starts the server and waits until it is ready (it writes the display number once it
    /// accepts clients). Panics, naming the package, if `Xvfb` is not installed: the tests that
    /// need it must not pass without it (.ci/run installs it).
    pub fn start() -> Xvfb {
        let screen = format!("{}x{}x24", SCREEN.0, SCREEN.1);
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &screen,
                "-nolisten",
                "tcp",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start Xvfb ({err}): install it (apt-get install xvfb)")
            });
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let number = line.trim();
        if read.is_err() || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            let _ = child.kill();
            let status = child.wait();
            panic!("Xvfb did not report a display ({read:?}, {line:?}, {status:?})");
        }
        Xvfb {
            display: format!(":{number}"),
            child,
        }
    }

    /// Runs `program args` on this display to its end (bounded: a hang fails the test) and
    /// returns its stdout.
    pub fn tool(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {program} ({err}): install it (apt-get install imagemagick)")
            });
        let mut out = Vec::new();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let deadline = std::time::Instant::now() + PATCH;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} {args:?} did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = reader.join().unwrap();
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        assert!(status.success(), "{program} {args:?}: {status}: {err}");
        out
    }

    /// A screenshot of the whole screen (`import -window root`; never `import -window NAME`,
    /// which grabs the server), as RGB pixels row by row.
    pub fn screenshot(&self) -> Vec<[u8; 3]> {
        let raw = self.tool("import", &["-window", "root", "-depth", "8", "rgb:-"]);
        assert_eq!(raw.len(), SCREEN.0 * SCREEN.1 * 3, "not an RGB screen");
        raw.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
