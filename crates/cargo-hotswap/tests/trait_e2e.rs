//! Issue 10 end to end: `#[hot]` trait impls and impl blocks of lifetime-generic types. Each
//! test is a fresh scratch workspace (`app`, a binary that owns the values, and `game`, the hot
//! library) driven by the real `cargo hotswap run`, edited while it runs.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: a program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

mod support;

use support::session::Session;
use support::OUTPUT;

/// Saves `lib_rs`, expects the program to refuse the patch with a reason containing each of
/// `expected` (`GAME` stands for the hot crate's name), and waits for the restarted program;
/// returns its `host pid=` line number.
fn expect_refusal_and_restart(session: &mut Session, lib_rs: &str, expected: &[&str]) -> usize {
    let (before, outcome) = session.save(lib_rs);
    let game = session.scratch.game.clone();
    let prefix = format!("[hotswap] {game}: the program refused the patch: ");
    assert!(
        outcome.text.starts_with(&prefix),
        "expected a refusal, got {:?}\n{}",
        outcome.text,
        session.cli.transcript()
    );
    for text in expected {
        let text = text.replace("GAME", &game);
        assert!(
            outcome.text.contains(&text),
            "the refusal does not say {text:?}: {:?}\n{}",
            outcome.text,
            session.cli.transcript()
        );
    }
    session.wait_restarted(before, &outcome)
}

/// Waits for the program's first line after its `host pid=` line that starts with `prefix`.
fn line_of(session: &Session, prefix: &str) -> (usize, String) {
    let line = session.line_of(session.first, prefix);
    (line.seq, line.text)
}

/// The program's stdout lines (this program's, in its order) that start with `prefix`.
fn lines(session: &Session, prefix: &str) -> Vec<String> {
    session.lines_since(session.first, prefix)
}

/// The program: holds a `Box<dyn Speak>` and a `Dog`, and every 50 ms calls the trait through
/// `&dyn Speak` and through a generic `talk` of its own, and the lifetime-generic `View`'s
/// inherent and trait methods.
const MAIN_RS: &str = r#"use GAME as game;
use game::Speak;

fn talk<T: Speak>(t: &T) -> String {
    t.speak()
}

fn main() {
    println!("host pid={}", std::process::id());
    let boxed: Box<dyn Speak> = Box::new(game::Dog { n: 100 });
    let mut dog = game::Dog { n: 0 };
    let words = String::from("hello there");
    loop {
        dog.n += 1;
        let speaker: &dyn Speak = &*boxed;
        let view = game::View { text: &words };
        println!(
            "says dyn={} talk={} view={} shout={}",
            speaker.speak(),
            talk(&dog),
            talk(&view),
            view.shout()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;

/// The hot crate: `Speak`, `Dog` and `View<'a>`, with `#[hot]` impls whose methods say `dog`
/// and `view` (the tag of their version).
fn speak_lib(dog: &str, view: &str) -> String {
    format!(
        r#"pub trait Speak {{
    fn speak(&self) -> String;
}}

pub struct Dog {{
    pub n: u64,
}}

#[hotswap::hot]
impl Speak for Dog {{
    fn speak(&self) -> String {{
        format!("{dog}:{{}}", self.n)
    }}
}}

pub struct View<'a> {{
    pub text: &'a str,
}}

#[hotswap::hot]
impl<'a> View<'a> {{
    pub fn shout(&self) -> String {{
        format!("{view}:{{}}", self.text.to_uppercase().replace(' ', "_"))
    }}
}}

#[hotswap::hot]
impl<'a> Speak for View<'a> {{
    fn speak(&self) -> String {{
        format!("{view}:{{}}", self.text.replace(' ', "_"))
    }}
}}
"#
    )
}

