//! hotswap's benchmarks: one command that builds scratch projects, measures, and rewrites the
//! tables of BENCHMARKS.md.
//!
//! ```text
//! cargo run -p hotswap-bench --release              # every default row, rewrites BENCHMARKS.md
//! cargo run -p hotswap-bench --release -- --quick   # fewer samples; prints, writes nothing
//! cargo run -p hotswap-bench --release -- --only hotswap-o0,direct-o0
//! cargo run -p hotswap-bench --release -- --only scale --write   # the opt-in 10k row
//! cargo run -p hotswap-bench --release -- --only 'async*' --write   # the `async fn` tables
//! cargo run -p hotswap-bench --release -- --only 'edit-bevy*,edit-egui*' --write   # frameworks
//! cargo run -p hotswap-bench --release -- --only 'first-build*' --write   # first build (+ Bevy)
//! ```
//!
//! With `--write`, README.md's "How fast" table (region `readme-fast`, `readme.rs`) is rewritten
//! too, from the same figures, when the run had every row it needs (a full default run does).
//!
//! Options:
//! - `--quick`: 1 round of 3 samples, 6 swaps, 5 edits, 100 swaps for memory; tables are
//!   printed, BENCHMARKS.md is left alone unless `--write` is given too.
//! - `--only ID[,ID...]`: only these rows (`--list` shows the ids; `PREFIX*` matches a prefix)
//!   and the baseline rows their ratios need; prints, and with `--write` rewrites only the
//!   regions that stand alone (the opt-in scale table; the `async fn` per-call tables, so
//!   `--only 'async*' --write` rewrites them alone; the frameworks' edit-to-effect table,
//!   written whole, so only by a run of all its rows: `--only 'edit-bevy*,edit-egui*'
//!   --write`; a run of some of them prints it).
//! - `--all`: the default rows and the opt-in ones (`scale`: 10,000 hot functions, minutes of
//!   compiling).
//! - `--scale-functions N`: hot functions of the scale row (default 10000).
//! - `--no-write`: print the tables instead of rewriting BENCHMARKS.md.
//! - `--no-callgrind`: skip the instruction counts.
//! - `--hotswap-dir DIR`: build the scratch projects against another copy of the `hotswap`
//!   crate (to measure a change to the dispatch path before making it); never writes.
//! - `--keep`: keep the temporary directory (scratch projects, binaries, run directories).
//!
//! Nothing here is a test and nothing asserts a time: the figures are for reading.
//! Every row is defined in [`rows`]; a new kind of measurement is a new [`Kind`] and new rows,
//! and its table a new region of BENCHMARKS.md (`report.rs`). Kinds: per call (time and
//! callgrind; of a plain `fn`, and in a [`Group`] of tables of its own of an `async fn`), swap
//! latency (file watch, or thin patches over the control channel, played by the host itself:
//! `fixtures/channel.rs`), thin swaps back to back (the runtime's phases, memory), and edit to
//! effect with the real `cargo hotswap run` and with hot-lib-reloader (`edit.rs`).

mod build;
mod edit;
mod first;
mod measure;
mod readme;
mod report;
mod subsecond;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use build::{Artifact, Builder, Profile, Tool};
use measure::Run;

/// What a row measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Time and instructions per call of the trivial function.
    PerCall,
    /// Swap latency: from a complete library or patch file to the new code observed.
    Latency,
    /// Many thin patches in one process: the runtime's own swap time, its phases, and memory.
    Swaps,
    /// From a saved source file to the running program's first output of the new code.
    Edit,
    /// The first build of a program's own crates, `cargo hotswap run` against a plain
    /// `cargo build` (`first.rs`).
    FirstBuild,
}

/// The part a per-call row plays in its table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// The loop without a call: subtracted to get the net cost of a call.
    Harness,
    /// The direct call every other row is compared with.
    Baseline,
    Measured,
}

/// Which per-call tables a per-call row belongs to (with [`Row::table`], its profile).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    /// `add`, a plain `fn`: the `percall-o3` and `percall-o0` regions.
    Sync,
    /// `add_async`, an `async fn` polled by a minimal executor: the `percall-async` region.
    Async,
}

/// One row of a table.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: &'static str,
    pub kind: Kind,
    pub tool: Tool,
    /// The table a per-call row belongs to (its baseline's profile).
    pub table: Profile,
    /// And its group of tables (other kinds: `Sync`, unused).
    pub group: Group,
    pub profile: Profile,
    pub role: Role,
    pub label: &'static str,
    /// The host build.
    pub host: Artifact,
    /// Host arguments (before the measuring parameters the bench adds).
    pub args: &'static [&'static str],
    /// Libraries: installed at start (`initial`) and during the run (`patches`, with marks).
    pub initial: Option<Artifact>,
    pub patches: Vec<Artifact>,
    /// The measuring function callgrind collects (per-call rows).
    pub symbol: &'static str,
    /// Run only when named with `--only` (or with `--all`).
    pub opt_in: bool,
    /// The row this one's ratio is taken against (all kinds but per-call, whose tables have
    /// their baseline and harness rows).
    pub baseline: Option<&'static str>,
    /// Edit rows: the crate edited and the program run.
    pub edit: Option<edit::Spec>,
}

