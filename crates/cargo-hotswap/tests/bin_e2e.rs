//! `#[hot]` in binary crates end to end (issue 10): a package with only `src/main.rs`, and a
//! `src/bin/*.rs` binary and an example next to a library, each run by the real
//! `cargo hotswap run` and edited while it runs.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: the program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

mod support;

use support::{Cli, Line, Scratch, Stream, FIRST_BUILD, OUTPUT, PATCH, RESTART};

/// A one-file program: `tick` (hot) counts in a `Game` that `main` owns and in a thread-local,
/// and says `TAG`; `main` prints what `label()` (not hot) returns once, then ticks every 50 ms.
/// `EXTRA` is spliced in at the top level.
const SOLO_RS: &str = r#"use std::cell::Cell;
use std::time::Duration;

thread_local! {
    static FRAMES: Cell<u64> = const { Cell::new(0) };
}

pub struct Game {
    pub n: u64,
}

#[hotswap::hot]
pub fn tick(game: &mut Game) -> String {
    game.n += 1;
    let frames = FRAMES.with(|f| {
        f.set(f.get() + 1);
        f.get()
    });
    format!("tick tag=TAG n={} frames={frames}", game.n)
}

fn label() -> &'static str {
    "LABEL"
}

EXTRA

fn main() {
    println!("host pid={} label={}", std::process::id(), label());
    let mut game = Game { n: 0 };
    loop {
        println!("{}", tick(&mut game));
        std::thread::sleep(Duration::from_millis(50));
    }
}
"#;

fn solo(tag: &str, label: &str, extra: &str) -> String {
    SOLO_RS
        .replace("TAG", tag)
        .replace("LABEL", label)
        .replace("EXTRA", extra)
}

/// A scratch workspace whose `app` package depends on `hotswap` and has no `lib.rs`.
fn solo_workspace(prefix: &str) -> Scratch {
    let scratch = Scratch::new(prefix);
    scratch.save(
        "app/Cargo.toml",
        &format!(
            "[package]\nname = \"{app}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nhotswap = {{ path = {hotswap:?} }}\n",
            app = scratch.app,
            hotswap = support::hotswap_dir().display().to_string(),
        ),
    );
    scratch.save("app/src/main.rs", &solo("v1", "first", ""));
    scratch
}

/// Starts `cargo hotswap run` and waits for the program's first tick; returns the command, the
/// program's pid and the number of its `host pid=` line.
fn start(scratch: &Scratch, args: &[&str], program: &str, first: &str) -> (Cli, u32, usize) {
    let cli = scratch.start_program(args, program);
    let started = cli.wait_started(0, FIRST_BUILD);
    let host = cli.wait_out("the program's first line", 0, OUTPUT, |t| {
        t.starts_with(&format!("host pid={} ", started.pid))
    });
    cli.wait_out(&format!("`{first}...`"), host.seq, OUTPUT, |t| {
        t.starts_with(first)
    });
    (cli, started.pid, host.seq)
}

/// Saves `contents` to `relative` and returns the first outcome the command reports.
fn save(scratch: &Scratch, cli: &Cli, relative: &str, contents: &str, shown: &str) -> Line {
    let before = cli.mark();
    scratch.save(relative, contents);
    let patched = format!("[hotswap] {shown}: patched ");
    cli.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
    })
}

fn assert_patched(outcome: &str, shown: &str, function: &str, cli: &Cli) {
    assert!(
        outcome.starts_with(&format!("[hotswap] {shown}: patched 1 function "))
            && outcome.ends_with(&format!("code changed: `{function}`")),
        "expected a patch of `{function}`, got {outcome:?}\n{}",
        cli.transcript()
    );
}

