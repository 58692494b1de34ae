//! Library hosts end to end (issue 13): a `cdylib` loaded by a C program that is not ours, run by
//! the real `cargo hotswap run --lib -- <host>` and edited while the host runs.
//!
//! The host is a small C program, compiled with `cc` by the test: it `dlopen`s the library
//! (`RTLD_LOCAL`, as Python loads extension modules) and calls its `step` in a loop, counting
//! in C. Waits never depend on the order of lines between the command's stderr and the host's
//! stdout: the library prints its process id on every line, and the command's outcome lines
//! are waited for from a mark taken before each save.

mod support;

use support::{Cli, Line, Scratch, Stream, FIRST_BUILD, OUTPUT, PATCH};

/// The host: `host` (the library from `HOTSWAP_LIBRARY`), prints `host pid=N`, then calls
/// `step(counter)` every 20 ms and prints what it got.
const HOST_C: &str = r#"#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    const char *path = getenv("HOTSWAP_LIBRARY");
    if (!path) { fprintf(stderr, "no HOTSWAP_LIBRARY\n"); return 2; }
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    uint64_t (*step)(uint64_t) = (uint64_t (*)(uint64_t))dlsym(library, "step");
    if (!step) { fprintf(stderr, "dlsym: %s\n", dlerror()); return 2; }
    printf("host pid=%d\n", (int)getpid());
    fflush(stdout);
    for (uint64_t counter = 1;; counter++) {
        uint64_t got = step(counter);
        printf("host pid=%d counter=%llu got=%llu\n", (int)getpid(),
               (unsigned long long)counter, (unsigned long long)got);
        fflush(stdout);
        usleep(20000);
    }
}
"#;

/// The library: `step` (what the host calls by name, not hot) calls the hot `describe`, which
/// counts its calls in a private static and calls the hot `scale`.
const LIB_RS: &str = r#"use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

#[hotswap::hot]
pub fn scale(counter: u64) -> u64 {
    counter * FACTOR
}

#[hotswap::hot]
pub fn describe(counter: u64) -> u64 {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let label = "LABEL";
    println!(
        "step label={label} pid={} counter={counter} calls={calls} version={}",
        std::process::id(),
        hotswap::version()
    );
    scale(counter)
}

#[no_mangle]
pub extern "C" fn step(counter: u64) -> u64 {
    STEP_BODY
}
"#;

fn lib_rs(label: &str, factor: &str, step_body: &str) -> String {
    LIB_RS
        .replace("LABEL", label)
        .replace("FACTOR", factor)
        .replace("STEP_BODY", step_body)
}

const STEP: &str = "describe(counter)";

/// A scratch workspace with one package, `<prefix>_lib`, a `cdylib` depending on `hotswap`, and
/// the host compiled next to it (`host`).
fn library_workspace(prefix: &str) -> Scratch {
    let scratch = Scratch::new(prefix);
    let name = format!("{prefix}_lib");
    std::fs::create_dir_all(scratch.path().join("lib/src")).unwrap();
    scratch.save(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"lib\"]\n",
    );
    scratch.save(
        "lib/Cargo.toml",
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
             hotswap = {{ path = {hotswap:?} }}\n",
            hotswap = support::hotswap_dir().display().to_string(),
        ),
    );
    scratch.save("lib/src/lib.rs", &lib_rs("v1", "2", STEP));
    scratch.save("host.c", HOST_C);
    let status = std::process::Command::new("cc")
        .arg(scratch.path().join("host.c"))
        .arg("-o")
        .arg(scratch.path().join("host"))
        .arg("-ldl")
        .status()
        .expect("cannot run cc (apt-get install gcc)");
    assert!(status.success(), "cc failed on the host");
    scratch
}

/// The fields of a `step label=… pid=… counter=… calls=… version=…` line.
#[derive(Debug)]
struct Step {
    label: String,
    pid: u32,
    counter: u64,
    calls: u64,
    version: u64,
}

