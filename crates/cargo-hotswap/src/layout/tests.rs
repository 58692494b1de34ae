//! On real rustc objects: each test compiles an old and a new version of a small crate `game`
//! with the compiler at hand, the hot functions written as `#[hot]` names them.

use std::path::PathBuf;
use std::process::Command;

use super::compare::short_name;
use super::*;

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned())
}

/// Compiles `source` as crate `game` into `dir`, returns the path of the output.
fn compile_to(dir: &Path, source: &str, debuginfo: u8, extra: &[&str], output: &str) -> PathBuf {
    let src = dir.join("src.rs");
    std::fs::write(&src, source).unwrap();
    let out = dir.join(output);
    let result = Command::new(rustc())
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--crate-name",
            "game",
        ])
        .arg("-C")
        .arg(format!("debuginfo={debuginfo}"))
        .args(["--cap-lints", "allow"])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("cannot run rustc");
    assert!(
        result.status.success(),
        "rustc failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

fn object(source: &str, debuginfo: u8) -> Vec<u8> {
    object_at(source, debuginfo, 0)
}

fn object_at(source: &str, debuginfo: u8, opt_level: u8) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let opt = format!("opt-level={opt_level}");
    let path = compile_to(
        dir.path(),
        source,
        debuginfo,
        &["-C", &opt, "--emit", "obj"],
        "game.o",
    );
    std::fs::read(path).unwrap()
}

fn snapshot(source: &str) -> Snapshot {
    snapshot_at(source, 0)
}

fn snapshot_at(source: &str, opt_level: u8) -> Snapshot {
    let object = object_at(source, 2, opt_level);
    let file = syn::parse_file(source).expect("test source parses");
    let snapshot = Snapshot::from_objects(&[&object], "game", &[file]).unwrap();
    assert!(snapshot.has_type_info());
    snapshot
}

/// The described changes from `old` to `new`, with these statics shared.
fn changes_with(old: &str, new: &str, statics: &[&str]) -> Vec<String> {
    let (old, new) = (snapshot(old), snapshot(new));
    let shared: Vec<String> = statics
        .iter()
        .map(|name| linkage_name(&old, name))
        .collect();
    compare(&old, &new, &shared)
        .iter()
        .map(LayoutChange::describe)
        .collect()
}

fn changes(old: &str, new: &str) -> Vec<String> {
    changes_with(old, new, &[])
}

/// The linkage name of static `name` (`game::CONFIG`), as the program's exports would list it.
fn linkage_name(snapshot: &Snapshot, name: &str) -> String {
    snapshot
        .statics()
        .find(|&(_, path)| path == name)
        .map(|(linkage, _)| linkage.to_owned())
        .unwrap_or_else(|| panic!("no static {name}"))
}

const COUNTER_OLD: &str = r#"
pub struct Counter { pub n: u64 }
pub fn __hotswap_impl_step(c: &mut Counter) -> String { c.n += 1; format!("{}", c.n) }
"#;

const COUNTER_NEW: &str = r#"
pub struct Counter { pub n: u64, pub speed: u32 }
pub fn __hotswap_impl_step(c: &mut Counter) -> String { c.n += 1; format!("{} {}", c.n, c.speed) }
"#;

#[test]
fn a_field_added_behind_a_mutable_reference_is_named() {
    let (old, new) = (snapshot(COUNTER_OLD), snapshot(COUNTER_NEW));
    let found = compare(&old, &new, &[]);
    assert_eq!(
        found,
        vec![LayoutChange {
            root: "game::step".to_owned(),
            type_name: "game::Counter".to_owned(),
            change: "`Counter` grew from 8 to 16 bytes (field `speed: u32` added)".to_owned(),
        }]
    );
    assert_eq!(
        found[0].describe(),
        "`game::step`: `Counter` grew from 8 to 16 bytes (field `speed: u32` added)"
    );
}