/// Every row, in the order of the tables.
pub fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for profile in [Profile::O3, Profile::O0] {
        let o3 = profile == Profile::O3;
        let normal = Artifact::host(Tool::Hotswap, profile, false);
        let hot = Artifact::host(Tool::Hotswap, profile, true);
        let hlr = Artifact::host(Tool::HotLibReloader, profile, false);
        let base = Row {
            id: "",
            kind: Kind::PerCall,
            tool: Tool::Hotswap,
            table: profile,
            group: Group::Sync,
            profile,
            role: Role::Measured,
            label: "",
            host: normal.clone(),
            args: &[],
            initial: None,
            patches: Vec::new(),
            symbol: "",
            opt_in: false,
            baseline: None,
            edit: None,
        };
        rows.push(Row {
            id: if o3 { "inline-o3" } else { "inline-o0" },
            role: Role::Harness,
            label: "no call: `add`'s body written in the loop (the harness's own cost)",
            args: &["percall", "inline"],
            symbol: "hsb_measure_inline",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "direct-o3" } else { "direct-o0" },
            role: Role::Baseline,
            label: "**baseline**: direct call, normal build (`add` is `#[inline(never)]`)",
            args: &["percall", "call"],
            symbol: "hsb_measure_call",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "inlinable-o3" } else { "inlinable-o0" },
            label: "direct call of a plain `pub fn` (the compiler may inline it)",
            args: &["percall", "inlinable"],
            symbol: "hsb_measure_inlinable",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "hotswap-o3" } else { "hotswap-o0" },
            label: "**hotswap** hot mode, before any patch",
            host: hot.clone(),
            args: &["percall", "call"],
            symbol: "hsb_measure_call",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 {
                "hotswap-after-o3"
            } else {
                "hotswap-after-o0"
            },
            label: "**hotswap** hot mode, after a swap (rebuilt cdylib, full library mode)",
            host: hot.clone(),
            args: &["percall", "after"],
            patches: vec![Artifact::library(Tool::Hotswap, "hsb_add", profile, 1)],
            symbol: "hsb_measure_call",
            ..base.clone()
        });
        let thin = Artifact::thin_host(Tool::Hotswap, profile);
        rows.push(Row {
            id: if o3 {
                "hotswap-cli-o3"
            } else {
                "hotswap-cli-o0"
            },
            label: "**hotswap** built as `cargo hotswap run` builds it (`--cfg hotswap`, \
                    dependencies whole, `--export-dynamic`), before any patch",
            host: thin.clone(),
            args: &["percall", "call"],
            symbol: "hsb_measure_call",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 {
                "hotswap-thin-o3"
            } else {
                "hotswap-thin-o0"
            },
            label: "**hotswap** after a thin patch (`cargo hotswap run`'s patch, sent over its \
                    control channel; called directly)",
            host: thin,
            args: &["percall", "thin"],
            patches: vec![Artifact::thin_patch(Tool::Hotswap, profile, 1)],
            symbol: "hsb_measure_call",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "hlr-o3" } else { "hlr-o0" },
            tool: Tool::HotLibReloader,
            label: "hot-lib-reloader `#[hot_module]` fn, before any reload",
            host: hlr.clone(),
            args: &["percall", "before"],
            initial: Some(Artifact::library(
                Tool::HotLibReloader,
                "hlr_add",
                profile,
                0,
            )),
            symbol: "hlr_measure_before",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "hlr-after-o3" } else { "hlr-after-o0" },
            tool: Tool::HotLibReloader,
            label: "hot-lib-reloader `#[hot_module]` fn, after a reload",
            host: hlr,
            args: &["percall", "after"],
            initial: Some(Artifact::library(
                Tool::HotLibReloader,
                "hlr_add",
                profile,
                0,
            )),
            patches: vec![Artifact::library(
                Tool::HotLibReloader,
                "hlr_add",
                profile,
                1,
            )],
            symbol: "hlr_measure_after",
            ..base.clone()
        });
        rows.push(Row {
            id: if o3 { "subsecond-o3" } else { "subsecond-o0" },
            tool: Tool::Subsecond,
            label: if o3 {
                "subsecond `subsecond::call`, before any patch (compiled out: no debug assertions)"
            } else {
                "subsecond `subsecond::call`, before any patch"
            },
            host: Artifact::host(Tool::Subsecond, profile, false),
            args: &["percall", "call"],
            symbol: "ss_measure_call",
            ..base.clone()
        });
        if o3 {
            rows.push(Row {
                id: "subsecond-o3da",
                tool: Tool::Subsecond,
                profile: Profile::O3DebugAssertions,
                label: "subsecond `subsecond::call`, before any patch",
                host: Artifact::host(Tool::Subsecond, Profile::O3DebugAssertions, false),
                args: &["percall", "call"],
                symbol: "ss_measure_call",
                ..base.clone()
            });
        }
        // The `async fn` table: `add_async` in the same crate, its future polled once per call
        // by the host's executor (`ready`), in the same hosts and builds as above.
        let async_base = Row {
            group: Group::Async,
            symbol: "hsb_measure_async_call",
            args: &["percall", "async-call"],
            ..base.clone()
        };
        rows.push(Row {
            id: if o3 {
                "async-inline-o3"
            } else {
                "async-inline-o0"
            },
            role: Role::Harness,
            label: "no call: `add_async`'s body in an `async` block written in the loop, polled \
                    by the same executor (the harness's own cost)",
            args: &["percall", "async-inline"],
            symbol: "hsb_measure_async_inline",
            ..async_base.clone()
        });
        rows.push(Row {
            id: if o3 {
                "async-direct-o3"
            } else {
                "async-direct-o0"
            },
            role: Role::Baseline,
            label: "**baseline**: plain `async fn`, normal build (`add_async` is \
                    `#[inline(never)]`)",
            ..async_base.clone()
        });
        rows.push(Row {
            id: if o3 {
                "async-hotswap-o3"
            } else {
                "async-hotswap-o0"
            },
            label: "**hotswap** hot mode, before any patch (the slot's function boxes the future)",
            host: hot.clone(),
            ..async_base.clone()
        });
        let thin = Artifact::thin_host(Tool::Hotswap, profile);
        rows.push(Row {
            id: if o3 {
                "async-hotswap-cli-o3"
            } else {
                "async-hotswap-cli-o0"
            },
            label: "**hotswap** built as `cargo hotswap run` builds it, before any patch",
            host: thin.clone(),
            ..async_base.clone()
        });
        rows.push(Row {
            id: if o3 {
                "async-hotswap-thin-o3"
            } else {
                "async-hotswap-thin-o0"
            },
            label: "**hotswap** after a thin patch (`cargo hotswap run`'s patch, sent over its \
                    control channel)",
            host: thin,
            args: &["percall", "async-thin"],
            patches: vec![Artifact::thin_patch(Tool::Hotswap, profile, 1)],
            ..async_base.clone()
        });
    }
    // Swap latency: dev builds, as people run them while editing. Every row's ratio is taken
    // against hot-lib-reloader with its fast debounce.
    let profile = Profile::O0;
    let hsb_lib = |mark| Artifact::library(Tool::Hotswap, "hsb_add", profile, mark);
    let hlr_lib = |mark| Artifact::library(Tool::HotLibReloader, "hlr_add", profile, mark);
    let thin = |tool, mark| Artifact::thin_patch(tool, profile, mark);
    let latency = Row {
        id: "latency-thin",
        kind: Kind::Latency,
        tool: Tool::Hotswap,
        table: profile,
        group: Group::Sync,
        profile,
        role: Role::Measured,
        label: "**hotswap** thin patch over the control channel (what `cargo hotswap run` sends)",
        host: Artifact::thin_host(Tool::Hotswap, profile),
        args: &["thin-swaps"],
        initial: None,
        patches: vec![thin(Tool::Hotswap, 1), thin(Tool::Hotswap, 2)],
        symbol: "",
        opt_in: false,
        baseline: Some("latency-hlr-20ms"),
        edit: None,
    };
    rows.push(latency.clone());
    rows.push(Row {
        id: "latency-hotswap",
        label: "**hotswap** full library mode (file watch, 8 ms settle)",
        host: Artifact::host(Tool::Hotswap, profile, true),
        args: &["latency"],
        patches: vec![hsb_lib(1), hsb_lib(2)],
        ..latency.clone()
    });
    rows.push(Row {
        id: "latency-hlr-default",
        tool: Tool::HotLibReloader,
        label: "hot-lib-reloader, default debounce (500 ms)",
        host: Artifact::host(Tool::HotLibReloader, profile, false),
        args: &["latency", "default"],
        initial: Some(hlr_lib(0)),
        patches: vec![hlr_lib(1), hlr_lib(2)],
        ..latency.clone()
    });
    rows.push(Row {
        id: "latency-hlr-20ms",
        tool: Tool::HotLibReloader,
        role: Role::Baseline,
        label: "**baseline**: hot-lib-reloader, `file_watch_debounce = 20`",
        host: Artifact::host(Tool::HotLibReloader, profile, false),
        args: &["latency", "fast"],
        initial: Some(hlr_lib(0)),
        patches: vec![hlr_lib(1), hlr_lib(2)],
        baseline: None,
        ..latency.clone()
    });
    // Thin patches swapped back and forth in one process, without pauses.
    let swaps = Row {
        id: "swaps-small",
        kind: Kind::Swaps,
        role: Role::Baseline,
        label: "`hsb_add`: 3 `#[hot]` functions (`add`, `add_async`, `mark`)",
        args: &["thin-swaps"],
        baseline: None,
        ..latency.clone()
    };
    rows.push(swaps.clone());
    rows.push(Row {
        id: "scale",
        tool: Tool::Scale,
        role: Role::Measured,
        label: "`hsb_scale`: generated `#[hot] pub fn f{i}(x: u64) -> u64`, and `mark()`",
        host: Artifact::thin_host(Tool::Scale, profile),
        patches: vec![thin(Tool::Scale, 1), thin(Tool::Scale, 2)],
        opt_in: true,
        baseline: Some("swaps-small"),
        ..swaps
    });
    // Edit to effect with the real CLI, against hot-lib-reloader rebuilding its library.
    for (heavy, id, hlr_id, hotswap_spec, hlr_spec) in [
        (
            false,
            "edit-small",
            "edit-small-hlr",
            edit::Spec {
                tool: Tool::EditSmall,
                lib: "hse_small",
                host: "hse_small_host",
                file: "src/lib.rs",
                env: &[],
                plain_build: false,
                display: false,
                lib_host: None,
            },
            edit::Spec {
                tool: Tool::EditHlrSmall,
                lib: "hle_small",
                host: "hle_small_host",
                file: "src/lib.rs",
                env: &[],
                plain_build: false,
                display: false,
                lib_host: None,
            },
        ),
        (
            true,
            "edit-heavy",
            "edit-heavy-hlr",
            edit::Spec {
                tool: Tool::EditHeavy,
                lib: "hse_heavy",
                host: "hse_heavy_host",
                file: "src/lib.rs",
                env: &[],
                plain_build: false,
                display: false,
                lib_host: None,
            },
            edit::Spec {
                tool: Tool::EditHlrHeavy,
                lib: "hle_heavy",
                host: "hle_heavy_host",
                file: "src/lib.rs",
                env: &[],
                plain_build: false,
                display: false,
                lib_host: None,
            },
        ),
    ] {
        let row = Row {
            id,
            kind: Kind::Edit,
            tool: hotswap_spec.tool,
            role: Role::Measured,
            label: if heavy {
                "**hotswap** `cargo hotswap run`, heavy hot crate (tokio, axum, tower-http, \
                 tracing-subscriber, serde_json)"
            } else {
                "**hotswap** `cargo hotswap run`, small hot crate"
            },
            host: Artifact::cli(),
            args: &[],
            patches: Vec::new(),
            baseline: Some(hlr_id),
            edit: Some(hotswap_spec),
            ..latency.clone()
        };
        rows.push(row.clone());
        // The same edits with the object rewriter off: what sharing the program's statics
        // (rewriting the objects, linking at a fixed address) costs per patch.
        rows.push(Row {
            id: if heavy {
                "edit-heavy-fresh"
            } else {
                "edit-small-fresh"
            },
            label: if heavy {
                "**hotswap**, heavy hot crate, without the object rewriter \
                 (`HOTSWAP_FRESH_STATICS=1`: statics start afresh in each patch; ratio to the \
                 row above)"
            } else {
                "**hotswap**, small hot crate, without the object rewriter \
                 (`HOTSWAP_FRESH_STATICS=1`: statics start afresh in each patch; ratio to the \
                 row above)"
            },
            baseline: Some(id),
            edit: Some(edit::Spec {
                env: &[("HOTSWAP_FRESH_STATICS", "1")],
                ..hotswap_spec
            }),
            ..row.clone()
        });
        if !heavy {
            rows.push(Row {
                id: "edit-main",
                tool: Tool::EditMain,
                label: "**hotswap** `cargo hotswap run`, the same small code in a package with \
                        only `src/main.rs` (the binary crate is hot; ratio to the library case)",
                baseline: Some(id),
                edit: Some(edit::Spec {
                    tool: Tool::EditMain,
                    lib: "hse_main",
                    host: "hse_main",
                    file: "src/main.rs",
                    env: &[],
                    plain_build: false,
                    display: false,
                    lib_host: None,
                }),
                ..row.clone()
            });
            // The same small code in a `cdylib` under `cargo hotswap run --lib`, loaded by a C
            // program and by a Python interpreter (a PyO3 extension module).
            for (lib_id, tool, lib, host, label) in [
                (
                    "edit-c-host",
                    Tool::EditCHost,
                    "hse_c_host",
                    edit::LibHost::C,
                    "**hotswap** `cargo hotswap run --lib`, the same small code in a `cdylib` \
                     loaded by a C program (`dlopen`; its `#[hot] extern \"C\" fn tick` called \
                     every 5 ms; ratio to the program case)",
                ),
                (
                    "edit-python",
                    Tool::EditPython,
                    "hse_python",
                    edit::LibHost::Python,
                    "**hotswap** `cargo hotswap run --lib`, the same small code in a PyO3 \
                     extension module loaded by `python3` (importlib; its `#[pyfunction] tick` \
                     called every 5 ms; ratio to the program case)",
                ),
            ] {
                rows.push(Row {
                    id: lib_id,
                    tool,
                    label,
                    baseline: Some(id),
                    edit: Some(edit::Spec {
                        tool,
                        lib,
                        host: lib,
                        file: "src/lib.rs",
                        env: &[],
                        plain_build: false,
                        display: false,
                        lib_host: Some(host),
                    }),
                    ..row.clone()
                });
            }
        }
        rows.push(Row {
            id: hlr_id,
            tool: hlr_spec.tool,
            role: Role::Baseline,
            label: if heavy {
                "**baseline**: hot-lib-reloader, `cargo build` of the same heavy crate as a `cdylib`"
            } else {
                "**baseline**: hot-lib-reloader, `cargo build` of the same small crate as a `cdylib`"
            },
            host: Artifact::named(hlr_spec.tool, hlr_spec.host, profile, false),
            baseline: None,
            edit: Some(hlr_spec),
            ..row
        });
    }
    // A Bevy app: `cargo hotswap run` against a plain `cargo build` of the same edit.
    let bevy = edit::Spec {
        tool: Tool::EditBevy,
        lib: "hse_bevy",
        host: "hse_bevy_host",
        file: "src/lib.rs",
        env: &[],
        plain_build: false,
        display: false,
        lib_host: None,
    };
    let template = rows
        .iter()
        .find(|r| r.id == "edit-small")
        .cloned()
        .expect("the edit rows above");
    rows.push(Row {
        id: "edit-bevy",
        tool: Tool::EditBevy,
        label: "**hotswap** `cargo hotswap run`, a headless Bevy app (its `tick` system, in the \
                hot crate, edited)",
        baseline: Some("edit-bevy-cargo"),
        edit: Some(bevy),
        opt_in: true,
        ..template.clone()
    });
    rows.push(Row {
        id: "edit-bevy-cargo",
        tool: Tool::EditBevy,
        role: Role::Baseline,
        label: "**baseline**: plain `cargo build` of the same Bevy app after the same edit (no \
                program runs: the time before a restart by hand could begin)",
        baseline: None,
        edit: Some(edit::Spec {
            plain_build: true,
            ..bevy
        }),
        opt_in: true,
        ..template.clone()
    });
    // An egui window: the same pair, the program on the bench's own Xvfb.
    let egui = edit::Spec {
        tool: Tool::EditEgui,
        lib: "hse_egui",
        host: "hse_egui_host",
        display: true,
        ..bevy
    };
    rows.push(Row {
        id: "edit-egui",
        tool: Tool::EditEgui,
        label: "**hotswap** `cargo hotswap run`, an egui window (eframe, glow; its \
                `impl eframe::App`, in the hot crate, edited), under Xvfb with software OpenGL",
        baseline: Some("edit-egui-cargo"),
        edit: Some(egui),
        opt_in: true,
        ..template.clone()
    });
    rows.push(Row {
        id: "edit-egui-cargo",
        tool: Tool::EditEgui,
        role: Role::Baseline,
        label: "**baseline**: plain `cargo build` of the same egui app after the same edit (no \
                program runs: the time before a restart by hand could begin)",
        baseline: None,
        edit: Some(edit::Spec {
            plain_build: true,
            ..egui
        }),
        opt_in: true,
        ..template
    });
    // First build: `cargo hotswap run`'s against a plain `cargo build`, dependencies warm
    // (`first.rs`). One row per program measures both; Bevy's is opt-in.
    let template = rows
        .iter()
        .find(|r| r.id == "edit-small")
        .cloned()
        .expect("the edit rows above");
    for (id, tool, label, opt_in) in [
        (
            "first-build-small",
            Tool::EditSmall,
            "the small program (`hse_small` and its host; the `edit-small` workspace)",
            false,
        ),
        (
            "first-build-heavy",
            Tool::EditHeavy,
            "the heavy program (`hse_heavy`: tokio, axum, tower-http, tracing-subscriber, \
             serde_json; the `edit-heavy` workspace)",
            false,
        ),
        (
            "first-build-bevy",
            Tool::EditBevy,
            "the headless Bevy app (`hse_bevy` and its host; the `edit-bevy` workspace)",
            true,
        ),
    ] {
        rows.push(Row {
            id,
            kind: Kind::FirstBuild,
            tool,
            label,
            baseline: None,
            edit: None,
            opt_in,
            ..template.clone()
        });
    }
    // subsecond hot-patched by `dx serve --hotpatch` (opt-in; `subsecond.rs`).
    rows.extend(subsecond::rows(&rows));
    rows
}

