//! End to end: the real `cargo-hotswap run` on a real two-crate app in a temporary directory
//! (a binary, and a hot library that depends on `hotswap`, `log` and `strsim`), edited while it
//! runs, as a user does it. Each test asserts on what the program prints (its stdout, passed
//! through) and on what the command reports (its `[hotswap]` lines on stderr).
//!
//! The program calls the hot `step` every 50 ms and prints `vN counter=C same_type=B
//! type_id=T...`; the counter lives in the program's own state and the hot code increments it.
//! See `support/mod.rs` for the app and the helpers.

mod support;

use support::{
    counter_of, field, files_in, game_source, is_running, is_save_outcome, private_base, Cli,
    Scratch, Stream, OUTPUT, PATCH, RESTART,
};

/// Saves `source` as the hot crate and waits until the command reports it patched as
/// `version`; returns the sequence number of the line before the save and the `patched` line.
fn patch(cli: &Cli, scratch: &Scratch, source: &str, version: u64) -> (usize, String) {
    let before = cli.mark();
    scratch.save_game(source);
    // The first outcome the command reports for this save, so a refusal fails at once.
    let patched = format!("[hotswap] {}: patched 1 function", scratch.game);
    let line = cli.wait_for(&format!("`{patched}`"), before, PATCH, |line| {
        is_save_outcome(line, &patched)
    });
    assert!(
        line.text.starts_with(&patched)
            && line
                .text
                .contains(&format!("(game/src/lib.rs) — version {version}; build ")),
        "unexpected patch message {:?}\n{}",
        line.text,
        cli.transcript()
    );
    (before, line.text)
}

/// The first build's report, on stderr that is not a terminal (the command's lines before the
/// `started` line `started_seq`): plain progress lines `building (hot mode): N/~M crates` (not
/// redrawn), and one summary `built in T s: K crates compiled...` after them. (Nothing about how
/// long it took.)
fn assert_build_progress(cli: &Cli, started_seq: usize) {
    let lines: Vec<(usize, String)> = cli
        .texts(Stream::Err, 0)
        .into_iter()
        .filter(|(seq, _)| *seq < started_seq)
        .collect();
    let counted = |text: &str| -> bool {
        let Some(rest) = text.strip_prefix("[hotswap] building (hot mode): ") else {
            return false;
        };
        let Some((done, rest)) = rest.split_once('/') else {
            return false;
        };
        let total = rest.trim_start_matches('~');
        let digits = total.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        done.parse::<u64>().is_ok_and(|done| done >= 1)
            && digits > 0
            && total[digits..].starts_with(" crates")
    };
    let progress = lines.iter().find(|(_, text)| counted(text));
    let summary = lines
        .iter()
        .filter(|(_, text)| text.starts_with("[hotswap] built in "))
        .collect::<Vec<_>>();
    let transcript = || cli.transcript();
    let Some((progress_seq, _)) = progress else {
        panic!(
            "no `building (hot mode): N/M crates` line\n{}",
            transcript()
        );
    };
    assert_eq!(summary.len(), 1, "one summary line\n{}", transcript());
    let (summary_seq, summary) = summary[0];
    assert!(
        summary_seq > progress_seq && summary.contains(" compiled"),
        "{summary:?}\n{}",
        transcript()
    );
    assert!(
        lines.iter().all(|(_, text)| !text.contains('\r')),
        "a progress line was redrawn on stderr that is not a terminal\n{}",
        transcript()
    );
}

/// After a patch: the program's private directory holds no patch file (the staged copy is
/// deleted once loaded), and the command's holds nothing but its socket (the built patch is
/// deleted once the program answered).
fn assert_no_patch_files_left(cli: &Cli, app_pid: u32) {
    let app_dir = private_base().join(app_pid.to_string());
    assert!(
        app_dir.is_dir(),
        "the program has no private directory at {}",
        app_dir.display()
    );
    let left = files_in(&app_dir);
    assert!(
        left.is_empty(),
        "patch files left in the program's private directory {}: {left:?}",
        app_dir.display()
    );
    let left: Vec<String> = files_in(&cli.private_dir())
        .into_iter()
        .filter(|name| name != "control.sock")
        .collect();
    assert!(
        left.is_empty(),
        "files left in the command's private directory {}: {left:?}",
        cli.private_dir().display()
    );
}

/// The `host pid=P type_id=T` line the program printed when process `pid` started: returns
/// its sequence number and `T`.
fn host_line(cli: &Cli, pid: u32, since: usize) -> (usize, String) {
    let line = cli.wait_out(&format!("`host pid={pid} ...`"), since, OUTPUT, |t| {
        t.starts_with(&format!("host pid={pid} "))
    });
    let type_id = field(&line.text, "type_id").unwrap().to_owned();
    (line.seq, type_id)
}

