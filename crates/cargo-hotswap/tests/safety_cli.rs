//! The safety checks of a patch, end to end under the real `cargo hotswap run`: a layout change
//! refused with the field named, `State<T>` migrated (and a migration that cannot succeed
//! refused), a panicking patch rolled back, and private statics and thread-locals named when a
//! patch restarts them. Each test edits a running scratch app as a user would and asserts on what
//! the program prints (stdout) and what the command reports (`[hotswap]` lines on stderr).
//!
//! See `support/mod.rs` for the scratch workspace and the running command.

mod support;

use support::{
    counter_of, field, game_source, hotswap_dir, is_save_outcome, Cli, Scratch, Stream, OUTPUT,
    PATCH,
};

/// Saves `source` as the hot crate and returns the first outcome the command reports for it
/// (patched, refused, does not compile, restarting), so a wrong outcome fails at once.
fn save_and_wait_outcome(cli: &Cli, scratch: &Scratch, source: &str) -> (usize, support::Line) {
    let before = cli.mark();
    scratch.save_game(source);
    let patched = format!("[hotswap] {}: patched ", scratch.game);
    let line = cli.wait_for("the outcome of the save", before, PATCH, |line| {
        is_save_outcome(line, &patched)
    });
    (before, line)
}

/// Like [`save_and_wait_outcome`], and asserts the patch was applied as `version`.
fn patch(cli: &Cli, scratch: &Scratch, source: &str, version: u64) -> (usize, String) {
    let (before, line) = save_and_wait_outcome(cli, scratch, source);
    assert!(
        line.text
            .starts_with(&format!("[hotswap] {}: patched 1 function", scratch.game))
            && line
                .text
                .contains(&format!("(game/src/lib.rs) — version {version}; build ")),
        "unexpected patch message {:?}\n{}",
        line.text,
        cli.transcript()
    );
    (before, line.text)
}

/// The counters of the program's `v... counter=N` lines numbered `from` to `to` (excluded).
fn counters(cli: &Cli, from: usize, to: usize) -> Vec<u64> {
    cli.texts(Stream::Out, from)
        .iter()
        .filter(|(seq, t)| *seq < to && t.starts_with('v'))
        .filter_map(|(_, t)| counter_of(t))
        .collect()
}

/// Asserts the counter of the lines from `from` to `to` went 1, 2, 3, ... without a gap or a
/// new start.
fn assert_counts_on(cli: &Cli, from: usize, to: usize) {
    let seen = counters(cli, from, to);
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(
        seen,
        expected,
        "the counter did not advance one by one\n{}",
        cli.transcript()
    );
}

const PLAIN_MAIN_RS: &str = r#"use std::time::Duration;

