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

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotswap::protocol::{ToApp, ToCli};
use hotswap_testkit::{Options, Process, Transcript};

// The repository, the private directories, and one test at a time: `serial` takes the same lock
// as `tests/support`, so these tests (or the soak's build) never build or run at the same time
// as the other end-to-end tests of this crate, from this process or another.
#[allow(unused_imports)]
pub use hotswap_testkit::{
    e2e_target_dir, files_in, hotswap_dir, private_base, serial, uid, workspace_root, Line, Serial,
    Stream,
};

/// A build of a scratch workspace (the first one compiles `hotswap` and its dependencies).
pub const BUILD: Duration = Duration::from_secs(900);
/// Output of a running program.
pub const OUTPUT: Duration = Duration::from_secs(60);
/// The program's answer to a patch message.
pub const ANSWER: Duration = Duration::from_secs(120);

/// A fresh token, as `cargo hotswap run` makes one per session.
pub fn token(salt: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{salt}-{:x}-{:x}", std::process::id(), nanos as u64)
}

// ---------------------------------------------------------------------------------------------
// The scratch workspace
// ---------------------------------------------------------------------------------------------

/// `cargo` in `dir`, with the shared target directory and an environment cleaned of what the
/// outer `cargo test` (or the developer's shell) set that would change the build (here also its
/// jobserver and compiler wrapper).
pub fn cargo(dir: &Path) -> Command {
    let mut command = hotswap_testkit::cargo(dir);
    hotswap_testkit::remove_env(&mut command, hotswap_testkit::JOBSERVER_ENV);
    hotswap_testkit::remove_env(&mut command, &["RUSTC_WRAPPER", "HOTSWAP_ROLE"]);
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

/// Links `rlib` as [`link_patch`] does, with `extra` linker arguments added (for a patch linked
/// at a fixed address: `-Wl,-Ttext-segment=0x...`).
pub fn link_patch_with(rlib: &Path, out: &Path, extra: &[&str]) {
    let script = out.with_extension("ver");
    std::fs::write(&script, VERSION_SCRIPT).unwrap();
    let version_script = format!("-Wl,--version-script={}", script.display());
    let mut args = vec![version_script.as_str()];
    args.extend_from_slice(extra);
    link(rlib, out, &args);
    std::fs::remove_file(&script).unwrap();
}

/// The range a linked shared object occupies at its link-time addresses, as the CLI describes a
/// patch linked at a fixed address: from its lowest `PT_LOAD` address (rounded down to a page) to
/// the end of its last `PT_LOAD`, rounded up to a page.
pub fn fixed_range(library: &Path) -> hotswap::protocol::Fixed {
    use object::read::elf::{FileHeader, ProgramHeader};
    let data = std::fs::read(library).unwrap();
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data).unwrap();
    let endian = header.endian().unwrap();
    let (mut low, mut high) = (u64::MAX, 0u64);
    for segment in header.program_headers(endian, &*data).unwrap() {
        if segment.p_type(endian) == object::elf::PT_LOAD {
            let start = segment.p_vaddr(endian);
            low = low.min(start);
            high = high.max(start + segment.p_memsz(endian));
        }
    }
    let page = 4096;
    let base = low / page * page;
    let end = high.div_ceil(page) * page;
    hotswap::protocol::Fixed {
        base,
        span: end - base,
    }
}

/// One line of `/proc/<pid>/maps`.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `r-xp`, `---p`, ...
    pub perms: String,
    /// The file mapped (with ` (deleted)` if it was removed), empty for anonymous memory.
    pub path: String,
}

/// The mappings of process `pid`, in address order.
pub fn mappings(pid: u32) -> Vec<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .map(|line| {
            let mut fields = line.splitn(6, ' ');
            let range = fields.next().unwrap();
            let perms = fields.next().unwrap().to_owned();
            let path = fields.nth(3).unwrap_or("").trim_start().to_owned();
            let (start, end) = range.split_once('-').unwrap();
            Mapping {
                start: u64::from_str_radix(start, 16).unwrap(),
                end: u64::from_str_radix(end, 16).unwrap(),
                perms,
                path,
            }
        })
        .collect()
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
        // The repository's lock file: the same dependency versions, already downloaded, and
        // compiled once in the shared target directory.
        let dir = hotswap_testkit::scratch_dir(&format!("{prefix}-"));
        let ws = HotWorkspace {
            dir,
            app: format!("{prefix}_app"),
            game: format!("{prefix}_game"),
            other: format!("{prefix}_other"),
            release,
        };
        let hotswap = hotswap_testkit::hotswap_dependency(&["hot"]);
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
        hotswap_testkit::write_file(&self.path().join(relative), contents);
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

/// A child process with its stdout and stderr collected by reader threads, and its stdin piped.
/// Dropping it kills the child. The collected output (`mark`, `lines`, `wait_for`, `transcript`,
/// `send_stdin`, `wait_exit`, ...) is that of [`Process`].
pub struct Running {
    process: Process,
}

hotswap_testkit::deref_to_process!(Running, process);

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

    /// Starts `command` with stdin piped; if this process dies without running destructors, the
    /// child dies with it.
    pub fn spawn(name: String, command: Command) -> Running {
        let style = Transcript {
            head: 100,
            tail: 300,
            keep_stderr: false,
            numbered: true,
        };
        let options = Options {
            stdin: true,
            die_with_test: true,
        };
        Running {
            process: Process::spawn(&name, command, options, &format!("output of {name}"), style),
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
}

impl Drop for Running {
    fn drop(&mut self) {
        self.print_transcript_if_asked();
    }
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
        self.accept_hello(host).0
    }

    /// [`accept`](Self::accept), also returning the reservation the hello reported.
    pub fn accept_hello(
        &self,
        host: &mut Running,
    ) -> (Channel, Option<hotswap::protocol::Reservation>) {
        let deadline = Instant::now() + OUTPUT;
        loop {
            if let Some(stream) = self.try_accept() {
                let mut channel = Channel::new(stream);
                let reservation = match channel.read() {
                    ToCli::Hello {
                        pid,
                        version,
                        reserved,
                        image,
                    } => {
                        assert_eq!(pid, host.pid(), "hello from another process");
                        assert_eq!(version, 0, "a fresh program is at version 0");
                        // A program runs the runtime from its executable, not a library.
                        let image = image.expect("the hello names the image");
                        assert!(!image.library, "{image:?}");
                        assert!(image.inode.is_some(), "{image:?}");
                        reserved
                    }
                    other => panic!("the first message was not a hello: {other:?}"),
                };
                return (channel, reservation);
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
            fixed: None,
        })
        .unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// Sends a patch message with `fixed` and returns the answer to it.
    pub fn patch_fixed(
        &mut self,
        id: u64,
        path: &Path,
        fixed: Option<hotswap::protocol::Fixed>,
    ) -> ToCli {
        let mut line = serde_json::to_vec(&ToApp::Patch {
            id,
            path: path.display().to_string(),
            fixed,
        })
        .unwrap();
        line.push(b'\n');
        self.send_raw(&line);
        self.read()
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
