//! subsecond for real: its patches built and sent by the Dioxus CLI, `dx serve --hotpatch`
//! (opt-in rows `edit-subsecond-*`, region `edit-subsecond` of BENCHMARKS.md).
//!
//! The per-call rows of `main.rs` only measure `subsecond::call` before any patch, since only
//! `dx` makes patches. Here `dx` (dioxus-cli [`DX_VERSION`], the release line of the `subsecond`
//! the bench compares with, installed by `cargo install` into `<repo>/target/bench/dx`, with its
//! telemetry and downloads compiled out) runs a plain binary, not a Dioxus app, in a scratch
//! workspace of the edit rows' kind: the hot crate (`sse_small` or `sse_heavy`: the edit rows'
//! `small.rs` and `heavy.rs`, unchanged) and a host (`fixtures/dx/host.rs`) that calls
//! `dioxus_devtools::connect_subsecond()` at start and prints `subsecond::call` of `tick`
//! every 5 ms (a closure that captures nothing: see the host). The saves, the clock and the 20 + 1 edits are those of the other edit rows
//! ([`crate::edit::edit_loop`]); the program's lines reach the bench through `dx`, which prints
//! them in its log (the bench reads the text from `tick edit-` on).
//!
//! The per-call row (`edit-subsecond-percall`) runs the same host under `dx` with `percall`:
//! it times `subsecond::call` of a trivial `add` (and the direct call, in the same process)
//! before any patch and again after the first patch, with the harness of the per-call rows
//! (`fixtures/harness.rs`), into a file of its own. No instruction counts: `dx serve` starts
//! the program itself and has no option to start it under another program (valgrind).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::build::{Artifact, Builder, Profile, Tool};
use crate::edit::{self, Measured, Spec, Started};
use crate::measure::{median, percentile};
use crate::report::{commands, fmt_ms, fmt_ns, min_max, one_line, only, problems, ratio};
use crate::{Kind, Outcome, Plan, Role, Row};

/// The Dioxus CLI measured: the 0.7 release whose `subsecond` and `dioxus-devtools` the
/// scratch host uses (`subsecond` 0.7.10 is what the per-call rows resolve).
pub const DX_VERSION: &str = "0.7.10";

/// The features `dx` is installed with: no telemetry, no downloads of tools at run time (this
/// bench's machines reach package registries only).
const DX_FEATURES: &str = "disable-telemetry,no-downloads";

/// The scratch workspace of `tool` (`DxSmall`, `DxHeavy`): the hot crate and its host.
pub fn files(tool: Tool) -> Vec<(String, String)> {
    const SMALL: &str = include_str!("../fixtures/edit/small.rs");
    const HEAVY: &str = include_str!("../fixtures/edit/heavy.rs");
    const HOST: &str = include_str!("../fixtures/dx/host.rs");
    const HARNESS: &str = include_str!("../fixtures/harness.rs");
    let (lib, source, dependencies) = match tool {
        Tool::DxHeavy => ("sse_heavy", HEAVY, crate::build::HEAVY_DEPENDENCIES),
        _ => ("sse_small", SMALL, ""),
    };
    let host = format!("{lib}_host");
    vec![
        (
            "Cargo.toml".into(),
            format!(
                "# Scratch workspace written by hotswap-bench (subsecond's edits, run by \
                 `dx serve --hotpatch`).\n[workspace]\nresolver = \"2\"\n\
                 members = [\"{lib}\", \"{host}\"]\n"
            ),
        ),
        (
            format!("{lib}/Cargo.toml"),
            format!(
                "{}\n[dependencies]\n{dependencies}",
                crate::build::package_manifest(lib)
            ),
        ),
        // subsecond needs no attribute: the host's `subsecond::call` is the hot entry.
        (format!("{lib}/src/lib.rs"), source.replace("{{HOT}}\n", "")),
        (
            format!("{host}/Cargo.toml"),
            format!(
                "{}\n[dependencies]\n{lib} = {{ path = \"../{lib}\" }}\n\
                 subsecond = \"={DX_VERSION}\"\ndioxus-devtools = \"={DX_VERSION}\"\n",
                crate::build::package_manifest(&host)
            ),
        ),
        (
            format!("{host}/src/main.rs"),
            HOST.replace("{{CRATE}}", lib),
        ),
        (format!("{host}/src/harness.rs"), HARNESS.to_string()),
    ]
}