use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    let mut plain = game::Plain::default();
    loop {
        println!("{}", game::step(&mut plain));
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

const PLAIN_LIB_RS: &str = r#"/// Owned by the program, passed to the hot code by `&mut`.
#[derive(Default, hotswap::Layout)]
pub struct Plain {
    pub counter: u32,
    FIELDS
}

#[hotswap::hot]
pub fn step(plain: &mut Plain) -> String {
    plain.counter += 1;
    format!("VERSION counter={}", plain.counter)
}
"#;

/// Issue 4 and 9, layout: a field added to a `#[derive(hotswap::Layout)]` type that the program
/// owns and passes by `&mut` to a hot function. Swapping it in would let the new code write past
/// the program's value, so the command does not deliver the patch: it restarts the program,
/// naming the function, the type, the size change and the field, and the new program runs the
/// new code. (The program's own refusal of such a patch is tested in `safety_channel`.)
///
/// Fails if: the patch is applied (a `patched` line, or `v2` output from the old program); the
/// restart does not name `step`, `Plain`, 4 → 8 bytes and `extra: u8`; the old program prints
/// anything but v1 before the restart; the command does not restart it with the new code.
#[test]
fn a_field_added_to_a_layout_type_restarts_the_program_naming_the_field() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_safety_layout");
    let game = scratch.game.clone();
    let app = scratch.app.clone();
    scratch.save("app/src/main.rs", &PLAIN_MAIN_RS.replace("GAME", &game));
    let source = |version: &str, fields: &str| {
        PLAIN_LIB_RS
            .replace("VERSION", version)
            .replace("FIELDS", fields)
    };
    scratch.save_game(&source("v1", ""));
    let (cli, started) = scratch.run(&["run"]);

    let (before, refusal) = save_and_wait_outcome(&cli, &scratch, &source("v2", "pub extra: u8,"));
    let expected = format!(
        "[hotswap] restarting `{app}`: `{game}::step`: `Plain` grew from 4 to 8 bytes (field \
         `extra: u8` added)"
    );
    assert!(
        refusal.text.starts_with(&expected),
        "expected a restart starting with {expected:?}, got {:?}\n{}",
        refusal.text,
        cli.transcript()
    );
    let restarted = cli.wait_started(refusal.seq, support::RESTART);
    assert_ne!(restarted.pid, started.pid, "the program was not restarted");
    // Found by the pid it prints, from before the save: the new program's first line may
    // arrive before the command's `started` line (two pipes, no order between them).
    let host = cli.wait_out("the new program's first line", before, OUTPUT, |t| {
        t == format!("host pid={}", restarted.pid)
    });
    let first = cli.wait_out("`v2 counter=1`", host.seq, OUTPUT, |t| t.starts_with("v2 "));
    assert_eq!(
        first.text, "v2 counter=1",
        "the restarted program starts afresh"
    );
    // The old program ran v1 until the new one started, counting on, and never the refused v2.
    // (That it keeps running after a refusal is shown without a race by the migration test,
    // where the restart cannot build.)
    let old: Vec<String> = cli
        .texts(Stream::Out, before)
        .into_iter()
        .filter(|(seq, t)| *seq < host.seq && t.starts_with('v'))
        .map(|(_, t)| t)
        .collect();
    assert!(
        old.iter().all(|t| t.starts_with("v1 ")),
        "the old program ran refused code: {old:?}"
    );
    assert_counts_on(&cli, 0, host.seq);
}

/// The state type of the migration test; `FIELDS` and `SHOW` change between versions.
const MIGRATE_LIB_RS: &str = r#"use serde::{Deserialize, Serialize};

#[allow(dead_code)]
fn three() -> u32 {
    3
}

#[allow(dead_code)]
fn boom<'de, D: serde::Deserializer<'de>>(_: D) -> Result<u32, D::Error> {
    panic!("boom while migrating")
}

#[derive(Default, Serialize, Deserialize, hotswap::Migrate)]
#[serde(default)]
pub struct Game {
    pub counter: u64,
    FIELDS
}

#[hotswap::hot]
pub fn step(game: &mut hotswap::State<Game>) -> String {
    let mut game = game.get_mut();
    game.counter += 1;
    format!("VERSION counter={} {}", game.counter, SHOW)
}
"#;

const MIGRATE_MAIN_RS: &str = r#"use std::time::Duration;

