//! The tables of BENCHMARKS.md.
//!
//! The file is hand-written prose with generated regions between
//! `<!-- hotswap-bench:begin NAME -->` and `<!-- hotswap-bench:end NAME -->`; a run replaces
//! what is between the markers and nothing else (a region missing from the file is appended).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::build::{Builder, Profile, Tool};
use crate::measure::{median, percentile};
use crate::{Kind, Outcome, Plan, Role, Row};

/// Facts about the machine and the run, stated above the tables.
pub struct Context {
    lines: Vec<String>,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

impl Context {
    pub fn collect(builder: &Builder, plan: &Plan, took: Duration, load_at_start: &str) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let logical = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
        let unknown = || "unknown".to_string();
        let commit = command_line("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(unknown);
        let dirty = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        let version = |tool, package| {
            builder
                .resolved_version(tool, package)
                .unwrap_or_else(|| "not resolved in this run".into())
        };
        let lines = vec![
            format!(
                "- Machine: {model} (`/proc/cpuinfo`), {logical} logical CPUs, {usable} usable \
                 by this process; `{}`",
                command_line("uname", &["-sr"]).unwrap_or_else(unknown)
            ),
            format!(
                "- Toolchain: `{}`, `{}`, `{}`",
                command_line("rustc", &["-V"]).unwrap_or_else(unknown),
                command_line("cargo", &["-V"]).unwrap_or_else(unknown),
                command_line("valgrind", &["--version"]).unwrap_or_else(unknown)
            ),
            format!(
                "- Date (UTC): {}; hotswap at commit `{commit}`{}",
                command_line("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_else(unknown),
                if dirty {
                    " plus uncommitted changes of the work tree"
                } else {
                    ""
                }
            ),
            format!(
                "- Compared: hot-lib-reloader {} and subsecond {} from crates.io",
                version(Tool::HotLibReloader, "hot-lib-reloader"),
                version(Tool::Subsecond, "subsecond")
            ),
            format!(
                "- Run: {} mode: {} round(s) x {} samples of ~{} ms per per-call row, callgrind \
                 {}, {} swaps per latency row; the whole command took {:.0} s",
                if plan.quick { "`--quick`" } else { "full" },
                plan.rounds,
                plan.samples,
                plan.sample_ms,
                if plan.callgrind {
                    format!("over {} calls", plan.callgrind_iters)
                } else {
                    "skipped".into()
                },
                plan.swaps,
                took.as_secs_f64()
            ),
            format!(
                "- Load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {} \
                 (other work on the machine during the run shows here)",
                load_average()
            ),
        ];
        Context { lines }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// `(region name, markdown)` for every generated region.
pub fn sections(
    rows: &[Row],
    outcomes: &[Outcome],
    context: &Context,
    repo: &Path,
    work: &Path,
) -> Vec<(String, String)> {
    let mut sections = vec![("machine".to_string(), context.lines.join("\n"))];
    for profile in [Profile::O3, Profile::O0] {
        if let Some(table) = percall_table(rows, outcomes, profile) {
            sections.push((format!("percall-{}", profile.short()), table));
        }
    }
    if let Some(table) = latency_table(rows, outcomes) {
        sections.push(("latency".into(), table));
    }
    sections.push(("problems".into(), problems(rows, outcomes)));
    sections.push(("commands".into(), commands(rows, outcomes)));
    let home = std::env::var("HOME").unwrap_or_else(|_| "/nonexistent".into());
    sections
        .into_iter()
        .map(|(name, text)| {
            let text = text
                .replace(&work.display().to_string(), "$WORK")
                .replace(&repo.display().to_string(), "<repo>")
                .replace(&home, "~");
            (name, text)
        })
        .collect()
}

fn ratio(value: f64, base: f64) -> String {
    if value.is_finite() && base.is_finite() && base > 0.0 {
        format!("{:.2}x", value / base)
    } else {
        "—".into()
    }
}

fn only(id: &str) -> String {
    format!("`cargo run -p hotswap-bench --release -- --only {id}`")
}

fn percall_table(rows: &[Row], outcomes: &[Outcome], profile: Profile) -> Option<String> {
    let in_table: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::PerCall && row.table == profile)
        .collect();
    if in_table.is_empty() {
        return None;
    }
    let find = |role| {
        in_table
            .iter()
            .find(|(row, _)| row.role == role)
            .map(|(_, outcome)| *outcome)
    };
    let ns = |o: &Outcome| {
        if o.error.is_some() {
            f64::NAN
        } else {
            median(&o.values)
        }
    };
    let ir = |o: &Outcome| match &o.instructions {
        Some(Ok(value)) if o.error.is_none() => *value,
        _ => f64::NAN,
    };
    let base = find(Role::Baseline);
    let harness = find(Role::Harness);
    let (base_ns, harness_ns) = (base.map_or(f64::NAN, ns), harness.map_or(f64::NAN, ns));
    let (base_ir, harness_ir) = (base.map_or(f64::NAN, ir), harness.map_or(f64::NAN, ir));
    let mut out = String::from(
        "| variant | ns/call | direct ns/call | ratio | Δ ns | net ratio | instr/call | direct \
         instr/call | ratio | net ratio | command |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for (row, outcome) in &in_table {
        let label = if row.profile != row.table {
            format!("{} ({})", row.label, row.profile.label())
        } else {
            row.label.to_string()
        };
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {label} | — | {} | — | — | — | — | {} | — | — | {} — {} |\n",
                fmt_ns(base_ns),
                fmt_ir(base_ir),
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let (value_ns, value_ir) = (ns(outcome), ir(outcome));
        let net = |v: f64, b: f64, h: f64| {
            if row.role == Role::Harness {
                "—".to_string()
            } else {
                ratio(v - h, b - h)
            }
        };
        let ir_note = match &outcome.instructions {
            Some(Err(err)) => format!(" (callgrind: {})", one_line(err)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{ir_note} |\n",
            fmt_ns(value_ns),
            fmt_ns(base_ns),
            ratio(value_ns, base_ns),
            if value_ns.is_finite() && base_ns.is_finite() {
                format!("{:+.2}", value_ns - base_ns)
            } else {
                "—".into()
            },
            net(value_ns, base_ns, harness_ns),
            fmt_ir(value_ir),
            fmt_ir(base_ir),
            ratio(value_ir, base_ir),
            net(value_ir, base_ir, harness_ir),
            only(row.id),
        ));
    }
    Some(out)
}

fn fmt_ns(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "—".into()
    }
}

fn fmt_ir(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "—".into()
    }
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn latency_table(rows: &[Row], outcomes: &[Outcome]) -> Option<String> {
    let in_table: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::Latency)
        .collect();
    if in_table.is_empty() {
        return None;
    }
    let base = in_table
        .iter()
        .find(|(row, outcome)| row.role == Role::Baseline && outcome.error.is_none())
        .map_or(f64::NAN, |(_, outcome)| median(&outcome.values));
    let mut out = String::from(
        "| variant | swaps | median ms | p90 ms | min–max ms | hotswap median ms | ratio | \
         command |\n|---|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for (row, outcome) in in_table {
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {} | — | — | — | — | {} | — | {} — {} |\n",
                row.label,
                fmt_ns(base),
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let values = &outcome.values;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1}–{:.1} | {} | {} | {} |\n",
            row.label,
            values.len(),
            median(values),
            percentile(values, 90.0),
            min,
            max,
            fmt_ns(base),
            ratio(median(values), base),
            only(row.id)
        ));
    }
    Some(out)
}

