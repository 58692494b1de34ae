//! Hostile and broken library files in full library mode, each against a real running host.
//!
//! One scratch app (host in hot mode + hot library) is built once for this test binary; versions 1
//! and 2 of its library are kept as bytes. Each test starts its own host with `HOTSWAP_LIB_DIR`
//! pointing at its own temporary directory (so the tests can run in parallel and never touch
//! cargo's files), writes something into `lib<game>.so` there, and checks what the host does.
//!
//! Proves:
//! - garbage over the library is refused with a reason, and the old code keeps running;
//! - a half-written library is never loaded; once the rest is written it is loaded;
//! - a library for another architecture is refused with a message naming the architectures;
//! - after each refusal the watcher still works: a good library written next is swapped in.
//!
//! How it fails if the feature broke: a refusal without a reason, or a load of a bad file, makes
//! the host crash (its output ends: `wait_for` reports it) or prints `reloaded` / `out: v2` where
//! the test requires old output; a broken check lets `dlopen` see the file and the refusal reason
//! no longer names the problem; a watcher that stops after a refusal times out on the final
//! reload.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use support::{AppBinaries, Line, ReloadApp, Running, RELOAD_TIMEOUT};

/// The app, built once, with the bytes of both versions of its library. Its scratch sources are
/// deleted once built (a `static` is never dropped); the binaries stay in the shared target dir.
struct Built {
    app: AppBinaries,
    v1: Vec<u8>,
    v2: Vec<u8>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let app = ReloadApp::new("hs_hostile");
        app.build_all();
        let v1 = std::fs::read(app.built_library()).expect("version 1 of the library");
        app.write_game(support::GAME_V2);
        app.build_game();
        let v2 = std::fs::read(app.built_library()).expect("version 2 of the library");
        assert_ne!(
            v1, v2,
            "editing the library changed nothing in the built file"
        );
        Built {
            app: app.binaries.clone(),
            v1,
            v2,
        }
    })
}

/// A host watching `lib<game>.so` in a private temporary directory that starts with version 1
/// (the library matching the running code, as after a normal build).
struct Scenario {
    host: Running,
    library: std::path::PathBuf,
    _lib_dir: tempfile::TempDir,
}

fn start() -> Scenario {
    let built = built();
    let lib_dir = tempfile::Builder::new()
        .prefix("hs_hostile_libdir")
        .tempdir()
        .unwrap();
    let library = lib_dir.path().join(format!("lib{}.so", built.app.game));
    std::fs::write(&library, &built.v1).unwrap();
    let host = built.app.start_host(Some(lib_dir.path()));
    Scenario {
        host,
        library,
        _lib_dir: lib_dir,
    }
}

/// Replaces `path` in one step (write elsewhere, rename over), so the runtime only ever sees the
/// old or the new bytes.
fn replace_atomically(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn is_refusal(line: &Line) -> bool {
    line.is_err() && line.text.starts_with("[hotswap] refused ")
}

fn is_reload(line: &Line) -> bool {
    line.is_err() && line.text.starts_with("[hotswap] reloaded ")
}

/// After a refusal (line `since`), the host goes on running version 1: several more ticks of it
/// and nothing else.
fn assert_still_runs_v1(scenario: &mut Scenario, since: usize) {
    let host = &scenario.host;
    let ticks = host.wait_for_count("more ticks", since, 5, RELOAD_TIMEOUT, |line| {
        line.is_out() && line.text.starts_with("out: ")
    });
    for tick in &ticks {
        assert!(
            tick.text.starts_with("out: v1 "),
            "the host stopped running version 1 after a refused file: `{}`\n{}",
            tick.text,
            host.transcript()
        );
    }
    assert!(
        !host.lines().iter().any(is_reload),
        "a bad file was loaded\n{}",
        host.transcript()
    );
    assert!(scenario.host.is_running(), "the host exited");
}

/// Writes the real version 2 and checks that it is swapped in: the watcher survived.
fn assert_good_library_still_loads(scenario: &Scenario) {
    let since = scenario.host.mark();
    replace_atomically(&scenario.library, &built().v2);
    scenario
        .host
        .wait_for("`[hotswap] reloaded`", since, RELOAD_TIMEOUT, is_reload);
    scenario
        .host
        .wait_for("`out: v2 ...`", since, RELOAD_TIMEOUT, |line| {
            line.is_out() && line.text.starts_with("out: v2 ")
        });
}

// Proves: a non-ELF file written in place over the library is refused ("not a complete shared
// library"), version 1 keeps running, and a good library written afterwards still loads.
// Fails if the check is skipped (the reason becomes dlopen's) or the watcher dies on a refusal.
#[test]
fn garbage_over_the_library_is_refused_and_the_old_code_keeps_running() {
    let mut scenario = start();
    let since = scenario.host.mark();
    // Not an ELF file at all, written in place over the library (truncate, then write).
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&scenario.library, &garbage).unwrap();

    let refusal =
        scenario
            .host
            .wait_for("`[hotswap] refused ...`", since, RELOAD_TIMEOUT, is_refusal);
    assert!(
        refusal
            .text
            .contains(&format!("lib{}.so", built().app.game))
            && refusal.text.contains("not a complete shared library"),
        "the refusal does not say what is wrong: {}",
        refusal.text
    );
    assert_still_runs_v1(&mut scenario, refusal.seq);
    assert_good_library_still_loads(&scenario);
}