/// Checks that a line of patched code computed the same `TypeId` for `State` as the host.
fn assert_same_type(text: &str, host_type: &str) {
    assert_eq!(
        field(text, "same_type"),
        Some("true"),
        "TypeId::of::<State>() differs between the host and the patch: {text:?}"
    );
    assert_eq!(
        field(text, "type_id"),
        Some(host_type),
        "the patch printed another TypeId than the host: {text:?}"
    );
}

/// Scenarios 1, 2, 3, 8, 7 and 4, in this order, on one running program.
///
/// Fails if: a saved body edit is not patched in (no `patched` message / no `v2` output); the
/// program's state is reset or duplicated by a patch (the counter sequence has a gap or starts
/// again); a patch cannot call a dependency function the program never called (no `v3` line:
/// the loader refuses the patch for an undefined symbol); a compile error is not reported or
/// stops the program; a panic in patched code is not caught by the host's `catch_unwind` with its
/// message; the patch's `TypeId` of a hot-crate type differs from the host's (the patch was
/// not compiled with the host's flags); a signature change is not refused and turned into a
/// restart, or the restarted program cannot be patched; patch files are left in either private
/// directory; Ctrl-C does not end both.
#[test]
fn edits_patch_the_running_program_and_keep_its_state() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_cli_edit");
    let game = scratch.game.clone();
    let app = scratch.app.clone();
    // As cargo runs a subcommand: `cargo-hotswap hotswap run`.
    let (mut cli, started) = scratch.run(&["hotswap", "run"]);
    let pid = started.pid;
    assert_build_progress(&cli, started.seq);
    let (first_line, host_type) = host_line(&cli, pid, 0);
    // The v1 line that made `run` return was printed by the compiled-in code.

    // 1. A body edit: the new code runs, with the state the old code left.
    let (before, _) = patch(
        &cli,
        &scratch,
        &game_source(
            "v2",
            "String",
            r#"log::info!("v2 logged at counter={}", state.counter);"#,
        ),
        1,
    );
    let v2 = cli.wait_out("`v2 counter=...`", before, OUTPUT, |t| {
        t.starts_with("v2 counter=")
    });
    assert_same_type(&v2.text, &host_type);
    // `log` in the patch reaches the logger the program installed.
    cli.wait_out("`LOG: v2 logged at counter=...`", before, OUTPUT, |t| {
        t.starts_with("LOG: v2 logged at counter=")
    });
    assert_no_patch_files_left(&cli, pid);

    // 2. The new code calls a dependency function the program never called: `strsim`, which
    //    only the hot crate depends on and v1 does not use, so it is in the program only because
    //    the program's link keeps (and exports) every function of the hot crate's dependencies.
    //    (Not `itoa`: the program already links it through hotswap's own dependencies.)
    let new_call = "extra = format!(\" distance={}\", \
                    strsim::levenshtein(&\"a\".repeat(state.counter as usize % 7), \"\"));";
    let (before, _) = patch(&cli, &scratch, &game_source("v3", "String", new_call), 2);
    let v3 = cli.wait_out("`v3 counter=... distance=...`", before, OUTPUT, |t| {
        t.starts_with("v3 counter=")
    });
    let counter = counter_of(&v3.text).unwrap();
    assert_eq!(
        field(&v3.text, "distance"),
        Some((counter % 7).to_string().as_str()),
        "wrong strsim result in {:?}",
        v3.text
    );
    assert_same_type(&v3.text, &host_type);
    assert_no_patch_files_left(&cli, pid);

    // 3. A compile error: shown as cargo shows it; the program keeps running the last good code.
    let before = cli.mark();
    let last_good = cli
        .texts(Stream::Out, 0)
        .into_iter()
        .rev()
        .find_map(|(_, t)| {
            t.starts_with("v3 counter=")
                .then(|| counter_of(&t).unwrap())
        })
        .unwrap();
    let broken = format!("{new_call}\n    let broken: u32 = \"not a number\";");
    scratch.save_game(&game_source("v3", "String", &broken));
    let refused = cli.wait_message(
        &format!(
            "`{game}` does not compile; `{app}` keeps running the last good code. Fix it and save."
        ),
        before,
        PATCH,
    );
    let diagnostics: Vec<String> = cli
        .texts(Stream::Err, before)
        .into_iter()
        .filter(|(seq, _)| *seq < refused.seq)
        .map(|(_, t)| t)
        .collect();
    assert!(
        diagnostics
            .iter()
            .any(|t| t.starts_with("error[E0308]: mismatched types"))
            && diagnostics
                .iter()
                .any(|t| t.trim_start().starts_with("--> game/src/lib.rs:")),
        "no rendered diagnostic before the `does not compile` message\n{}",
        cli.transcript()
    );
    // Still running v3, and still counting: three more steps after the message.
    let mut since = refused.seq;
    for _ in 0..3 {
        let line = cli.wait_out(
            "`v3 counter=...` after the compile error",
            since,
            OUTPUT,
            |t| t.starts_with("v3 counter="),
        );
        assert!(counter_of(&line.text).unwrap() > last_good);
        since = line.seq + 1;
    }
    // Fixed: patched, as version 3 (the broken save made no version).
    let (before, _) = patch(
        &cli,
        &scratch,
        &game_source("v4", "String", "extra.push_str(\" fixed\");"),
        3,
    );
    cli.wait_out("`v4 counter=... fixed`", before, OUTPUT, |t| {
        t.starts_with("v4 counter=") && t.ends_with(" fixed")
    });

    // 8. A panic in patched code is caught by the host's `catch_unwind`, with its message, and
    //    the program carries on.
    let panicky = r#"if state.counter % 3 == 0 {
        panic!("v5 boom at counter={}", state.counter);
    }"#;
    let (before, _) = patch(&cli, &scratch, &game_source("v5", "String", panicky), 4);
    let caught = cli.wait_out("`caught panic: v5 boom ...`", before, OUTPUT, |t| {
        t.starts_with("caught panic: ")
    });
    let at = counter_of(&caught.text).expect("the panic message carries the counter");
    assert_eq!(
        caught.text,
        format!("caught panic: v5 boom at counter={at}")
    );
    assert_eq!(at % 3, 0);
    let after = cli.wait_out(
        "`v5 counter=...` after the panic",
        caught.seq,
        OUTPUT,
        |t| t.starts_with("v5 counter="),
    );

    // 7. TypeId: the patched code's `TypeId::of::<State>()` is the host's (checked on every
    //    patched line above too).
    assert_same_type(&after.text, &host_type);

    // State: every step of every version advanced the same counter, so the program printed
    // 1, 2, 3, ... without a gap or a new start: no patch reset or copied the state.
    let out = cli.texts(Stream::Out, first_line + 1);
    let counters: Vec<u64> = out
        .iter()
        .filter(|(_, t)| t.starts_with('v') || t.starts_with("caught panic: "))
        .map(|(_, t)| counter_of(t).unwrap_or_else(|| panic!("no counter in {t:?}")))
        .collect();
    let expected: Vec<u64> = (1..=counters.len() as u64).collect();
    assert_eq!(counters, expected, "the counter did not advance one by one");
    for version in ["v1 ", "v2 ", "v3 ", "v4 ", "v5 "] {
        assert!(
            out.iter().any(|(_, t)| t.starts_with(version)),
            "no {version}line"
        );
    }

    // 4. A signature change cannot be swapped: the program refuses the patch (naming the
    //    function), the command restarts it, and the new program runs the new code.
    let before = cli.mark();
    scratch.save_game(&game_source("v6", "Box<str>", ""));
    let refusal = cli.wait_message(
        &format!("{game}: the program refused the patch: "),
        before,
        PATCH,
    );
    assert!(
        refusal
            .text
            .contains(&format!("`{game}::step`: signature changed from `"))
            && refusal.text.contains("String")
            && refusal.text.contains("Box"),
        "unexpected refusal {:?}",
        refusal.text
    );
    cli.wait_message(
        &format!("restarting `{app}`: the change cannot be hot-swapped"),
        refusal.seq,
        OUTPUT,
    );
    let restarted = cli.wait_started(refusal.seq, RESTART);
    assert_ne!(restarted.pid, pid, "the program was not restarted");
    assert!(!is_running(pid), "the old program (pid {pid}) still runs");
    let (new_first, new_type) = host_line(&cli, restarted.pid, before);
    let v6 = cli.wait_out("`v6 counter=...`", new_first, OUTPUT, |t| {
        t.starts_with("v6 counter=")
    });
    assert_eq!(
        counter_of(&v6.text),
        Some(1),
        "the restarted program starts afresh"
    );
    assert_same_type(&v6.text, &new_type);
    // The restarted program is patched like the first one (from the new build's records).
    let (before, _) = patch(&cli, &scratch, &game_source("v7", "Box<str>", ""), 1);
    let v7 = cli.wait_out("`v7 counter=...`", before, OUTPUT, |t| {
        t.starts_with("v7 counter=")
    });
    assert!(counter_of(&v7.text).unwrap() > 1, "{:?}", v7.text);
    assert_same_type(&v7.text, &new_type);
    assert_no_patch_files_left(&cli, restarted.pid);

    // 9 (as every session ends): Ctrl-C ends both; the program has no SIGINT handler, so it
    // dies of SIGINT and the command exits with 130.
    cli.interrupt_and_check(restarted.pid, 130);
}

