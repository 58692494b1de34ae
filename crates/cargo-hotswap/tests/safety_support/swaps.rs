//! The swap-under-load scenario, shared by `tests/safety_concurrency.rs` (200 swaps) and the
//! soak command (`examples/soak.rs`, 10,000 swaps).
//!
//! The program runs N threads that call the hot `pair(x)` in a loop. Every version returns
//! `(TAG, TAG * x)`, computing the product in a private helper of the hot crate: a pair is
//! consistent only if both halves came from the same version (a call that ran one version's
//! `pair` with another version's helper would mix tags). Each thread also keeps `&'static str`s
//! returned by the hot `label()` of older versions and reads them again later: old patches must
//! stay mapped. A checker thread, on each reload event, calls `pair` once and prints the tag it
//! got, so the driver can check that each swap really put that patch's code in place.
//!
//! The driver (this test, or the soak) plays `cargo hotswap run`: it sends patches A (tag 2) and
//! B (tag 3) alternately over the control channel, one at a time, each as a new file in its
//! private directory (as the command does), and after each `applied` waits for the checker's line
//! before sending the next. Closing the program's stdin stops it; it
//! then prints a summary: calls, the longest single call, the version it reached.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotswap::protocol::ToCli;

use super::{files_in, memory, private_base, token, Control, HotWorkspace, Memory, Running};

pub const MAIN_RS: &str = r#"use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use GAME as game;

fn main() {
    let threads: usize = std::env::var("SOAK_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let stop = Arc::new(AtomicBool::new(false));
    let events = hotswap::subscribe();
    let workers: Vec<_> = (0..threads)
        .map(|index| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut calls = 0u64;
                let mut longest = Duration::ZERO;
                let mut labels: Vec<&'static str> = Vec::new();
                let mut x = index as u64 * 7919 + 1;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (tag, product) = game::pair(x);
                    let took = started.elapsed();
                    longest = longest.max(took);
                    if !(1..=3).contains(&tag) || product != x.wrapping_mul(tag) {
                        println!("INCONSISTENT thread={index} x={x} tag={tag} product={product}");
                        std::process::exit(3);
                    }
                    if calls % 4096 == 0 {
                        // Strings of old versions: they must still be readable after later
                        // patches (nothing is unloaded).
                        labels.push(game::label());
                        if labels.len() > 32 {
                            labels.remove(0);
                        }
                        for label in &labels {
                            if !label.starts_with("label of tag ") {
                                println!("BAD LABEL thread={index} {label:?}");
                                std::process::exit(4);
                            }
                        }
                    }
                    calls += 1;
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                }
                (calls, longest)
            })
        })
        .collect();
    std::thread::spawn(move || loop {
        if let Some(hotswap::Event::Reloaded { version, .. }) =
            events.next_timeout(Duration::from_secs(1))
        {
            let (tag, _) = game::pair(7);
            println!("seen version={version} tag={tag}");
        }
    });
    println!("ready threads={threads}");
    // Runs until stdin closes.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    let mut fewest = u64::MAX;
    let mut longest = Duration::ZERO;
    for worker in workers {
        let (calls, took) = worker.join().unwrap();
        total += calls;
        fewest = fewest.min(calls);
        longest = longest.max(took);
    }
    println!(
        "summary calls={total} fewest={fewest} longest_ns={} version={}",
        longest.as_nanos(),
        hotswap::version()
    );
}
"#;

/// Version `tag` of the hot crate.
pub fn game_source(tag: u64) -> String {
    format!(
        r#"const TAG: u64 = {tag};

/// A private helper: a patch calls its own copy (`-Bsymbolic-functions`).
#[inline(never)]
fn times_tag(x: u64) -> u64 {{
    x.wrapping_mul(TAG)
}}

#[hotswap::hot]
pub fn pair(x: u64) -> (u64, u64) {{
    (TAG, times_tag(x))
}}

#[hotswap::hot]
pub fn label() -> &'static str {{
    "label of tag {tag}"
}}
"#
    )
}

/// The built program and its two patches.
pub struct Setup {
    pub workspace: HotWorkspace,
    pub executable: PathBuf,
    pub patches: [PathBuf; 2],
    _patch_dir: tempfile::TempDir,
}