/// How much to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub quick: bool,
    pub rounds: usize,
    pub samples: u32,
    pub sample_ms: u32,
    pub swaps: usize,
    pub callgrind: bool,
    pub callgrind_iters: u64,
    /// Swaps of the small crate's memory row.
    pub memory_swaps: usize,
    /// Swaps of the scale row.
    pub scale_swaps: usize,
    /// Measured edits per edit row (after one warm-up edit).
    pub edits: usize,
}

/// What a row produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// ns per call samples (per-call rows) or ms per swap (latency rows).
    pub values: Vec<f64>,
    pub instructions: Option<Result<f64, String>>,
    pub error: Option<String>,
    /// The command that measured it (for the commands section).
    pub run: Option<String>,
    pub builds: Vec<String>,
    /// Other figures by name (see `measure::Output::values`, `edit::Measured::values`).
    pub extras: BTreeMap<String, Vec<f64>>,
    /// Things a reader should know about this row's run.
    pub notes: Vec<String>,
}

struct Options {
    plan: Plan,
    only: Vec<String>,
    all: bool,
    write: bool,
    /// Only the regions that stand alone may be written (a partial run).
    partial: bool,
    keep: bool,
    hotswap_dir: Option<PathBuf>,
    scale_functions: usize,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut quick = false;
    let mut only = Vec::new();
    let mut write = None;
    let mut keep = false;
    let mut callgrind = true;
    let mut hotswap_dir = None;
    let mut all = false;
    let mut scale_functions = 10_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => only.extend(
                args.next()
                    .expect("--only needs row ids")
                    .split(',')
                    .map(str::to_string),
            ),
            "--write" => write = Some(true),
            "--no-write" => write = Some(false),
            "--no-callgrind" => callgrind = false,
            "--keep" => keep = true,
            "--all" => all = true,
            "--scale-functions" => {
                scale_functions = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--scale-functions needs a number")
            }
            "--hotswap-dir" => {
                hotswap_dir = Some(PathBuf::from(
                    args.next().expect("--hotswap-dir needs a dir"),
                ))
            }
            "--list" => {
                for row in rows() {
                    let opt_in = if row.opt_in { " (opt-in)" } else { "" };
                    println!("{:<22} {}{opt_in}", row.id, row.label);
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{}", HELP);
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}\n{HELP}");
                std::process::exit(2);
            }
        }
    }
    let partial = !only.is_empty() || hotswap_dir.is_some();
    let write = if partial {
        write == Some(true) && hotswap_dir.is_none()
    } else {
        write.unwrap_or(!quick)
    };
    let plan = if quick {
        Plan {
            quick,
            rounds: 1,
            samples: 3,
            sample_ms: 40,
            swaps: 6,
            callgrind,
            callgrind_iters: 50_000,
            memory_swaps: 100,
            scale_swaps: 5,
            edits: 5,
        }
    } else {
        Plan {
            quick,
            rounds: 3,
            samples: 5,
            sample_ms: 100,
            swaps: 20,
            callgrind,
            callgrind_iters: 200_000,
            memory_swaps: 1_000,
            scale_swaps: 20,
            edits: 20,
        }
    };
    Options {
        plan,
        only,
        all,
        write,
        partial,
        keep,
        hotswap_dir,
        scale_functions,
    }
}