/// The opt-in rows, after the edit rows of `rows` (whose `edit-small` is their template).
pub fn rows(rows: &[Row]) -> Vec<Row> {
    let Some(template) = rows.iter().find(|row| row.id == "edit-small").cloned() else {
        return Vec::new();
    };
    let spec = |tool: Tool| {
        let lib = if tool == Tool::DxHeavy {
            "sse_heavy"
        } else {
            "sse_small"
        };
        Spec {
            tool,
            lib,
            host: if tool == Tool::DxHeavy {
                "sse_heavy_host"
            } else {
                "sse_small_host"
            },
            file: "src/lib.rs",
            env: &[],
            plain_build: false,
            display: false,
            lib_host: None,
        }
    };
    let small = spec(Tool::DxSmall);
    let heavy = spec(Tool::DxHeavy);
    let base = Row {
        kind: Kind::Edit,
        role: Role::Measured,
        opt_in: true,
        args: &[],
        patches: Vec::new(),
        ..template
    };
    vec![
        Row {
            id: "edit-subsecond-small",
            tool: Tool::DxSmall,
            label: "**subsecond** `dx serve --hotpatch`, the small hot crate behind \
                    `subsecond::call` (ratio to hotswap's `edit-small`)",
            host: Artifact::named(Tool::DxSmall, small.host, Profile::O0, false),
            baseline: Some("edit-small"),
            edit: Some(small),
            ..base.clone()
        },
        Row {
            id: "edit-subsecond-heavy",
            tool: Tool::DxHeavy,
            label: "**subsecond** `dx serve --hotpatch`, the heavy hot crate (tokio, axum, \
                    tower-http, tracing-subscriber, serde_json) behind `subsecond::call` (ratio \
                    to hotswap's `edit-heavy`)",
            host: Artifact::named(Tool::DxHeavy, heavy.host, Profile::O0, false),
            baseline: Some("edit-heavy"),
            edit: Some(heavy),
            ..base.clone()
        },
        Row {
            id: "edit-subsecond-percall",
            tool: Tool::DxSmall,
            label: "**subsecond** `subsecond::call` of a trivial `add` in the program `dx serve \
                    --hotpatch` builds (opt-level 0, its dev profile), before any patch and after \
                    one",
            host: Artifact::named(Tool::DxSmall, small.host, Profile::O0, false),
            args: &["percall"],
            baseline: None,
            edit: Some(small),
            ..base
        },
    ]
}

/// `<repo>/target/bench/dx/bin/dx`, installed first if it is not there.
fn dx(builder: &Builder) -> Result<PathBuf, String> {
    let root = builder.target().join("dx");
    let exe = root.join("bin").join("dx");
    if !exe.exists() {
        eprintln!(
            "hotswap-bench: installing dioxus-cli {DX_VERSION} into {} (it compiles for tens of \
             minutes)",
            root.display()
        );
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .args(["install", "dioxus-cli", "--version", DX_VERSION, "--locked"])
            .args(["--features", DX_FEATURES, "--root"])
            .arg(&root);
        crate::build::clean_env(&mut command);
        let output = command
            .output()
            .map_err(|err| format!("cannot run `{}`: {err}", install_command()))?;
        if !output.status.success() || !exe.exists() {
            return Err(format!(
                "`{}` failed: {}",
                install_command(),
                tail(&String::from_utf8_lossy(&output.stderr), 4)
            ));
        }
    }
    let version = Command::new(&exe)
        .arg("--version")
        .output()
        .map_err(|err| format!("cannot run {}: {err}", exe.display()))?;
    let version = String::from_utf8_lossy(&version.stdout);
    if !version.contains(DX_VERSION) {
        return Err(format!(
            "{} is `{}`, not dioxus-cli {DX_VERSION}: remove it, or run `{}` --force",
            exe.display(),
            version.trim(),
            install_command()
        ));
    }
    Ok(exe)
}

fn install_command() -> String {
    format!(
        "cargo install dioxus-cli --version {DX_VERSION} --locked --features {DX_FEATURES} \
         --root <repo>/target/bench/dx"
    )
}