fn parse_step(text: &str) -> Option<Step> {
    let rest = text.strip_prefix("step ")?;
    let field = |key: &str| support::field(rest, key);
    Some(Step {
        label: field("label")?.to_owned(),
        pid: field("pid")?.parse().ok()?,
        counter: field("counter")?.parse().ok()?,
        calls: field("calls")?.parse().ok()?,
        version: field("version")?.parse().ok()?,
    })
}

/// Waits for the first `step` line of process `pid` after line `since` with `label`.
fn wait_step(cli: &Cli, pid: u32, label: &str, since: usize) -> (Line, Step) {
    let line = cli.wait_out(
        &format!("a `step label={label}` line of pid {pid}"),
        since,
        PATCH,
        |t| parse_step(t).is_some_and(|s| s.pid == pid && s.label == label),
    );
    let step = parse_step(&line.text).expect("just matched");
    (line, step)
}

/// The pids of the first `count` hosts (`host pid=N` lines).
fn host_pids(cli: &Cli, count: usize) -> Vec<u32> {
    let mut pids: Vec<u32> = Vec::new();
    let mut since = 0;
    while pids.len() < count {
        let line = cli.wait_out("a `host pid=` line", since, FIRST_BUILD, |t| {
            t.strip_prefix("host pid=")
                .is_some_and(|rest| rest.parse::<u32>().is_ok())
        });
        since = line.seq + 1;
        pids.push(line.text["host pid=".len()..].parse().unwrap());
    }
    pids
}

/// Waits (from line `before`) for the command's line saying that process `pid` applied a
/// patch and is now at `version`.
fn wait_patched_in(cli: &Cli, package: &str, pid: u32, before: usize, version: u64) {
    let patched = format!("[hotswap] {package}: patched ");
    let process = format!(" (lib/src/lib.rs) in process {pid} — version {version};");
    cli.wait_for(
        &format!("`{patched}… in process {pid}`"),
        before,
        PATCH,
        |line| {
            line.stream == Stream::Err
                && line.text.starts_with(&patched)
                && line.text.contains(&process)
        },
    );
}

/// Kills the hosts (they may be children of a shell the command started) when the test ends.
struct Hosts(Vec<u32>);

impl Drop for Hosts {
    fn drop(&mut self) {
        for &pid in &self.0 {
            support::signal(pid, libc::SIGKILL);
        }
    }
}

/// Saves `lib.rs` and returns the first outcome the command reports.
fn save(scratch: &Scratch, cli: &Cli, package: &str, contents: &str) -> Line {
    let before = cli.mark();
    scratch.save("lib/src/lib.rs", contents);
    let patched = format!("[hotswap] {package}: patched ");
    cli.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
            || (line.stream == Stream::Err && line.text.contains("hotswap does not restart a host"))
    })
}