const HELP: &str = "usage: cargo run -p hotswap-bench --release -- [--quick] [--only ID,...] \
[--all] [--write|--no-write] [--no-callgrind] [--hotswap-dir DIR] [--scale-functions N] [--keep] \
[--list]";

fn main() {
    let started = Instant::now();
    let load_at_start = report::load_average();
    let options = options();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root");
    let hotswap_dir = options
        .hotswap_dir
        .clone()
        .map(|dir| dir.canonicalize().expect("--hotswap-dir exists"))
        .unwrap_or_else(|| repo.join("crates").join("hotswap"));
    let work = std::env::temp_dir().join(format!("hotswap-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("create the temporary directory");
    eprintln!(
        "hotswap-bench: scratch projects and runs in {}",
        work.display()
    );

    let selected = select(rows(), &options.only, options.all);
    if selected.is_empty() {
        eprintln!("no row matches {:?}; see --list", options.only);
        std::process::exit(2);
    }
    let plan = options.plan;
    let mut builder = Builder::new(&repo, &hotswap_dir, &work, options.scale_functions);
    let mut outcomes: Vec<Outcome> = vec![Outcome::default(); selected.len()];

    // Build everything first, so compiling never overlaps a measurement.
    for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
        let artifacts = std::iter::once(&row.host)
            .chain(row.initial.iter())
            .chain(row.patches.iter());
        for artifact in artifacts {
            outcome.builds.push(artifact.command());
            if let Err(err) = builder.get(artifact) {
                outcome
                    .error
                    .get_or_insert(format!("did not build (`{}`): {err}", artifact.command()));
            }
        }
    }

    // Per call: rounds interleave the rows, so a slow spell of the machine hits all of them.
    for round in 0..plan.rounds {
        for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
            if row.kind != Kind::PerCall || outcome.error.is_some() {
                continue;
            }
            eprintln!(
                "hotswap-bench: per call, round {}/{}: {}",
                round + 1,
                plan.rounds,
                row.id
            );
            let run = percall_run(row, &mut builder, &work, 0, plan.samples, plan.sample_ms);
            match run.and_then(|run| {
                outcome.run = Some(run.display(&work));
                run.run(&[], Duration::from_secs(300))
            }) {
                Ok(output) if !output.ns.is_empty() => outcome.values.extend(output.ns),
                Ok(_) => outcome.error = Some("the host printed no timing".into()),
                Err(err) => outcome.error = Some(err),
            }
        }
    }
    if plan.callgrind {
        for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
            if row.kind != Kind::PerCall || outcome.error.is_some() {
                continue;
            }
            eprintln!("hotswap-bench: callgrind: {}", row.id);
            let result = percall_run(row, &mut builder, &work, plan.callgrind_iters, 1, 0)
                .and_then(|run| measure::callgrind(&run, row.symbol, &work));
            outcome.instructions = Some(result);
        }
    }
    for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
        if row.kind != Kind::Latency || outcome.error.is_some() {
            continue;
        }
        eprintln!("hotswap-bench: swap latency: {}", row.id);
        let run = latency_run(row, &mut builder, &work, plan.swaps);
        match run.and_then(|run| {
            outcome.run = Some(run.display(&work));
            run.run(&[], Duration::from_secs(600))
        }) {
            Ok(output) if !output.latency_ms.is_empty() => {
                outcome.values = output.latency_ms;
                outcome.extras = output.values;
            }
            Ok(output) => {
                outcome.error = Some(format!("no swap observed: {}", output.info.join("; ")))
            }
            Err(err) => outcome.error = Some(err),
        }
    }
    for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
        if row.kind != Kind::Swaps || outcome.error.is_some() {
            continue;
        }
        let count = if row.opt_in {
            plan.scale_swaps
        } else {
            plan.memory_swaps
        };
        eprintln!("hotswap-bench: {count} thin swaps: {}", row.id);
        let run = swaps_run(row, &mut builder, &work, count);
        match run.and_then(|run| {
            outcome.run = Some(run.display(&work));
            run.run(&[], Duration::from_secs(1800))
        }) {
            Ok(output) if output.values.contains_key("micros") => {
                outcome.values = output.values["micros"].iter().map(|us| us / 1e3).collect();
                outcome.extras = output.values;
            }
            Ok(output) => outcome.error = Some(format!("no swap: {}", output.info.join("; "))),
            Err(err) => outcome.error = Some(err),
        }
    }
    for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
        let Some(spec) = row.edit else { continue };
        if outcome.error.is_some() {
            continue;
        }
        let result = builder.get(&row.host).and_then(|host| {
            if row.tool.is_dx_edit() {
                subsecond::run(&mut builder, row, spec, &plan)
            } else if spec.plain_build {
                edit::plain_build(&mut builder, spec, plan.edits)
            } else if row.tool.is_hlr_edit() {
                edit::hot_lib_reloader(&mut builder, &host, spec, plan.edits)
            } else {
                edit::hotswap(&mut builder, &host, spec, plan.edits)
            }
        });
        match result {
            Ok(measured) => {
                outcome.values = measured.ms;
                outcome.extras = measured.values;
                if let Some(first) = measured.first_ms {
                    outcome.extras.insert("first_ms".into(), vec![first]);
                }
                outcome.notes = measured.notes;
                outcome.run = Some(measured.run);
            }
            Err(err) => outcome.error = Some(err),
        }
    }

    for (row, outcome) in selected.iter().zip(outcomes.iter_mut()) {
        if row.kind != Kind::FirstBuild || outcome.error.is_some() {
            continue;
        }
        let reps = if plan.quick { 1 } else { 3 };
        let result = builder
            .get(&row.host)
            .and_then(|cli| first::measure(&mut builder, &cli, row.tool, reps, &work));
        match result {
            Ok(measured) => {
                outcome.values = measured.ms;
                outcome.extras = measured.values;
                outcome.run = Some(measured.run);
            }
            Err(err) => outcome.error = Some(err),
        }
    }

    let context = report::Context::collect(&builder, &plan, started.elapsed(), &load_at_start);
    let mut sections = report::sections(&selected, &outcomes, &context, &builder, &repo, &work);
    if options.write && options.partial {
        // A partial run rewrites only the regions that carry their own run details.
        for section in sections.iter().filter(|section| !section.standalone) {
            if let Some(note) = &section.note {
                eprintln!("hotswap-bench: {note}");
                println!("<!-- {} -->\n{}", section.name, section.text);
            }
        }
        sections.retain(|section| section.standalone);
        if sections.is_empty() {
            eprintln!("hotswap-bench: nothing of this partial run stands alone; printing");
        }
    }
    if options.write && !sections.is_empty() {
        let file = repo.join("BENCHMARKS.md");
        match report::rewrite(&file, &sections) {
            Ok(()) => eprintln!("hotswap-bench: rewrote {}", file.display()),
            Err(err) => {
                eprintln!("hotswap-bench: cannot rewrite {}: {err}", file.display());
                std::process::exit(1);
            }
        }
    } else {
        for section in &sections {
            println!("<!-- {} -->\n{}", section.name, section.text);
        }
    }
    if options.write {
        // README.md's "How fast" table: from this run's rows, only when it ran all it needs.
        match readme::section(&selected, &outcomes, &context) {
            Ok(section) => {
                let file = repo.join("README.md");
                match report::rewrite(&file, &[section]) {
                    Ok(()) => eprintln!("hotswap-bench: rewrote {}", file.display()),
                    Err(err) => {
                        eprintln!("hotswap-bench: cannot rewrite {}: {err}", file.display())
                    }
                }
            }
            Err(missing) => eprintln!(
                "hotswap-bench: README.md's readme-fast region left as it is: this run lacks {}",
                missing.join(", ")
            ),
        }
    }
    if options.keep {
        eprintln!("hotswap-bench: kept {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    eprintln!(
        "hotswap-bench: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The rows `only` names (every default row if empty, and the opt-in ones too with `all`): an
/// exact id, or a prefix ending in `*`. A per-call row brings its table's baseline and harness
/// rows along, any other row the row named as its baseline, since its ratios need them.
fn select(rows: Vec<Row>, only: &[String], all: bool) -> Vec<Row> {
    let named = |row: &Row| {
        if only.is_empty() {
            return all || !row.opt_in;
        }
        only.iter().any(|o| match o.strip_suffix('*') {
            Some(prefix) => row.id.starts_with(prefix),
            None => row.id == o,
        })
    };
    let wanted: Vec<&Row> = rows.iter().filter(|row| named(row)).collect();
    rows.iter()
        .filter(|row| {
            named(row)
                || wanted.iter().any(|w| {
                    (w.kind == Kind::PerCall
                        && row.kind == Kind::PerCall
                        && row.role != Role::Measured
                        && w.table == row.table
                        && w.group == row.group)
                        || w.baseline == Some(row.id)
                })
        })
        .cloned()
        .collect()
}

/// A fresh directory for one run of a host, with the row's initial library in it.
fn run_dir(row: &Row, builder: &mut Builder, work: &Path) -> Result<PathBuf, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = work.join("run").join(format!(
        "{}-{}",
        row.id,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    if let Some(initial) = &row.initial {
        let library = builder.get(initial)?;
        let name = format!("lib{}.so", initial.package);
        std::fs::copy(&library, dir.join(name)).map_err(|err| err.to_string())?;
    }
    Ok(dir)
}

/// The variable that tells a host where its library lives.
fn lib_dir_env(tool: Tool) -> Option<&'static str> {
    match tool {
        Tool::Hotswap => Some("HOTSWAP_LIB_DIR"),
        Tool::HotLibReloader => Some("HLR_LIB_DIR"),
        _ => None,
    }
}

/// For a host built as `cargo hotswap run` builds it: `HOTSWAP_CONTROL`, a socket in a private
/// directory (mode 0700) of the run directory, where the host plays the CLI (fixtures/channel.rs).
fn control_env(row: &Row, dir: &Path) -> Result<Vec<(String, String)>, String> {
    if !row.host.thin {
        return Ok(Vec::new());
    }
    use std::os::unix::fs::PermissionsExt;
    let control = dir.join("ctl");
    std::fs::create_dir_all(&control)
        .and_then(|()| std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o700)))
        .map_err(|err| format!("cannot create {}: {err}", control.display()))?;
    Ok(vec![(
        "HOTSWAP_CONTROL".into(),
        control.join("control.sock").display().to_string(),
    )])
}