/// The last `lines` non-empty lines of `text`, on one line.
fn tail(text: &str, lines: usize) -> String {
    let last: Vec<&str> = text
        .lines()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .take(lines)
        .collect();
    last.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// A port of the loopback interface that was free a moment ago, for dx's devserver.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|err| format!("no free port on 127.0.0.1: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| err.to_string())
}

/// `text` without its ANSI escape sequences (dx colours its log).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.clone().next() == Some('[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Where a line of dx's output goes: the program's ticks (from `tick edit-` on) to `ticks`,
/// everything else to `log` — dx's messages that a patch failed or that it restarts the
/// program reworded so that [`edit::edit_loop`] stops or notes them as it does for
/// `cargo hotswap run`'s.
fn route(
    line: &str,
    at: Instant,
    ticks: &Sender<(Instant, String)>,
    log: &Sender<(Instant, String)>,
    pid: &AtomicU32,
) {
    let line = plain(line);
    if let Some(at_tick) = line.find("tick edit-") {
        let _ = ticks.send((at, line[at_tick..].to_string()));
        return;
    }
    if let Some(rest) = line.split("hsb-pid ").nth(1) {
        if let Ok(id) = rest.trim().parse() {
            pid.store(id, Ordering::Relaxed);
        }
    }
    let line = if line.contains("Build failed") {
        format!("dx: the build failed: {line}")
    } else if line.contains("Starting full rebuild") {
        format!("dx: restarting the program (a full rebuild, not a patch): {line}")
    } else {
        line
    };
    let _ = log.send((at, line));
}

/// `dx serve --hotpatch` in `root`, its stdout and stderr routed by [`route`].
fn spawn(mut command: Command, pid: &Arc<AtomicU32>) -> Result<Started, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {command:?}: {err}"))?;
    let (tick_sender, ticks) = mpsc::channel();
    let (log_sender, log) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("piped")),
        Box::new(child.stderr.take().expect("piped")),
    ];
    for pipe in pipes {
        let (ticks, log, pid) = (tick_sender.clone(), log_sender.clone(), pid.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                route(&line, Instant::now(), &ticks, &log, &pid);
            }
        });
    }
    Ok(Started {
        child,
        stdout: ticks,
        stderr: log,
        seen: Vec::new(),
    })
}

/// One edit row (or the per-call row) under `dx serve --hotpatch`.
pub fn run(builder: &mut Builder, row: &Row, spec: Spec, plan: &Plan) -> Result<Measured, String> {
    let percall = row.args.first() == Some(&"percall");
    let dx = dx(builder)?;
    let root = builder.workspace(spec.tool)?;
    let target = builder.target().join("dx-target");
    let port = free_port()?.to_string();
    let out = root.join("percall.out");
    let _ = std::fs::remove_file(&out);
    let samples = plan.samples * plan.rounds as u32;
    let mut command = Command::new(&dx);
    command.current_dir(&root).args([
        "serve",
        "--hotpatch",
        "-p",
        spec.host,
        "--interactive",
        "false",
        "--addr",
        "127.0.0.1",
        "--port",
        &port,
    ]);
    let program_args = format!("percall 0 {samples} {}", out.display());
    if percall {
        command.args(["--args", &program_args]);
    }
    crate::build::clean_env(&mut command);
    command
        .env("CARGO_TARGET_DIR", &target)
        .env("HSB_SAMPLE_MS", plan.sample_ms.to_string());
    let edits = if percall { 0 } else { plan.edits };
    let mut measured = Measured {
        run: format!(
            "`{}` (once), then `CARGO_TARGET_DIR=<repo>/target/bench/dx-target \
             <repo>/target/bench/dx/bin/dx serve --hotpatch -p {} --interactive false --addr \
             127.0.0.1 --port PORT{}` in `$WORK/ws/{}` (PORT: a free one), then {}",
            install_command(),
            spec.host,
            if percall {
                format!(
                    " --args 'percall 0 {samples} OUT'` with `HSB_SAMPLE_MS={}",
                    plan.sample_ms
                )
            } else {
                String::new()
            },
            spec.tool.dir_name(),
            if percall {
                format!(
                    "1 edit of `{}/{}`; the program times the calls into OUT before it and after \
                     the patch",
                    spec.lib, spec.file
                )
            } else {
                format!("{edits} + 1 edits of `{}/{}`", spec.lib, spec.file)
            }
        ),
        ..Measured::default()
    };
    eprintln!(
        "hotswap-bench: {}: dx serve --hotpatch -p {} (its first build takes minutes)",
        row.id, spec.host
    );
    let pid = Arc::new(AtomicU32::new(0));
    let mut program = spawn(command, &pid)?;
    let source = root.join(spec.lib).join(spec.file);
    let mut result = edit::edit_loop(
        &mut program,
        &source,
        edits,
        Duration::from_secs(120),
        &mut measured,
        |_| Ok(Vec::new()),
    );
    if result.is_ok() && percall {
        result = read_series(&out, &mut measured);
    }
    std::thread::sleep(Duration::from_millis(200));
    program.drain_stderr();
    // dx's own report per patch: `Hot-patching: FILE took N ms` (from its build's start); the
    // first is the warm-up edit's.
    let reported: Vec<f64> = program
        .seen
        .iter()
        .filter(|line| line.contains("Hot-patching:"))
        .filter_map(|line| {
            let (_, took) = line.rsplit_once("took ")?;
            took.trim().trim_end_matches("ms").trim().parse().ok()
        })
        .collect();
    if reported.len() > edits {
        measured.values.insert(
            "dx_patch_ms".into(),
            reported[reported.len() - edits..].to_vec(),
        );
    }
    if result.is_err() {
        let lines = program.seen.len();
        measured.notes.push(format!(
            "dx's last lines: {}",
            tail(&program.seen[lines.saturating_sub(8)..].join("\n"), 8)
        ));
    }
    program.stop();
    stop_program(pid.load(Ordering::Relaxed), spec.host);
    result.map(|()| measured)
}

