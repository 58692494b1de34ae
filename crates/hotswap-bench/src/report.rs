//! The tables of BENCHMARKS.md.
//!
//! The file is hand-written prose with generated regions between
//! `<!-- hotswap-bench:begin NAME -->` and `<!-- hotswap-bench:end NAME -->`; a run replaces
//! what is between the markers and nothing else (a region missing from the file is inserted
//! before the first `## ` section that is not the bench's, i.e. another engineer's appended
//! section stays last). A region whose rows did not run is left as it was.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::build::{Artifact, Builder, Profile, Tool};
use crate::measure::{median, percentile};
use crate::{Group, Kind, Outcome, Plan, Role, Row};

/// Facts about the machine and the run, stated above the tables.
pub struct Context {
    lines: Vec<String>,
    /// One line for a region that stands alone: date, commit, machine, load.
    pub brief: String,
    /// How the per-call rows were measured (samples, callgrind), for a per-call region that
    /// stands alone.
    percall: String,
}

/// One generated region of BENCHMARKS.md.
pub struct Section {
    pub name: String,
    pub text: String,
    /// Carries its own run details, so a partial run may rewrite it.
    pub standalone: bool,
    /// Why a partial `--write` leaves this region as it is (printed then).
    pub note: Option<String>,
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
                 {}, {} swaps per latency row, {} swaps for memory, {} edits (+1 warm-up) per \
                 edit row; the whole command took {:.0} s",
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
                plan.memory_swaps,
                plan.edits,
                took.as_secs_f64()
            ),
            format!(
                "- Load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {} \
                 (other work on the machine during the run shows here)",
                load_average()
            ),
        ];
        let brief = format!(
            "Run of {} (UTC), hotswap at commit `{commit}`{}; {model}, {usable} usable CPUs; \
             `{}`; load average at the end {}; the command took {:.0} s.",
            command_line("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_else(unknown),
            if dirty {
                " plus uncommitted changes"
            } else {
                ""
            },
            command_line("rustc", &["-V"]).unwrap_or_else(unknown),
            load_average(),
            took.as_secs_f64()
        );
        let percall = format!(
            "Per-call rows: {} round(s) x {} samples of ~{} ms{}, callgrind {}.",
            plan.rounds,
            plan.samples,
            plan.sample_ms,
            if plan.quick { " (`--quick`)" } else { "" },
            if plan.callgrind {
                format!("over {} calls", plan.callgrind_iters)
            } else {
                "skipped".into()
            },
        );
        Context {
            lines,
            brief,
            percall,
        }
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

/// Every generated region this run has rows for.
pub fn sections(
    rows: &[Row],
    outcomes: &[Outcome],
    context: &Context,
    builder: &Builder,
    repo: &Path,
    work: &Path,
) -> Vec<Section> {
    let mut sections = vec![("machine".to_string(), context.lines.join("\n"), false, None)];
    for profile in [Profile::O3, Profile::O0] {
        if let Some(table) = percall_table(rows, outcomes, Group::Sync, profile) {
            sections.push((format!("percall-{}", profile.short()), table, false, None));
        }
    }
    // The `async fn` tables: one region with its own run line, problems and commands, so
    // `--only 'async*' --write` can rewrite it alone.
    let tables: Vec<String> = [Profile::O3, Profile::O0]
        .into_iter()
        .filter_map(|profile| {
            let table = percall_table(rows, outcomes, Group::Async, profile)?;
            Some(format!("**{}**\n\n{table}", profile.label()))
        })
        .collect();
    if !tables.is_empty() {
        let (async_rows, async_outcomes): (Vec<Row>, Vec<Outcome>) = rows
            .iter()
            .zip(outcomes)
            .filter(|(row, _)| row.kind == Kind::PerCall && row.group == Group::Async)
            .map(|(row, outcome)| (row.clone(), outcome.clone()))
            .unzip();
        let text = format!(
            "{} {}\n\n{}\nProblems: {}\n\n{}",
            context.brief,
            context.percall,
            tables.join("\n"),
            problems(&async_rows, &async_outcomes),
            commands(&async_rows, &async_outcomes)
        );
        sections.push(("percall-async".into(), text, true, None));
    }
    if let Some(table) = latency_table(rows, outcomes) {
        sections.push(("latency".into(), table, false, None));
    }
    if let Some(table) = swaps_table(rows, outcomes, builder, false) {
        sections.push(("swaps".into(), table, false, None));
    }
    if let Some(table) = swaps_table(rows, outcomes, builder, true) {
        // The opt-in scale row: its own run line and commands, so `--only scale --write` can
        // rewrite it alone.
        let (scale_rows, scale_outcomes): (Vec<Row>, Vec<Outcome>) = rows
            .iter()
            .zip(outcomes)
            .filter(|(row, _)| row.kind == Kind::Swaps)
            .map(|(row, outcome)| (row.clone(), outcome.clone()))
            .unzip();
        let text = format!(
            "{}\n\n{table}\nProblems: {}\n\n{}",
            context.brief,
            problems(&scale_rows, &scale_outcomes),
            commands(&scale_rows, &scale_outcomes)
        );
        sections.push(("scale".into(), text, true, None));
    }
    if let Some(table) = edit_table(rows, outcomes, false) {
        sections.push(("edit".into(), table, false, None));
    }
    if let Some(table) = edit_table(rows, outcomes, true) {
        // The frameworks' edit rows (opt-in: their first build takes minutes): their own run
        // line and commands, so `--only 'edit-bevy*,edit-egui*' --write` can rewrite them
        // alone. The region is written whole from the rows that ran, so a run without all of
        // them (`--only 'edit-egui*'`) leaves it as it is rather than drop the others' rows.
        let (own_rows, own_outcomes): (Vec<Row>, Vec<Outcome>) = rows
            .iter()
            .zip(outcomes)
            .filter(|(row, _)| row.kind == Kind::Edit && row.tool.is_framework_edit())
            .map(|(row, outcome)| (row.clone(), outcome.clone()))
            .unzip();
        let text = format!(
            "{}\n\n{table}\nProblems: {}\n\n{}",
            context.brief,
            problems(&own_rows, &own_outcomes),
            commands(&own_rows, &own_outcomes)
        );
        let missing = missing_framework_rows(rows);
        let note = (!missing.is_empty()).then(|| {
            format!(
                "the edit-frameworks region holds every framework's rows and is written whole; \
                 this run lacks {}, so it is printed, not written: run \
                 `--only 'edit-bevy*,edit-egui*' --write`",
                missing
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        sections.push(("edit-frameworks".into(), text, missing.is_empty(), note));
    }
    // First build: the default rows' region and the opt-in Bevy row's, each with its own run
    // line and commands and each written whole (only by a run of all its rows).
    for (name, opt_in) in [("first-build", false), ("first-build-bevy", true)] {
        if let Some(section) = first_build_section(rows, outcomes, context, name, opt_in) {
            sections.push(section);
        }
    }
    // subsecond hot-patched by `dx serve --hotpatch` (opt-in): a region of its own.
    sections.extend(crate::subsecond::section(rows, outcomes, &context.brief));
    sections.push(("problems".into(), problems(rows, outcomes), false, None));
    sections.push(("commands".into(), commands(rows, outcomes), false, None));
    let home = std::env::var("HOME").unwrap_or_else(|_| "/nonexistent".into());
    sections
        .into_iter()
        .map(|(name, text, standalone, note)| Section {
            name,
            text: text
                .replace(&work.display().to_string(), "$WORK")
                .replace(&repo.display().to_string(), "<repo>")
                .replace(&home, "~"),
            standalone,
            note,
        })
        .collect()
}

type Pending = (String, String, bool, Option<String>);

/// The first-build region of the default rows (`opt_in` false) or of the opt-in ones.
fn first_build_section(
    rows: &[Row],
    outcomes: &[Outcome],
    context: &Context,
    name: &str,
    opt_in: bool,
) -> Option<Pending> {
    let (own_rows, own_outcomes): (Vec<Row>, Vec<Outcome>) = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::FirstBuild && row.opt_in == opt_in)
        .map(|(row, outcome)| (row.clone(), outcome.clone()))
        .unzip();
    if own_rows.is_empty() {
        return None;
    }
    let text = format!(
        "{}\n\n{}\nProblems: {}\n\n{}",
        context.brief,
        first_build_table(&own_rows, &own_outcomes),
        problems(&own_rows, &own_outcomes),
        commands(&own_rows, &own_outcomes)
    );
    let missing: Vec<String> = crate::rows()
        .into_iter()
        .filter(|row| row.kind == Kind::FirstBuild && row.opt_in == opt_in)
        .filter(|row| !own_rows.iter().any(|ran| ran.id == row.id))
        .map(|row| format!("`{}`", row.id))
        .collect();
    let note = (!missing.is_empty()).then(|| {
        format!(
            "the {name} region is written whole; this run lacks {}, so it is printed, not written",
            missing.join(", ")
        )
    });
    Some((name.to_string(), text, missing.is_empty(), note))
}

/// Seconds from milliseconds.
pub fn fmt_s(ms: f64) -> String {
    if ms.is_finite() {
        format!("{:.2}", ms / 1e3)
    } else {
        "—".into()
    }
}

/// The median of a first-build row's figure (`hot_ms`: its `started` times), NaN if missing.
pub fn first_build_figure(outcome: &Outcome, key: &str) -> f64 {
    if outcome.error.is_some() {
        return f64::NAN;
    }
    let values = if key == "hot_ms" {
        Some(&outcome.values)
    } else {
        outcome.extras.get(key)
    };
    values
        .filter(|v| !v.is_empty())
        .map_or(f64::NAN, |v| median(v))
}

fn first_build_table(rows: &[Row], outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| program | repetitions | plain `cargo build`, median s (min–max) | its link, median s \
         | `cargo hotswap run` to `started`, median s (min–max) | its `built in`, median s (crates \
         compiled) | its link, median s | ratio hot / plain (to `started`) | ratio hot / plain (`built in`) | \
         command |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for (row, outcome) in rows.iter().zip(outcomes) {
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {} | — | — | — | — | — | — | — | — | {} — {} |\n",
                row.label,
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let figure = |key| first_build_figure(outcome, key);
        let range = |values: Option<&Vec<f64>>| match values {
            Some(v) if !v.is_empty() => {
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(" ({}–{})", fmt_s(min), fmt_s(max))
            }
            _ => String::new(),
        };
        let plain = figure("plain_ms");
        out.push_str(&format!(
            "| {} | {} | {}{} | {} | {}{} | {}{} | {} | {} | {} | {} |\n",
            row.label,
            outcome.values.len(),
            fmt_s(plain),
            range(outcome.extras.get("plain_ms")),
            fmt_s(figure("plain_link_ms")),
            fmt_s(figure("hot_ms")),
            range(Some(&outcome.values)),
            fmt_s(figure("hot_built_ms")),
            match outcome.extras.get("hot_compiled").and_then(|v| v.first()) {
                Some(n) => format!(" ({n:.0})"),
                None => String::new(),
            },
            fmt_s(figure("hot_link_ms")),
            ratio(figure("hot_ms"), plain),
            ratio(figure("hot_built_ms"), plain),
            only(row.id)
        ));
    }
    out
}

/// The framework edit rows (the `edit-frameworks` region's) that are not among `rows`.
fn missing_framework_rows(rows: &[Row]) -> Vec<&'static str> {
    crate::rows()
        .into_iter()
        .filter(|row| row.kind == Kind::Edit && row.tool.is_framework_edit())
        .filter(|row| !rows.iter().any(|ran| ran.id == row.id))
        .map(|row| row.id)
        .collect()
}

pub fn ratio(value: f64, base: f64) -> String {
    if value.is_finite() && base.is_finite() && base > 0.0 {
        let ratio = value / base;
        if ratio.abs() < 0.095 {
            format!("{ratio:.3}x")
        } else {
            format!("{ratio:.2}x")
        }
    } else {
        "—".into()
    }
}

pub(crate) fn only(id: &str) -> String {
    format!("`cargo run -p hotswap-bench --release -- --only {id}`")
}

fn percall_table(
    rows: &[Row],
    outcomes: &[Outcome],
    group: Group,
    profile: Profile,
) -> Option<String> {
    let in_table: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::PerCall && row.group == group && row.table == profile)
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

pub(crate) fn fmt_ns(value: f64) -> String {
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

pub(crate) fn one_line(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

/// The median of the row named `id`, if it ran without error.
fn median_of(rows: &[Row], outcomes: &[Outcome], id: Option<&str>) -> f64 {
    rows.iter()
        .zip(outcomes)
        .find(|(row, outcome)| Some(row.id) == id && outcome.error.is_none())
        .map_or(f64::NAN, |(_, outcome)| median(&outcome.values))
}

pub(crate) fn min_max(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{}–{}", fmt_ms(min), fmt_ms(max))
}

/// Milliseconds with a precision that suits them.
pub fn fmt_ms(value: f64) -> String {
    if !value.is_finite() {
        "—".into()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
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
    let mut out = String::from(
        "| variant | swaps | median ms | p90 ms | min–max ms | the runtime's own swap (`micros`), \
         median ms | baseline median ms | ratio | command |\n|---|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for (row, outcome) in in_table {
        let base = match row.role {
            Role::Baseline => median(&outcome.values),
            _ => median_of(rows, outcomes, row.baseline),
        };
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {} | — | — | — | — | — | {} | — | {} — {} |\n",
                row.label,
                fmt_ms(base),
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let values = &outcome.values;
        let own = outcome
            .extras
            .get("micros")
            .map_or(f64::NAN, |us| median(us) / 1e3);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            values.len(),
            fmt_ms(median(values)),
            fmt_ms(percentile(values, 90.0)),
            min_max(values),
            fmt_ms(own),
            fmt_ms(base),
            ratio(median(values), base),
            only(row.id)
        ));
    }
    Some(out)
}

/// The order the runtime reports its phases in.
const PHASES: [&str; 7] = [
    "stage",
    "check file",
    "dlopen",
    "entries",
    "check signatures",
    "migrate",
    "swap",
];

fn swaps_table(
    rows: &[Row],
    outcomes: &[Outcome],
    builder: &Builder,
    opt_in: bool,
) -> Option<String> {
    let in_table: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::Swaps)
        .collect();
    // The scale table needs its opt-in row; the default table is the default rows alone.
    if opt_in && !in_table.iter().any(|(row, _)| row.opt_in) {
        return None;
    }
    let in_table: Vec<(&Row, &Outcome)> = in_table
        .into_iter()
        .filter(|(row, _)| opt_in || !row.opt_in)
        .collect();
    if in_table.is_empty() {
        return None;
    }
    let mut out = String::from(
        "| hot crate | functions | patch file | patch build: rustc replay + link (+ checks) ms | swaps | \
         swap median ms (the runtime's `micros`) | p90 ms | phases, median ms | VmRSS growth \
         per swap | VmSize growth per swap | deleted patch files still mapped at the end | \
         ratio to the `hsb_add` swap | command |\n\
         |---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|\n",
    );
    for (row, outcome) in in_table {
        let base = match row.role {
            Role::Baseline => median(&outcome.values),
            _ => median_of(rows, outcomes, row.baseline),
        };
        let patch = |mark| {
            builder
                .thin_builds
                .get(&Artifact::thin_patch(row.tool, row.profile, mark))
                .copied()
        };
        let (size, build) = match (patch(1), patch(2)) {
            (Some(a), b) => {
                let builds: Vec<f64> = std::iter::once(a)
                    .chain(b)
                    .map(|p| p.rustc.as_secs_f64() * 1e3)
                    .collect();
                let links: Vec<f64> = std::iter::once(a)
                    .chain(b)
                    .map(|p| p.link.as_secs_f64() * 1e3)
                    .collect();
                let checks: Vec<f64> = std::iter::once(a)
                    .chain(b)
                    .filter_map(|p| p.check.map(|c| c.as_secs_f64() * 1e3))
                    .collect();
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let check = if checks.is_empty() {
                    String::new()
                } else {
                    format!(" (+ {})", fmt_ms(mean(&checks)))
                };
                (
                    format!("{:.1} MB", a.bytes as f64 / 1e6),
                    format!("{:.0} + {:.0}{check}", mean(&builds), mean(&links)),
                )
            }
            _ => ("—".into(), "—".into()),
        };
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {} | — | {size} | {build} | — | — | — | — | — | — | — | — | {} — {} |\n",
                row.label,
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let extras = &outcome.extras;
        let first = |name: &str| extras.get(name).and_then(|v| v.first().copied());
        let count = outcome.values.len();
        let growth = |what: &str| match (
            first(&format!("{what}_warm_kb")),
            first(&format!("{what}_end_kb")),
        ) {
            (Some(warm), Some(end)) if count > 0 => {
                format!("{:.1} KiB", (end - warm) / count as f64)
            }
            _ => "—".into(),
        };
        let phases: Vec<String> = PHASES
            .iter()
            .filter_map(|phase| {
                let values = extras.get(&format!("phase:{phase}"))?;
                // The warm-up swaps come first; keep the measured ones.
                let measured = &values[values.len().saturating_sub(count)..];
                Some(format!("{phase} {}", fmt_ms(median(measured))))
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {size} | {build} | {count} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            first("functions").map_or("—".into(), |f| format!("{f:.0}")),
            fmt_ms(median(&outcome.values)),
            fmt_ms(percentile(&outcome.values, 90.0)),
            if phases.is_empty() {
                "—".into()
            } else {
                phases.join(", ")
            },
            growth("rss"),
            growth("vmsize"),
            first("deleted_mapped_patches").map_or("—".into(), |n| format!("{n:.0}")),
            ratio(median(&outcome.values), base),
            only(row.id)
        ));
    }
    Some(out)
}

/// The edit-to-effect table of the small and heavy crates, or (`frameworks`) of the Bevy and
/// egui apps.
fn edit_table(rows: &[Row], outcomes: &[Outcome], frameworks: bool) -> Option<String> {
    let in_table: Vec<(&Row, &Outcome)> = rows
        .iter()
        .zip(outcomes)
        .filter(|(row, _)| row.kind == Kind::Edit && row.tool.is_framework_edit() == frameworks)
        .filter(|(row, _)| !row.tool.is_dx_edit())
        .collect();
    if in_table.is_empty() {
        return None;
    }
    let mut out = String::from(
        "| variant | edits | median ms | p90 ms | min–max ms | first edit (warm-up) ms | \
         reported per edit, median ms | baseline median ms | ratio | command |\n\
         |---|--:|--:|--:|--:|--:|---|--:|--:|---|\n",
    );
    for (row, outcome) in in_table {
        let base = match row.role {
            Role::Baseline => median(&outcome.values),
            _ => median_of(rows, outcomes, row.baseline),
        };
        if let Some(error) = &outcome.error {
            out.push_str(&format!(
                "| {} | — | — | — | — | — | — | {} | — | {} — {} |\n",
                row.label,
                fmt_ms(base),
                only(row.id),
                one_line(error)
            ));
            continue;
        }
        let extras = &outcome.extras;
        let part = |key: &str, name: &str| {
            extras
                .get(key)
                .map(|v| format!("{name} {}", fmt_ms(median(v))))
        };
        let reported: Vec<String> = [
            part("cli_build_ms", "build"),
            part("cli_link_ms", "link"),
            part("cli_check_ms", "check"),
            part("cli_swap_ms", "swap"),
            part("hlr_build_ms", "`cargo build`"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let values = &outcome.values;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.label,
            values.len(),
            fmt_ms(median(values)),
            fmt_ms(percentile(values, 90.0)),
            min_max(values),
            extras
                .get("first_ms")
                .and_then(|v| v.first())
                .map_or("—".into(), |ms| fmt_ms(*ms)),
            if reported.is_empty() {
                "—".into()
            } else {
                reported.join(", ")
            },
            fmt_ms(base),
            ratio(median(values), base),
            only(row.id)
        ));
    }
    Some(out)
}

pub(crate) fn problems(rows: &[Row], outcomes: &[Outcome]) -> String {
    let mut lines = Vec::new();
    for (row, outcome) in rows.iter().zip(outcomes) {
        if let Some(error) = &outcome.error {
            lines.push(format!("- `{}`: {}", row.id, one_line(error)));
        } else if let Some(Err(error)) = &outcome.instructions {
            lines.push(format!("- `{}` (callgrind): {}", row.id, one_line(error)));
        }
        for note in &outcome.notes {
            lines.push(format!("- `{}`: {}", row.id, one_line(note)));
        }
    }
    if lines.is_empty() {
        "None: every row built and ran.".into()
    } else {
        lines.join("\n")
    }
}

pub(crate) fn commands(rows: &[Row], outcomes: &[Outcome]) -> String {
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
        // Edit rows describe their run in prose with its own code spans.
        let run = match (&outcome.run, row.kind) {
            (Some(run), Kind::Edit | Kind::FirstBuild) => run.clone(),
            (Some(run), _) => format!("`{run}`"),
            (None, _) => "—".into(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {}{symbol} |\n",
            row.id,
            builds
                .iter()
                .map(|b| format!("`{}`", b.replace('`', "'")))
                .collect::<Vec<_>>()
                .join("<br>"),
            one_line(&run),
        ));
    }
    out
}

/// Replaces the generated regions of `file`, keeping everything else. A region the file does not
/// have yet goes before `## Soak` (a section another engineer appends at the end), or at the end.
pub fn rewrite(file: &Path, sections: &[Section]) -> Result<(), String> {
    let mut text = std::fs::read_to_string(file).unwrap_or_default();
    for section in sections {
        let name = &section.name;
        let begin = format!("<!-- hotswap-bench:begin {name} -->");
        let end = format!("<!-- hotswap-bench:end {name} -->");
        let region = format!("{begin}\n{}\n{end}", section.text.trim_end());
        match (text.find(&begin), text.find(&end)) {
            (Some(start), Some(stop)) if stop > start => {
                text.replace_range(start..stop + end.len(), &region);
            }
            _ => match text.find("\n## Soak") {
                Some(at) => text.insert_str(at + 1, &format!("{region}\n\n")),
                None => {
                    if !text.is_empty() && !text.ends_with("\n\n") {
                        text.push('\n');
                    }
                    text.push_str(&region);
                    text.push('\n');
                }
            },
        }
    }
    std::fs::write(file, text).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::missing_framework_rows;
    use crate::rows;

    #[test]
    fn the_frameworks_region_is_written_only_with_all_its_rows() {
        let selected = |prefixes: &[&str]| -> Vec<crate::Row> {
            rows()
                .into_iter()
                .filter(|row| prefixes.iter().any(|p| row.id.starts_with(p)))
                .collect()
        };
        assert_eq!(
            missing_framework_rows(&selected(&["edit-egui"])),
            ["edit-bevy", "edit-bevy-cargo"]
        );
        assert_eq!(
            missing_framework_rows(&selected(&["edit-bevy"])),
            ["edit-egui", "edit-egui-cargo"]
        );
        assert!(missing_framework_rows(&selected(&["edit-bevy", "edit-egui"])).is_empty());
    }
}
