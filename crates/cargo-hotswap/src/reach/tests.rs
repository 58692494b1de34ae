//! On real rustc output: `game` (the hot crate, its `#[hot]` items written out as the macro
//! generates them, just enough for the barrier) compiled before and after an edit, and `app`
//! compiled against the old `game`, as `cargo hotswap run` would have it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::*;

const GAME: &str = r#"
use std::sync::atomic::{AtomicPtr, Ordering};

// `#[hot] pub fn step() -> String`, expanded (boot, slot, implementation, wrapper).
#[allow(non_upper_case_globals)]
pub static __hotswap_slot_step: AtomicPtr<()> = AtomicPtr::new(__hotswap_boot_step as *mut ());
#[allow(non_snake_case)]
fn __hotswap_boot_step() -> String {
    __hotswap_slot_step.store(__hotswap_impl_step as *mut (), Ordering::Release);
    __hotswap_impl_step()
}
#[inline(never)]
pub fn __hotswap_impl_step() -> String {
    format!("{} {} {}", helper(), only_step(), (HOOK)())
}
#[inline(always)]
pub fn step() -> String {
    let like: fn() -> String = __hotswap_impl_step;
    std::hint::black_box(like);
    let f: fn() -> String =
        unsafe { std::mem::transmute(__hotswap_slot_step.load(Ordering::Acquire)) };
    f()
}

pub struct Counter {
    pub n: u32,
}

// `#[hot] impl Counter { pub fn bump(&mut self) }`, with a wrapper that is not inlined.
#[allow(non_upper_case_globals)]
pub static __hotswap_slot_Counter_bump: AtomicPtr<()> =
    AtomicPtr::new(Counter::__hotswap_impl_bump as *mut ());
impl Counter {
    #[inline(never)]
    pub fn __hotswap_impl_bump(&mut self) {
        self.n += inner();
    }
    #[inline(never)]
    pub fn bump(&mut self) {
        let like: fn(&mut Counter) = Counter::__hotswap_impl_bump;
        std::hint::black_box(like);
        let f: fn(&mut Counter) =
            unsafe { std::mem::transmute(__hotswap_slot_Counter_bump.load(Ordering::Acquire)) };
        f(self)
    }
    #[inline]
    pub fn get(&self) -> u32 {
        self.n + 1
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        println!("drop {}", self.n);
    }
}

pub const LIMIT: u32 = 7;

pub fn inner() -> u32 {
    extra::twice(3)
}

pub fn helper() -> &'static str {
    let limit: u32 = [1u32, 2].iter().map(|x| x * LIMIT).sum();
    if inner() > limit {
        panic!("too big")
    }
    "old"
}

pub fn only_step() -> u32 {
    40
}

pub fn scale<T: Copy + std::ops::Add<Output = T>>(x: T) -> T {
    x + x
}

pub trait Shape {
    fn area(&self) -> u32;
}

pub struct Square(pub u32);

impl Shape for Square {
    fn area(&self) -> u32 {
        self.0 * self.0
    }
}

pub fn shifted(x: u32) -> u32 {
    assert!(x < 1000, "{x} is too big");
    x.checked_mul(2).unwrap() + [1, 2, 3][x as usize % 4]
}

pub trait Speak {
    fn speak(&self) -> String;
}

pub struct Dog(pub u32);

// `#[hot] impl Speak for Dog { fn speak(&self) -> String }`, expanded: the wrapper is the trait
// method, the implementation sits in a hidden trait inside it.
impl Speak for Dog {
    #[inline(always)]
    fn speak(&self) -> String {
        trait __HotswapImpl: Speak {
            fn __hotswap_impl_speak(&self) -> String;
        }
        impl __HotswapImpl for Dog {
            #[inline(never)]
            fn __hotswap_impl_speak(&self) -> String {
                format!("woof {}", self.0)
            }
        }
        #[allow(non_upper_case_globals)]
        static __hotswap_slot_Dog_speak: AtomicPtr<()> =
            AtomicPtr::new(<Dog as __HotswapImpl>::__hotswap_impl_speak as *mut ());
        let like: fn(&Dog) -> String = <Dog as __HotswapImpl>::__hotswap_impl_speak;
        std::hint::black_box(like);
        let f: fn(&Dog) -> String =
            unsafe { std::mem::transmute(__hotswap_slot_Dog_speak.load(Ordering::Acquire)) };
        f(self)
    }
}