/// What `#[hot] async fn fetch(c: &Config) -> Reply` generates, in short: the implementation
/// returns the body's future boxed in a struct generic over the output, as
/// `hotswap::__private::BoxFuture` is.
fn async_source(reply_fields: &str) -> String {
    format!(
        r#"
pub mod boxed {{
    pub struct BoxFuture<'a, R>(
        pub std::pin::Pin<Box<dyn std::future::Future<Output = R> + Send + 'a>>,
    );
}}
pub struct Config {{ pub n: u64 }}
pub struct Reply {{ {reply_fields} }}
#[inline(never)]
pub fn __hotswap_impl_fetch<'a>(c: &'a Config) -> boxed::BoxFuture<'a, Reply> {{
    boxed::BoxFuture(Box::pin(async move {{ Reply {{ n: c.n, ..unsafe {{ std::mem::zeroed() }} }} }}))
}}
"#
    )
}

#[test]
fn the_output_of_a_hot_async_fn_is_checked_through_its_boxed_future() {
    let old = snapshot(&async_source("pub n: u64"));
    let new = snapshot(&async_source("pub n: u64, pub extra: u64"));
    let found = compare(&old, &new, &[]);
    assert!(
        found
            .iter()
            .any(|c| c.root == "game::fetch" && c.type_name == "game::Reply"),
        "{found:?}"
    );
}

#[test]
fn optimised_builds_with_type_information_are_checked_too() {
    // `#[hot]` marks the implementation `#[inline(never)]`: it stays a subprogram of its own,
    // and its parameters keep their types at opt-level 3.
    let inline_never =
        |source: &str| source.replace("pub fn __hotswap", "#[inline(never)] pub fn __hotswap");
    let (old, new) = (
        snapshot_at(&inline_never(COUNTER_OLD), 3),
        snapshot_at(&inline_never(COUNTER_NEW), 3),
    );
    let found: Vec<String> = compare(&old, &new, &[])
        .iter()
        .map(LayoutChange::describe)
        .collect();
    assert_eq!(
        found,
        ["`game::step`: `Counter` grew from 8 to 16 bytes (field `speed: u32` added)"]
    );
}

#[test]
fn unchanged_code_and_body_edits_change_nothing() {
    assert_eq!(changes(COUNTER_OLD, COUNTER_OLD), Vec::<String>::new());
    let body_edit = COUNTER_OLD.replace("c.n += 1", "c.n += 2");
    assert_eq!(changes(COUNTER_OLD, &body_edit), Vec::<String>::new());
}

#[test]
fn a_struct_inside_a_vec_is_reached() {
    let old = r#"
pub struct Item { pub a: u32 }
pub fn __hotswap_impl_step(items: &mut Vec<Item>) -> usize { items.len() }
"#;
    let new = old.replace("pub a: u32 }", "pub a: u32, pub b: u32 }");
    assert_eq!(
        changes(old, &new),
        ["`game::step`: `Item` grew from 4 to 8 bytes (field `b: u32` added)"]
    );
}

#[test]
fn template_parameters_lead_to_the_type() {
    // `Option<Box<Counter>>` is a niche enum of a thin pointer; `PhantomData<Counter>` has no
    // field at all: both reach `Counter` through their template parameters only.
    for param in ["Option<Box<Counter>>", "std::marker::PhantomData<Counter>"] {
        let old = COUNTER_OLD.replace(
            "c: &mut Counter) -> String { c.n += 1; format!(\"{}\", c.n) }",
            &format!("_c: {param}) -> String {{ String::new() }}"),
        );
        let new = COUNTER_NEW.replace(
            "c: &mut Counter) -> String { c.n += 1; format!(\"{} {}\", c.n, c.speed) }",
            &format!("_c: {param}) -> String {{ String::new() }}"),
        );
        assert_eq!(
            changes(&old, &new),
            ["`game::step`: `Counter` grew from 8 to 16 bytes (field `speed: u32` added)"],
            "through {param}"
        );
    }
}

