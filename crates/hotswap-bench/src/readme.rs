//! The "How fast" table of README.md: the region `readme-fast`, filled from the figures of the
//! rows that ran (the same figures BENCHMARKS.md's tables show), and only by a run of every row
//! it needs; otherwise it is left as it is.

use crate::measure::median;
use crate::report::{first_build_figure, fmt_ms, fmt_s, ratio, Context, Section};
use crate::{Outcome, Row};

/// Every row the table takes a figure from.
pub const NEEDED: [&str; 24] = [
    "direct-o3",
    "inline-o3",
    "hotswap-cli-o3",
    "hotswap-thin-o3",
    "hlr-o3",
    "direct-o0",
    "inline-o0",
    "hotswap-cli-o0",
    "hotswap-thin-o0",
    "hlr-o0",
    "subsecond-o0",
    "latency-thin",
    "latency-hotswap",
    "latency-hlr-20ms",
    "latency-hlr-default",
    "edit-small",
    "edit-small-hlr",
    "edit-main",
    "edit-c-host",
    "edit-python",
    "edit-heavy",
    "edit-heavy-hlr",
    "first-build-small",
    "first-build-heavy",
];

/// The region, or the ids of the rows it needs that this run did not have.
pub fn section(
    rows: &[Row],
    outcomes: &[Outcome],
    context: &Context,
) -> Result<Section, Vec<&'static str>> {
    let text = render(rows, outcomes, &context.brief)?;
    Ok(Section {
        name: "readme-fast".into(),
        text,
        standalone: true,
        note: None,
    })
}

