//! Issue 9 end to end: every layout change is caught without a derive, and no edit is applied
//! to only part of the program. Each test is a fresh scratch workspace (`app`, a binary that
//! owns the values, and `game`, the hot library) driven by the real `cargo hotswap run`, edited
//! while it runs.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: a program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

mod support;

use support::session::Session;

/// What a save led to.
struct Restarted {
    /// The command's `restarting` line.
    reason: String,
    /// The number of its `host pid=` line (its later lines come after it).
    first: usize,
}

/// Saves `lib_rs`, expects a restart whose reason contains each of `expected`, and waits for
/// the new program.
fn expect_restart(session: &mut Session, lib_rs: &str, expected: &[&str]) -> Restarted {
    let (before, outcome) = session.save(lib_rs);
    let prefix = format!("[hotswap] restarting `{}`: ", session.scratch.app);
    assert!(
        outcome.text.starts_with(&prefix),
        "expected a restart, got {:?}\n{}",
        outcome.text,
        session.cli.transcript()
    );
    let reason = outcome.text[prefix.len()..].to_owned();
    for text in expected {
        assert!(
            reason.contains(text),
            "the restart's reason does not say {text:?}: {reason:?}\n{}",
            session.cli.transcript()
        );
    }
    let first = session.wait_restarted(before, &outcome);
    Restarted { reason, first }
}

/// The first line starting with `prefix` the program printed from line `from` on.
fn line_of(session: &Session, from: usize, prefix: &str) -> String {
    session.line_of(from, prefix).text
}