/// A C host patched three ways, with its state in both languages kept: an edit of a hot
/// function reaches the running host at once (its C loop counter and the library's private
/// static counting on); a hot function's signature change, and an edit of `step` (which the
/// host calls by name, so no patch can reach it), are refused with the message that names
/// them and says the host is not restarted, and the host keeps running the code it had.
///
/// Fails if: the library is not patched inside the host, the static or the host's counter
/// starts again, a refused change is applied or restarts the host, or the message does not
/// name what changed.
#[test]
fn a_c_host_is_patched_and_keeps_its_counters() {
    let _serial = support::serial();
    let scratch = library_workspace("hs_libc");
    let package = format!("{}_lib", "hs_libc");
    let host = scratch.path().join("host").display().to_string();
    let cli = scratch.start_program(&["hotswap", "run", "--lib", "--", &host], &host);
    let started = cli.wait_started(0, FIRST_BUILD);
    let pids = host_pids(&cli, 1);
    let _hosts = Hosts(pids.clone());
    assert_eq!(pids, [started.pid], "{}", cli.transcript());
    let pid = pids[0];
    let (_, first) = wait_step(&cli, pid, "v1", 0);
    assert_eq!(first.version, 0);

    // A hot function's body: patched.
    let before = cli.mark();
    let outcome = save(&scratch, &cli, &package, &lib_rs("v2", "3", STEP));
    assert!(
        outcome.text.contains(": patched ") && outcome.text.contains("`hs_libc_lib::describe`"),
        "{}",
        cli.transcript()
    );
    let (line, second) = wait_step(&cli, pid, "v2", before);
    assert_eq!(second.version, 1, "{}", cli.transcript());
    assert!(second.counter > first.counter, "{}", cli.transcript());
    assert_eq!(
        second.calls,
        second.counter,
        "the library's private static started again in the patch\n{}",
        cli.transcript()
    );
    // The host's own loop goes on, with the patched `scale`.
    let got = cli.wait_out("the host's next line", line.seq, OUTPUT, |t| {
        t.starts_with(&format!("host pid={pid} counter={} ", second.counter))
    });
    assert!(
        got.text.ends_with(&format!("got={}", second.counter * 3)),
        "{}",
        cli.transcript()
    );

    // A signature change of `scale` (which the library was built with): refused, the host runs on.
    let changed_signature = scale_signature_changed("v3");
    let before = cli.mark();
    let outcome = save(&scratch, &cli, &package, &changed_signature);
    assert!(
        outcome.text.contains("hotswap does not restart a host")
            && outcome.text.contains("scale")
            && outcome
                .text
                .contains(&format!("`{host}` keeps running the code it has")),
        "{:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    let (_, still) = wait_step(&cli, pid, "v2", before);
    assert!(still.counter > second.counter && still.calls == still.counter);
    assert!(support::is_running(pid), "{}", cli.transcript());

    // Back to a good version, then an edit of `step` itself: refused, naming it.
    let outcome = save(&scratch, &cli, &package, &lib_rs("v4", "3", STEP));
    assert!(outcome.text.contains(": patched "), "{}", cli.transcript());
    let before = cli.mark();
    let outcome = save(
        &scratch,
        &cli,
        &package,
        &lib_rs("v4", "3", "describe(counter) + 1"),
    );
    assert!(
        outcome.text.contains("`step` changed") && outcome.text.contains("does not restart a host"),
        "{}",
        cli.transcript()
    );
    let (_, last) = wait_step(&cli, pid, "v4", before);
    assert!(last.calls == last.counter, "{}", cli.transcript());
    let got = cli.wait_out("the host's next line", before, OUTPUT, |t| {
        t.starts_with(&format!("host pid={pid} counter={} ", last.counter))
    });
    assert!(
        got.text.ends_with(&format!("got={}", last.counter * 3)),
        "the refused `step` ran\n{}",
        cli.transcript()
    );
}

/// A signature change of `scale`, which the library was built with (refused by the runtime).
fn scale_signature_changed(label: &str) -> String {
    lib_rs(label, "3", STEP)
        .replace(
            "pub fn scale(counter: u64) -> u64 {",
            "pub fn scale(counter: u64, by: u64) -> u64 {",
        )
        .replace("counter * 3", "counter * by")
        .replace("    scale(counter)\n", "    scale(counter, 4)\n")
}

/// Two processes that loaded the library (a shell starts two hosts) are both patched by one
/// save, each with its own counters kept. A change both refuse leaves both running their code
/// and still connected: the next good save patches both again.
///
/// Fails if: only one process is patched, either starts its static again, a refusal by every
/// process is not reported as such, or a process is dropped after a refusal nobody applied.
#[test]
fn two_processes_with_the_library_loaded_are_both_patched() {
    let _serial = support::serial();
    let scratch = library_workspace("hs_libtwo");
    let package = format!("{}_lib", "hs_libtwo");
    let host = scratch.path().join("host").display().to_string();
    let script = format!("{host:?} & exec {host:?}");
    let cli = scratch.start_program(
        &["hotswap", "run", "--lib", "--", "sh", "-c", &script],
        "sh",
    );
    let pids = host_pids(&cli, 2);
    let _hosts = Hosts(pids.clone());
    for &pid in &pids {
        wait_step(&cli, pid, "v1", 0);
    }
    let before = cli.mark();
    scratch.save("lib/src/lib.rs", &lib_rs("v2", "2", STEP));
    for &pid in &pids {
        wait_patched_in(&cli, &package, pid, before, 1);
        let (_, step) = wait_step(&cli, pid, "v2", before);
        assert_eq!(step.version, 1, "{}", cli.transcript());
        assert_eq!(
            step.calls,
            step.counter,
            "process {pid} started its static again\n{}",
            cli.transcript()
        );
    }

    // Refused by both: reported once, and both stay patched from here on.
    let outcome = save(&scratch, &cli, &package, &scale_signature_changed("v3"));
    assert!(
        outcome.text.contains("every process refused the patch")
            && outcome
                .text
                .contains("`hs_libtwo_lib::scale`: signature changed"),
        "{:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    let before = cli.mark();
    scratch.save("lib/src/lib.rs", &lib_rs("v4", "2", STEP));
    for &pid in &pids {
        wait_patched_in(&cli, &package, pid, before, 2);
        let (_, step) = wait_step(&cli, pid, "v4", before);
        assert_eq!(
            (step.version, step.calls),
            (2, step.counter),
            "{}",
            cli.transcript()
        );
    }
}

/// A host started by hand, with the environment the command prints, is patched with the one
/// the command started.
///
/// Fails if: the command does not say how to start another host, or that host is not patched.
#[test]
fn a_host_started_by_hand_is_patched_too() {
    let _serial = support::serial();
    let scratch = library_workspace("hs_libhand");
    let package = format!("{}_lib", "hs_libhand");
    let host = scratch.path().join("host").display().to_string();
    let cli = scratch.start_program(&["hotswap", "run", "--lib", "--", &host], &host);
    let first = host_pids(&cli, 1)[0];
    let hint = cli.wait_for("how to start another host", 0, OUTPUT, |line| {
        line.stream == Stream::Err && line.text.contains("start it with HOTSWAP_CONTROL=")
    });
    let env = &hint.text[hint.text.find("HOTSWAP_CONTROL=").unwrap()..];
    let mut command = std::process::Command::new(&host);
    for pair in env.split(' ') {
        let (key, value) = pair.split_once('=').expect("KEY=VALUE");
        command.env(key, value);
    }
    let second = hotswap_testkit::Process::spawn(
        "second host",
        command,
        hotswap_testkit::Options {
            stdin: false,
            die_with_test: true,
        },
        "second host",
        hotswap_testkit::Transcript {
            head: 20,
            tail: 50,
            keep_stderr: true,
            numbered: true,
        },
    );
    let second_pid = second.pid();
    let _hosts = Hosts(vec![first, second_pid]);
    second.wait_out("its first step", 0, OUTPUT, |t| {
        parse_step(t).is_some_and(|s| s.label == "v1")
    });
    wait_step(&cli, first, "v1", 0);
    let before = cli.mark();
    let own = second.mark();
    scratch.save("lib/src/lib.rs", &lib_rs("v2", "2", STEP));
    for pid in [first, second_pid] {
        wait_patched_in(&cli, &package, pid, before, 1);
    }
    wait_step(&cli, first, "v2", before);
    let line = second.wait_out("its step with the new label", own, PATCH, |t| {
        parse_step(t).is_some_and(|s| s.label == "v2")
    });
    let step = parse_step(&line.text).unwrap();
    assert_eq!(
        (step.version, step.calls),
        (1, step.counter),
        "{}",
        second.transcript()
    );
}