/// A `main.rs`-only package, patched five times: each save is a patch (no restart), the new
/// `tick` runs at once, and both the counter `main` owns and the thread-local `tick` counts in
/// keep counting (the patch uses the program's thread-local, not a fresh copy).
///
/// Fails if: the command says nothing depends on `hotswap` or restarts on a save (binary crates
/// not hot), the patch's thread-local starts from 0 (`frames` falls behind `n`), old and new
/// text mix, or the count starts again.
#[test]
fn a_main_rs_only_package_is_patched_five_times_and_keeps_its_state() {
    let _serial = support::serial();
    let scratch = solo_workspace("hs_solo");
    let app = scratch.app.clone();
    let (cli, pid, host) = start(&scratch, &["run"], &app, "tick tag=v1 ");
    let running = format!("[hotswap] running `{app}`; ");
    let running = cli.wait_for("the `running` line", 0, OUTPUT, |line| {
        line.stream == Stream::Err && line.text.starts_with(&running)
    });
    assert!(
        running
            .text
            .contains("edit `app/src/main.rs` and save to patch it live"),
        "the running line does not say what to edit: {:?}",
        running.text
    );
    assert!(
        !cli.texts(Stream::Err, 0)
            .iter()
            .any(|(_, t)| t.contains("depends on `hotswap`")),
        "the command did not see the binary crate as hot\n{}",
        cli.transcript()
    );
    for version in 2..=6 {
        let tag = format!("v{version}");
        let outcome = save(
            &scratch,
            &cli,
            "app/src/main.rs",
            &solo(&tag, "first", ""),
            &app,
        )
        .text;
        assert_patched(
            &outcome,
            &app,
            &format!("{}::tick", app.replace('-', "_")),
            &cli,
        );
        assert!(
            outcome.contains(&format!("— version {}; build ", version - 1)),
            "{outcome:?}"
        );
        cli.wait_out(&format!("a {tag} tick"), host, OUTPUT, |t| {
            t.starts_with(&format!("tick tag={tag} "))
        });
    }
    let ticks: Vec<String> = cli
        .texts(Stream::Out, host)
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("tick "))
        .collect();
    let number = |line: &str, key: &str| -> u64 {
        support::field(line, key)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key}=N in {line:?}"))
    };
    let tags: Vec<u64> = ticks
        .iter()
        .map(|t| support::field(t, "tag").unwrap()[1..].parse().unwrap())
        .collect();
    assert!(
        tags.windows(2).all(|w| w[0] <= w[1]) && tags[0] == 1 && tags.last() == Some(&6),
        "old and new code mixed: {ticks:?}"
    );
    for (index, line) in ticks.iter().enumerate() {
        let n = number(line, "n");
        assert_eq!(
            n,
            index as u64 + 1,
            "the counter did not keep counting: {ticks:?}"
        );
        assert_eq!(
            number(line, "frames"),
            n,
            "the thread-local did not keep its value across the patches: {ticks:?}"
        );
    }
    assert_eq!(support::started_pids(&cli, &app), [pid], "restarted");
    assert!(
        !cli.texts(Stream::Err, 0)
            .iter()
            .any(|(_, t)| t.contains("FRAMES` start")),
        "a shared thread-local was reported as starting afresh\n{}",
        cli.transcript()
    );
}

/// Edits a `main.rs`-only program cannot take live restart it, naming what changed: a function
/// `main` calls directly (`label`), a new thread-local, and `main` itself. Each restart runs the
/// new code.
///
/// Fails if: any of them is patched (the running `main` would keep the old code, or the patch
/// would use a thread-local the program does not have), or the reason does not name it.
#[test]
fn edits_a_running_main_cannot_take_restart_it_and_say_why() {
    let _serial = support::serial();
    let scratch = solo_workspace("hs_solo_restart");
    let app = scratch.app.clone();
    let (cli, _, _) = start(&scratch, &["run"], &app, "tick tag=v1 ");
    let crate_name = app.replace('-', "_");
    let restart = |source: &str, why: &str, label: &str| {
        let outcome = save(&scratch, &cli, "app/src/main.rs", source, &app);
        assert!(
            outcome
                .text
                .starts_with(&format!("[hotswap] restarting `{app}`: "))
                && outcome.text.contains(why),
            "expected a restart because {why:?}, got {:?}\n{}",
            outcome.text,
            cli.transcript()
        );
        let started = cli.wait_started(outcome.seq, RESTART);
        cli.wait_out("the new program's first line", 0, OUTPUT, |t| {
            t == format!("host pid={} label={label}", started.pid)
        });
    };
    restart(
        &solo("v1", "second", ""),
        &format!("`{crate_name}::label` changed; `{crate_name}::main` calls it directly"),
        "second",
    );
    // `main` itself.
    let new_main = solo("v1", "second", "").replace("Game { n: 0 }", "Game { n: 100 }");
    restart(
        &new_main,
        &format!(
            "`{crate_name}::main` changed, and the running program keeps the code it started with"
        ),
        "second",
    );
    cli.wait_out("a tick counting from 100", 0, OUTPUT, |t| {
        t.starts_with("tick tag=v1 n=101 ")
    });
    // A new thread-local, which only the program's own build can place.
    let extra = "thread_local! {\n    static MORE: Cell<u32> = const { Cell::new(7) };\n}\n\n\
                 #[hotswap::hot]\npub fn more() -> u32 {\n    MORE.with(|m| m.get())\n}\n";
    let with_more = new_main
        .replace("\nfn main() {", &format!("{extra}\nfn main() {{"))
        .replace(
            "{}\", tick(&mut game)",
            "{} more={}\", tick(&mut game), more()",
        );
    restart(
        &with_more,
        &format!("adds thread-local `{crate_name}::MORE` to `{crate_name}`"),
        "second",
    );
    cli.wait_out("a tick with `more=7`", 0, OUTPUT, |t| {
        t.ends_with(" more=7")
    });
}