use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    // Built here, with the fields of version 1: when the type changes so that this no longer
    // compiles, a restart fails and the program keeps running the code (and state) it has.
    let mut state = hotswap::State::new(game::Game { counter: 0, name: "ada".into() });
    loop {
        println!("{}", game::step(&mut state));
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

/// Issue 4, state: a field with a default added to a `hotswap::State<Game>` type is migrated at
/// swap time (the counter carries on, the new field takes its default); then a change that
/// cannot be migrated (`name: String` → `name: u64`, and the value is "ada") is refused, naming
/// the migration, and the program keeps its old code and its old state; a later good patch
/// finds that state intact.
///
/// To keep the old program observable after the refusal, the program's `main` builds the value
/// with the fields of version 1, so the command's restart fails to compile and the old program
/// runs on.
///
/// Fails if: the first patch is refused or not reported as `migrated 1 state value`; the
/// counter restarts or skips (state lost or duplicated by the migration); `lives` is not 3 (the
/// default was not applied); the retyped field is migrated anyway or the refusal does not say
/// it was the migration; after the refusal the program runs v3, dies, or its counter or name
/// change; a deserialiser that panics (a panic during patch initialisation) is not refused, or
/// kills the program; the last patch does not see the migrated state.
#[test]
fn state_is_migrated_when_its_type_changes_and_a_migration_that_fails_keeps_the_old_state() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_safety_migrate");
    let game = scratch.game.clone();
    let app = scratch.app.clone();
    let hotswap = hotswap_dir().display().to_string();
    scratch.save(
        "game/Cargo.toml",
        &format!(
            "[package]\nname = \"{game}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nhotswap = {{ path = {hotswap:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n"
        ),
    );
    scratch.save(
        "app/Cargo.toml",
        &format!(
            "[package]\nname = \"{app}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\n{game} = {{ path = \"../game\" }}\n\
             hotswap = {{ path = {hotswap:?} }}\n"
        ),
    );
    scratch.save("app/src/main.rs", &MIGRATE_MAIN_RS.replace("GAME", &game));
    let source = |version: &str, fields: &str, show: &str| {
        MIGRATE_LIB_RS
            .replace("VERSION", version)
            .replace("FIELDS", fields)
            .replace("SHOW", show)
    };
    let v1_fields = "pub name: String,";
    scratch.save_game(&source("v1", v1_fields, "format!(\"name={}\", game.name)"));
    let (cli, started) = scratch.run(&["run"]);
    let first = cli.wait_out("the first step", 0, OUTPUT, |t| t.starts_with("v1 "));
    assert_eq!(first.text, "v1 counter=1 name=ada");

    // 1. A new field with a default: migrated.
    let v2_fields = "pub name: String,\n    #[serde(default = \"three\")]\n    pub lives: u32,";
    let v2_show = "format!(\"name={} lives={}\", game.name, game.lives)";
    let (before, patched) = patch(&cli, &scratch, &source("v2", v2_fields, v2_show), 1);
    assert!(
        patched.starts_with(&format!(
            "[hotswap] {game}: patched 1 function, migrated 1 state value ("
        )),
        "the patch did not report the migration: {patched:?}"
    );
    let v2 = cli.wait_out("`v2 counter=...`", before, OUTPUT, |t| t.starts_with("v2 "));
    let at = counter_of(&v2.text).unwrap();
    assert_eq!(
        v2.text,
        format!("v2 counter={at} name=ada lives=3"),
        "the migrated value lost a field or the new field did not get its default"
    );
    assert!(at > 1);
    assert_counts_on(&cli, 0, usize::MAX);

    // 2. `name` becomes a number: the old value "ada" cannot be read by the new code.
    let v3_fields = "pub name: u64,\n    #[serde(default = \"three\")]\n    pub lives: u32,";
    let (_, refusal) = save_and_wait_outcome(&cli, &scratch, &source("v3", v3_fields, v2_show));
    assert!(
        refusal.text.starts_with(&format!(
            "[hotswap] {game}: the program refused the patch: migrating `{game}::Game`: the new \
             code could not read the old value ("
        )) && refusal.text.contains("expected u64"),
        "unexpected refusal {:?}\n{}",
        refusal.text,
        cli.transcript()
    );
    // The restart cannot build (main.rs gives `name` a string), so the old program runs on.
    let failed = cli.wait_message("the build failed", refusal.seq, support::RESTART);
    cli.wait_for("the program kept", failed.seq, OUTPUT, |l| {
        l.stream == Stream::Err
            && l.text
                .contains(&format!("`{app}` keeps running the last good code"))
    });
    let mut since = failed.seq;
    for _ in 0..3 {
        let line = cli.wait_out("v2 after the refusal", since, OUTPUT, |t| {
            t.starts_with('v')
        });
        assert!(
            line.text.starts_with("v2 ") && line.text.ends_with(" name=ada lives=3"),
            "after the refused migration the program should run v2 with its old state: {:?}",
            line.text
        );
        since = line.seq + 1;
    }
    assert!(
        support::is_running(started.pid),
        "the program died after the refused migration"
    );
    assert_counts_on(&cli, 0, usize::MAX);

    // 2b. A panic during patch initialisation: the new code panics while reading the old value
    // (its deserialiser for a field the old value has). Refused, naming the panic; the program
    // keeps its old code and state (this fails if the panic escapes or kills the program).
    let v3b_fields =
        "pub name: String,\n    #[serde(rename = \"lives\", deserialize_with = \"boom\")]\n    pub checked: u32,";
    let v3b_show = "format!(\"name={} lives={}\", game.name, game.checked)";
    let (_, refusal) = save_and_wait_outcome(&cli, &scratch, &source("v3b", v3b_fields, v3b_show));
    assert!(
        refusal.text.starts_with(&format!(
            "[hotswap] {game}: the program refused the patch: migrating `{game}::Game`: the new \
             code panicked while deserialising it"
        )),
        "unexpected outcome of a panicking migration {:?}\n{}",
        refusal.text,
        cli.transcript()
    );
    let failed = cli.wait_message("the build failed", refusal.seq, support::RESTART);
    let mut since = failed.seq;
    for _ in 0..3 {
        let line = cli.wait_out("v2 after the panic", since, OUTPUT, |t| t.starts_with('v'));
        assert!(
            line.text.starts_with("v2 ") && line.text.ends_with(" name=ada lives=3"),
            "after the panicking migration the program should run v2 with its old state: {:?}",
            line.text
        );
        since = line.seq + 1;
    }
    assert!(
        support::is_running(started.pid),
        "the program died after the panicking migration"
    );
    assert_counts_on(&cli, 0, usize::MAX);

    // 3. Back to a type the state has: patched without a migration, and the state is intact.
    let (before, patched) = patch(&cli, &scratch, &source("v4", v2_fields, v2_show), 2);
    assert!(
        !patched.contains("migrated"),
        "nothing needed migrating: {patched:?}"
    );
    let v4 = cli.wait_out("`v4 counter=...`", before, OUTPUT, |t| t.starts_with("v4 "));
    assert!(
        v4.text.ends_with(" name=ada lives=3"),
        "the state changed: {:?}",
        v4.text
    );
    assert_counts_on(&cli, 0, usize::MAX);
}