#[test]
fn an_enum_gaining_a_variant_is_named() {
    let old = r#"
pub enum Mode { Running, Stopped(u32) }
pub fn __hotswap_impl_step(m: &mut Mode) -> u32 { match m { Mode::Running => 0, Mode::Stopped(n) => *n } }
"#;
    let new = r#"
pub enum Mode { Running, Stopped(u32), Paused }
pub fn __hotswap_impl_step(m: &mut Mode) -> u32 { match m { Mode::Stopped(n) => *n, _ => 0 } }
"#;
    assert_eq!(
        changes(old, new),
        ["`game::step`: `Mode` kept its size (8 bytes) but changed (variant `Paused` added)"]
    );
    // A variant's field retyped, and a fieldless enum gaining a variant.
    let retyped = old
        .replace("Stopped(u32)", "Stopped(u64)")
        .replace("=> *n", "=> *n as u32");
    assert_eq!(
        changes(old, &retyped),
        // rustc widens the tag with the payload's alignment.
        [
            "`game::step`: `Mode` grew from 8 to 16 bytes (the discriminant changed from 4 to 8 \
          bytes, variant `Stopped`: field `0` changed from `u32` to `u64`)"
        ]
    );
    let flags = "pub enum Flag { A, B }\npub fn __hotswap_impl_set(f: Flag) -> u8 { f as u8 }\n";
    let reordered = flags.replace("A, B", "B, A");
    assert_eq!(
        changes(flags, &reordered),
        [
            "`game::set`: `Flag` kept its size (1 byte) but changed (variant `B` discriminant \
          changed from 1 to 0, variant `A` discriminant changed from 0 to 1)"
        ]
    );
}

#[test]
fn two_fields_swapped_keep_the_size_but_not_the_layout() {
    let old = r#"
pub struct Pair { pub a: u64, pub b: u64 }
pub fn __hotswap_impl_step(p: &Pair) -> u64 { p.a + p.b }
"#;
    let new = old.replace("pub a: u64, pub b: u64", "pub b: u64, pub a: u64");
    assert_eq!(
        changes(old, &new),
        ["`game::step`: `Pair` kept its size (16 bytes) but changed (fields `a` and `b` swapped: \
          `a` moved from offset 0 to 8, `b` from 8 to 0)"]
    );
    // Many fields moved: named, not listed with offsets.
    let bytes = "pub struct Bytes { pub a: u8, pub b: u8, pub c: u8, pub d: u8, pub e: u8 }\n\
                 pub fn __hotswap_impl_step(b: &Bytes) -> u8 { b.a }\n";
    let shifted = bytes.replace("{ pub a: u8", "{ pub z: u8, pub a: u8");
    assert_eq!(
        changes(bytes, &shifted),
        ["`game::step`: `Bytes` grew from 5 to 6 bytes (field `z: u8` added, fields `a`, `b`, `c` \
          and 2 more moved)"]
    );
}

#[test]
fn a_field_retyped_to_the_same_size_counts() {
    let old = r#"
pub struct Stats { pub hp: u32 }
pub fn __hotswap_impl_step(s: &mut Stats) { s.hp = 1; }
"#;
    let new = old.replace("hp: u32", "hp: i32");
    assert_eq!(
        changes(old, &new),
        ["`game::step`: `Stats` kept its size (4 bytes) but changed (field `hp` changed from `u32` \
          to `i32`)"]
    );
}

#[test]
fn a_type_used_only_inside_hot_code_may_change() {
    let old = r#"
pub struct Counter { pub n: u64 }
pub struct Scratch { pub a: u8 }
pub fn __hotswap_impl_step(c: &mut Counter) -> String {
    let s = Scratch { a: 1 };
    c.n += s.a as u64;
    String::new()
}
"#;
    let new = old
        .replace("pub a: u8 }", "pub a: u8, pub b: u64 }")
        .replace("a: 1 }", "a: 1, b: 2 }");
    assert_eq!(changes(old, &new), Vec::<String>::new());
}