fn percall_run(
    row: &Row,
    builder: &mut Builder,
    work: &Path,
    iters: u64,
    samples: u32,
    sample_ms: u32,
) -> Result<Run, String> {
    let exe = builder.get(&row.host)?;
    let dir = run_dir(row, builder, work)?;
    let mut env = control_env(row, &dir)?;
    if let Some(name) = lib_dir_env(row.tool).filter(|_| !row.host.thin) {
        env.push((name.to_string(), dir.display().to_string()));
    }
    if let Some(patch) = row.patches.first() {
        env.push((
            "HSB_PATCH".into(),
            builder.get(patch)?.display().to_string(),
        ));
    }
    if sample_ms > 0 {
        env.push(("HSB_SAMPLE_MS".into(), sample_ms.to_string()));
    }
    let mut args: Vec<String> = row.args.iter().map(|a| a.to_string()).collect();
    args.push(iters.to_string());
    args.push(samples.to_string());
    Ok(Run { exe, args, env })
}

fn latency_run(row: &Row, builder: &mut Builder, work: &Path, swaps: usize) -> Result<Run, String> {
    if row.host.thin {
        // Two warm-up swaps, a polling thread.
        return thin_swaps_run(row, builder, work, swaps, 2, true);
    }
    let exe = builder.get(&row.host)?;
    let dir = run_dir(row, builder, work)?;
    let env: Vec<(String, String)> = lib_dir_env(row.tool)
        .map(|name| (name.to_string(), dir.display().to_string()))
        .into_iter()
        .collect();
    let mut args: Vec<String> = row.args.iter().map(|a| a.to_string()).collect();
    args.push(swaps.to_string());
    for patch in &row.patches {
        args.push(builder.get(patch)?.display().to_string());
        args.push(patch.mark.unwrap_or(0).to_string());
    }
    Ok(Run { exe, args, env })
}

