//! End to end, full library mode, as a user does it: in a temporary directory, a real two-crate
//! app (a host binary and a hot library using `log`) is built with cargo and started; the
//! library is edited and rebuilt with plain `cargo build -p <lib>`; the running host picks it up.
//!
//! Proves, on the real process:
//! - the new code runs (`out: v2 ...` lines appear after `[hotswap] reloaded`);
//! - state is kept: the counter the host keeps (incremented by the hot function) carries on from
//!   where version 1 left it, one by one, instead of starting again;
//! - a `tracing::info!` in the new code reaches the host's subscriber (`TRACE: v2 ...`);
//! - a `log::info!` in the new code reaches the logger the host installed (`LOG: v2 ...`), although
//!   the library has its own copy of `log`;
//! - a panic in the new code is caught by `catch_unwind` in the host, with its message, although
//!   the library has its own copy of `std`.
//!
//! How it fails if the feature broke: no reload → timeout waiting for `reloaded` / `out: v2`,
//! with the whole transcript; state reset → the counter check; log not handed over → no
//! `LOG: v2` line; panic not re-raised in the host → the host aborts (output ends early) or prints
//! no `caught panic: v2 ...` line.

mod support;

use support::{counter_of, ReloadApp, RELOAD_TIMEOUT};

// Proves the whole full-library workflow on a real process (see the top of the file).
#[test]
fn edit_rebuild_and_the_running_host_runs_the_new_code_with_its_state() {
    let app = ReloadApp::new("hs_e2e_reload");
    app.build_all();

    let host = app.start_host(None);

    app.write_game(support::GAME_V2);
    let before_build = host.mark();
    app.build_game();

    let reloaded = host.wait_for(
        "`[hotswap] reloaded`",
        before_build,
        RELOAD_TIMEOUT,
        |line| line.is_err() && line.text.starts_with("[hotswap] reloaded "),
    );
    assert!(
        reloaded.text.contains(&format!("lib{}.so", app.game))
            && reloaded.text.contains("1 function"),
        "unexpected reload message: {}",
        reloaded.text
    );

    // The new code: output, a log line through the host's logger, and a panic caught in the host.
    host.wait_for("`out: v2 ...`", before_build, RELOAD_TIMEOUT, |line| {
        line.is_out() && line.text.starts_with("out: v2 counter=")
    });
    host.wait_for(
        "`LOG: v2 logged ...`",
        before_build,
        RELOAD_TIMEOUT,
        |line| line.is_out() && line.text.starts_with("LOG: v2 logged at counter="),
    );
    // The same through `tracing`: the host's dispatcher was handed to the library too.
    host.wait_for(
        "`TRACE: v2 traced ...`",
        before_build,
        RELOAD_TIMEOUT,
        |line| line.is_out() && line.text.starts_with("TRACE: v2 traced at counter="),
    );
    let panic = host.wait_for(
        "`caught panic: v2 ...`",
        before_build,
        RELOAD_TIMEOUT,
        |line| line.is_out() && line.text.starts_with("caught panic: "),
    );
    let panicked_at = counter_of(&panic.text).expect("the panic message carries the counter");
    assert_eq!(
        panic.text,
        format!("caught panic: v2 panicked at counter={panicked_at}"),
        "the host did not get the patch's panic message\n{}",
        host.transcript()
    );
    // The host survived the panic and kept calling the new code.
    host.wait_for(
        "`out: v2 ...` after the panic",
        panic.seq,
        RELOAD_TIMEOUT,
        |line| line.is_out() && line.text.starts_with("out: v2 counter="),
    );

    // State: every call of either version advanced the same counter, so the host's stdout shows
    // 1, 2, 3, ... without a gap or a restart, and version 2 continued above version 1.
    let calls: Vec<(u64, String)> = host
        .lines()
        .into_iter()
        .filter(|line| {
            line.is_out()
                && (line.text.starts_with("out: ") || line.text.starts_with("caught panic: "))
        })
        .map(|line| {
            (
                counter_of(&line.text).expect("a counter in every call line"),
                line.text,
            )
        })
        .collect();
    let last_v1 = calls
        .iter()
        .filter(|(_, text)| text.starts_with("out: v1 "))
        .map(|(counter, _)| *counter)
        .max()
        .expect("version 1 ran before the reload");
    let first_v2 = calls
        .iter()
        .find(|(_, text)| text.contains("v2 "))
        .map(|(counter, _)| *counter)
        .expect("version 2 ran");
    assert!(
        first_v2 > last_v1,
        "state was not kept: version 2 started at counter {first_v2}, version 1 had reached \
         {last_v1}\n{}",
        host.transcript()
    );
    for (index, (counter, text)) in calls.iter().enumerate() {
        assert_eq!(
            *counter,
            index as u64 + 1,
            "the counter skipped or restarted at `{text}`\n{}",
            host.transcript()
        );
    }
    eprintln!(
        "version 1 reached counter {last_v1}; version 2 went on from {first_v2}; {}",
        reloaded.text
    );
    eprintln!("{}", host.transcript());
}

// Proves: without any derive, a patch library whose `State` (passed as `&mut State`) grew is
// refused in full library mode, naming the function, the parameter, the type and both sizes, and
// the host keeps running version 1 with its state. Fails if the runtime loads it (the bug: the
// new code would read past the end of the host's value) or the refusal names the wrong change.
#[test]
fn a_plain_struct_that_grows_behind_a_reference_is_refused() {
    let app = ReloadApp::new("hs_e2e_grow");
    app.build_all();
    let host = app.start_host(None);

    app.write_game(
        &support::GAME_V1
            .replace(
                "pub counter: u64,",
                "pub counter: u64,\n    pub extra: u64,",
            )
            .replace("v1 counter", "v2 counter"),
    );
    let before = host.mark();
    app.build_game();
    let refusal = host.wait_for("`[hotswap] refused ...`", before, RELOAD_TIMEOUT, |line| {
        line.is_err()
            && (line.text.starts_with("[hotswap] refused ")
                || line.text.starts_with("[hotswap] reloaded "))
    });
    let expected = format!(
        "`{}::step`: parameter 1 `State` grew from 8 to 16 bytes",
        app.game
    );
    assert!(
        refusal.text.starts_with("[hotswap] refused ") && refusal.text.contains(&expected),
        "expected a refusal naming {expected:?}, got {:?}\n{}",
        refusal.text,
        host.transcript()
    );
    // Lines that arrive after the refusal was seen: the host still runs version 1, counting on.
    let after = host.mark();
    let ticks = host.wait_for_count("three more ticks", after, 3, RELOAD_TIMEOUT, |line| {
        line.is_out() && line.text.starts_with("out: ")
    });
    for tick in &ticks {
        assert!(tick.text.starts_with("out: v1 "), "{}", host.transcript());
    }
    let counters: Vec<u64> = host
        .lines()
        .iter()
        .filter(|line| line.is_out() && line.text.starts_with("out: "))
        .filter_map(|line| counter_of(&line.text))
        .collect();
    assert_eq!(counters, (1..=counters.len() as u64).collect::<Vec<_>>());
}