/// A thread-local's DWARF location is a `DTPOFF` relocation, which the relocation map skips
/// rather than refusing the whole unit.
#[test]
fn a_crate_with_thread_locals_is_read() {
    let old = r#"
use std::cell::Cell;
thread_local! { static CALLS: Cell<u64> = const { Cell::new(0) }; }
pub struct Counter { pub n: u64 }
pub fn __hotswap_impl_step(c: &mut Counter) -> u64 {
    CALLS.with(|calls| calls.set(calls.get() + 1));
    c.n
}
"#;
    let new = old.replace("pub n: u64 }", "pub n: u64, pub m: u8 }");
    assert_eq!(
        changes(old, &new),
        ["`game::step`: `Counter` grew from 8 to 16 bytes (field `m: u8` added)"]
    );
}

/// What a `hotswap::State<T>` holds is migrated by the runtime when `T` changes: not a layout
/// change of the program's value (a stand-in `State` with the runtime's path and shape).
#[test]
fn a_type_kept_in_a_state_may_change() {
    let old = r#"
pub mod hotswap { pub mod state {
    pub struct State<T> { cell: std::sync::Arc<u8>, _owns: std::marker::PhantomData<T> }
} }
pub struct Game { pub score: u64 }
pub fn __hotswap_impl_step(g: &mut hotswap::state::State<Game>) -> u64 { let _ = g; 0 }
"#;
    let new = old.replace("pub score: u64 }", "pub score: u64, pub level: u32 }");
    assert_eq!(changes(old, &new), Vec::<String>::new());
}

/// The runtime migrates a `State<T>` when `T`'s own fields change; a type deeper inside (the
/// record of a `Vec`) that changed while `T`'s fields kept their names and sizes would not be
/// migrated, and the new code would read the old memory: a change to report.
#[test]
fn a_change_inside_a_state_that_the_runtime_would_not_migrate_is_reported() {
    let old = r#"
pub mod hotswap { pub mod state {
    pub struct State<T> { cell: std::sync::Arc<u8>, _owns: std::marker::PhantomData<T> }
} }
pub struct Item { pub count: u32 }
pub struct Shelf { pub items: Vec<Item> }
pub fn __hotswap_impl_step(s: &mut hotswap::state::State<Shelf>) -> u64 { let _ = s; 0 }
"#;
    let deeper = old.replace("pub count: u32 }", "pub count: u32, pub price: u32 }");
    let found = changes(old, &deeper);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("`game::step`: `Item` grew from 4 to 8 bytes (field `price: u32` added)")
            && found[0].ends_with("inside `State<Shelf>` whose own fields did not change, so the runtime would not migrate it"),
        "{found:?}"
    );
    // `Shelf` itself changing is migrated (the runtime sees it), deeper changes with it.
    let both = deeper.replace(
        "pub items: Vec<Item> }",
        "pub items: Vec<Item>, pub day: u32 }",
    );
    assert_eq!(changes(old, &both), Vec::<String>::new());
}

#[test]
fn a_nested_type_of_the_crate_is_reported_with_its_container() {
    let old = r#"
pub struct Inner { pub x: u64 }
pub struct Outer { pub inner: Inner, pub tag: u8 }
pub fn __hotswap_impl_step(o: &mut Outer) { o.tag = 1; }
"#;
    let new = old.replace("pub x: u64 }", "pub x: u64, pub y: u64 }");
    assert_eq!(
        changes(old, &new),
        [
            "`game::step`: `Outer` grew from 16 to 24 bytes (field `inner: Inner` grew from 8 to \
             16 bytes, field `tag` moved from offset 8 to 16)",
            "`game::step`: `Inner` grew from 8 to 16 bytes (field `y: u64` added)",
        ]
    );
}

#[test]
fn generic_instances_of_the_crate_are_compared() {
    let old = r#"
pub struct Wrapper<T> { pub t: T }
pub fn __hotswap_impl_step(w: &mut Wrapper<u32>) { let _ = w; }
"#;
    let new = old.replace("pub t: T }", "pub t: T, pub extra: u8 }");
    let (old, new) = (snapshot(old), snapshot(&new));
    let found = compare(&old, &new, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].type_name, "game::Wrapper<u32>");
    assert_eq!(
        found[0].describe(),
        "`game::step`: `Wrapper<u32>` grew from 4 to 8 bytes (field `extra: u8` added)"
    );
}

