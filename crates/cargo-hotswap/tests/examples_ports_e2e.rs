//! End to end: the examples ported from hot-lib-reloader's (issue 12), each on a copy in a
//! temporary directory or built into the shared end-to-end target directory, never the
//! repository's sources:
//! - `reload-feature`: the package's `reload` feature makes a plain `cargo build` hot (the full
//!   library workflow), without it the build is plain; and `cargo hotswap run` patches an edit.
//!   (That `cargo build --release` of it has no hot-reload code is checked with every other
//!   example by `release_builds_of_the_examples_are_plain_programs` in `examples_e2e.rs`.)
//! - `serialized-state`: the record type of a `Vec` in a `hotswap::State` gains a field and
//!   renames one (with a serde alias) while the program runs; every value is carried over.
//!
//! See `examples_support/mod.rs` for the copy and the session. No assertion is on time.

mod examples_support;
mod support;

use examples_support::{Example, Stream, OUTPUT, PATCH};
use support::RESTART;

/// The number right after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

// ---------------------------------------------------------------------------------------------
// examples/reload-feature
// ---------------------------------------------------------------------------------------------

/// `cargo build <args>` (debug) of the repository's workspace into the shared target directory,
/// with an environment cleaned of what the outer `cargo test` set that would change the build.
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .arg("build")
        .args(args)
        .current_dir(support::workspace_root())
        .env("CARGO_TARGET_DIR", support::e2e_target_dir());
    hotswap_testkit::remove_env(&mut command, hotswap_testkit::BUILD_ENV);
    hotswap_testkit::remove_env(&mut command, hotswap_testkit::JOBSERVER_ENV);
    hotswap_testkit::remove_env(&mut command, &["RUSTC_WRAPPER"]);
    let output = command.output().expect("cannot run cargo");
    assert!(
        output.status.success(),
        "cargo build {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the debug `reload-feature` of the shared target directory for `steps` steps; returns
/// its stdout.
fn run_reload_feature(steps: &str) -> String {
    let binary = examples_support::e2e_binary("debug", "reload-feature");
    let output = std::process::Command::new(&binary)
        .arg(steps)
        .env_remove("HOTSWAP_LIB_DIR")
        .env_remove("HOTSWAP_LOG")
        .env_remove("HOTSWAP_CARRY")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
    assert!(output.status.success(), "{}: {output:?}", binary.display());
    String::from_utf8(output.stdout).unwrap()
}

/// `cargo build -p reload-feature` is a plain program (`hotswap::is_hot()` is false), and the
/// same build with `--features reload` is hot (true), with the library the full library
/// workflow watches next to the executable.
///
/// Fails if: the package feature does not switch hot mode on (the feature build reports
/// `hot reload: off`, or writes no `libreload_feature.so`), or hot mode is on without it; or if
/// either build does not run its steps as the plain program does.
#[test]
fn reload_feature_switches_hot_mode_in_a_plain_cargo_build() {
    let _serial = support::serial();
    let steps = "step 1: from the compiled-in code\nstep 2: from the compiled-in code\n";

    cargo_build(&["-p", "reload-feature"]);
    let out = run_reload_feature("2");
    assert_eq!(out, format!("hot reload: off\n{steps}"));

    cargo_build(&["-p", "reload-feature", "--features", "reload"]);
    let library = examples_support::e2e_binary("debug", "libreload_feature.so");
    assert!(
        library.is_file(),
        "the feature build wrote no {}",
        library.display()
    );
    let out = run_reload_feature("2");
    assert_eq!(out, format!("hot reload: on\n{steps}"));
}

/// `cargo hotswap run` of the example (no feature needed: the CLI builds in hot mode) patches an
/// edit of `step`, and the counter `main` owns carries on.
///
/// Fails if: the program does not report `hot reload: on` under the CLI; the edit is not
/// patched (no `patched 1 function` line, or no new text); the steps do not count 1, 2, 3, ...
/// across the patch; the old text comes back after the new one.
#[test]
fn reload_feature_is_patched_under_the_cli() {
    let _serial = support::serial();
    let example = Example::copy("reload-feature");
    let (mut session, pid) = example.run(&["run"]);
    session.wait_out("`hot reload: on`", 0, OUTPUT, |t| t == "hot reload: on");
    session.wait_out("`step 2: ...`", 0, OUTPUT, |t| {
        t == "step 2: from the compiled-in code"
    });
    let edited = example.edited(
        "src/lib.rs",
        &[("from the compiled-in code", "from the PATCHED code")],
    );
    let (before, _) = example.patch(&session, "src/lib.rs", &edited, "1 function", 1);
    let first = session.wait_out("`step N: from the PATCHED code`", before, OUTPUT, |t| {
        t.ends_with(": from the PATCHED code")
    });
    session.wait_out("a second patched step", first.seq + 1, OUTPUT, |t| {
        t.ends_with(": from the PATCHED code")
    });
    let steps: Vec<(u64, bool)> = session
        .texts(Stream::Out, 0)
        .iter()
        .filter(|(_, t)| t.starts_with("step "))
        .map(|(_, t)| (number_after(t, "step ").unwrap(), t.contains("PATCHED")))
        .collect();
    let numbers: Vec<u64> = steps.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "the steps did not count on across the patch\n{}",
        session.transcript()
    );
    let first_new = steps.iter().position(|(_, new)| *new).unwrap();
    assert!(first_new >= 2 && steps[first_new..].iter().all(|(_, new)| *new));
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// examples/serialized-state
// ---------------------------------------------------------------------------------------------

/// The items `main` stocks the shelf with, and their counts before day 1.
const STOCK: [(&str, u64); 3] = [("apple", 3), ("pear", 5), ("plum", 1)];
/// The price the edit gives an item that had none.
const DEFAULT_PRICE: u64 = 25;

/// One printed day: `day D: name=count ...`, or after the edit `day D: name=quantity@price ...`.
#[derive(Debug)]
struct Day {
    day: u64,
    /// (name, count, price if shown)
    items: Vec<(String, u64, Option<u64>)>,
}

fn parse_day(text: &str) -> Day {
    let (head, items) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("not a day: {text:?}"));
    let day = head
        .strip_prefix("day ")
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("not a day: {text:?}"));
    let items = items
        .split_whitespace()
        .map(|item| {
            let (name, rest) = item
                .split_once('=')
                .unwrap_or_else(|| panic!("bad item {item:?} in {text:?}"));
            let (count, price) = match rest.split_once('@') {
                Some((count, price)) => (count, Some(price.parse().unwrap())),
                None => (rest, None),
            };
            (name.to_owned(), count.parse().unwrap(), price)
        })
        .collect();
    Day { day, items }
}