pub static HOOK: fn() -> u32 = hooked;

pub fn hooked() -> u32 {
    5
}

pub mod extra {
    pub fn twice(x: u32) -> u32 {
        x * 2
    }
}
"#;

const APP: &str = r#"
fn talk<T: game::Speak>(t: &T) -> String {
    t.speak()
}

fn main() {
    let dog: Box<dyn game::Speak> = Box::new(game::Dog(1));
    println!("{} {}", dog.speak(), talk(&game::Dog(2)));
    let mut c = game::Counter { n: 1 };
    c.bump();
    let shape: Box<dyn game::Shape> = Box::new(game::Square(3));
    println!(
        "{} {} {} {} {} {}",
        game::step(),
        game::helper(),
        game::scale(2u32),
        c.get(),
        shape.area(),
        game::shifted(4),
    );
}
"#;

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

fn run(mut command: Command) {
    let output = command.output().expect("rustc runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Compiles `source` as the rlib `game` in `dir` (always as `dir/game.rs`, so panic locations
/// name the same file in both versions, as a replayed build does).
fn compile_game(dir: &Path, source: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("game.rs"), source).unwrap();
    let mut command = Command::new(rustc());
    command.current_dir(dir).args([
        "--crate-type",
        "lib",
        "--crate-name",
        "game",
        "-C",
        "opt-level=0",
        "-C",
        "debuginfo=0",
        "--edition",
        "2021",
        "-C",
        "metadata=x",
        "--cap-lints",
        "allow",
        "game.rs",
        "--out-dir",
        ".",
    ]);
    run(command);
    dir.join("libgame.rlib")
}

fn compile_app(dir: &Path, source: &str, game: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("app.rs"), source).unwrap();
    let mut command = Command::new(rustc());
    command
        .current_dir(dir)
        .args([
            "--crate-type",
            "bin",
            "--crate-name",
            "app",
            "-C",
            "opt-level=0",
            "-C",
            "debuginfo=0",
            "--edition",
            "2021",
            "--cap-lints",
            "allow",
            "--emit",
            "obj",
            "app.rs",
            "--out-dir",
            ".",
            "--extern",
        ])
        .arg(format!("game={}", game.display()));
    run(command);
    dir.join("app.o")
}

struct Fixture {
    _dir: tempfile::TempDir,
    old: Code,
    outside: Vec<Code>,
}

/// The old `game` and `app`, compiled once for all tests.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rlib = compile_game(&dir.path().join("old"), GAME);
        let app = compile_app(&dir.path().join("app"), APP, &rlib);
        Fixture {
            old: Code::read_rlib(&rlib).unwrap(),
            outside: read_outside(&[app]).unwrap(),
            _dir: dir,
        }
    })
}

/// `GAME` with `from` replaced by `to` (which must occur exactly once), analysed.
fn edit(from: &str, to: &str) -> Analysis {
    assert_eq!(
        GAME.matches(from).count(),
        1,
        "`{from}` occurs once in GAME"
    );
    edited(&GAME.replacen(from, to, 1))
}

fn edited(source: &str) -> Analysis {
    let fixture = fixture();
    let dir = tempfile::tempdir().unwrap();
    let rlib = compile_game(dir.path(), source);
    let new = Code::read_rlib(&rlib).unwrap();
    analyse(
        "game",
        false,
        &[],
        &fixture.old,
        &new,
        &fixture.outside,
        // (`syn` trees cannot be shared between the test threads; parsing takes microseconds.)
        &[syn::parse_file(GAME).unwrap()],
        &[syn::parse_file(source).unwrap()],
    )
}