#[test]
fn a_trait_gaining_a_method_changes_its_trait_objects() {
    let old = r#"
pub trait Speak { fn speak(&self) -> String; }
pub fn __hotswap_impl_talk(s: &mut Box<dyn Speak>) -> String { s.speak() }
"#;
    let new = r#"
pub trait Speak {
    /// Docs and default bodies are not part of the shape.
    fn speak(&self) -> String;
    fn volume(&self) -> u8 { 3 }
}
pub fn __hotswap_impl_talk(s: &mut Box<dyn Speak>) -> String { s.speak() }
"#;
    let (before, after) = (snapshot(old), snapshot(new));
    let found = compare(&before, &after, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].type_name,
        "alloc::boxed::Box<dyn game::Speak, alloc::alloc::Global>"
    );
    assert_eq!(
        found[0].describe(),
        "`game::talk`: `Box<dyn Speak>`: the trait `Speak` gained method `volume`, so the \
         vtables the running code made no longer match"
    );
    // A new default body or doc comment changes no vtable.
    let body = new
        .replace("{ 3 }", "{ 4 }")
        .replace("/// Docs", "/// Other docs");
    assert_eq!(changes(new, &body), Vec::<String>::new());
    // A supertrait of the crate counts too.
    let base_old = "pub trait Base { fn a(&self); }\npub trait Speak: Base { fn speak(&self); }\n\
                    pub fn __hotswap_impl_talk(s: &dyn Speak) { s.speak() }\n";
    let base_new = base_old.replace("fn a(&self);", "fn a(&self); fn b(&self);");
    assert_eq!(
        changes(base_old, &base_new),
        [
            "`game::talk`: `&dyn Speak`: the trait `Speak` has a supertrait `Base` that gained \
          method `b`, so the vtables the running code made no longer match"
        ]
    );
}

#[test]
fn a_method_root_is_named_as_the_program_names_it() {
    let old = r#"
pub struct Counter { pub n: u64 }
impl Counter { pub fn __hotswap_impl_bump(&mut self) { self.n += 1; } }
pub mod model { pub struct Deep { pub d: u8 } }
pub mod sys { impl crate::model::Deep { pub fn __hotswap_impl_poke(&self) -> u8 { self.d } } }
"#;
    let new = old
        .replace("pub n: u64 }", "pub n: u64, pub m: u64 }")
        .replace("pub d: u8 }", "pub d: u8, pub e: u16 }");
    let before = snapshot(old);
    assert_eq!(
        before.hot_functions().collect::<Vec<_>>(),
        ["game::Counter::bump", "game::sys::Deep::poke"]
    );
    assert_eq!(
        changes(old, &new),
        [
            "`game::Counter::bump`: `Counter` grew from 8 to 16 bytes (field `m: u64` added)",
            "`game::sys::Deep::poke`: `Deep` grew from 1 to 4 bytes (field `e: u16` added, field `d` \
             moved from offset 0 to 2)",
        ]
    );
}