/// The record type of the shelf's `Vec` changes while the program runs: `Item` becomes
/// `Product`, its `count` is renamed `quantity` (`#[serde(alias = "count")]` reads the old name)
/// and a `price` field with its own default is added; then a second edit changes each price,
/// keeping the layout.
///
/// Fails if: the edit is not applied with a migration (`patched 2 functions, migrated 1 state
/// value`); a value is lost or reset (the days do not count 1, 2, 3, ...; an item's count is not
/// its stock plus the day, before and after the rename; an item is missing or out of order);
/// the new field does not start at its serde default; the layout-keeping edit migrates or loses
/// the prices.
#[test]
fn serialized_state_renames_and_adds_a_field_of_its_records() {
    let _serial = support::serial();
    let example = Example::copy("serialized-state");
    let (mut session, pid) = example.run(&["run"]);
    session.wait_out("`day 3: ...`", 0, OUTPUT, |t| t.starts_with("day 3:"));

    // 1. Rename the record type `Item` to `Product`, its `count` to `quantity` (the old name
    //    still readable), add `price` with a default, and show both.
    let renamed = example.edited(
        "src/lib.rs",
        &[
            (
                "    pub name: String,\n    pub count: u32,\n}",
                "    pub name: String,\n    #[serde(alias = \"count\")]\n    pub quantity: u32,\n    \
                 #[serde(default = \"starting_price\")]\n    pub price: u32,\n}\n\n\
                 fn starting_price() -> u32 {\n    25\n}",
            ),
            ("        count,\n", "        quantity: count,\n        price: starting_price(),\n"),
            ("item.count += 1;", "item.quantity += 1;"),
            (
                "format!(\" {}={}\", item.name, item.count)",
                "format!(\" {}={}@{}\", item.name, item.quantity, item.price)",
            ),
        ],
    )
    .replace("Item", "Product");
    let (before, _) = example.patch(
        &session,
        "src/lib.rs",
        &renamed,
        "2 functions, migrated 1 state value",
        1,
    );
    let first = session.wait_out("a day with prices", before, OUTPUT, |t| t.contains('@'));
    let first = parse_day(&first.text);
    assert!(
        first
            .items
            .iter()
            .all(|(_, _, p)| *p == Some(DEFAULT_PRICE)),
        "the new field did not start at its default: {first:?}"
    );

    // 2. Raise every price by one a day: same layout, nothing to migrate, prices kept.
    let raising = renamed.replace(
        "item.quantity += 1;",
        "item.quantity += 1;\n        item.price += 1;",
    );
    assert_ne!(raising, renamed);
    let (before, patched) = example.patch(&session, "src/lib.rs", &raising, "2 functions", 2);
    assert!(
        !patched.text.contains("migrated"),
        "a patch that keeps the layout migrated: {:?}",
        patched.text
    );
    let mut since = before;
    for _ in 0..3 {
        since = session
            .wait_out("a day with a raised price", since, OUTPUT, |t| {
                t.starts_with("day ")
                    && !t.contains(&format!("@{DEFAULT_PRICE}"))
                    && t.contains('@')
            })
            .seq
            + 1;
    }

    let days: Vec<Day> = session
        .texts(Stream::Out, 0)
        .iter()
        .filter(|(seq, t)| *seq < since && t.starts_with("day "))
        .map(|(_, t)| parse_day(t))
        .collect();
    let numbers: Vec<u64> = days.iter().map(|d| d.day).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "the day did not carry on across the migration\n{}",
        session.transcript()
    );
    let mut prices = Vec::new();
    for day in &days {
        let names: Vec<&str> = day.items.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["apple", "pear", "plum"], "{day:?}");
        for ((_, count, _), (_, stock)) in day.items.iter().zip(STOCK) {
            assert_eq!(
                *count,
                stock + day.day,
                "day {}: a count was not carried over under its new name: {day:?}\n{}",
                day.day,
                session.transcript()
            );
        }
        // Every item has the same price (the default, raised by one a day after patch 2).
        let price = day.items[0].2;
        assert!(day.items.iter().all(|(_, _, p)| *p == price), "{day:?}");
        match price {
            Some(price) => prices.push(price),
            None => assert!(prices.is_empty(), "the prices went away: {day:?}"),
        }
    }
    // 25, 25, ..., 25, 26, 27, ...: kept from day to day, never reset to the default.
    assert!(
        prices
            .windows(2)
            .all(|w| w[1] == w[0] + 1 || (w[0] == DEFAULT_PRICE && w[1] == w[0])),
        "the prices were not carried on: {prices:?}\n{}",
        session.transcript()
    );
    assert!(
        prices.last().is_some_and(|p| *p > DEFAULT_PRICE),
        "{prices:?}"
    );
    session.interrupt_and_check(pid, 130);
}

