//! Soak: many swaps into one running program while its threads call the swapped functions.
//!
//! ```sh
//! cargo run -p cargo-hotswap --release --example soak -- [--swaps 10000] [--threads 8] [--debug]
//! ```
//!
//! The scenario of `tests/safety_concurrency.rs` (see `tests/safety_support/swaps.rs`), for
//! 10,000 swaps by default: a program built in hot mode (release unless `--debug`) runs N threads
//! calling `#[hot]` functions in a loop; this command plays `cargo hotswap run` and swaps two
//! prebuilt thin patches in alternately over the control channel, checking every answer, every
//! returned pair, and that each swap put its patch's code in place. It prints the swaps done,
//! crashes, the longest single call, the program's own time per swap (first and last swaps), its
//! memory growth per swap from the first swap to the last (VmRSS and VmSize from
//! `/proc/<pid>/status`, mappings and deleted-but-mapped files from `/proc/<pid>/maps`) and the
//! files left on disk in the private directories. Any failure panics with the program's output.
//!
//! The scratch program builds into `<repository>/target/e2e` like the end-to-end tests (and
//! waits for them while it builds).

#[path = "../tests/safety_support/mod.rs"]
mod safety_support;

use std::time::Instant;

use safety_support::swaps;

fn main() {
    let mut swaps_wanted: u64 = 10_000;
    let mut threads: usize = 8;
    let mut release = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--swaps" => swaps_wanted = value("--swaps"),
            "--threads" => threads = value("--threads") as usize,
            "--debug" => release = false,
            "-h" | "--help" => {
                println!("usage: soak [--swaps N] [--threads N] [--debug]");
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }

    let profile = if release { "release" } else { "debug" };
    eprintln!("soak: building the program and two patches ({profile})…");
    let built = Instant::now();
    let setup = {
        let _serial = safety_support::serial();
        swaps::prepare("hs_soak", release)
    };
    eprintln!("soak: built in {:.1} s", built.elapsed().as_secs_f64());
    let patch_size = std::fs::metadata(&setup.patches[0]).map_or(0, |m| m.len());

    let started = Instant::now();
    let mut last_report = Instant::now();
    let outcome = swaps::run(&setup, swaps_wanted, threads, |done, host| {
        if done % 1000 == 0 || last_report.elapsed().as_secs() >= 30 {
            let memory = safety_support::memory(host.pid());
            eprintln!(
                "soak: {done} swaps in {:.1} s, VmRSS {} KiB, VmSize {} KiB, {} mappings",
                started.elapsed().as_secs_f64(),
                memory.rss_kb,
                memory.size_kb,
                memory.mappings
            );
            last_report = Instant::now();
        }
    });

    // Growth from the first swap to the last, per swap.
    let per_swap = |before: u64, after: u64| {
        (after as f64 - before as f64) / outcome.swaps.saturating_sub(1).max(1) as f64
    };
    println!(
        "soak ({profile} program, {} calling threads)",
        outcome.threads
    );
    println!(
        "swaps done:           {} of {} (program at version {})",
        outcome.swaps, swaps_wanted, outcome.version
    );
    println!(
        "time:                 {:.1} s ({:.2} ms per swap, answer and check included)",
        outcome.took.as_secs_f64(),
        outcome.took.as_secs_f64() * 1e3 / outcome.swaps as f64
    );
    println!(
        "crashes:              {}",
        if outcome.exit_code == Some(0) {
            "0".to_owned()
        } else {
            format!("the program exited with {:?}", outcome.exit_code)
        }
    );
    println!(
        "calls:                {} ({} by the thread with the fewest), all consistent",
        outcome.calls, outcome.fewest
    );
    println!("longest single call:  {:?}", outcome.longest_call);
    let window = (outcome.swap_micros.len() / 10).clamp(1, 1000);
    let median = |micros: &[u64]| {
        let mut sorted = micros.to_vec();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied().unwrap_or(0) as f64 / 1e3
    };
    let count = outcome.swap_micros.len();
    println!(
        "swap in the program:  median {:.2} ms over the first {window} swaps, {:.2} ms over the \
         last {window} (stage, check, dlopen, swap; from each `applied` answer)",
        median(&outcome.swap_micros[..window.min(count)]),
        median(&outcome.swap_micros[count.saturating_sub(window)..])
    );
    println!(
        "VmRSS:                {} KiB -> {} KiB ({:.1} KiB per swap)",
        outcome.before.rss_kb,
        outcome.after.rss_kb,
        per_swap(outcome.before.rss_kb, outcome.after.rss_kb)
    );
    println!(
        "VmSize:               {} KiB -> {} KiB ({:.1} KiB per swap; patch file {} KiB)",
        outcome.before.size_kb,
        outcome.after.size_kb,
        per_swap(outcome.before.size_kb, outcome.after.size_kb),
        patch_size / 1024
    );
    println!(
        "mappings:             {} -> {} ({:.2} per swap)",
        outcome.before.mappings,
        outcome.after.mappings,
        per_swap(outcome.before.mappings, outcome.after.mappings)
    );
    println!(
        "files left on disk:   {} (the program's private directory, and the driver's besides \
         its socket)",
        outcome.files_left.len()
    );
    println!(
        "deleted, still mapped: {} -> {} patch files (their disk space, {} KiB each, is freed \
         when the program exits)",
        outcome.before.deleted_files,
        outcome.after.deleted_files,
        patch_size / 1024
    );
    assert_eq!(outcome.version, swaps_wanted, "not every swap was applied");
    assert!(outcome.files_left.is_empty(), "{:?}", outcome.files_left);
}