fn problems(rows: &[Row], outcomes: &[Outcome]) -> String {
    let mut lines = Vec::new();
    for (row, outcome) in rows.iter().zip(outcomes) {
        if let Some(error) = &outcome.error {
            lines.push(format!("- `{}`: {}", row.id, one_line(error)));
        } else if let Some(Err(error)) = &outcome.instructions {
            lines.push(format!("- `{}` (callgrind): {}", row.id, one_line(error)));
        }
    }
    if lines.is_empty() {
        "None: every row built and ran.".into()
    } else {
        lines.join("\n")
    }
}

fn commands(rows: &[Row], outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| row | builds (in the tool's scratch workspace, `CARGO_TARGET_DIR=<repo>/target/bench`) \
         | measuring run (timed; callgrind runs the same with `--toggle-collect=SYMBOL`) |\n\
         |---|---|---|\n",
    );
    for (row, outcome) in rows.iter().zip(outcomes) {
        let mut builds = outcome.builds.clone();
        builds.dedup();
        let symbol = if row.symbol.is_empty() {
            String::new()
        } else {
            format!(" (SYMBOL `{}`)", row.symbol)
        };
        out.push_str(&format!(
            "| `{}` | {} | {}{symbol} |\n",
            row.id,
            builds
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join("<br>"),
            outcome
                .run
                .as_deref()
                .map_or("—".to_string(), |r| format!("`{r}`")),
        ));
    }
    out
}

/// Replaces the generated regions of `file`, keeping everything else.
pub fn rewrite(file: &Path, sections: &[(String, String)]) -> Result<(), String> {
    let mut text = std::fs::read_to_string(file).unwrap_or_default();
    for (name, body) in sections {
        let begin = format!("<!-- hotswap-bench:begin {name} -->");
        let end = format!("<!-- hotswap-bench:end {name} -->");
        let region = format!("{begin}\n{}\n{end}", body.trim_end());
        match (text.find(&begin), text.find(&end)) {
            (Some(start), Some(stop)) if stop > start => {
                text.replace_range(start..stop + end.len(), &region);
            }
            _ => {
                if !text.is_empty() && !text.ends_with("\n\n") {
                    text.push('\n');
                }
                text.push_str(&region);
                text.push('\n');
            }
        }
    }
    std::fs::write(file, text).map_err(|err| err.to_string())
}