/// Trait methods as `#[hot] impl Trait for Type` expands them: the implementation in a hidden
/// trait `__HotswapImpl` inside the trait method (the wrapper).
const TRAIT_METHODS: &str = r#"
pub trait Speak { fn speak(&self) -> String; }
pub trait Loud { fn speak(&self) -> String; }
pub struct Dog { pub n: u64 }
pub struct View<'a> { pub words: &'a [&'a str] }
macro_rules! hot_method {
    ($trait_:path, $ty:ty, $($lt:lifetime),*; $body:expr) => {
        impl<$($lt),*> $trait_ for $ty {
            fn speak(&self) -> String {
                trait __HotswapImpl<$($lt),*>: $trait_ { fn __hotswap_impl_speak(&self) -> String; }
                impl<$($lt),*> __HotswapImpl<$($lt),*> for $ty {
                    #[inline(never)]
                    fn __hotswap_impl_speak(&self) -> String { let f: fn(&Self) -> String = $body; f(self) }
                }
                <Self as __HotswapImpl>::__hotswap_impl_speak(self)
            }
        }
    };
}
hot_method!(Speak, Dog, ; |d| format!("woof {}", d.n));
pub mod sys {
    hot_method!(crate::Loud, crate::Dog, ; |d| format!("WOOF {}", d.n));
    hot_method!(crate::Loud, crate::View<'a>, 'a; |v| v.words.join(" "));
}
hot_method!(Speak, View<'a>, 'a; |v| v.words.join(" "));
"#;

#[test]
fn a_trait_method_root_is_named_as_the_program_names_it() {
    let before = snapshot(TRAIT_METHODS);
    assert_eq!(
        before.hot_functions().collect::<Vec<_>>(),
        [
            "game::<Dog as Speak>::speak",
            "game::<View as Speak>::speak",
            "game::sys::<Dog as Loud>::speak",
            "game::sys::<View as Loud>::speak",
        ]
    );
    let new = TRAIT_METHODS.replace("pub n: u64 }", "pub n: u64, pub m: u64 }");
    assert_eq!(
        changes(TRAIT_METHODS, &new),
        ["`game::<Dog as Speak>::speak`: `Dog` grew from 8 to 16 bytes (field `m: u64` added)"]
    );
}

#[test]
fn a_shared_static_is_a_root() {
    let old = r#"
pub struct Config { pub a: u32 }
pub static CONFIG: Config = Config { a: 1 };
pub static LIMIT: u32 = 3;
pub fn __hotswap_impl_step() -> u32 { CONFIG.a + LIMIT }
"#;
    let new = old
        .replace("pub a: u32 }", "pub a: u32, pub b: u32 }")
        .replace("Config { a: 1 }", "Config { a: 1, b: 2 }")
        .replace("LIMIT: u32 = 3", "LIMIT: u64 = 3")
        .replace("+ LIMIT", "+ LIMIT as u32");
    // Not shared: the patch has its own copies, nothing the program holds changed.
    assert_eq!(changes(old, &new), Vec::<String>::new());
    assert_eq!(
        changes_with(old, &new, &["game::CONFIG", "game::LIMIT"]),
        [
            "static `game::LIMIT`: its type changed from `u32` to `u64`",
            "static `game::CONFIG`: `Config` grew from 4 to 8 bytes (field `b: u32` added)",
        ]
    );
}

#[test]
fn objects_without_type_information_say_so() {
    for debuginfo in [0, 1] {
        let object = object(COUNTER_OLD, debuginfo);
        let snapshot = Snapshot::from_objects(&[&object], "game", &[]).unwrap();
        assert!(!snapshot.has_type_info(), "debuginfo={debuginfo}");
        assert!(compare(&snapshot, &snapshot, &[]).is_empty());
    }
}

#[test]
fn an_rlib_with_several_codegen_units_is_read_and_a_bad_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = r#"
pub struct Counter { pub n: u64 }
pub mod a { pub fn __hotswap_impl_one(c: &mut crate::Counter) { c.n += 1; } }
pub mod b { pub fn __hotswap_impl_two(c: &crate::Counter) -> u64 { c.n } }
"#;
    let rlib = compile_to(
        dir.path(),
        source,
        2,
        &[
            "-C",
            "opt-level=0",
            "--emit",
            "link",
            "-C",
            "codegen-units=4",
        ],
        "libgame.rlib",
    );
    let file = syn::parse_file(source).unwrap();
    let snapshot = Snapshot::read(&rlib, "game", &[file], &[], &[]).unwrap();
    assert!(snapshot.has_type_info());
    assert_eq!(
        snapshot.hot_functions().collect::<Vec<_>>(),
        ["game::a::one", "game::b::two"]
    );

    let bad = dir.path().join("libbad.rlib");
    std::fs::write(&bad, b"not an archive").unwrap();
    let err = Snapshot::read(&bad, "game", &[], &[], &[]).err().unwrap();
    assert!(err.contains("libbad.rlib"), "{err}");
    let err = Snapshot::from_objects(&[b"\x7fELF garbage"], "game", &[])
        .err()
        .unwrap();
    assert!(err.starts_with("object 1: "), "{err}");
}

