//! Issue 10 end to end: `#[hot] async fn`s edited while a tokio program awaits them. One fresh
//! scratch workspace (`app`, a binary on a `current_thread` runtime that owns the values, and
//! `game`, the hot library) driven by the real `cargo hotswap run`.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: the program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

mod support;

use support::{Cli, Scratch, Stream, FIRST_BUILD, OUTPUT, PATCH, RESTART};

/// The program: on a `current_thread` runtime, forever: awaits the `?Send` `game::tally` with an
/// `Rc` it owns and the `Send` `game::record` with two references (a `&mut` book it owns and a
/// `&str`), printing what each returns, then sleeps 50 ms.
const MAIN_RS: &str = r#"use GAME as game;
use std::cell::RefCell;
use std::rc::Rc;

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    println!("host pid={}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tally = Rc::new(RefCell::new(game::Tally::default()));
        let mut book = game::Book::default();
        for call in 1u64.. {
            println!("{}", game::tally(Rc::clone(&tally)).await);
            let line = format!("call {call}");
            println!("{}", assert_send(game::record(&mut book, &line)).await);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
}
"#;

/// The hot crate; `LOCAL` and `SEND` are the texts the two functions print.
const LIB_RS: &str = r#"use std::cell::RefCell;
use std::rc::Rc;

#[derive(Default)]
pub struct Tally {
    pub count: u64,
}

#[derive(Default)]
pub struct Book {
    pub lines: Vec<String>,
}

/// Holds an `Rc` across an await: not `Send`.
#[hotswap::hot(?Send)]
pub async fn tally(tally: Rc<RefCell<Tally>>) -> String {
    let held = Rc::clone(&tally);
    tokio::task::yield_now().await;
    let mut tally = held.borrow_mut();
    tally.count += 1;
    format!("LOCAL count={}", tally.count)
}

/// Two references, one of them `&mut`, held across an await.
#[hotswap::hot]
pub async fn record(book: &mut Book, line: &str) -> String {
    tokio::task::yield_now().await;
    book.lines.push(line.to_owned());
    format!("SEND lines={} last={line}", book.lines.len())
}
"#;

/// tokio as the server example has it (the same features: already in the lock file, and built
/// once in the shared target directory).
const TOKIO: &str =
    "tokio = { version = \"1\", features = [\"macros\", \"net\", \"rt-multi-thread\", \"time\"] }\n";

fn lib(local: &str, send: &str) -> String {
    LIB_RS.replace("LOCAL", local).replace("SEND", send)
}

/// The number after `key=` in `text`.
fn number(text: &str, key: &str) -> u64 {
    support::field(text, key)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no number `{key}` in {text:?}"))
}

/// Saves `lib_rs`, expects a patch (version `version`) naming `changed` (and only it) as the
/// function whose code changed; then waits for the first program line starting with `new` and
/// checks, on stdout alone, that from there on no line starts with `old` and that the value
/// `key` counts on from the last line printed with `old`. Returns the number of the line before
/// the save.
fn patch_and_check(
    cli: &Cli,
    scratch: &Scratch,
    first: usize,
    lib_rs: &str,
    version: u64,
    changed: &str,
    (old, new, key): (&str, &str, &str),
) -> usize {
    let before = cli.mark();
    scratch.save_game(lib_rs);
    let game = &scratch.game;
    let patched = format!("[hotswap] {game}: patched ");
    let outcome = cli.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
    });
    assert!(
        outcome.text.starts_with(&format!(
            "{patched}2 functions (game/src/lib.rs) — version {version}; build "
        )),
        "expected a patch, got {:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    assert!(
        outcome
            .text
            .ends_with(&format!("; code changed: `{game}::{changed}`")),
        "the patch line does not name only `{changed}` as changed: {:?}",
        outcome.text
    );
    // The next call after the swap runs the new body.
    let switched = cli.wait_out(&format!("`{new}...`"), first, PATCH, |t| t.starts_with(new));
    // Let a few more calls run, then read the program's own lines in order.
    cli.wait_out("three more calls", switched.seq + 1, OUTPUT, |t| {
        t.starts_with(new) && number(t, key) >= number(&switched.text, key) + 3
    });
    let lines: Vec<String> = cli
        .texts(Stream::Out, first)
        .into_iter()
        .map(|(_, text)| text)
        .filter(|text| text.starts_with(old) || text.starts_with(new))
        .collect();
    let at = lines.iter().position(|text| text.starts_with(new)).unwrap();
    assert!(at > 0, "no call ran the old code: {lines:?}");
    assert!(
        lines[at..].iter().all(|text| text.starts_with(new)),
        "a call ran the old code after one ran the new: {lines:?}"
    );
    // State kept: the value the program owns counts on across the swap.
    let values: Vec<u64> = lines.iter().map(|text| number(text, key)).collect();
    assert!(
        values.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "`{key}` did not count on across the patch: {lines:?}"
    );
    before
}