/// A change inside the record type alone (`Item` gains a field, `Shelf`'s own fields stay as
/// they were) is one the runtime would not migrate: the program's `Vec<Item>` holds records of
/// the old layout. The command restarts the program instead, naming `Item` and the `State`
/// it sits in, and carries the shelf over to the new process through serde.
///
/// Fails if: the edit is patched (the new code would read old records with the new layout), the
/// reason does not say why, or the restarted program starts its shelf from scratch.
#[test]
fn a_record_change_the_runtime_would_not_migrate_restarts_with_the_shelf_carried() {
    let _serial = support::serial();
    let example = Example::copy("serialized-state");
    let (session, pid) = example.run(&["run"]);
    session.wait_out("`day 3: ...`", 0, OUTPUT, |t| t.starts_with("day 3:"));
    let edited = example.edited(
        "src/lib.rs",
        &[
            (
                "    pub name: String,\n    pub count: u32,\n}",
                "    pub name: String,\n    pub count: u32,\n    #[serde(default)]\n    \
                 pub price: u32,\n}",
            ),
            ("        count,\n", "        count,\n        price: 0,\n"),
            (
                "format!(\" {}={}\", item.name, item.count)",
                "format!(\" {}={}@{}\", item.name, item.count, item.price)",
            ),
        ],
    );
    let before = session.mark();
    example.save("src/lib.rs", &edited);
    let patched = format!("[hotswap] {}: patched ", example.package);
    let outcome = session.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
    });
    assert!(
        outcome
            .text
            .starts_with("[hotswap] restarting `serialized-state`: ")
            && outcome.text.contains(": `Item` ")
            && outcome.text.contains("inside `State<Shelf>`"),
        "expected a restart naming `Item` inside the State, got {:?}\n{}",
        outcome.text,
        session.transcript()
    );
    let restarted = session.wait_started(outcome.seq, RESTART);
    assert_ne!(restarted, pid);
    // The new process's first day carries on from the old one's shelf.
    let line = session.wait_out("a day with prices", outcome.seq, OUTPUT, |t| {
        t.starts_with("day ") && t.contains('@')
    });
    let day = number_after(&line.text, "day ").unwrap();
    assert!(day > 3, "the shelf was not carried over: {:?}", line.text);
}