/// Issue 4, panic policy: under `--rollback-on-panic`, a patch whose code panics is rolled back.
/// The panic still reaches the caller (the program's `catch_unwind` prints it), the command
/// reports the roll-back, and the very next step runs the code from before the patch.
///
/// Fails if: the panic does not reach the caller with its message; no roll-back line, or one
/// with the wrong function, version or message; the step after the panic runs the panicking
/// patch again (`v2 ...` or another `caught panic`); a later patch is not applied.
#[test]
fn a_patch_that_panics_is_rolled_back_under_rollback_on_panic() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_safety_rollback");
    let game = scratch.game.clone();
    let (cli, _) = scratch.run(&["run", "--rollback-on-panic"]);
    let panicky = r#"if state.counter % 3 == 0 {
        panic!("v2 boom at counter={}", state.counter);
    }"#;
    let (before, _) = patch(&cli, &scratch, &game_source("v2", "String", panicky), 1);
    let caught = cli.wait_out("`caught panic: v2 boom ...`", before, OUTPUT, |t| {
        t.starts_with("caught panic: ")
    });
    let at = counter_of(&caught.text).expect("the panic message carries the counter");
    assert_eq!(
        caught.text,
        format!("caught panic: v2 boom at counter={at}")
    );
    cli.wait_message(
        &format!("`{game}::step` panicked in version 1 (v2 boom at counter={at}); rolled back to the code before that patch (now version 2). Fix it and save."),
        before,
        OUTPUT,
    );
    // The next step after the panic runs the code from before the patch.
    let next = cli.wait_out("the step after the panic", caught.seq + 1, OUTPUT, |t| {
        t.starts_with('v') || t.starts_with("caught panic: ")
    });
    assert!(
        next.text.starts_with(&format!("v1 counter={} ", at + 1)),
        "the step after the panic should run v1 again: {:?}\n{}",
        next.text,
        cli.transcript()
    );
    // Several more, all v1.
    let mut since = next.seq + 1;
    for _ in 0..3 {
        let line = cli.wait_out("v1 after the roll-back", since, OUTPUT, |t| {
            t.starts_with('v') || t.starts_with("caught panic: ")
        });
        assert!(line.text.starts_with("v1 "), "{:?}", line.text);
        since = line.seq + 1;
    }
    // The fix is patched in as the next version.
    let (before, _) = patch(&cli, &scratch, &game_source("v3", "String", ""), 3);
    let v3 = cli.wait_out("`v3 counter=...`", before, OUTPUT, |t| t.starts_with("v3 "));
    assert_eq!(field(&v3.text, "same_type"), Some("true"));
    // Every step, panicked or not, advanced the one counter.
    let seen: Vec<u64> = cli
        .texts(Stream::Out, 0)
        .iter()
        .filter(|(_, t)| t.starts_with('v') || t.starts_with("caught panic: "))
        .filter_map(|(_, t)| counter_of(t))
        .collect();
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected, "the counter did not advance one by one");
}

