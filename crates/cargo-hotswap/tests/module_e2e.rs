//! `#[hot] mod` end to end: a scratch workspace (`app`, a binary that owns a counter, and
//! `game`, the hot library whose `systems` module is marked `#[hot]`) driven by the real
//! `cargo hotswap run`, edited while it runs.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: the program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

mod support;

use support::{Scratch, FIRST_BUILD, OUTPUT, PATCH};

/// The program: owns a `Counter` and every 50 ms prints what `game::systems::step` returns.
const MAIN_RS: &str = r#"use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    let mut counter = game::Counter { n: 0 };
    loop {
        println!("{}", game::systems::step(&mut counter));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;

/// The hot crate: `Counter`, and `#[hot] pub mod systems` with a `pub fn step` (hot, because it
/// is `pub`) that says `tag`, and a private `helper` (plain).
fn game_lib(tag: &str) -> String {
    format!(
        r#"pub struct Counter {{
    pub n: u64,
}}

#[hotswap::hot]
pub mod systems {{
    use super::Counter;

    pub fn step(c: &mut Counter) -> String {{
        c.n += 1;
        format!("step tag={tag} n={{}}", helper(c.n))
    }}

    fn helper(n: u64) -> u64 {{
        n
    }}
}}
"#
    )
}

/// Editing the body of a `pub fn` of a `#[hot] mod` is patched, not restarted: the patch line
/// names `GAME::systems::step` (its entry is named after the module it sits in), the program's
/// next lines run the new body, and the counter `main` owns keeps counting.
///
/// Fails if: `#[hot] mod` did not make `step` hot (the save restarts the program, since `main`
/// calls it directly), the patch names another function, the old text is printed after the new
/// one, or the count starts again.
#[test]
fn a_pub_fn_of_a_hot_module_is_patched_live() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_module");
    let game = scratch.game.clone();
    scratch.save("app/src/main.rs", &MAIN_RS.replace("GAME", &game));
    scratch.save_game(&game_lib("v1"));
    let cli = scratch.start(&["run"]);
    let started = cli.wait_started(0, FIRST_BUILD);
    let host = cli.wait_out("the program's first line", 0, OUTPUT, |t| {
        t == format!("host pid={}", started.pid)
    });
    cli.wait_out("a v1 step", host.seq, OUTPUT, |t| {
        t.starts_with("step tag=v1 n=")
    });

    let before = cli.mark();
    scratch.save_game(&game_lib("v2"));
    let patched = format!("[hotswap] {game}: patched ");
    let outcome = cli.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
    });
    assert!(
        outcome.text.starts_with(&patched) && outcome.text.contains("— version 1; build "),
        "expected a patch, got {:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    let (_, changed) = outcome
        .text
        .split_once("; code changed: ")
        .unwrap_or_else(|| panic!("no `code changed` in {:?}", outcome.text));
    assert!(
        changed
            .split(", ")
            .any(|n| n == format!("`{game}::systems::step`")),
        "the patch line does not name {game}::systems::step: {:?}",
        outcome.text
    );

    let first_new = cli.wait_out("a v2 step", host.seq, OUTPUT, |t| {
        t.starts_with("step tag=v2 n=")
    });
    let steps: Vec<String> = cli
        .texts(support::Stream::Out, host.seq)
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("step "))
        .collect();
    let at = steps
        .iter()
        .position(|l| l.contains("tag=v2"))
        .expect("a v2 line");
    assert!(at > 0, "no v1 line before the patch: {steps:?}");
    assert!(
        steps[..at].iter().all(|l| l.contains("tag=v1"))
            && steps[at..].iter().all(|l| l.contains("tag=v2")),
        "old and new text mixed: {steps:?}"
    );
    let n = |line: &str| -> u64 {
        support::field(line, "n")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no n=N in {line:?}"))
    };
    let ns: Vec<u64> = steps.iter().map(|l| n(l)).collect();
    assert!(
        ns.windows(2).all(|w| w[1] == w[0] + 1) && ns[0] == 1,
        "the counter main owns did not keep counting: {steps:?}"
    );
    assert!(n(&first_new.text) > 1);
    assert_eq!(
        support::started_pids(&cli, &scratch.app),
        [started.pid],
        "the program was restarted"
    );
}