fn described(analysis: &Analysis) -> Vec<String> {
    analysis.stale.iter().map(Stale::describe).collect()
}

#[test]
fn the_objects_are_read_with_their_references() {
    let fixture = fixture();
    let old = &fixture.old;
    let helper = old
        .defined_names()
        .find(|&n| names::readable(old.name(n)) == "game::helper")
        .expect("game::helper is defined");
    let node = old.definitions(helper)[0];
    assert_eq!(old.node(node).kind, NodeKind::Function);
    let targets: Vec<String> = old
        .references(node)
        .iter()
        .filter_map(|r| match r.target {
            Target::Symbol { name, .. } => Some(names::readable(old.name(name))),
            Target::Anon(_) => None,
        })
        .collect();
    assert!(targets.contains(&"game::inner".to_owned()), "{targets:?}");
    // The panic's location is anonymous data naming the source file.
    let locations: Vec<String> = old
        .references(node)
        .iter()
        .filter_map(|r| match r.target {
            Target::Anon(anon) => changed::is_location(old, anon),
            _ => None,
        })
        .collect();
    assert_eq!(locations, ["game.rs"]);
    // `app` calls `game::helper` by name.
    let app = &fixture.outside[0];
    assert!(
        app.name_id("_ZN4game6helper17hb64ca2737b90b3bbE").is_some() || {
            (0..app.nodes.len() as NodeId)
                .flat_map(|n| app.references(n))
                .any(|r| {
                    matches!(r.target, Target::Symbol { name, local: None }
                if names::readable(app.name(name)) == "game::helper")
                })
        }
    );
}

#[test]
fn copies_in_the_program_are_noticed() {
    // `app` has copies of `game::scale` and `game::Counter::get`.
    let fixture = fixture();
    assert!(outside_has_copies("game", &fixture.old, &fixture.outside));
    assert!(!outside_has_copies("other", &fixture.old, &fixture.outside));
}

#[test]
fn editing_the_hot_function_reaches_everything() {
    let analysis = edit("\"{} {} {}\", helper()", "\"{} {} {}!\", helper()");
    assert_eq!(analysis.changed, ["game::step"]);
    assert!(analysis.stale.is_empty(), "{:?}", described(&analysis));
}

#[test]
fn editing_a_hot_method_reaches_everything() {
    let analysis = edit("self.n += inner();", "self.n += inner() + 1;");
    assert_eq!(analysis.changed, ["game::Counter::bump"]);
    assert!(analysis.stale.is_empty(), "{:?}", described(&analysis));
}

#[test]
fn editing_a_hot_trait_method_reaches_vtables_and_generic_callers() {
    let analysis = edit("\"woof {}\"", "\"woof! {}\"");
    assert_eq!(analysis.changed, ["<game::Dog as game::Speak>::speak"]);
    assert!(analysis.stale.is_empty(), "{:?}", described(&analysis));
}

#[test]
fn a_helper_only_the_hot_function_calls_is_patched() {
    let analysis = edit("    40\n", "    41\n");
    assert_eq!(analysis.changed, ["game::only_step"]);
    assert!(analysis.stale.is_empty(), "{:?}", described(&analysis));
}

#[test]
fn a_helper_main_calls_directly_is_stale() {
    let analysis = edit("\"old\"", "\"new\"");
    assert_eq!(analysis.changed, ["game::helper"]);
    assert_eq!(
        analysis.stale,
        [Stale {
            function: "game::helper".into(),
            caller: "app::main".into(),
            kind: StaleKind::DirectReference,
            through: vec![],
            in_crate: "app".into(),
            why: "",
        }]
    );
    assert_eq!(
        analysis.stale[0].describe(),
        "`game::helper` changed; `app::main` calls it directly"
    );
    assert_eq!(
        analysis.restart_reason().as_deref(),
        Some("`game::helper` changed; `app::main` calls it directly")
    );
}

