//! Edit-to-effect: from a saved source file to the first line the running program prints with
//! the new code.
//!
//! The program prints one line per tick (every 5 ms), `tick <label> …`. Each edit rewrites the
//! `let label = "edit-K";` line of the hot crate's `src/lib.rs` as an editor saves: the new text
//! is written to a hidden file beside it, which is renamed over the original. The clock starts
//! just before the rename; it stops when the bench reads the first `tick edit-K ` line from the
//! program's stdout (the bench started the process and reads its pipe, so both times are its
//! own). The first edit is a warm-up, reported apart.
//!
//! - hotswap: the real `cargo hotswap run -p HOST` in the scratch workspace; its watcher sees the
//!   rename, it rebuilds and links the patch and the program swaps it in. Library rows
//!   ([`LibHost`]): `cargo hotswap run --lib -p LIB -- HOST…`, the hot crate a `cdylib` that a C
//!   program or `python3` loads from `$HOTSWAP_LIBRARY`, and which prints the lines itself.
//! - hot-lib-reloader: its host runs; right after the rename the bench runs
//!   `cargo build -p LIB` (as a file-watching build tool would, but without a watcher's delay),
//!   and hot-lib-reloader's own watcher loads the rebuilt library.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::build::{Builder, Tool};

/// What an edit row edits and runs.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The scratch workspace.
    pub tool: Tool,
    /// The hot crate's package.
    pub lib: &'static str,
    /// The file edited, in the package (`src/lib.rs`, `src/main.rs`).
    pub file: &'static str,
    /// The program's package (with `lib_host`: the library's, for `run --lib -p`).
    pub host: &'static str,
    /// Extra environment for `cargo hotswap run`.
    pub env: &'static [(&'static str, &'static str)],
    /// Measure a plain `cargo build -p HOST` of each edit instead (no program runs).
    pub plain_build: bool,
    /// The program opens a window: run it on the bench's own X server ([`Xvfb`]), with
    /// software OpenGL.
    pub display: bool,
    /// The package is a `cdylib` run under `cargo hotswap run --lib` with this host.
    pub lib_host: Option<LibHost>,
}

/// The host program of a library row (`cargo hotswap run --lib -p LIB -- HOST…`), a file of the
/// scratch workspace's root.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LibHost {
    /// `host.c` (`fixtures/edit/c_host.c`), compiled by the bench with `cc … -ldl`.
    C,
    /// `python3 host.py` (`fixtures/edit/host.py`).
    Python,
}