#[test]
fn corrupt_debug_information_is_an_error_or_skipped_never_a_panic() {
    use object::{Object, ObjectSection};
    let source = r#"
pub enum Mode { Running, Stopped(u32), Other { x: u8 } }
pub trait Speak { fn speak(&self) -> String; }
pub struct Counter { pub n: u64, pub items: Vec<(u8, [u16; 3])>, pub f: fn(u8) -> u16 }
pub fn __hotswap_impl_step(c: &mut Counter, m: Mode, s: &dyn Speak) -> Option<Box<Counter>> {
    let _ = (c, m, s);
    None
}
"#;
    let object = object(source, 2);
    let ranges: Vec<(u64, u64)> = {
        let file = object::File::parse(&*object).unwrap();
        [".debug_info", ".debug_abbrev"]
            .iter()
            .filter_map(|name| file.section_by_name(name)?.file_range())
            .collect()
    };
    let mut outcomes = (0, 0);
    for (start, size) in ranges {
        let step = (size / 150).max(1);
        for offset in (start..start + size).step_by(step as usize) {
            for value in [0x00, 0xff, 0x13] {
                let mut bytes = object.clone();
                bytes[offset as usize] = value;
                // Must return, whatever it returns.
                match Snapshot::from_objects(&[&bytes], "game", &[]) {
                    Ok(snapshot) => {
                        let _ = compare(&snapshot, &snapshot, &[]);
                        outcomes.0 += 1;
                    }
                    Err(err) => {
                        assert!(err.starts_with("object 1: "), "{err}");
                        outcomes.1 += 1;
                    }
                }
            }
        }
    }
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}

#[test]
fn type_names_are_shown_short() {
    for (full, short) in [
        ("game::Counter", "Counter"),
        (
            "alloc::vec::Vec<game::Item, alloc::alloc::Global>",
            "Vec<Item>",
        ),
        (
            "&mut alloc::boxed::Box<dyn game::Speak, alloc::alloc::Global>",
            "&mut Box<dyn Speak>",
        ),
        (
            "core::option::Option<alloc::boxed::Box<game::Counter, alloc::alloc::Global>>",
            "Option<Box<Counter>>",
        ),
        ("(u8, game::Item)", "(u8, Item)"),
        ("[game::Item; 2]", "[Item; 2]"),
        (
            "alloc::boxed::Box<(dyn game::Gen<u32, Out=u8> + core::marker::Sync), alloc::alloc::Global>",
            "Box<(dyn Gen<u32, Out=u8> + Sync)>",
        ),
        ("game::step::{closure_env#0}", "{closure_env#0}"),
    ] {
        assert_eq!(short_name(full), short);
    }
}

/// A crate of `count` hot functions, each with its own parameter type.
fn big_crate(count: usize, extra_field: bool) -> String {
    let mut source = String::new();
    for i in 0..count {
        let extra = if extra_field && i % 1000 == 0 {
            ", pub extra: u32"
        } else {
            ""
        };
        source.push_str(&format!(
            "pub struct State{i} {{ pub n: u64, pub name: String{extra} }}\n\
             pub fn __hotswap_impl_f{i}(s: &mut State{i}, items: &mut Vec<u32>) -> usize {{ s.n += 1; items.len() }}\n"
        ));
    }
    source
}