#[test]
fn a_function_reached_through_old_code_is_stale() {
    let analysis = edit("extra::twice(3)", "extra::twice(4)");
    assert_eq!(analysis.changed, ["game::inner"]);
    assert_eq!(
        described(&analysis),
        ["`game::inner` changed; `app::main` calls it through `game::helper`"]
    );
}

#[test]
fn a_signature_change_removes_the_function_its_callers_had() {
    // `inner` gets a new symbol hash; old `helper` (run by `main`) still calls the old one.
    let mut source = GAME.to_owned();
    for (from, to) in [
        ("pub fn inner() -> u32", "pub fn inner() -> u64"),
        ("extra::twice(3)", "extra::twice(3) as u64"),
        ("if inner() > limit", "if inner() > limit as u64"),
        ("self.n += inner();", "self.n += inner() as u32;"),
    ] {
        assert_eq!(source.matches(from).count(), 1, "{from}");
        source = source.replacen(from, to, 1);
    }
    let analysis = edited(&source);
    assert!(
        analysis.changed.contains(&"game::inner".to_owned()),
        "{:?}",
        analysis.changed
    );
    assert!(
        analysis.changed.contains(&"game::helper".to_owned()),
        "{:?}",
        analysis.changed
    );
    let stale = described(&analysis);
    assert!(
        stale.contains(&"`game::helper` changed; `app::main` calls it directly".to_owned()),
        "{stale:?}"
    );
}

#[test]
fn a_generic_function_copied_into_the_program_is_stale() {
    let analysis = edit("    x + x\n", "    x + x + x\n");
    assert_eq!(
        described(&analysis),
        ["`game::scale` changed; it is generic and a copy compiled into `app` keeps the old code (called by `app::main`)"]
    );
    assert_eq!(analysis.stale[0].kind, StaleKind::CopyInAnotherCrate);
}

#[test]
fn an_inline_method_copied_into_the_program_is_stale() {
    let analysis = edit("self.n + 1", "self.n + 2");
    assert_eq!(
        described(&analysis),
        ["`game::Counter::get` changed; it is `#[inline]` and a copy compiled into `app` keeps the old code (called by `app::main`)"]
    );
}

#[test]
fn drop_glue_in_the_program_calls_the_old_drop() {
    let analysis = edit(
        "println!(\"drop {}\", self.n);",
        "println!(\"dropped {}\", self.n);",
    );
    assert_eq!(analysis.changed, ["<game::Counter as Drop>::drop"]);
    assert_eq!(
        described(&analysis),
        ["`<game::Counter as Drop>::drop` changed; `app::main` calls it through `core::ptr::drop_in_place<game::Counter>`"]
    );
}

#[test]
fn a_vtable_built_in_the_program_holds_the_old_method() {
    let analysis = edit("self.0 * self.0", "self.0 * self.0 + 1");
    assert_eq!(analysis.changed, ["<game::Square as game::Shape>::area"]);
    assert_eq!(
        described(&analysis),
        ["`<game::Square as game::Shape>::area` changed; `app::main` calls it through a vtable or constant"]
    );
}

#[test]
fn a_shared_static_holds_the_old_function() {
    // Only the hot `step` uses `HOOK`, but the patch's `step` reads the program's `HOOK`.
    let analysis = edit("    5\n", "    6\n");
    assert_eq!(analysis.changed, ["game::hooked"]);
    assert_eq!(
        analysis.stale.iter().map(|s| s.kind).collect::<Vec<_>>(),
        [StaleKind::SharedStatic]
    );
    assert_eq!(
        described(&analysis),
        ["`game::hooked` changed; the running program's `game::HOOK` (a static the patch shares) still points to the old code"]
    );
}

