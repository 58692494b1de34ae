//! A library a C program loads with `dlopen` and calls by name (`host.c`). `step` is an
//! `extern "C"` function the host finds with `dlsym`; with `#[hot]` it stays that symbol, and
//! each call goes on to the newest version of its body. Edit `label` (or `next`) and save under
//! `cargo hotswap run --lib -p c-host-lib -- ./host`: the host's next line shows it, and the
//! count of calls, a private static, carries on.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many times the host has called `step` (kept across patches: the patched code uses the
/// running library's copy).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Called by the host once per iteration with its counter; returns what the host prints as
/// `got`.
#[hotswap::hot]
#[unsafe(no_mangle)]
pub extern "C" fn step(counter: u64) -> u64 {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let label = "v1";
    println!(
        "step {label} counter {counter} version {} calls {calls}",
        hotswap::version()
    );
    next(counter)
}

/// What `step` returns for `counter`: a plain Rust `#[hot]` function the C-facing one calls.
#[hotswap::hot]
pub fn next(counter: u64) -> u64 {
    counter * 2
}