// Proves: a library written in two halves with a pause between is not loaded while incomplete
// (observed: refused as "not a complete shared library ... Invalid ELF section header"), version
// 1 keeps running, and the completed file is loaded. Fails if a partial file is loaded or crashes
// the host, or if the completed file is never picked up.
#[test]
fn a_half_written_library_is_not_loaded_until_it_is_complete() {
    let mut scenario = start();
    let v2 = &built().v2;
    let (first, rest) = v2.split_at(v2.len() / 2);
    let since = scenario.host.mark();
    let mut file = std::fs::File::create(&scenario.library).unwrap();
    file.write_all(first).unwrap();
    file.flush().unwrap();

    // The writer pauses here. What the runtime does meanwhile: it may refuse the incomplete file
    // (the watcher settles after a few milliseconds of quiet and the check finds the ELF cut
    // short) or wait; it must not load it and must keep running version 1. Wait for a refusal
    // or, failing that, for 20 more ticks of version 1 (a pause measured in the app's own
    // output, not in wall-clock time).
    let mut ticks = 0;
    let paused = scenario
        .host
        .wait_for("a refusal or 20 ticks", since, RELOAD_TIMEOUT, |line| {
            if line.is_out() && line.text.starts_with("out: ") {
                ticks += 1;
            }
            is_refusal(line) || is_reload(line) || ticks >= 20
        });
    assert!(
        !is_reload(&paused),
        "a half-written library was loaded\n{}",
        scenario.host.transcript()
    );
    if is_refusal(&paused) {
        assert!(
            paused.text.contains("not a complete shared library"),
            "the refusal of a half-written file does not say it is incomplete: {}",
            paused.text
        );
        eprintln!("while half-written: {}", paused.text);
    } else {
        eprintln!("while half-written: no refusal, the runtime waited");
    }
    assert_still_runs_v1(&mut scenario, paused.seq);

    // The writer finishes: the complete library is loaded and runs.
    let since = scenario.host.mark();
    file.write_all(rest).unwrap();
    file.flush().unwrap();
    drop(file);
    let reload = scenario
        .host
        .wait_for("`[hotswap] reloaded`", since, RELOAD_TIMEOUT, is_reload);
    eprintln!("once complete: {}", reload.text);
    scenario
        .host
        .wait_for("`out: v2 ...`", since, RELOAD_TIMEOUT, |line| {
            line.is_out() && line.text.starts_with("out: v2 ")
        });
}

// Proves: a real library whose ELF header names another architecture is refused with a message
// naming both architectures, version 1 keeps running, and a good library still loads afterwards.
// Fails if the architecture check is skipped (dlopen then refuses with "dlopen failed").
#[test]
fn a_library_for_another_architecture_is_refused_naming_it() {
    let mut scenario = start();
    // The real version 2 with its ELF header's e_machine (bytes 18..20, little-endian) changed
    // to another architecture: AArch64 (183) on x86-64 (62), x86-64 elsewhere. Everything else
    // is a valid library.
    let mut foreign = built().v2.clone();
    assert_eq!(&foreign[..4], b"\x7fELF");
    let native = u16::from_le_bytes([foreign[18], foreign[19]]);
    let (machine, names) = if native == 62 {
        (183u16, ["Aarch64", "X86_64"])
    } else {
        (62u16, ["X86_64", ""])
    };
    foreign[18..20].copy_from_slice(&machine.to_le_bytes());
    let since = scenario.host.mark();
    replace_atomically(&scenario.library, &foreign);

    let refusal =
        scenario
            .host
            .wait_for("`[hotswap] refused ...`", since, RELOAD_TIMEOUT, is_refusal);
    assert!(
        names.iter().all(|name| refusal.text.contains(name)),
        "the refusal does not name the architectures: {}",
        refusal.text
    );
    eprintln!("foreign architecture: {}", refusal.text);
    assert_still_runs_v1(&mut scenario, refusal.seq);
    assert_good_library_still_loads(&scenario);
}