/// Read + compare timings, small and large (`cargo test --release -p cargo-hotswap --lib
/// layout::tests::timing -- --ignored --nocapture`). Prints; asserts only the results.
#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    for (label, old, new) in [
        (
            "small crate",
            COUNTER_OLD.to_owned(),
            COUNTER_NEW.to_owned(),
        ),
        (
            "10,000 hot functions",
            big_crate(10_000, false),
            big_crate(10_000, true),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut objects = Vec::new();
        let mut files = Vec::new();
        for (name, source) in [("old", &old), ("new", &new)] {
            let sub = dir.path().join(name);
            std::fs::create_dir(&sub).unwrap();
            let started = Instant::now();
            let rlib = compile_to(
                &sub,
                source,
                2,
                &["-C", "opt-level=0", "--emit", "link"],
                "libgame.rlib",
            );
            eprintln!("{label}: {name} build {:?}", started.elapsed());
            let started = Instant::now();
            files.push(syn::parse_file(source).unwrap());
            eprintln!("{label}: {name} parse sources {:?}", started.elapsed());
            objects.push(rlib);
        }
        let started = Instant::now();
        let before = Snapshot::read(&objects[0], "game", &files[..1], &[], &[]).unwrap();
        let read_one = started.elapsed();
        let after = Snapshot::read(&objects[1], "game", &files[1..], &[], &[]).unwrap();
        let read_both = started.elapsed();
        let found = compare(&before, &after, &[]);
        let total = started.elapsed();
        eprintln!(
            "{label}: rlib {} bytes; read old {read_one:?}, read both {read_both:?}, read both + \
             compare {total:?}; {} hot functions, {} types kept, {} changes",
            std::fs::metadata(&objects[0]).unwrap().len(),
            before.types.functions.len(),
            before.types.types.len(),
            found.len()
        );
        assert!(!found.is_empty());
    }
}

/// `Snapshot::read` reads only the codegen units that define a root: a hot function's
/// implementation, or a static the program shares.
#[test]
fn units_are_chosen_by_the_roots_they_define() {
    let with_static = object(
        "pub static CONFIG: u64 = 3;\npub fn plain() -> u64 { CONFIG }\n",
        2,
    );
    let with_hot = object("pub fn __hotswap_impl_step() -> u64 { 1 }\n", 2);
    let neither = object("pub fn plain() -> u64 { 1 }\n", 2);
    let config = {
        let file = object::File::parse(&*with_static).unwrap();
        use object::{Object, ObjectSymbol};
        file.symbols()
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .find(|n| n.contains("CONFIG"))
            .unwrap()
    };
    assert!(super::defines_roots(&with_hot, &[]));
    assert!(super::defines_roots(
        &with_static,
        std::slice::from_ref(&config)
    ));
    assert!(!super::defines_roots(&with_static, &[]));
    assert!(!super::defines_roots(
        &neither,
        std::slice::from_ref(&config)
    ));
}

/// An exclusive Bevy system in short: the hot function sees only the `World`; the component
/// `Pos` is reached inside its body. `IMPL` is the crate's `Component` impl (or nothing).
const WORLD_SYSTEM: &str = r#"
pub mod bevy_ecs { pub mod component { pub trait Component { fn id(&self) -> u32; } } }
pub struct World { pub bytes: Vec<u8> }
pub struct Pos { pub x: i64 FIELDS }
IMPL
pub fn __hotswap_impl_system(world: &mut World) -> usize {
    let p = Pos { x: 1 NEW };
    world.bytes.push(p.x as u8);
    world.bytes.len()
}
"#;

fn world_system(component: bool, grown: bool) -> String {
    WORLD_SYSTEM
        .replace(
            "IMPL",
            if component {
                "impl bevy_ecs::component::Component for Pos { fn id(&self) -> u32 { 7 } }"
            } else {
                ""
            },
        )
        .replace("FIELDS", if grown { ", pub y: i64" } else { "" })
        .replace("NEW", if grown { ", y: 2" } else { "" })
}

/// A component's layout change is caught though no hot signature shows the component (the
/// running `World` holds its values); a type only hot code sees may still change.
#[test]
fn a_component_reached_only_inside_a_body_is_checked() {
    let found = changes(&world_system(true, false), &world_system(true, true));
    assert_eq!(
        found,
        ["`Pos` (a Bevy `Component`: the running `World` keeps its values): `Pos` grew from 8 to 16 bytes (field `y: i64` added)"],
    );
    assert!(
        changes(&world_system(false, false), &world_system(false, true)).is_empty(),
        "a plain local type restarts"
    );
}