/// The table and its run line.
pub fn render(
    rows: &[Row],
    outcomes: &[Outcome],
    brief: &str,
) -> Result<String, Vec<&'static str>> {
    let missing: Vec<&'static str> = NEEDED
        .iter()
        .copied()
        .filter(|id| !rows.iter().any(|row| row.id == *id))
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let outcome = |id: &str| -> Option<&Outcome> {
        rows.iter()
            .zip(outcomes)
            .find(|(row, outcome)| row.id == id && outcome.error.is_none())
            .map(|(_, outcome)| outcome)
    };
    let ns = |id: &str| outcome(id).map_or(f64::NAN, |o| median(&o.values));
    let ir = |id: &str| match outcome(id).and_then(|o| o.instructions.as_ref()) {
        Some(Ok(value)) => *value,
        _ => f64::NAN,
    };
    let ms = |id: &str| outcome(id).map_or(f64::NAN, |o| median(&o.values));
    let extra = |id: &str, key: &str| {
        outcome(id)
            .and_then(|o| o.extras.get(key))
            .filter(|v| !v.is_empty())
            .map_or(f64::NAN, |v| median(v))
    };
    let first = |id: &str, key: &str| outcome(id).map_or(f64::NAN, |o| first_build_figure(o, key));
    let instr = |value: f64| {
        if value.is_finite() {
            format!("{value:.0}")
        } else {
            "—".into()
        }
    };
    let delta = |value: f64, base: f64| {
        if value.is_finite() && base.is_finite() {
            format!("{:+.2} ns", value - base)
        } else {
            "—".into()
        }
    };
    let mut table = vec![
        "| | hotswap | baseline, same run |".to_string(),
        "| --- | --- | --- |".to_string(),
    ];
    let mut line = |what: String, hotswap: String, baseline: String| {
        table.push(format!("| {what} | {hotswap} | {baseline} |"));
    };
    line(
        "a hot call, opt-level 3 (built as `cargo hotswap run` builds it)".into(),
        format!(
            "{} instructions, {} (after a thin patch: {} instructions, {})",
            instr(ir("hotswap-cli-o3")),
            delta(ns("hotswap-cli-o3"), ns("direct-o3")),
            instr(ir("hotswap-thin-o3")),
            delta(ns("hotswap-thin-o3"), ns("direct-o3")),
        ),
        format!(
            "direct call: {} instructions; hot-lib-reloader: {} ({} a direct call's time, \
             before a reload)",
            instr(ir("direct-o3")),
            instr(ir("hlr-o3")),
            ratio(ns("hlr-o3"), ns("direct-o3")),
        ),
    );
    line(
        "a hot call, dev profile (opt-level 0)".into(),
        format!(
            "{} instructions, {} a direct call's time (after a thin patch: {} instructions, {})",
            instr(ir("hotswap-cli-o0")),
            ratio(ns("hotswap-cli-o0"), ns("direct-o0")),
            instr(ir("hotswap-thin-o0")),
            ratio(ns("hotswap-thin-o0"), ns("direct-o0")),
        ),
        format!(
            "direct call: {} instructions; hot-lib-reloader: {}; subsecond: {}",
            instr(ir("direct-o0")),
            instr(ir("hlr-o0")),
            instr(ir("subsecond-o0")),
        ),
    );
    line(
        "patch file complete → new code running".into(),
        format!(
            "{} ms (thin patch, what `cargo hotswap run` sends); {} ms (full library, file watch)",
            fmt_ms(ms("latency-thin")),
            fmt_ms(ms("latency-hotswap")),
        ),
        format!(
            "hot-lib-reloader: {} ms (20 ms debounce), {} ms (default)",
            fmt_ms(ms("latency-hlr-20ms")),
            fmt_ms(ms("latency-hlr-default")),
        ),
    );
    let edit = |id: &str| {
        format!(
            "{} ms median (checks before delivery: {} ms)",
            fmt_ms(ms(id)),
            fmt_ms(extra(id, "cli_check_ms"))
        )
    };
    line(
        "saved file → new output, small crate".into(),
        edit("edit-small"),
        format!(
            "hot-lib-reloader + `cargo build`: {} ms ({})",
            fmt_ms(ms("edit-small-hlr")),
            ratio(ms("edit-small"), ms("edit-small-hlr")),
        ),
    );
    for (id, what) in [
        (
            "edit-main",
            "saved file → new output, a `main.rs`-only program (the same small code)",
        ),
        (
            "edit-c-host",
            "saved file → new output, the same small code in a `cdylib` loaded by a C program \
             (`run --lib`)",
        ),
        (
            "edit-python",
            "saved file → new output, the same small code in a PyO3 module loaded by `python3` \
             (`run --lib`)",
        ),
    ] {
        line(
            what.into(),
            edit(id),
            format!(
                "the small crate's row above: {} ms ({})",
                fmt_ms(ms("edit-small")),
                ratio(ms(id), ms("edit-small")),
            ),
        );
    }
    line(
        "saved file → new output, tokio + axum crate".into(),
        edit("edit-heavy"),
        format!(
            "hot-lib-reloader + `cargo build`: {} ms ({})",
            fmt_ms(ms("edit-heavy-hlr")),
            ratio(ms("edit-heavy"), ms("edit-heavy-hlr")),
        ),
    );
    for (id, what) in [
        (
            "first-build-small",
            "first build of the program's own crates (dependencies built), small crate",
        ),
        (
            "first-build-heavy",
            "first build of the program's own crates (dependencies built), tokio + axum crate",
        ),
    ] {
        line(
            what.into(),
            format!(
                "{} s to the program's start (`cargo hotswap run`; link {} s)",
                fmt_s(first(id, "hot_ms")),
                fmt_s(first(id, "hot_link_ms")),
            ),
            format!(
                "plain `cargo build`: {} s (link {} s); hot / plain {}",
                fmt_s(first(id, "plain_ms")),
                fmt_s(first(id, "plain_link_ms")),
                ratio(first(id, "hot_ms"), first(id, "plain_ms")),
            ),
        );
    }
    let failed: Vec<String> = NEEDED
        .iter()
        .filter(|id| outcome(id).is_none())
        .map(|id| format!("`{id}`"))
        .collect();
    let failed = if failed.is_empty() {
        String::new()
    } else {
        format!(
            "\n\nRows that failed in that run (their figures are `—`; BENCHMARKS.md's Problems \
             says why): {}.",
            failed.join(", ")
        )
    };
    Ok(format!(
        "Generated by `cargo run -p hotswap-bench --release -- --write` from its rows: every \
         figure against a baseline of the same run on this project's shared 2-core machine; \
         [BENCHMARKS.md](BENCHMARKS.md) has each row, its spread, its baseline and the command \
         that reproduces it. {brief}\n\n{}{failed}",
        table.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::{render, NEEDED};
    use crate::{rows, Outcome};

    fn outcome(values: &[f64], instructions: Option<f64>) -> Outcome {
        Outcome {
            values: values.to_vec(),
            instructions: instructions.map(Ok),
            ..Outcome::default()
        }
    }

    #[test]
    fn the_table_is_rendered_from_the_rows_figures() {
        let rows: Vec<crate::Row> = rows()
            .into_iter()
            .filter(|row| NEEDED.contains(&row.id))
            .collect();
        assert_eq!(rows.len(), NEEDED.len());
        let outcomes: Vec<Outcome> = rows
            .iter()
            .map(|row| match row.id {
                "direct-o3" => outcome(&[1.0, 1.2, 1.1], Some(10.0)),
                "hotswap-cli-o3" => outcome(&[1.7], Some(11.0)),
                "hotswap-thin-o3" => outcome(&[2.3], Some(11.0)),
                "hlr-o3" => outcome(&[80.0], Some(882.0)),
                "direct-o0" => outcome(&[2.0], Some(100.0)),
                "hotswap-cli-o0" => outcome(&[2.4], Some(114.0)),
                "edit-small" => {
                    let mut o = outcome(&[110.0, 113.0, 120.0], None);
                    o.extras.insert("cli_check_ms".into(), vec![1.7]);
                    o
                }
                "edit-small-hlr" => outcome(&[169.0], None),
                "edit-main" => outcome(&[162.0], None),
                "latency-thin" => outcome(&[0.46], None),
                "first-build-small" => {
                    let mut o = outcome(&[6000.0, 6500.0, 7000.0], None);
                    o.extras.insert("plain_ms".into(), vec![5000.0]);
                    o.extras.insert("plain_link_ms".into(), vec![300.0]);
                    o.extras.insert("hot_link_ms".into(), vec![900.0]);
                    o
                }
                "edit-python" => Outcome {
                    error: Some("cannot run python3".into()),
                    ..Outcome::default()
                },
                _ => outcome(&[1.0], None),
            })
            .collect();
        let text = render(&rows, &outcomes, "Run of TODAY.").unwrap();
        assert!(text.contains("Run of TODAY."), "{text}");
        assert!(text.contains("[BENCHMARKS.md](BENCHMARKS.md)"));
        assert!(
            text.contains(
                "| a hot call, opt-level 3 (built as `cargo hotswap run` builds it) | 11 \
                 instructions, +0.60 ns (after a thin patch: 11 instructions, +1.20 ns) | direct \
                 call: 10 instructions; hot-lib-reloader: 882 (72.73x a direct call's time, \
                 before a reload) |"
            ),
            "{text}"
        );
        assert!(text.contains("| 114 instructions, 1.20x a direct call's time"));
        assert!(text.contains(
            "| saved file → new output, small crate | 113.0 ms median (checks before delivery: \
             1.70 ms) | hot-lib-reloader + `cargo build`: 169.0 ms (0.67x) |"
        ));
        assert!(text.contains("| 162.0 ms median"));
        assert!(text.contains("the small crate's row above: 113.0 ms (1.43x)"));
        assert!(text.contains("| 0.46 ms (thin patch"));
        assert!(text.contains(
            "| 6.50 s to the program's start (`cargo hotswap run`; link 0.90 s) | plain `cargo \
             build`: 5.00 s (link 0.30 s); hot / plain 1.30x |"
        ));
        // A failed row: no figure, and named.
        assert!(text.contains("| — ms median (checks before delivery: — ms) |"));
        assert!(text.contains("failed in that run") && text.contains("`edit-python`"));
    }

    #[test]
    fn a_run_without_every_row_it_needs_renders_nothing() {
        let rows: Vec<crate::Row> = rows()
            .into_iter()
            .filter(|row| row.id.starts_with("edit-"))
            .collect();
        let outcomes = vec![Outcome::default(); rows.len()];
        let missing = render(&rows, &outcomes, "").unwrap_err();
        assert!(missing.contains(&"direct-o3") && missing.contains(&"first-build-small"));
        assert!(!missing.contains(&"edit-small"));
    }
}