/// The program dx started, if it outlived dx (by its pid, and only if it is that program).
fn stop_program(pid: u32, host: &str) {
    if pid == 0 {
        return;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains(host) {
        extern "C" {
            fn kill(pid: i32, signal: i32) -> i32;
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            kill(pid as i32, 9);
        }
    }
}

/// The per-call figures the program wrote to `out` (`series NAME` lines, then the harness's
/// `ns X` lines), waited for until the series after the patch ends.
fn read_series(out: &Path, measured: &mut Measured) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.contains("series after-end") {
            let mut name = String::new();
            for line in text.lines() {
                if let Some(series) = line.strip_prefix("series ") {
                    name = format!("{}_ns", series.replace('-', "_"));
                } else if let Some(ns) = line.strip_prefix("ns ") {
                    if let Ok(ns) = ns.trim().parse::<f64>() {
                        measured.values.entry(name.clone()).or_default().push(ns);
                    }
                }
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the program patched, but wrote no timings after the patch to {} within 300 s \
                 (it has: {})",
                out.display(),
                one_line(&tail(&text, 3))
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `edit-subsecond` region, if this run has its rows: (name, text, standalone, note).
pub fn section(
    rows: &[Row],
    outcomes: &[Outcome],
    brief: &str,
) -> Option<(String, String, bool, Option<String>)> {
    let own: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.tool.is_dx_edit())
        .collect();
    if own.is_empty() {
        return None;
    }
    let baseline = |id: Option<&str>| {
        rows.iter()
            .zip(outcomes)
            .find(|(row, outcome)| Some(row.id) == id && outcome.error.is_none())
            .map_or(f64::NAN, |(_, outcome)| median(&outcome.values))
    };
    let mut edits = String::from(
        "| variant | edits | median ms | p90 ms | min–max ms | first edit (warm-up) ms | dx's \
         own report per patch (`Hot-patching: … took N ms`), median ms | hotswap's median ms, \
         this run | ratio | command |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    let mut percall = String::from(
        "| variant | first patch: save → new output, ms | `subsecond::call` ns/call, before any \
         patch | after the patch | direct call ns/call (same program) | ratio after the patch \
         to direct | Δ ns | instr/call | command |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    let first_ms = |outcome: &Outcome| {
        outcome
            .extras
            .get("first_ms")
            .and_then(|v| v.first())
            .map_or("—".into(), |ms| fmt_ms(*ms))
    };
    for (row, outcome) in &own {
        let is_percall = row.args.first() == Some(&"percall");
        if let Some(error) = &outcome.error {
            let failed = format!("{} — {}", only(row.id), one_line(error));
            if is_percall {
                percall.push_str(&format!(
                    "| {} | — | — | — | — | — | — | — | {failed} |\n",
                    row.label
                ));
            } else {
                edits.push_str(&format!(
                    "| {} | — | — | — | — | — | — | {} | — | {failed} |\n",
                    row.label,
                    fmt_ms(baseline(row.baseline))
                ));
            }
            continue;
        }
        let series = |name: &str| {
            outcome
                .extras
                .get(name)
                .map_or(f64::NAN, |values| median(values))
        };
        if is_percall {
            let (after, direct) = (series("after_call_ns"), series("after_direct_ns"));
            percall.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | not measured: `dx serve` starts the \
                 program itself and cannot start it under callgrind | {} |\n",
                row.label,
                first_ms(outcome),
                fmt_ns(series("before_call_ns")),
                fmt_ns(after),
                fmt_ns(direct),
                ratio(after, direct),
                if after.is_finite() && direct.is_finite() {
                    format!("{:+.2}", after - direct)
                } else {
                    "—".into()
                },
                only(row.id)
            ));
            continue;
        }
        let values = &outcome.values;
        let base = baseline(row.baseline);
        edits.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            values.len(),
            fmt_ms(median(values)),
            fmt_ms(percentile(values, 90.0)),
            min_max(values),
            first_ms(outcome),
            outcome
                .extras
                .get("dx_patch_ms")
                .map_or("—".into(), |v| fmt_ms(median(v))),
            fmt_ms(base),
            ratio(median(values), base),
            only(row.id)
        ));
    }
    let (own_rows, own_outcomes): (Vec<Row>, Vec<Outcome>) = own
        .iter()
        .map(|(row, outcome)| ((*row).clone(), (*outcome).clone()))
        .unzip();
    let text = format!(
        "{brief}\n\n{edits}\n{percall}\nProblems: {}\n\n{}",
        problems(&own_rows, &own_outcomes),
        commands(&own_rows, &own_outcomes)
    );
    let missing: Vec<&str> = rows_of_region()
        .into_iter()
        .filter(|id| !rows.iter().any(|row| row.id == *id))
        .collect();
    let note = (!missing.is_empty()).then(|| {
        format!(
            "the edit-subsecond region holds every `edit-subsecond-*` row and is written whole; \
             this run lacks {}, so it is printed, not written: run `--only 'edit-subsecond*' \
             --write`",
            missing
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Some(("edit-subsecond".into(), text, missing.is_empty(), note))
}

/// The ids of the region's rows.
fn rows_of_region() -> Vec<&'static str> {
    crate::rows()
        .into_iter()
        .filter(|row| row.tool.is_dx_edit())
        .map(|row| row.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{plain, route};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn the_rows_are_opt_in_and_bring_hotswaps_edit_rows_along() {
        let only = vec!["edit-subsecond*".to_string()];
        let ids: Vec<&str> = crate::select(crate::rows(), &only, false)
            .iter()
            .map(|row| row.id)
            .collect();
        assert_eq!(
            ids,
            [
                "edit-small",
                "edit-heavy",
                "edit-subsecond-small",
                "edit-subsecond-heavy",
                "edit-subsecond-percall"
            ]
        );
        assert!(!crate::select(crate::rows(), &[], false)
            .iter()
            .any(|row| row.tool.is_dx_edit()));
    }

    #[test]
    fn dx_log_lines_are_routed() {
        let (ticks, tick_lines) = mpsc::channel();
        let (log, log_lines) = mpsc::channel();
        let pid = AtomicU32::new(0);
        let now = Instant::now();
        route(
            "\u{1b}[2m  12.3s\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m [linux] tick edit-3 41 99",
            now,
            &ticks,
            &log,
            &pid,
        );
        route("   0.1s  INFO hsb-pid 4242", now, &ticks, &log, &pid);
        route("ERROR Build failed: oops", now, &ticks, &log, &pid);
        assert_eq!(tick_lines.try_recv().unwrap().1, "tick edit-3 41 99");
        assert_eq!(pid.load(Ordering::Relaxed), 4242);
        let logged: Vec<String> = log_lines.try_iter().map(|(_, line)| line).collect();
        assert!(logged[1].contains("the build failed"), "{logged:?}");
        assert_eq!(plain("\u{1b}[1mbold\u{1b}[0m"), "bold");
    }
}