/// `n` of the generic path (`talk=v1:N`) in a `says` line.
fn talk_n(line: &str) -> u64 {
    support::field(line, "talk")
        .and_then(|v| v.split(':').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no talk=TAG:N in {line:?}"))
}

/// Whether every field of a `says` line named in `keys` carries `tag`.
fn all_say(line: &str, keys: &[&str], tag: &str) -> bool {
    keys.iter()
        .all(|key| support::field(line, key).is_some_and(|v| v.starts_with(&format!("{tag}:"))))
}

/// Editing a method of a `#[hot] impl Speak for Dog` is patched, not restarted: the vtable of
/// the `Box<dyn Speak>` that `main` built and `main`'s own generic `talk::<Dog>` both reach the
/// new code (the line after the one the swap happened in, at the latest), and the `Dog` that
/// `main` owns keeps counting. Then the same for the impls of the lifetime-generic `View<'a>`
/// (an inherent and a trait impl).
///
/// Fails if: the save restarts the program (the reach check takes the trait method for code the
/// patch cannot reach, or the layout check cannot find the roots), the patch line does not name
/// `<GAME::Dog as GAME::Speak>::speak`, a call path keeps printing the old text after the swap,
/// or the count starts again.
#[test]
fn a_trait_method_edit_is_patched_for_dyn_and_generic_callers() {
    let _serial = support::serial();
    let session = Session::start(
        "hs_trait_dyn",
        MAIN_RS,
        &speak_lib("v1", "w1"),
        "says dyn=v1:100 talk=v1:",
        "",
    );
    let pid = session.pid;

    session.expect_patch(
        &speak_lib("v2", "w1"),
        1,
        "3 functions",
        &["<GAME::Dog as GAME::Speak>::speak"],
    );
    let (_, first_new) = line_of(&session, "says dyn=v2:100 talk=v2:");
    let says = lines(&session, "says ");
    let at = says
        .iter()
        .position(|l| l.contains("=v2:"))
        .expect("a line with the new text");
    // The swap may fall between the two calls of one line; the next line is all new.
    let all_new = if all_say(&says[at], &["dyn", "talk"], "v2") {
        at
    } else {
        at + 1
    };
    assert!(
        says[at..].len() > all_new - at,
        "no line after the swap yet"
    );
    assert!(
        says[all_new..]
            .iter()
            .all(|l| all_say(l, &["dyn", "talk"], "v2")),
        "a call path printed the old text after the swap: {:?}",
        &says[at..]
    );
    assert!(
        says[..at]
            .iter()
            .all(|l| all_say(l, &["dyn", "talk"], "v1")),
        "new text before the patch: {says:?}"
    );
    let before = talk_n(&says[at.saturating_sub(1)]);
    assert!(
        talk_n(&first_new) > before && before > 0,
        "the Dog main owns started again: {} after {}",
        first_new,
        says[at.saturating_sub(1)]
    );

    session.expect_patch(
        &speak_lib("v2", "w2"),
        2,
        "3 functions",
        &["<GAME::View as GAME::Speak>::speak", "GAME::View::shout"],
    );
    let line = session
        .cli
        .wait_out("both View methods new", session.first, OUTPUT, |t| {
            t.starts_with("says ") && all_say(t, &["view", "shout"], "w2")
        })
        .text;
    assert_eq!(support::field(&line, "view"), Some("w2:hello_there"));
    assert_eq!(support::field(&line, "shout"), Some("w2:HELLO_THERE"));
    assert_eq!(session.pid, pid);
    assert_eq!(
        support::started_pids(&session.cli, &session.scratch.app),
        [pid],
        "the program was restarted"
    );
}

/// The program for the associated items: prints what `measure` returns and the associated
/// const as its own code read it.
const MEASURE_MAIN_RS: &str = r#"use GAME as game;
use game::Measure;

fn main() {
    println!("host pid={}", std::process::id());
    let dog = game::Dog { n: 21 };
    loop {
        println!("measure={} scale={}", dog.measure(), <game::Dog as Measure>::SCALE);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;

fn measure_lib(unit: &str, scale: u32, extra: u32) -> String {
    format!(
        r#"pub trait Measure {{
    type Unit: std::fmt::Display;
    const SCALE: u32;
    fn measure(&self) -> Self::Unit;
}}

pub struct Dog {{
    pub n: u64,
}}

#[hotswap::hot]
impl Measure for Dog {{
    type Unit = {unit};
    const SCALE: u32 = {scale};

    fn measure(&self) -> Self::Unit {{
        (self.n * u64::from(Self::SCALE) + {extra}) as Self::Unit
    }}
}}
"#
    )
}

/// Associated types and consts stay outside the slot (the program's code uses them as they
/// were compiled), so changing one cannot be swapped: the program refuses the patch naming the
/// method and the changed item, and the command restarts it with the new code. A body edit is
/// patched as usual.
///
/// Fails if: a changed const or type is patched (the program would print the old const with
/// code using the new one, or read a `u32` where it expects a `u64`), the refusal does not name
/// `<Dog as Measure>::measure` and the item, or the restarted program does not run the change.
#[test]
fn a_changed_associated_type_or_const_restarts_naming_it() {
    let _serial = support::serial();
    let mut session = Session::start(
        "hs_trait_assoc",
        MEASURE_MAIN_RS,
        &measure_lib("u64", 2, 0),
        "measure=42 scale=2",
        "",
    );
    session.expect_patch(
        &measure_lib("u64", 2, 1),
        1,
        "1 function",
        &["<GAME::Dog as GAME::Measure>::measure"],
    );
    line_of(&session, "measure=43 scale=2");

    expect_refusal_and_restart(
        &mut session,
        &measure_lib("u64", 3, 1),
        &[
            "`GAME::<Dog as Measure>::measure`: signature changed",
            "const SCALE: u32 = 2;",
            "const SCALE: u32 = 3;",
        ],
    );
    assert_eq!(line_of(&session, "measure=").1, "measure=64 scale=3");

    expect_refusal_and_restart(
        &mut session,
        &measure_lib("u32", 3, 1),
        &[
            "`GAME::<Dog as Measure>::measure`: signature changed",
            "type Unit = u64;",
            "type Unit = u32;",
        ],
    );
    assert_eq!(line_of(&session, "measure=").1, "measure=64 scale=3");
}