/// Builds the program (tag 1) and patches A (tag 2) and B (tag 3).
pub fn prepare(prefix: &str, release: bool) -> Setup {
    let workspace = HotWorkspace::new(prefix, MAIN_RS, &game_source(1), release);
    let token = token(prefix);
    let executable = workspace.build_host(&token);
    let patch_dir = tempfile::Builder::new()
        .prefix(&format!("{prefix}-patches-"))
        .tempdir()
        .unwrap();
    let a = patch_dir.path().join("patch-a.so");
    let b = patch_dir.path().join("patch-b.so");
    workspace.build_patch(&game_source(2), &token, &a);
    workspace.build_patch(&game_source(3), &token, &b);
    Setup {
        workspace,
        executable,
        patches: [a, b],
        _patch_dir: patch_dir,
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    pub swaps: u64,
    /// `hotswap::version()` in the program at the end.
    pub version: u64,
    pub threads: usize,
    /// Calls of `pair` by all threads.
    pub calls: u64,
    /// Calls of the thread that made the fewest.
    pub fewest: u64,
    pub longest_call: Duration,
    pub took: Duration,
    /// The program's memory after the first swap, and after the last.
    pub before: Memory,
    pub after: Memory,
    /// Files in the program's private directory, or in the driver's besides its socket, after
    /// the last swap.
    pub files_left: Vec<String>,
    /// The program's exit status after its stdin closed.
    pub exit_code: Option<i32>,
    /// Each swap as the program timed it (stage, check, load, swap: `applied.micros`).
    pub swap_micros: Vec<u64>,
}

/// Starts the program, swaps `swaps` patches into it (A, B, A, ...), checking each, and stops
/// it. `progress` is called after each swap. Panics (with the program's output) if a patch is
/// refused, a swap does not show, a call returns an inconsistent pair, or the program dies.
pub fn run(
    setup: &Setup,
    swaps: u64,
    threads: usize,
    mut progress: impl FnMut(u64, &Running),
) -> Outcome {
    let control = Control::new(&setup.workspace.game);
    let threads_text = threads.to_string();
    let mut host = Running::host(
        &setup.executable,
        Some(&control.socket),
        &[("SOAK_THREADS", &threads_text), ("HOTSWAP_LOG", "0")],
    );
    host.wait_out("ready ", 0);
    let mut channel = control.accept(&mut host);
    let mut before = memory(host.pid());
    let started = Instant::now();
    let mut swap_micros = Vec::with_capacity(swaps as usize);
    for id in 1..=swaps {
        let mark = host.mark();
        let tag = if id % 2 == 1 { 2 } else { 3 };
        // As `cargo hotswap run` delivers a patch: a new file in its private directory, named
        // after the crate and the patch number, removed once the program has answered.
        let patch = control
            .dir()
            .join(format!("{}-{id}.so", setup.workspace.game));
        std::fs::copy(&setup.patches[((id - 1) % 2) as usize], &patch).unwrap();
        let answer = channel.patch(id, &patch);
        std::fs::remove_file(&patch).unwrap();
        match answer {
            ToCli::Applied {
                id: answered,
                version,
                functions,
                micros,
                ..
            } => {
                swap_micros.push(micros);
                assert_eq!(
                    (answered, version, functions),
                    (id, id, 2),
                    "swap {id}: unexpected answer\n{}",
                    host.transcript()
                );
            }
            other => panic!("swap {id}: {other:?}\n{}", host.transcript()),
        }
        // The checker called `pair` after this reload and before any other: it must have run
        // this patch's code.
        let seen = host.wait_out(&format!("seen version={id} "), mark);
        assert_eq!(
            seen.text,
            format!("seen version={id} tag={tag}"),
            "swap {id} did not put its patch's code in place\n{}",
            host.transcript()
        );
        if id == 1 {
            // The baseline for growth per swap: after the first swap, which also pays for what
            // the program sets up once (its threads' allocator arenas, the loader's first use).
            before = memory(host.pid());
        }
        progress(id, &host);
    }
    let took = started.elapsed();
    let after = memory(host.pid());
    let mut files_left = files_in(&private_base().join(host.pid().to_string()));
    files_left.extend(
        files_in(control.dir())
            .into_iter()
            .filter(|name| name != "control.sock"),
    );
    assert!(host.is_running(), "the program died\n{}", host.transcript());
    // Closing stdin stops the workers; the program prints its summary and exits.
    let mark = host.mark();
    drop(channel);
    host.close_stdin();
    let summary = host.wait_out("summary ", mark);
    let status = host.wait_exit(super::OUTPUT);
    let field = |key: &str| -> u64 {
        summary
            .text
            .split(' ')
            .find_map(|part| part.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {:?}", summary.text))
    };
    Outcome {
        swaps,
        version: field("version"),
        threads,
        calls: field("calls"),
        fewest: field("fewest"),
        longest_call: Duration::from_nanos(field("longest_ns")),
        took,
        before,
        after,
        files_left,
        exit_code: status.code(),
        swap_micros,
    }
}