#[test]
fn moving_code_down_changes_nothing() {
    // Every panic location below moves by two lines.
    let analysis = edited(&format!("// a comment\n\n{GAME}"));
    assert!(analysis.changed.is_empty(), "{:?}", analysis.changed);
    assert!(analysis.stale.is_empty(), "{:?}", described(&analysis));
    // Lines added inside the file, above `shifted` and below `helper`.
    let analysis = edit(
        "pub fn only_step() -> u32 {",
        "\n\n\npub fn only_step() -> u32 {",
    );
    assert!(analysis.changed.is_empty(), "{:?}", analysis.changed);
}

#[test]
fn a_closure_is_reported_as_its_function() {
    let analysis = edit("|x| x * LIMIT", "|x| x * LIMIT + 1");
    assert_eq!(analysis.changed, ["game::helper"]);
    assert_eq!(
        described(&analysis),
        ["`game::helper` changed; `app::main` calls it directly"]
    );
}

#[test]
fn a_changed_constant_changes_its_users() {
    let analysis = edit("pub const LIMIT: u32 = 7;", "pub const LIMIT: u32 = 8;");
    assert_eq!(analysis.changed, ["game::helper"]);
    assert_eq!(
        described(&analysis),
        ["`game::helper` changed; `app::main` calls it directly"]
    );
}

#[test]
fn a_changed_string_changes_its_users() {
    let analysis = edit("\"{x} is too big\"", "\"{x} is much too big\"");
    assert_eq!(analysis.changed, ["game::shifted"]);
}

#[test]
fn sources_are_read_with_their_modules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("shapes")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod shapes;\nmod util { pub mod deep; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("shapes.rs"),
        "pub mod round;\npub fn area<T>(_: T) {}\n",
    )
    .unwrap();
    std::fs::write(
        src.join("shapes/round.rs"),
        "#[inline] pub fn pi() -> f32 { 3.14 }\n",
    )
    .unwrap();
    std::fs::create_dir_all(src.join("util")).unwrap();
    std::fs::write(src.join("util/deep.rs"), "pub fn d<T>() {}\n").unwrap();
    let old = crate::sources::read_crate(&src.join("lib.rs")).unwrap();
    std::fs::write(
        src.join("shapes/round.rs"),
        "#[inline] pub fn pi() -> f32 { 3.1416 }\n",
    )
    .unwrap();
    let new = crate::sources::read_crate(&src.join("lib.rs")).unwrap();
    let changed = source::changed(&old, &new);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0.modules, ["shapes", "round"]);
    assert!(source::matches(
        &changed[0].0,
        &names::Path::parse("game::shapes::round::pi"),
        "game"
    ));
    assert!(!source::matches(
        &changed[0].0,
        &names::Path::parse("game::pi"),
        "game"
    ));
}

