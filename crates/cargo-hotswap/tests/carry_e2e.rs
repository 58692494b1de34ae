//! `State` values carried across a restart, end to end under the real `cargo hotswap run`: a
//! change that cannot be hot-swapped restarts the program, and the new process continues from
//! the old one's `State<Game>`; a `State<Label>` whose new type cannot read the old value starts
//! fresh and is named; a program that was killed cannot hand anything over, and the restart
//! says so.
//!
//! Every wait is for a fact the program prints (its pid on each line, its counter) or a line of
//! the command; the program's lines are told apart by the pid they carry, never by where they
//! fall among the command's lines.
//!
//! See `support/mod.rs` for the scratch workspace and the running command.

mod support;

use support::{
    counter_of, field, files_in, hotswap_dir, is_save_outcome, Cli, Scratch, Stream, OUTPUT, PATCH,
    RESTART,
};

/// The program: owns a `State<Game>` (a counter) and a `State<Label>`, calls the hot `step`
/// every 50 ms and prints what it returns (any `Display`, so the test can change the return
/// type without touching this file).
const MAIN_RS: &str = r#"use std::time::Duration;

use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    let mut game = hotswap::State::new(game::Game::default());
    let mut label = hotswap::State::new(game::Label::default());
    loop {
        println!("{}", game::step(&mut game, &mut label));
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

/// Version `VERSION` of the hot crate: `step` counts, and gives the label, once, the pid of the
/// process that first saw it empty (`LABEL` is its type: a `String`, later a `u64`, which cannot
/// read the text). Each line carries the pid of the process that printed it.
const LIB_RS: &str = r#"use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize, hotswap::Migrate)]
#[serde(default)]
pub struct Game {
    pub counter: u64,
}

#[derive(Default, Serialize, Deserialize, hotswap::Migrate)]
#[serde(default)]
pub struct Label {
    pub text: LABEL,
}

#[hotswap::hot]
pub fn step(game: &mut hotswap::State<Game>, label: &mut hotswap::State<Label>) -> RETURN {
    let pid = std::process::id();
    let mut game = game.get_mut();
    game.counter += 1;
    let mut label = label.get_mut();
    if label.text == LABEL::default() {
        label.text = NAME;
    }
    format!("VERSION counter={} pid={pid} label={}", game.counter, label.text).into()
}
"#;

/// The hot crate with the label as text (`String`, returning `String`).
fn text_label(version: &str) -> String {
    LIB_RS
        .replace("VERSION", version)
        .replace("LABEL", "String")
        .replace("NAME", "format!(\"from-{pid}\")")
        .replace("RETURN", "String")
}

/// The hot crate with the label as a number, and `step` returning `Box<str>`: a new signature.
///
/// The return type changes rather than a parameter so that `main.rs` (which prints any
/// `Display`) still compiles unchanged: two files cannot be saved at once, and the command could
/// see `main.rs` alone (a build that fails) or each file in its own save (two restarts).
fn number_label(version: &str) -> String {
    LIB_RS
        .replace("VERSION", version)
        .replace("LABEL", "u64")
        .replace("NAME", "u64::from(pid)")
        .replace("RETURN", "Box<str>")
}

/// A scratch workspace running [`MAIN_RS`] with version 1 of the hot crate.
fn scratch() -> Scratch {
    let scratch = Scratch::new("hs_carry");
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
    scratch.save("app/src/main.rs", &MAIN_RS.replace("GAME", &game));
    scratch.save_game(&text_label("v1"));
    scratch
}

/// The `pid=` of a line the program printed.
fn pid_of(text: &str) -> Option<u32> {
    field(text, "pid")?.parse().ok()
}

/// Waits for a `v... counter=N pid=<pid> ...` line of process `pid` satisfying `matches`.
fn wait_line_of(
    cli: &Cli,
    pid: u32,
    what: &str,
    since: usize,
    mut matches: impl FnMut(&str) -> bool,
) -> support::Line {
    cli.wait_out(what, since, OUTPUT, |t| {
        t.starts_with('v') && pid_of(t) == Some(pid) && matches(t)
    })
}

/// The counters process `pid` printed, in order.
fn counters_of(cli: &Cli, pid: u32) -> Vec<u64> {
    cli.texts(Stream::Out, 0)
        .iter()
        .filter(|(_, t)| t.starts_with('v') && pid_of(t) == Some(pid))
        .filter_map(|(_, t)| counter_of(t))
        .collect()
}

/// A restart carries `State` values over, and says what it could not carry.
///
/// 1. A body-only patch is applied (which also proves the program is connected to the command).
/// 2. `step` gets a new return type and `Label` a new field type: the patch is refused, the
///    command restarts the program; the old one saves its states before it is stopped.
/// 3. The program is killed (SIGKILL) and started again by the next save: nothing to carry.
///
/// Fails if: the restart does not start a new process; the command does not report `restarted;
/// carried 1 state value`; the new process's first counter does not continue right after the
/// last one the old process printed (lost, or changed after it was saved); the label is carried
/// (it cannot be: the new type is a number) or not named as started fresh with serde's error;
/// the carried file is left in the command's private directory once read; after the SIGKILL the
/// restart does not say why state could not be carried, or the new process does not start
/// afresh.
#[test]
fn state_is_carried_across_a_restart_and_what_cannot_be_is_named() {
    let _serial = support::serial();
    let scratch = scratch();
    let game = scratch.game.clone();
    let app = scratch.app.clone();
    let (mut cli, started) = scratch.run(&["run"]);
    let old = started.pid;
    wait_line_of(&cli, old, "the old program's counter past 3", 0, |t| {
        counter_of(t).is_some_and(|c| c > 3)
    });

    // 1. A body-only change: patched into the running program.
    let before = cli.mark();
    scratch.save_game(&text_label("v2"));
    let patched = format!("[hotswap] {game}: patched 1 function");
    let outcome = cli.wait_for("the outcome of the save", before, PATCH, |line| {
        is_save_outcome(line, &patched)
    });
    assert!(
        outcome.text.starts_with(&patched),
        "the body-only change was not patched: {:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    let v2 = wait_line_of(&cli, old, "`v2 ...` from the old program", before, |t| {
        t.starts_with("v2 ")
    });
    let old_label = field(&v2.text, "label").unwrap().to_owned();
    assert_eq!(old_label, format!("from-{old}"));

    // 2. A new signature (and a type the old label cannot be read as): a restart.
    let before = cli.mark();
    scratch.save_game(&number_label("v3"));
    let restarted = cli.wait_started(before, RESTART);
    let new = restarted.pid;
    assert_ne!(new, old, "the program was not restarted");
    // The program refuses the new signature (the CLI's own checks let it through: `Label`
    // lives in a `State`, which carries it).
    cli.wait_message(
        &format!("restarting `{app}`: the change cannot be hot-swapped"),
        before,
        OUTPUT,
    );
    cli.wait_message("restarted; carried 1 state value", before, OUTPUT);
    let fresh = cli.wait_message("restarted; `", before, OUTPUT);
    let expected = format!(
        "[hotswap] restarted; `{game}::Label` started fresh: the new code could not read the \
         value carried over (invalid type: string \"{old_label}\", expected u64"
    );
    assert!(
        fresh.text.starts_with(&expected),
        "expected a warning starting with {expected:?}, got {:?}\n{}",
        fresh.text,
        cli.transcript()
    );
    let first = wait_line_of(&cli, new, "the new program's first step", before, |_| true);
    // The old program is gone (stopped before the new one started), so all it printed is here.
    let last_old = *counters_of(&cli, old).last().unwrap();
    let first_new = counter_of(&first.text).unwrap();
    // The old program's states stay locked from the moment they are saved, so it cannot count
    // past the value saved; it may be stopped just before printing that value.
    assert!(
        first_new == last_old + 1 || first_new == last_old + 2,
        "the new program should continue right after the old one's last counter {last_old}, \
         but starts at {first_new}: {:?}\n{}",
        first.text,
        cli.transcript()
    );
    assert_eq!(
        first.text,
        format!("v3 counter={first_new} pid={new} label={new}"),
        "the label should start fresh in the new program (and be its pid)"
    );
    let left: Vec<String> = files_in(&cli.private_dir())
        .into_iter()
        .filter(|name| name.contains("carry"))
        .collect();
    assert!(
        left.is_empty(),
        "the carried file is still there once read: {left:?}"
    );
    let seen = counters_of(&cli, new);
    let expected: Vec<u64> = (first_new..first_new + seen.len() as u64).collect();
    assert_eq!(
        seen, expected,
        "the new program did not count on one by one"
    );

    // 3. Killed: the next save starts the program again, and nothing could be carried.
    let before = cli.mark();
    support::signal(new, libc::SIGKILL);
    let exited = cli.wait_message(
        &format!("`{app}` exited (killed by SIGKILL (9)); it will start again on the next change"),
        before,
        OUTPUT,
    );
    scratch.save_game(&number_label("v4"));
    let again = cli.wait_started(exited.seq, RESTART);
    cli.wait_message(
        "restarted; state could not be carried: the program was killed by SIGKILL (9)",
        exited.seq,
        OUTPUT,
    );
    let first = wait_line_of(
        &cli,
        again.pid,
        "the third program's first step",
        before,
        |_| true,
    );
    assert_eq!(
        first.text,
        format!("v4 counter=1 pid={0} label={0}", again.pid),
        "with nothing carried the program starts afresh"
    );

    cli.interrupt_and_check(again.pid, 130);
}
