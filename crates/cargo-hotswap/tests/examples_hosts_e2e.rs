//! End to end: the library examples (issue 13), each a copy in a temporary directory run by the
//! real `cargo hotswap run --lib -- <host>`, with a host that is not a Rust program:
//! - `c-host`: a C program (compiled here with `cc`) that `dlopen`s the library and calls its
//!   `#[hot] extern "C" fn step` in a loop;
//! - `python`: `python3 app.py`, which loads the PyO3 extension module from its path and calls
//!   it in a loop, keeping a Python list it appends to.
//!
//! Each edit is checked in what the host prints next: the new code's output, and the host's own
//! state (its C counter, its Python list) carrying on. Lines are found by what they say (the
//! host's pid, its counters), never by the order of the command's and the host's streams.
//! See `examples_support/mod.rs` for the copy and the session. No assertion is on time.

mod examples_support;
mod support;

use examples_support::{Example, Stream, OUTPUT, PATCH};

/// The number right after `key ` in `text` (`counter 12` → 12).
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(&format!("{key} "))? + key.len() + 1..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The C host example: an edit of `step`'s label is patched into the running host; the host's
/// loop counter and the library's private call counter both carry on (equal, as before), and
/// `next`, the other hot function, keeps working.
///
/// Fails if: the host is not started with the library, the edit is not patched in (no `patched`
/// line, no `step v2` line), the host restarted (another pid), or a counter started again.
#[test]
fn c_host_example_is_patched_and_keeps_its_counters() {
    let _serial = support::serial();
    let example = Example::copy("c-host");
    let host = example.path().join("host");
    let status = std::process::Command::new("cc")
        .arg(example.path().join("host.c"))
        .arg("-o")
        .arg(&host)
        .arg("-ldl")
        .status()
        .expect("cannot run cc (apt-get install gcc)");
    assert!(status.success(), "cc failed on host.c");
    let host = host.display().to_string();
    let command = example.command(&["run", "--lib", "--", &host]);
    let (session, pid) = example.run_host(command, &host, support::FIRST_BUILD);
    session.wait_out("`host pid N`", 0, OUTPUT, |t| {
        t == format!("host pid {pid}")
    });
    let first = session.wait_out("a `step v1` line", 0, OUTPUT, |t| t.starts_with("step v1 "));
    assert!(
        first.text.contains(" version 0 "),
        "{}",
        session.transcript()
    );

    let lib = example.read("src/lib.rs");
    let edited = lib.replace("let label = \"v1\";", "let label = \"v2\";");
    assert_ne!(lib, edited, "the example's label line changed");
    let (before, _) = example.patch(&session, "src/lib.rs", &edited, "", 1);
    let line = session.wait_out("a `step v2` line", before, PATCH, |t| {
        t.starts_with("step v2 ")
    });
    let counter = number_after(&line.text, "counter").unwrap();
    let calls = number_after(&line.text, "calls").unwrap();
    let first_counter = number_after(&first.text, "counter").unwrap();
    assert!(
        line.text.contains(" version 1 ") && counter > first_counter && calls == counter,
        "expected the host's counter to go on and the library's call count with it: {:?}\n{}",
        line.text,
        session.transcript()
    );
    session.wait_out("the host's line after it", line.seq, OUTPUT, |t| {
        t == format!("host counter {counter} got {}", counter * 2)
    });
    assert!(support::is_running(pid), "{}", session.transcript());
}

/// The Python example: a running `python3` process calls the extension module, whose hot
/// `greeting` and `score` are edited in turn. The next call sees each edit, and the Python list
/// the script built before the edits is still there and still growing.
///
/// Fails if: the module cannot be imported from the hot build, an edit is not patched in or not
/// seen by the next call, the interpreter restarted (another pid, or the list shorter than the
/// loop count), or the score is not the new code's.
#[test]
fn python_example_is_patched_inside_the_running_interpreter() {
    let _serial = support::serial();
    let example = Example::copy("python");
    let host = "python3 app.py";
    let command = example.command(&["run", "--lib", "--", "python3", "app.py"]);
    let (session, pid) = example.run_host(command, host, support::FIRST_BUILD);
    session.wait_out("`python pid N`", 0, OUTPUT, |t| {
        t == format!("python pid {pid}")
    });
    let first = session.wait_out("a first `py n` line", 0, OUTPUT, |t| {
        t.starts_with("py n ") && t.contains(" greet hello x from v1 ")
    });
    let n0 = number_after(&first.text, "py n").unwrap();

    let lib = example.read("src/lib.rs");
    let greeting = lib.replace("let label = \"v1\";", "let label = \"v2\";");
    assert_ne!(lib, greeting);
    let (before, _) = example.patch(&session, "src/lib.rs", &greeting, "", 1);
    let line = session.wait_out("a `greet hello x from v2` line", before, PATCH, |t| {
        t.starts_with("py n ") && t.contains(" greet hello x from v2 ")
    });
    let n = number_after(&line.text, "py n").unwrap();
    let kept = number_after(&line.text, "kept").unwrap();
    assert!(
        n > n0 && kept == n && line.text.ends_with(" version 1"),
        "expected the interpreter's list to carry on: {:?}\n{}",
        line.text,
        session.transcript()
    );

    let scored = greeting.replace("values.iter().sum()", "values.iter().sum::<i64>() * 10");
    assert_ne!(greeting, scored, "the example's `score` body changed");
    let (before, _) = example.patch(&session, "src/lib.rs", &scored, "", 2);
    let line = session.wait_out("a line scored by the new `score`", before, PATCH, |t| {
        t.starts_with("py n ") && t.ends_with(" version 2")
    });
    let n = number_after(&line.text, "py n").unwrap();
    let kept = number_after(&line.text, "kept").unwrap();
    let score = number_after(&line.text, "score").unwrap();
    assert!(
        kept == n && score == 10 * n * (n + 1) / 2,
        "expected 10 × (1 + … + {n}) from the list of {n} items: {:?}\n{}",
        line.text,
        session.transcript()
    );
    assert!(support::is_running(pid), "{}", session.transcript());
    let _ = Stream::Err;
}