impl LibHost {
    /// Makes the host ready in the workspace `root`: the command after `--`, and how it was
    /// made (for the commands table). A missing `cc` or `python3` is an error that says so.
    fn prepare(self, root: &Path) -> Result<(Vec<String>, String), String> {
        match self {
            LibHost::C => {
                let exe = root.join("host");
                let output = Command::new("cc")
                    .current_dir(root)
                    .args(["-O2", "host.c", "-o", "host", "-ldl"])
                    .output()
                    .map_err(|err| {
                        format!(
                            "cannot run cc ({err}): the row's host is a C program; install a C \
                             compiler (the `gcc` package)"
                        )
                    })?;
                if !output.status.success() {
                    return Err(format!(
                        "cc -O2 host.c -o host -ldl failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                            .lines()
                            .take(4)
                            .collect::<Vec<_>>()
                            .join(" / ")
                    ));
                }
                Ok((
                    vec![exe.display().to_string()],
                    "`cc -O2 host.c -o host -ldl` in the same directory (`host.c` is \
                     `fixtures/edit/c_host.c`)"
                        .into(),
                ))
            }
            LibHost::Python => {
                let output = Command::new("python3")
                    .args([
                        "-c",
                        "import importlib.util, sys; print(sys.version.split()[0])",
                    ])
                    .output()
                    .map_err(|err| {
                        format!(
                            "cannot run python3 ({err}): the row's host is a Python program (and \
                             PyO3's build asks `python3` for its configuration); install the \
                             `python3` package"
                        )
                    })?;
                if !output.status.success() {
                    return Err(format!(
                        "python3 does not run: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ));
                }
                let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
                Ok((
                    vec!["python3".into(), root.join("host.py").display().to_string()],
                    format!("`host.py` is `fixtures/edit/host.py`, run by Python {version}"),
                ))
            }
        }
    }
}

/// What an edit row measured.
#[derive(Default, Debug)]
pub struct Measured {
    /// Milliseconds from the save to the first new line, per edit after the warm-up.
    pub ms: Vec<f64>,
    /// The warm-up edit.
    pub first_ms: Option<f64>,
    /// Other figures per edit: `cli_build_ms`, `cli_link_ms`, `cli_swap_ms` (what
    /// `cargo hotswap run` reports), `hlr_build_ms` (the `cargo build` after each edit).
    pub values: BTreeMap<String, Vec<f64>>,
    /// The commands, for the commands table.
    pub run: String,
    pub notes: Vec<String>,
}

pub(crate) const LABEL_LINE: &str = "let label = \"edit-0\";";

/// Lines of a pipe, each with the moment it was read.
pub(crate) fn lines(stream: impl Read + Send + 'static) -> Receiver<(Instant, String)> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if sender.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A process the bench started, stopped (by its own pid) when dropped.
pub(crate) struct Started {
    pub(crate) child: Child,
    pub(crate) stdout: Receiver<(Instant, String)>,
    pub(crate) stderr: Receiver<(Instant, String)>,
    /// stderr lines seen so far (for errors and the CLI's reports).
    pub(crate) seen: Vec<String>,
}

impl Started {
    pub(crate) fn spawn(mut command: Command) -> Result<Started, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {command:?}: {err}"))?;
        let stdout = lines(child.stdout.take().expect("piped"));
        let stderr = lines(child.stderr.take().expect("piped"));
        Ok(Started {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        })
    }

    pub(crate) fn drain_stderr(&mut self) {
        while let Ok((_, line)) = self.stderr.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits for a stdout line starting with `prefix`; returns when it was read.
    fn wait_for(&mut self, prefix: &str, timeout: Duration) -> Result<Instant, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .stdout
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok((at, line)) if line.starts_with(prefix) => return Ok(at),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        self.drain_stderr();
                        return Err(format!(
                            "the process exited ({status}) before printing `{prefix}`: {}",
                            self.tail()
                        ));
                    }
                }
                Err(_) => {
                    self.drain_stderr();
                    return Err(format!(
                        "no line `{prefix}…` within {timeout:?}: {}",
                        self.tail()
                    ));
                }
            }
            let before = self.seen.len();
            self.drain_stderr();
            // `cargo hotswap run` keeps running after a failed build, waiting for the next save.
            if self.seen[before..].iter().any(|line| {
                line.contains("the build failed")
                    || line.contains("does not compile")
                    || line.contains("refused the patch")
            }) {
                std::thread::sleep(Duration::from_millis(200));
                self.drain_stderr();
                return Err(format!("while waiting for `{prefix}`: {}", self.tail()));
            }
        }
    }

    pub(crate) fn tail(&self) -> String {
        let tail: Vec<&str> = self
            .seen
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(6)
            .map(|line| match line.char_indices().nth(240) {
                Some((at, _)) => &line[..at],
                None => line.as_str(),
            })
            .collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    }

    /// SIGINT (Ctrl-C: `cargo hotswap run` stops its program and itself), then SIGKILL.
    pub(crate) fn stop(&mut self) {
        signal(self.child.id(), 2);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn signal(pid: u32, signal: i32) {
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not reaped.
    unsafe {
        kill(pid as i32, signal);
    }
}

/// An X server of the bench's own (`Xvfb`, a virtual screen), stopped (by its own pid) when
/// dropped.
struct Xvfb {
    child: Child,
    /// `:N`, for `DISPLAY`.
    display: String,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd 1` and waits until it writes its display number (it does once it
    /// accepts clients).
    fn start() -> Result<Xvfb, String> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "800x600x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                format!(
                    "cannot start Xvfb ({err}): the program needs an X display; install the \
                     `xvfb` package"
                )
            })?;
        let stdout = lines(child.stdout.take().expect("piped"));
        let number = match stdout.recv_timeout(Duration::from_secs(30)) {
            Ok((_, line)) => line.trim().to_string(),
            Err(_) => String::new(),
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            let _ = child.kill();
            let status = child.wait();
            return Err(format!(
                "Xvfb did not report a display within 30 s (it printed {number:?}; {status:?})"
            ));
        }
        Ok(Xvfb {
            child,
            display: format!(":{number}"),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[hotswap] <crate>: patched N functions (<files>) — version V; build X ms, link Y ms,
/// check C ms, swap Z ms; code changed: …` → [("cli_build_ms", X), ("cli_link_ms", Y),
/// ("cli_check_ms", C), ("cli_swap_ms", Z)] (each phase the line names, in its order).
fn cli_report(line: &str) -> Vec<(String, f64)> {
    let Some((_, rest)) = line.split_once("; build ") else {
        return Vec::new();
    };
    let phases = format!("build {rest}");
    let phases = phases.split(';').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in phases.split(", ") {
        let Some((key, value)) = part.trim().split_once(' ') else {
            continue;
        };
        let number = value
            .trim()
            .strip_suffix("ms")
            .and_then(|p| p.trim().parse::<f64>().ok());
        if let Some(number) = number {
            out.push((format!("cli_{key}_ms"), number));
        }
    }
    out
}

/// The edits themselves, on a started program. `after_save` runs right after each save (the
/// hot-lib-reloader rows build there) and returns figures to keep.
pub(crate) fn edit_loop(
    program: &mut Started,
    source: &Path,
    edits: usize,
    timeout: Duration,
    measured: &mut Measured,
    mut after_save: impl FnMut(usize) -> Result<Vec<(String, f64)>, String>,
) -> Result<(), String> {
    let original = std::fs::read_to_string(source).map_err(|err| err.to_string())?;
    if !original.contains(LABEL_LINE) {
        return Err(format!("{} has no `{LABEL_LINE}`", source.display()));
    }
    let hidden = source.with_file_name(format!(
        ".{}.hotswap-bench",
        source
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    program.wait_for("tick edit-0 ", Duration::from_secs(1800))?;
    std::thread::sleep(Duration::from_millis(500));
    let result = (|| {
        for k in 1..=edits + 1 {
            let text = original.replace(LABEL_LINE, &format!("let label = \"edit-{k}\";"));
            std::fs::write(&hidden, &text).map_err(|err| err.to_string())?;
            let saved = Instant::now();
            std::fs::rename(&hidden, source).map_err(|err| err.to_string())?;
            for (key, value) in after_save(k)? {
                measured.values.entry(key).or_default().push(value);
            }
            let seen = program.wait_for(&format!("tick edit-{k} "), timeout)?;
            let ms = seen.duration_since(saved).as_secs_f64() * 1e3;
            // Let the CLI print its report, and the machine go quiet, before the next save.
            std::thread::sleep(Duration::from_millis(300));
            let before = program.seen.len();
            program.drain_stderr();
            let new: Vec<String> = program.seen[before..].to_vec();
            if let Some(restart) = new.iter().find(|l| l.contains("restarting")) {
                measured
                    .notes
                    .push(format!("edit {k} restarted the program: {restart}"));
            }
            if k == 1 {
                measured.first_ms = Some(ms);
                continue;
            }
            measured.ms.push(ms);
            for line in &new {
                for (key, value) in cli_report(line) {
                    measured.values.entry(key).or_default().push(value);
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::write(source, &original);
    result
}

/// `cargo hotswap run -p HOST` in the `edit` scratch workspace, `edits` edits of `LIB`.
pub fn hotswap(
    builder: &mut Builder,
    cli: &Path,
    spec: Spec,
    edits: usize,
) -> Result<Measured, String> {
    let root = builder.workspace(spec.tool)?;
    let mut command = Command::new(cli);
    command.current_dir(&root).args(["hotswap", "run"]);
    if spec.lib_host.is_some() {
        command.arg("--lib");
    }
    command.args(["-p", spec.host]);
    // A library row: `-- HOST…`, and how the host was made.
    let (host_args, host_made) = match spec.lib_host {
        Some(host) => host.prepare(&root)?,
        None => (Vec::new(), String::new()),
    };
    if !host_args.is_empty() {
        command.arg("--").args(&host_args);
    }
    crate::build::clean_env(&mut command);
    command.env("CARGO_TARGET_DIR", builder.target());
    command.envs(spec.env.iter().copied());
    let mut env: String = spec.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    // Kept until the program is stopped (the server goes with it).
    let xvfb = if spec.display {
        let xvfb = Xvfb::start()?;
        command
            .env("DISPLAY", &xvfb.display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env_remove("WAYLAND_DISPLAY");
        env.push_str("DISPLAY=:N LIBGL_ALWAYS_SOFTWARE=1 ");
        Some(xvfb)
    } else {
        None
    };
    let mut measured = Measured {
        run: format!(
            "{}{}`{env}CARGO_TARGET_DIR=<repo>/target/bench cargo-hotswap hotswap run {}-p \
             {}{}` in `$WORK/ws/{}`, then {edits} + 1 edits of `{}/{}`",
            if xvfb.is_some() {
                "`Xvfb -displayfd 1 -screen 0 800x600x24 -nolisten tcp` (started by the bench; \
                 `:N` is the display it reports), then "
            } else {
                ""
            },
            if host_made.is_empty() {
                String::new()
            } else {
                format!("the host: {host_made}; then ")
            },
            if spec.lib_host.is_some() {
                "--lib "
            } else {
                ""
            },
            spec.host,
            if host_args.is_empty() {
                String::new()
            } else {
                format!(" -- {}", host_args.join(" "))
            },
            spec.tool.dir_name(),
            spec.lib,
            spec.file
        ),
        ..Measured::default()
    };
    eprintln!(
        "hotswap-bench: edit to effect: cargo hotswap run {}-p {} (the first build of a heavy \
         crate takes minutes)",
        if spec.lib_host.is_some() {
            "--lib "
        } else {
            ""
        },
        spec.host
    );
    let mut program = Started::spawn(command)?;
    let source = root.join(spec.lib).join(spec.file);
    let result = edit_loop(
        &mut program,
        &source,
        edits,
        Duration::from_secs(120),
        &mut measured,
        |_| Ok(Vec::new()),
    );
    program.stop();
    drop(xvfb);
    result.map(|()| measured)
}

/// A plain `cargo build -p HOST` after each edit (how long a rebuild takes before the program
/// could be restarted by hand): the same saves as [`hotswap`]'s, each timed from the rename to
/// the end of the build. One warm-up edit, reported apart.
pub fn plain_build(builder: &mut Builder, spec: Spec, edits: usize) -> Result<Measured, String> {
    let root = builder.workspace(spec.tool)?;
    let build = |builder: &mut Builder| -> Result<(), String> {
        let mut command = builder.cargo(spec.tool)?;
        command.args(["build", "-p", spec.host]);
        run_timed(command, &format!("cargo build -p {}", spec.host)).map(|_| ())
    };
    eprintln!(
        "hotswap-bench: edit to effect: plain cargo build -p {}",
        spec.host
    );
    build(builder)?;
    let source = root.join(spec.lib).join(spec.file);
    let original = std::fs::read_to_string(&source).map_err(|err| err.to_string())?;
    if !original.contains(LABEL_LINE) {
        return Err(format!("{} has no `{LABEL_LINE}`", source.display()));
    }
    let hidden = source.with_file_name(".plain-build.hotswap-bench");
    let mut measured = Measured {
        run: format!(
            "`CARGO_TARGET_DIR=<repo>/target/bench cargo build -p {}` in `$WORK/ws/{}` after \
             each of {edits} + 1 edits of `{}/{}`",
            spec.host,
            spec.tool.dir_name(),
            spec.lib,
            spec.file
        ),
        ..Measured::default()
    };
    let result = (|| {
        for k in 1..=edits + 1 {
            let text = original.replace(LABEL_LINE, &format!("let label = \"edit-{k}\";"));
            std::fs::write(&hidden, &text).map_err(|err| err.to_string())?;
            let saved = Instant::now();
            std::fs::rename(&hidden, &source).map_err(|err| err.to_string())?;
            build(builder)?;
            let ms = saved.elapsed().as_secs_f64() * 1e3;
            if k == 1 {
                measured.first_ms = Some(ms);
            } else {
                measured.ms.push(ms);
            }
        }
        Ok(())
    })();
    let _ = std::fs::write(&source, &original);
    result.map(|()| measured)
}

/// hot-lib-reloader's host with its library in `<target>/debug`, rebuilt by `cargo build -p LIB`
/// after each edit.
pub fn hot_lib_reloader(
    builder: &mut Builder,
    host: &Path,
    spec: Spec,
    edits: usize,
) -> Result<Measured, String> {
    let root = builder.workspace(spec.tool)?;
    let lib_dir: PathBuf = builder.target().join("debug");
    let build = |builder: &mut Builder| -> Result<Duration, String> {
        let mut command = builder.cargo(spec.tool)?;
        command.args(["build", "-p", spec.lib]);
        run_timed(command, &format!("cargo build -p {}", spec.lib))
    };
    eprintln!(
        "hotswap-bench: edit to effect: hot-lib-reloader, {}",
        spec.lib
    );
    build(builder)?;
    let mut command = Command::new(host);
    command.current_dir(&root);
    crate::build::clean_env(&mut command);
    command.env("HLR_LIB_DIR", &lib_dir);
    let mut measured = Measured {
        run: format!(
            "`HLR_LIB_DIR=<repo>/target/bench/debug $WORK/bin/{}-o0` in `$WORK/ws/{}`; after \
             each of {edits} + 1 edits of `{}/src/lib.rs`: `cargo build -p {}`",
            spec.host,
            spec.tool.dir_name(),
            spec.lib,
            spec.lib
        ),
        ..Measured::default()
    };
    let mut program = Started::spawn(command)?;
    let source = root.join(spec.lib).join(spec.file);
    let result = edit_loop(
        &mut program,
        &source,
        edits,
        Duration::from_secs(120),
        &mut measured,
        |_| {
            let took = build(builder)?;
            Ok(vec![("hlr_build_ms".into(), took.as_secs_f64() * 1e3)])
        },
    );
    program.stop();
    // hot-lib-reloader leaves its numbered copies (`lib<name>-hot-N.so`) next to the library.
    if let Ok(entries) = std::fs::read_dir(&lib_dir) {
        let prefix = format!("lib{}-hot-", spec.lib);
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    result.map(|()| measured)
}

/// Runs `command` (`what` names it in errors) to its end; how long it took, or its last
/// lines of stderr.
pub(crate) fn run_timed(mut command: Command, what: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|err| format!("cannot run {what}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::cli_report;

    #[test]
    fn the_cli_report_line_is_read() {
        let line = "[hotswap] hse_small: patched 1 function (hse_small/src/lib.rs) — version 3; \
                    build 45 ms, link 12 ms, check 3.1 ms, swap 0.4 ms; code changed: `hse_small::f`";
        let values = cli_report(line);
        assert_eq!(
            values,
            vec![
                ("cli_build_ms".to_string(), 45.0),
                ("cli_link_ms".to_string(), 12.0),
                ("cli_check_ms".to_string(), 3.1),
                ("cli_swap_ms".to_string(), 0.4)
            ]
        );
    }
}