/// The hot crate of the statics test: `step` keeps the signature of `tests/support`'s program.
const STATICS_LIB_RS: &str = r#"use std::any::TypeId;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct State {
    pub counter: u64,
}

/// Reachable from the crate root: the program exports it, so a patch uses the program's.
pub static SHARED_CALLS: AtomicU64 = AtomicU64::new(0);

/// Private: shared only by a patch at a fixed address; here (no reservation) a patch has its
/// own copy, which starts from zero.
static PRIVATE_CALLS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Shared at any address: the patch's code is rewritten to use the program's.
    static THREAD_CALLS: Cell<u64> = Cell::new(0);
}

#[hotswap::hot]
pub fn step(state: &mut State, _host_type: TypeId) -> String {
    state.counter += 1;
    let shared = SHARED_CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let private = PRIVATE_CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let thread = THREAD_CALLS.with(|calls| {
        calls.set(calls.get() + 1);
        calls.get()
    });
    format!(
        "VERSION counter={} shared={shared} private={private} thread={thread}",
        state.counter
    )
}
"#;

/// Statics when the program could not reserve room for patches at a fixed address (issue 11's
/// fallback; `HOTSWAP_NO_RESERVE=1` makes it so): the private `static` starts from its initial
/// value in the patch and the warning names it; the `thread_local!` (rewritten at any address)
/// and the `pub static` (exported) keep counting and are not named. `statics_e2e` has the
/// case with a reservation, where the private static is shared too.
///
/// Fails if: the warning is missing or names the shared ones; a shared one restarts in the
/// patch; the private one does not restart (then the warning would be wrong).
#[test]
fn without_a_reservation_a_private_static_starts_afresh_and_is_named() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_safety_statics");
    let game = scratch.game.clone();
    let source = |version: &str| STATICS_LIB_RS.replace("VERSION", version);
    scratch.save_game(&source("v1"));
    let mut command = scratch.command(&["run"]);
    command.env("HOTSWAP_NO_RESERVE", "1");
    let cli = scratch.start_command(command);
    cli.wait_started(0, support::FIRST_BUILD);
    // Let v1 count a little.
    let v1 = cli.wait_out("`v1 counter=3`", 0, OUTPUT, |t| {
        t.starts_with("v1 counter=3 ")
    });
    assert_eq!(v1.text, "v1 counter=3 shared=3 private=3 thread=3");

    let (before, _) = patch(&cli, &scratch, &source("v2"), 1);
    let warning = cli.wait_for("the statics warning", before, OUTPUT, |l| {
        l.stream == Stream::Err && l.text.contains("from the initial value in each patch")
    });
    let private = format!("static `{game}::PRIVATE_CALLS`");
    assert!(
        warning
            .text
            .starts_with(&format!("[hotswap] {game}: {private} starts ")),
        "the warning does not name {private} (alone): {:?}",
        warning.text
    );
    assert!(
        !warning.text.contains("SHARED_CALLS") && !warning.text.contains("THREAD_CALLS"),
        "the warning names a shared static: {:?}",
        warning.text
    );
    let v2 = cli.wait_out("`v2 counter=...`", before, OUTPUT, |t| t.starts_with("v2 "));
    let last_v1 = cli
        .texts(Stream::Out, 0)
        .into_iter()
        .rev()
        .find(|(seq, t)| *seq < v2.seq && t.starts_with("v1 "))
        .map(|(_, t)| counter_of(&t).unwrap())
        .unwrap();
    assert_eq!(
        v2.text,
        format!(
            "v2 counter={n} shared={n} private=1 thread={n}",
            n = last_v1 + 1
        ),
        "the pub static and the thread-local should keep counting, the private static start again"
    );
}