/// The program: prints its pid, then calls `game::step(&mut value)` every 50 ms with a value it
/// owns (`NEW` makes it) and prints what it returns.
const OWNER_MAIN_RS: &str = r#"use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    let mut value = NEW;
    loop {
        println!("{}", game::step(&mut value));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;

fn owner_main(new: &str) -> String {
    OWNER_MAIN_RS.replace("NEW", new)
}

/// The hot crate of the `Counter` tests: a plain struct (no derive) with `fields` after `n`,
/// made by `Counter::new` (`init` sets the extra fields), and `step`, which returns `show`.
fn counter_lib(fields: &str, init: &str, show: &str) -> String {
    format!(
        "pub struct Counter {{\n    pub n: u64,\n    {fields}\n}}\n\n\
         impl Counter {{\n    pub fn new() -> Counter {{\n        Counter {{ n: 0, {init} }}\n    }}\n}}\n\n\
         #[hotswap::hot]\npub fn step(c: &mut Counter) -> String {{\n    c.n += 1;\n    {show}\n}}\n"
    )
}

/// A field added to a plain struct (no derive) that `main` owns: the patch would read past the
/// end of the program's value. Restart, naming the function, the type and the field; the new
/// program runs the new code, with the new field set.
///
/// Fails if: the patch is applied ("patched 1 function", the bug of issue 9), the restart does
/// not name `step`, `Counter`, its new size and `speed: u32`, or the new program does not print
/// the new field's value.
#[test]
fn a_field_added_to_a_plain_struct_held_by_main_restarts_naming_the_type_and_field() {
    let _serial = support::serial();
    counter_gains_a_field("hs_trust_field", "");
}

/// The same with a profile that builds no debug information (`debug = 0`, as release
/// profiles do): the command still gives the hot crate the type information the check reads.
///
/// Fails if: the patch is applied, or the restart says it cannot compare the layouts.
#[test]
fn layouts_are_checked_in_a_profile_without_debug_information() {
    let _serial = support::serial();
    counter_gains_a_field("hs_trust_nodebug", "[profile.dev]\ndebug = 0\n");
}

/// `Counter`, owned by `main`, gains `speed: u32` (set to 7 by `Counter::new`) in a workspace
/// whose `Cargo.toml` ends with `manifest`: a restart naming the change, and the new program
/// prints the new field's value, as does every `v2` line.
fn counter_gains_a_field(prefix: &str, manifest: &str) {
    let lib = counter_lib;
    let mut session = Session::start(
        prefix,
        &owner_main("game::Counter::new()"),
        &lib("", "", "format!(\"v1 n={}\", c.n)"),
        "v1 n=",
        manifest,
    );
    let game = session.scratch.game.clone();
    let restarted = expect_restart(
        &mut session,
        &lib(
            "pub speed: u32,",
            "speed: 7",
            "format!(\"v2 n={} speed={}\", c.n, c.speed)",
        ),
        &[&format!(
            "`{game}::step`: `Counter` grew from 8 to 16 bytes (field `speed: u32` added)"
        )],
    );
    assert_eq!(line_of(&session, restarted.first, "v2 "), "v2 n=1 speed=7");
    assert!(
        session
            .lines_since(0, "v2 ")
            .iter()
            .all(|t| t.ends_with(" speed=7")),
        "a program read `speed` from a value without it"
    );
}

/// A struct the program holds inside a `Vec` gains a field: reached through `&mut Vec<Item>`,
/// its generic argument. Restart naming `Item`.
#[test]
fn a_struct_inside_a_vec_the_program_holds_gains_a_field_and_restarts() {
    let _serial = support::serial();
    let lib = |fields: &str, init: &str, show: &str| {
        format!(
            "pub struct Item {{\n    pub x: u32,\n    {fields}\n}}\n\n\
             pub fn items() -> Vec<Item> {{\n    (0..3).map(|x| Item {{ x, {init} }}).collect()\n}}\n\n\
             #[hotswap::hot]\npub fn step(items: &mut Vec<Item>) -> String {{\n    for item in items.iter_mut() {{ item.x += 1; }}\n    {show}\n}}\n"
        )
    };
    let mut session = Session::start(
        "hs_trust_vec",
        &owner_main("game::items()"),
        &lib("", "", "format!(\"v1 x0={}\", items[0].x)"),
        "v1 x0=",
        "",
    );
    let game = session.scratch.game.clone();
    let restarted = expect_restart(
        &mut session,
        &lib(
            "pub y: u32,",
            "y: 40",
            "format!(\"v2 x0={} y0={}\", items[0].x, items[0].y)",
        ),
        &[&format!(
            "`{game}::step`: `Item` grew from 4 to 8 bytes (field `y: u32` added)"
        )],
    );
    assert_eq!(line_of(&session, restarted.first, "v2 "), "v2 x0=1 y0=40");
}

/// An enum the program holds gains a variant without growing (a fieldless `Fly`): the patch could
/// store a discriminant the program's own code has never seen. Restart naming the variant.
#[test]
fn an_enum_gaining_a_variant_restarts_naming_it() {
    let _serial = support::serial();
    let lib = |variants: &str, next: &str| {
        format!(
            "#[derive(Debug)]\npub enum Mode {{\n    Walk,\n    Run,\n    {variants}\n}}\n\n\
             #[hotswap::hot]\npub fn step(mode: &mut Mode) -> String {{\n    \
             *mode = match mode {{ {next} }};\n    format!(\"VERSION mode={{mode:?}}\")\n}}\n"
        )
    };
    let v1 = lib("", "Mode::Walk => Mode::Run, Mode::Run => Mode::Walk").replace("VERSION", "v1");
    let mut session = Session::start(
        "hs_trust_enum",
        &owner_main("game::Mode::Walk"),
        &v1,
        "v1 mode=",
        "",
    );
    let game = session.scratch.game.clone();
    let v2 = lib(
        "Fly,",
        "Mode::Walk => Mode::Run, Mode::Run => Mode::Fly, Mode::Fly => Mode::Walk",
    )
    .replace("VERSION", "v2");
    let restarted = expect_restart(
        &mut session,
        &v2,
        &[&format!("`{game}::step`: `Mode` "), "`Fly`"],
    );
    assert!(
        restarted
            .reason
            .contains("`Mode` kept its size (1 byte) but changed (variant `Fly` added)"),
        "{:?}",
        restarted.reason
    );
    assert_eq!(line_of(&session, restarted.first, "v2 "), "v2 mode=Run");
}

/// Two fields of one type swapped: same size, but each now lies where the other was. Restart.
#[test]
fn two_fields_swapped_restart_although_the_size_is_the_same() {
    let _serial = support::serial();
    let lib = |fields: &str, version: &str| {
        format!(
            "pub struct Pos {{\n    {fields}\n}}\n\n\
             pub fn origin() -> Pos {{\n    Pos {{ x: 1, y: 2 }}\n}}\n\n\
             #[hotswap::hot]\npub fn step(p: &mut Pos) -> String {{\n    \
             format!(\"{version} x={{}} y={{}}\", p.x, p.y)\n}}\n"
        )
    };
    let mut session = Session::start(
        "hs_trust_swap",
        &owner_main("game::origin()"),
        &lib("pub x: i32,\n    pub y: i32,", "v1"),
        "v1 x=1 y=2",
        "",
    );
    let game = session.scratch.game.clone();
    let restarted = expect_restart(
        &mut session,
        &lib("pub y: i32,\n    pub x: i32,", "v2"),
        &[&format!(
            "`{game}::step`: `Pos` kept its size (8 bytes) but changed"
        )],
    );
    assert_eq!(line_of(&session, restarted.first, "v2 "), "v2 x=1 y=2");
    assert!(
        session
            .lines_since(0, "v2 ")
            .iter()
            .all(|t| t == "v2 x=1 y=2"),
        "new code read the fields of an old value at their new offsets"
    );
}

/// A type that only the hot code uses (made and dropped inside `step`) may change freely: the
/// patch is applied, and the program's own value keeps counting.
#[test]
fn a_field_added_to_a_type_only_hot_code_sees_is_patched_live() {
    let _serial = support::serial();
    let lib = |fields: &str, init: &str, version: &str| {
        format!(
            "struct Scratchpad {{\n    a: u64,\n    {fields}\n}}\n\n\
             pub struct Counter {{\n    pub n: u64,\n}}\n\n\
             #[hotswap::hot]\npub fn step(c: &mut Counter) -> String {{\n    c.n += 1;\n    \
             let pad = Scratchpad {{ a: c.n, {init} }};\n    \
             format!(\"{version} n={{}} pad={{}}\", c.n, pad.a + EXTRA)\n}}\n"
        )
    };
    let session = Session::start(
        "hs_trust_local",
        &owner_main("game::Counter { n: 0 }"),
        &lib("", "", "v1").replace("EXTRA", "0"),
        "v1 n=",
        "",
    );
    let before = session.expect_patch(
        &lib("b: u64,", "b: 1000", "v2").replace("EXTRA", "pad.b"),
        1,
        "1 function",
        &["GAME::step"],
    );
    let v2 = line_of(&session, before, "v2 ");
    let n: u64 = support::field(&v2, "n").unwrap().parse().unwrap();
    assert!(n > 1, "the program's counter started again: {v2:?}");
    assert_eq!(v2, format!("v2 n={n} pad={}", n + 1000));
    assert!(support::is_running(session.pid));
}

/// A trait of the hot crate gains a method while `main` holds a `Box<dyn Speak>` whose vtable
/// the old code made: the new code would call through the old vtable with the new layout.
/// Restart naming the trait and the method.
#[test]
fn a_trait_gaining_a_method_behind_a_box_dyn_held_by_main_restarts() {
    let _serial = support::serial();
    let lib = |methods: &str, impls: &str, show: &str| {
        format!(
            "pub trait Speak {{\n    {methods}\n    fn speak(&self) -> String;\n}}\n\n\
             pub struct Dog;\n\n\
             impl Speak for Dog {{\n    {impls}\n    fn speak(&self) -> String {{ \"woof\".into() }}\n}}\n\n\
             pub fn pet() -> Box<dyn Speak> {{\n    Box::new(Dog)\n}}\n\n\
             #[hotswap::hot]\npub fn step(pet: &mut Box<dyn Speak>) -> String {{\n    {show}\n}}\n"
        )
    };
    let mut session = Session::start(
        "hs_trust_trait",
        &owner_main("game::pet()"),
        &lib("", "", "format!(\"v1 {}\", pet.speak())"),
        "v1 woof",
        "",
    );
    let game = session.scratch.game.clone();
    let restarted = expect_restart(
        &mut session,
        &lib(
            "fn volume(&self) -> u32;",
            "fn volume(&self) -> u32 { 11 }",
            "format!(\"v2 {} volume={}\", pet.speak(), pet.volume())",
        ),
        &[&format!("`{game}::step`: "), "`Speak`", "`volume`"],
    );
    assert_eq!(
        line_of(&session, restarted.first, "v2 "),
        "v2 woof volume=11"
    );
}

/// `helper` is called by the hot `step` and directly by `main`. Editing `step` alone patches it
/// live (the wrapper `main` calls dispatches to the new code); editing `helper` restarts the
/// program, naming `helper` and `main`, since `main` would keep the old `helper`; the new program
/// prints the new text from both callers.
#[test]
fn a_function_main_calls_directly_restarts_naming_it_and_its_caller() {
    let _serial = support::serial();
    const MAIN: &str = r#"use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    let mut n = 0u64;
    loop {
        n += 1;
        println!("{}", game::step(n));
        println!("main: {}", game::helper());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;
    let lib = |helper: &str, version: &str| {
        format!(
            "pub fn helper() -> &'static str {{\n    \"{helper}\"\n}}\n\n\
             #[hotswap::hot]\npub fn step(n: u64) -> String {{\n    \
             format!(\"{version} n={{n}} {{}}\", helper())\n}}\n"
        )
    };
    let mut session = Session::start("hs_trust_helper", MAIN, &lib("old", "v1"), "v1 n=", "");
    let game = session.scratch.game.clone();
    let app = session.scratch.app.clone();

    // Only `step` changed: patched, though `main` calls `step` (through its slot).
    let before = session.expect_patch(&lib("old", "v2"), 1, "1 function", &["GAME::step"]);
    assert_eq!(
        line_of(&session, before, "v2 ")
            .split_once(' ')
            .unwrap()
            .1
            .split_once(' ')
            .unwrap()
            .1,
        "old"
    );

    // `helper` changed: `main` calls it directly.
    let restarted = expect_restart(
        &mut session,
        &lib("new", "v2"),
        &[&format!(
            "`{game}::helper` changed; `{app}::main` calls it directly"
        )],
    );
    let step = line_of(&session, restarted.first, "v2 ");
    assert!(step.ends_with(" new"), "{step:?}");
    assert_eq!(line_of(&session, restarted.first, "main: "), "main: new");
}