/// `thin-swaps COUNT WARM_UP POLL PATCH_A MARK_A PATCH_B MARK_B` (fixtures/channel.rs).
fn thin_swaps_run(
    row: &Row,
    builder: &mut Builder,
    work: &Path,
    count: usize,
    warm_up: usize,
    poll: bool,
) -> Result<Run, String> {
    let exe = builder.get(&row.host)?;
    let dir = run_dir(row, builder, work)?;
    let env = control_env(row, &dir)?;
    let mut args: Vec<String> = vec![
        "thin-swaps".into(),
        count.to_string(),
        warm_up.to_string(),
        if poll { "1" } else { "0" }.into(),
    ];
    for patch in &row.patches {
        args.push(builder.get(patch)?.display().to_string());
        args.push(patch.mark.unwrap_or(0).to_string());
    }
    Ok(Run { exe, args, env })
}

/// Swaps without pauses or polling, with the runtime's per-phase log (`HOTSWAP_LOG=1`).
fn swaps_run(row: &Row, builder: &mut Builder, work: &Path, count: usize) -> Result<Run, String> {
    let warm_up = if row.opt_in { 2 } else { 10 };
    let mut run = thin_swaps_run(row, builder, work, count, warm_up, false)?;
    run.env.push(("HOTSWAP_LOG".into(), "1".into()));
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::{rows, select};

    fn ids(only: &[&str]) -> Vec<&'static str> {
        let only: Vec<String> = only.iter().map(|o| o.to_string()).collect();
        select(rows(), &only, false)
            .iter()
            .map(|row| row.id)
            .collect()
    }

    #[test]
    fn a_per_call_row_brings_the_baseline_and_harness_of_its_own_group_only() {
        assert_eq!(
            ids(&["hotswap-o3"]),
            ["inline-o3", "direct-o3", "hotswap-o3"]
        );
        assert_eq!(
            ids(&["async-hotswap-o0"]),
            ["async-inline-o0", "async-direct-o0", "async-hotswap-o0"]
        );
        let all_async = ids(&["async*"]);
        assert_eq!(all_async.len(), 10, "{all_async:?}");
        assert!(all_async.iter().all(|id| id.starts_with("async-")));
    }

    #[test]
    fn the_library_edit_rows_run_by_default_against_the_program_case() {
        let default = ids(&[]);
        for id in ["edit-c-host", "edit-python"] {
            assert!(default.contains(&id), "{id} in {default:?}");
            assert_eq!(ids(&[id]), ["edit-small", id]);
            let row = rows().into_iter().find(|row| row.id == id).unwrap();
            assert_eq!(row.baseline, Some("edit-small"));
            assert!(!row.opt_in && !row.tool.is_framework_edit());
            assert!(row.edit.unwrap().lib_host.is_some());
        }
    }

    #[test]
    fn the_framework_edit_rows_are_opt_in_pairs() {
        assert_eq!(ids(&["edit-egui"]), ["edit-egui", "edit-egui-cargo"]);
        assert_eq!(ids(&["edit-egui*"]), ["edit-egui", "edit-egui-cargo"]);
        assert_eq!(
            ids(&["edit-bevy*", "edit-egui*"]),
            [
                "edit-bevy",
                "edit-bevy-cargo",
                "edit-egui",
                "edit-egui-cargo"
            ]
        );
        assert!(!ids(&[]).iter().any(|id| id.starts_with("edit-egui")));
        let egui = rows()
            .into_iter()
            .find(|row| row.id == "edit-egui")
            .unwrap();
        assert!(
            egui.edit.unwrap().display,
            "the egui window needs the bench's Xvfb"
        );
    }
}