/// Measures (prints, asserts nothing about time): reading and analysing the small fixture,
/// and a generated crate of about 10,000 functions.
/// `cargo test -p cargo-hotswap --bin cargo-hotswap --release reach::tests::timing -- --ignored --nocapture`
#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    fn median(mut runs: Vec<std::time::Duration>) -> std::time::Duration {
        runs.sort();
        runs[runs.len() / 2]
    }
    let measure = |label: &str,
                   old: &Path,
                   new: &Path,
                   app: &Path,
                   old_src: &str,
                   new_src: &str| {
        let started = Instant::now();
        let old = Code::read_rlib(old).unwrap();
        let new = Code::read_rlib(new).unwrap();
        let outside = read_outside(&[app.to_path_buf()]).unwrap();
        let read = started.elapsed();
        let started = Instant::now();
        let (old_sources, new_sources) = (
            [syn::parse_file(old_src).unwrap()],
            [syn::parse_file(new_src).unwrap()],
        );
        let parse = started.elapsed();
        let mut runs = Vec::new();
        let mut analysis = None;
        for _ in 0..std::env::var("REACH_RUNS").map_or(5, |v| v.parse().unwrap()) {
            let started = Instant::now();
            analysis = Some(analyse(
                "game",
                false,
                &[],
                &old,
                &new,
                &outside,
                &old_sources,
                &new_sources,
            ));
            runs.push(started.elapsed());
        }
        let analysis = analysis.unwrap();
        let functions = old
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Function)
            .count();
        eprintln!(
            "{label}: {functions} functions in {} objects; read 3 sets {read:?}, parse sources {parse:?}, \
             analyse {:?} (median of 5); changed {:?}, {} stale",
            old.objects.len(),
            median(runs),
            analysis.changed,
            analysis.stale.len()
        );
    };

    let dir = tempfile::tempdir().unwrap();
    let new_small = GAME.replacen("\"old\"", "\"new\"", 1);
    let old = compile_game(&dir.path().join("small-old"), GAME);
    let new = compile_game(&dir.path().join("small-new"), &new_small);
    let app = compile_app(&dir.path().join("small-app"), APP, &old);
    measure("small crate", &old, &new, &app, GAME, &new_small);

    // 20 modules of 500 functions: a chain of calls, each with a panic location (overflow
    // check, index), every 10th with a string, every 100th generic.
    let mut big = String::new();
    let mut calls = String::new();
    for m in 0..20 {
        big.push_str(&format!("pub mod m{m} {{\n"));
        for i in 0..500 {
            let n = m * 500 + i;
            let call = if i == 0 {
                "x".to_owned()
            } else {
                format!("f{}(x - 1)", n - 1)
            };
            big.push_str(&format!(
                "pub fn f{n}(x: u32) -> u32 {{ if x > {n} {{ {call} }} else {{ x.wrapping_mul({n}) + [1u32, 2, 3][x as usize % 3] }} }}\n"
            ));
            if n % 10 == 0 {
                big.push_str(&format!(
                    "pub fn s{n}() -> &'static str {{ \"text {n}\" }}\n"
                ));
            }
            if n % 100 == 0 {
                big.push_str(&format!(
                    "pub fn g{n}<T: Into<u64>>(x: T) -> u64 {{ x.into() + {n} }}\n"
                ));
                calls.push_str(&format!(
                    "    total += game::m{m}::f{n}(7) as u64 + game::m{m}::g{n}(3u32);\n"
                ));
            }
        }
        big.push_str("}\n");
    }
    let new_big = big.replacen("x.wrapping_mul(5001)", "x.wrapping_mul(5002)", 1);
    let big_app = format!(
        "fn main() {{\n    let mut total = 0u64;\n{calls}    println!(\"{{total}}\");\n}}\n"
    );
    let started = Instant::now();
    let old = compile_game(&dir.path().join("big-old"), &big);
    let new = compile_game(&dir.path().join("big-new"), &new_big);
    let app = compile_app(&dir.path().join("big-app"), &big_app, &old);
    eprintln!(
        "(compiling the big crate twice and its app: {:?})",
        started.elapsed()
    );
    measure("generated crate", &old, &new, &app, &big, &new_big);
}

#[test]
fn methods_of_types_kept_in_a_state_are_recognised() {
    let player = "game::Player";
    for function in [
        "game::Player::new",
        "<game::Player>::bonus",
        "<game::Player as core::default::Default>::default",
        "game::_::<impl serde_core::de::Deserialize for game::Player>::deserialize",
    ] {
        assert!(super::is_method_of(function, player), "{function}");
    }
    for function in [
        "game::PlayerList::new",
        "game::helper",
        "<game::Players>::get",
    ] {
        assert!(!super::is_method_of(function, player), "{function}");
    }
    let source: syn::File = syn::parse_str(
        "#[derive(Default, serde::Serialize, hotswap::Migrate)] pub struct Player { pub n: u64 }\n\
         pub mod inner { #[derive(Migrate)] pub enum Mode { A } #[derive(Default)] pub struct Plain; }",
    )
    .unwrap();
    assert_eq!(
        super::migrated_types("game", std::iter::once(&source)),
        ["game::Player", "game::inner::Mode"]
    );
}