/// Scenarios 5 and 6: a manifest change restarts the program; a program that died is started
/// again by the next saved change.
///
/// Fails if: editing Cargo.toml patches or does nothing instead of restarting (no `restarting`
/// message naming game/Cargo.toml, no new pid, or the counter does not start again); the death of
/// the program goes unreported or is reported with the wrong cause; the next source change does
/// not start it again with the new code; a restarted program cannot be patched.
#[test]
fn manifest_changes_restart_and_a_killed_program_starts_again_on_the_next_change() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_cli_restart");
    let app = scratch.app.clone();
    let (mut cli, started) = scratch.run(&["run"]);

    // 5. A harmless Cargo.toml change: restart, with the reason naming the file.
    let before = cli.mark();
    let manifest = scratch.read("game/Cargo.toml");
    scratch.save(
        "game/Cargo.toml",
        &format!("{manifest}\n[package.metadata.e2e]\nnote = \"restart me\"\n"),
    );
    let restarting = cli.wait_message(
        &format!("restarting `{app}`: game/Cargo.toml changed (dependencies may differ)"),
        before,
        PATCH,
    );
    let restarted = cli.wait_started(restarting.seq, RESTART);
    assert_ne!(restarted.pid, started.pid, "the program was not restarted");
    assert!(!is_running(started.pid), "the old program still runs");
    let (first, _) = host_line(&cli, restarted.pid, before);
    let line = cli.wait_out("`v1 counter=1` from the new program", first, OUTPUT, |t| {
        t.starts_with("v1 counter=")
    });
    assert_eq!(counter_of(&line.text), Some(1));
    // ... and runs patches again.
    let (before, _) = patch(&cli, &scratch, &game_source("v2", "String", ""), 1);
    cli.wait_out("`v2 counter=...`", before, OUTPUT, |t| {
        t.starts_with("v2 counter=")
    });

    // 6. The program is killed: reported, and the next saved change starts it again.
    let before = cli.mark();
    support::signal(restarted.pid, libc::SIGKILL);
    let exited = cli.wait_message(
        &format!("`{app}` exited (killed by SIGKILL (9)); it will start again on the next change"),
        before,
        OUTPUT,
    );
    let before = cli.mark();
    scratch.save_game(&game_source("v3", "String", ""));
    cli.wait_message(
        &format!("game/src/lib.rs changed; starting `{app}` again"),
        before.max(exited.seq),
        OUTPUT,
    );
    let again = cli.wait_started(before.max(exited.seq), RESTART);
    assert_ne!(again.pid, restarted.pid);
    let (first, _) = host_line(&cli, again.pid, before);
    let line = cli.wait_out("`v3 counter=1` from the new program", first, OUTPUT, |t| {
        t.starts_with("v3 counter=")
    });
    assert_eq!(counter_of(&line.text), Some(1));
    // ... and runs patches again.
    let (before, _) = patch(&cli, &scratch, &game_source("v4", "String", ""), 1);
    cli.wait_out("`v4 counter=...`", before, OUTPUT, |t| {
        t.starts_with("v4 counter=")
    });

    cli.interrupt_and_check(again.pid, 130);
}