/// A `src/bin/tool.rs` binary and an `examples/demo.rs` example of a package that also has a
/// library, each with a `#[hot]` function calling into the library: editing the binary's (or
/// the example's) file patches it live.
///
/// Fails if: the edit restarts the program (only libraries hot), or the patch line names
/// another crate.
#[test]
fn a_src_bin_binary_and_an_example_are_patched_live() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_tool");
    let app = scratch.app.clone();
    let crate_name = app.replace('-', "_");
    scratch.save(
        "app/Cargo.toml",
        &format!(
            "[package]\nname = \"{app}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nhotswap = {{ path = {hotswap:?} }}\n",
            hotswap = support::hotswap_dir().display().to_string(),
        ),
    );
    scratch.save(
        "app/src/lib.rs",
        "pub fn double(n: u64) -> u64 {\n    n * 2\n}\n",
    );
    let program = |name: &str, tag: &str| {
        format!(
            "#[hotswap::hot]\npub fn step(n: u64) -> String {{\n    \
             format!(\"{name} tag={tag} n={{n}} twice={{}}\", {crate_name}::double(n))\n}}\n\n\
             fn main() {{\n    println!(\"host pid={{}} \", std::process::id());\n    \
             for n in 1.. {{\n        println!(\"{{}}\", step(n));\n        \
             std::thread::sleep(std::time::Duration::from_millis(50));\n    }}\n}}\n"
        )
    };
    scratch.save("app/src/main.rs", &program("main", "v1"));
    std::fs::create_dir_all(scratch.path().join("app/src/bin")).unwrap();
    std::fs::create_dir_all(scratch.path().join("app/examples")).unwrap();
    scratch.save("app/src/bin/tool.rs", &program("tool", "v1"));
    scratch.save("app/examples/demo.rs", &program("demo", "v1"));
    for (args, name, file) in [
        (&["run", "--bin", "tool"][..], "tool", "app/src/bin/tool.rs"),
        (
            &["run", "--example", "demo"][..],
            "demo",
            "app/examples/demo.rs",
        ),
    ] {
        let (mut cli, pid, host) = start(&scratch, args, name, &format!("{name} tag=v1 "));
        let outcome = save(&scratch, &cli, file, &program(name, "v2"), name);
        assert_patched(&outcome.text, name, &format!("{name}::step"), &cli);
        let line = cli.wait_out(&format!("a v2 line of {name}"), host, OUTPUT, |t| {
            t.starts_with(&format!("{name} tag=v2 "))
        });
        let n: u64 = support::field(&line.text, "n").unwrap().parse().unwrap();
        assert_eq!(
            support::field(&line.text, "twice"),
            Some((2 * n).to_string().as_str()),
            "{line:?}"
        );
        assert_eq!(support::started_pids(&cli, name), [pid], "restarted");
        cli.interrupt_and_check(pid, 130);
    }
}

/// A patch of `main.rs` may add a direct call into the package's hot library: the library's
/// next patch must see that call. Here `tick` gains a call of the library's plain `helper`
/// (patched live); then `helper` is edited: the program restarts naming it, since the patched
/// `tick` would otherwise keep calling the old `helper`.
///
/// Fails if: the library's patch is applied (the checks only knew the program's original
/// objects, where nothing calls `helper`), or the first patch restarts.
#[test]
fn a_library_patch_sees_calls_a_main_rs_patch_added() {
    let _serial = support::serial();
    let scratch = solo_workspace("hs_solo_lib");
    let app = scratch.app.clone();
    let crate_name = app.replace('-', "_");
    scratch.save(
        "app/src/lib.rs",
        "#[hotswap::hot]\npub fn hot_lib() -> u64 {\n    0\n}\n\n\
         pub fn helper() -> u64 {\n    1\n}\n",
    );
    let (cli, pid, host) = start(&scratch, &["run"], &app, "tick tag=v1 ");
    let calling = solo("v2", "first", "").replace(
        "format!(\"tick tag=v2 n={} frames={frames}\", game.n)",
        &format!("format!(\"tick tag=v2 n={{}} frames={{frames}} helper={{}}\", game.n, {crate_name}::helper())"),
    );
    assert!(calling.contains("helper={}"));
    let outcome = save(&scratch, &cli, "app/src/main.rs", &calling, &app).text;
    assert_patched(&outcome, &app, &format!("{crate_name}::tick"), &cli);
    cli.wait_out("a tick calling helper", host, OUTPUT, |t| {
        t.ends_with(" helper=1")
    });
    let outcome = save(
        &scratch,
        &cli,
        "app/src/lib.rs",
        &scratch.read("app/src/lib.rs").replace("    1\n", "    2\n"),
        &app,
    );
    assert!(
        outcome
            .text
            .starts_with(&format!("[hotswap] restarting `{app}`: "))
            && outcome
                .text
                .contains(&format!("`{crate_name}::helper` changed")),
        "expected a restart naming `helper`, got {:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    let started = cli.wait_started(outcome.seq, RESTART);
    assert_ne!(started.pid, pid);
    cli.wait_out("the restarted program's helper=2", 0, OUTPUT, |t| {
        t.ends_with(" helper=2")
    });
}