/// A `?Send` hot async fn (an `Rc` held across an await) and a `Send` one with two reference
/// arguments, on a `current_thread` runtime, each edited live.
///
/// Fails if: an edit of either body restarts the program or is not patched (the reach check not
/// seeing the async body behind the barrier), the patch line does not name the function whose
/// body changed, a call made after the swap still prints the old text (or one prints the old text
/// after the new), the values the program owns (`Tally`, behind an `Rc`, and `Book`, lent as
/// `&mut`) do not count on; or a changed output type is not refused as a signature change
/// naming the function and both `async fn` signatures, followed by a restart.
#[test]
fn hot_async_fns_are_patched_on_a_current_thread_runtime() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_async");
    for manifest in ["app/Cargo.toml", "game/Cargo.toml"] {
        let text = scratch.read(manifest);
        scratch.save(manifest, &format!("{text}{TOKIO}"));
    }
    scratch.save("app/src/main.rs", &MAIN_RS.replace("GAME", &scratch.game));
    scratch.save_game(&lib("local v1", "send v1"));
    let mut cli = scratch.start(&["run"]);
    let started = cli.wait_started(0, FIRST_BUILD);
    let host = cli.wait_out("the program's first line", 0, OUTPUT, |t| {
        t == format!("host pid={}", started.pid)
    });
    cli.wait_out("`send v1 lines=3...`", host.seq, OUTPUT, |t| {
        t.starts_with("send v1 lines=3 ")
    });

    let from = patch_and_check(
        &cli,
        &scratch,
        host.seq,
        &lib("local v2", "send v1"),
        1,
        "tally",
        ("local v1 ", "local v2 ", "count"),
    );
    patch_and_check(
        &cli,
        &scratch,
        from,
        &lib("local v2", "send v2"),
        2,
        "record",
        ("send v1 ", "send v2 ", "lines"),
    );
    // The same process throughout.
    assert!(
        support::started_pids(&cli, &scratch.app) == vec![started.pid],
        "the program was restarted\n{}",
        cli.transcript()
    );

    // A changed output type is a signature change: refused by the program, naming the function
    // and both signatures, and the program is restarted with the new code.
    let before = cli.mark();
    let changed = lib("local v2", "send v3")
        .replace("line: &str) -> String {", "line: &str) -> Box<str> {")
        .replace("book.lines.len())\n}", "book.lines.len()).into()\n}");
    assert!(changed.contains("-> Box<str>") && changed.contains(".into()"));
    scratch.save_game(&changed);
    let game = &scratch.game;
    let refusal = cli.wait_message(
        &format!("{game}: the program refused the patch: "),
        before,
        PATCH,
    );
    assert!(
        refusal.text.contains(&format!(
            "`{game}::record`: signature changed from `async fn(&mut Book, &str) -> String` to \
             `async fn(&mut Book, &str) -> Box<str>`"
        )),
        "unexpected refusal {:?}",
        refusal.text
    );
    let restarted = cli.wait_started(refusal.seq, RESTART);
    assert_ne!(restarted.pid, started.pid, "the program was not restarted");
    let host = cli.wait_out("the new program's first line", before, OUTPUT, |t| {
        t == format!("host pid={}", restarted.pid)
    });
    cli.wait_out("`send v3 lines=1 ...`", host.seq, OUTPUT, |t| {
        t.starts_with("send v3 lines=1 ")
    });
    cli.interrupt_and_check(restarted.pid, 130);
}