/// Scenario 9: Ctrl-C (SIGINT to the command) interrupts the program, waits for it and exits
/// with its exit code: here 42, the code this program exits with on SIGINT (arguments after
/// `--` reach the program).
///
/// Fails if: the command exits with another code than the program's (e.g. a fixed 130), does
/// not exit, leaves the program running, or leaves its private directory behind.
#[test]
fn ctrl_c_stops_the_program_and_exits_with_its_exit_code() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_cli_ctrlc");
    let (mut cli, started) = scratch.run(&["run", "--", "--exit-42-on-sigint"]);
    cli.interrupt_and_check(started.pid, 42);
    // Nothing after the interrupt but the program's last lines: no error from the command.
    let errors: Vec<String> = cli
        .texts(Stream::Err, 0)
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.contains("error") || t.contains("panicked"))
        .collect();
    assert!(errors.is_empty(), "unexpected messages: {errors:?}");
}

/// The command is stopped without Ctrl-C (SIGTERM from `timeout`, an IDE's stop button, or a
/// crash): the program must not run on orphaned.
///
/// Fails if: the program still runs after the command died.
#[test]
fn the_program_does_not_outlive_a_terminated_command() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_cli_term");
    let (mut cli, started) = scratch.run(&["run"]);
    support::signal(cli.pid(), libc::SIGTERM);
    cli.wait_exit(OUTPUT);
    assert!(
        support::wait_gone(started.pid, OUTPUT),
        "the program (pid {}) still runs after its command was terminated\n{}",
        started.pid,
        cli.transcript()
    );
}
