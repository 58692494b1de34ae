//! The trybuild cases of `tests/refusals.rs`, built in hot mode.
//!
//! trybuild builds its cases with the features of the current `cargo test` (a normal build under
//! `cargo test --workspace`), so this test builds the same files itself, as binaries of a scratch
//! package depending on hotswap with its `hot` feature (in the shared end-to-end target
//! directory, where that hotswap is already compiled). It proves:
//! - `tests/pass/shapes.rs` compiles in hot mode, where every `#[hot]` function becomes a slot,
//!   a wrapper and an exported manifest entry, and its `main` (which checks every result and that
//!   it runs in hot mode) succeeds;
//! - every `tests/compile_fail/*.rs` case fails in hot mode with exactly the error of its
//!   committed `.stderr` file (same messages, same lines and columns), and nothing else;
//! - so does every `tests/compile_fail_hot/*.rs` case, which only hot mode refuses (a hot
//!   `async fn` whose future is not `Send`: a normal build keeps the plain `async fn`).
//!
//! How it fails if the feature broke: generated hot-mode code that does not type-check for some
//! accepted shape fails the build of `shapes` with rustc's error; a wrong dispatch fails an
//! assertion in its `main`; a refusal that is lost, or extra errors from the hot expansion, fail
//! the comparison with the `.stderr` file.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::Scratch;

/// The expected diagnostic of one compile-fail case, read from its `.stderr` file.
#[derive(Debug, PartialEq)]
struct Expected {
    message: String,
    line: u64,
    column: u64,
}

/// The expected diagnostics of one compile-fail case, read from its `.stderr` file: each
/// `error: …` or `error[E…]: …` header and the `-->` location that follows it.
fn expected_errors(stderr_file: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(stderr_file)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", stderr_file.display()));
    let mut errors = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("error") else {
            continue;
        };
        let Some((_, message)) = rest.split_once(": ") else {
            continue;
        };
        let location = lines
            .by_ref()
            .find_map(|line| line.trim_start().strip_prefix("--> "))
            .unwrap_or_else(|| panic!("{}: no `-->` after `{line}`", stderr_file.display()));
        let mut parts = location.rsplitn(3, ':');
        let column = parts.next().unwrap().parse().unwrap();
        let line = parts.next().unwrap().parse().unwrap();
        errors.push(Expected {
            message: message.to_owned(),
            line,
            column,
        });
    }
    assert!(
        !errors.is_empty(),
        "{} has no `error` line",
        stderr_file.display()
    );
    errors
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

// Proves the trybuild cases compile, run and fail the same way in hot mode (see the top).
#[test]
fn the_trybuild_cases_behave_the_same_in_hot_mode() {
    let tests = support::hotswap_dir().join("tests");
    let passes = cases(&tests.join("pass"));
    let mut failures = cases(&tests.join("compile_fail"));
    assert!(!passes.is_empty() && failures.len() >= 10);
    let hot_only = cases(&tests.join("compile_fail_hot"));
    assert!(!hot_only.is_empty());
    failures.extend(hot_only);

    let scratch = Scratch::new("hs_hot_macro");
    let mut manifest = format!(
        "[package]\nname = \"hs_hot_macro\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         publish = false\nautobins = false\nautoexamples = false\nautotests = false\n\n\
         [dependencies]\n{}\n",
        support::hotswap_dependency(&["hot"])
    );
    let bin = |prefix: &str, path: &Path| {
        format!(
            "\n[[bin]]\nname = \"hs_hot_{prefix}_{}\"\npath = {:?}\n",
            stem(path),
            path.display().to_string()
        )
    };
    for path in &passes {
        manifest.push_str(&bin("pass", path));
    }
    for path in &failures {
        manifest.push_str(&bin("fail", path));
    }
    scratch.write("Cargo.toml", &manifest);

    // Pass cases: build, run, and check they ran in hot mode.
    for path in &passes {
        let name = format!("hs_hot_pass_{}", stem(path));
        scratch.cargo_ok(&["build", "--bin", &name]);
        let output = std::process::Command::new(support::e2e_debug_dir().join(&name))
            .env_remove("HOTSWAP_LIB_DIR")
            .env_remove("HOTSWAP_CONTROL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name} failed in hot mode ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("hot mode: true"),
            "{name} did not run in hot mode:\n{stdout}"
        );
    }

    // Compile-fail cases: one cargo run for all of them; collect each binary's errors.
    let mut args = vec!["build", "--keep-going", "--message-format=json"];
    let names: Vec<String> = failures
        .iter()
        .map(|path| format!("hs_hot_fail_{}", stem(path)))
        .collect();
    for name in &names {
        args.push("--bin");
        args.push(name);
    }
    let output = scratch.cargo_output(&args);
    assert!(!output.status.success(), "the compile-fail cases compiled");
    let mut errors: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-message" || message["message"]["level"] != "error" {
            continue;
        }
        let text = message["message"]["message"].as_str().unwrap_or_default();
        if text.starts_with("aborting due to") {
            continue;
        }
        let primary = message["message"]["spans"]
            .as_array()
            .and_then(|spans| spans.iter().find(|span| span["is_primary"] == true));
        let target = message["target"]["name"].as_str().unwrap_or("?").to_owned();
        errors.entry(target).or_default().push(Expected {
            message: text.to_owned(),
            line: primary.and_then(|s| s["line_start"].as_u64()).unwrap_or(0),
            column: primary
                .and_then(|s| s["column_start"].as_u64())
                .unwrap_or(0),
        });
    }
    for (path, name) in failures.iter().zip(&names) {
        let expected = expected_errors(&path.with_extension("stderr"));
        let got = errors.remove(name).unwrap_or_default();
        assert_eq!(
            got,
            expected,
            "{} in hot mode: errors differ from its .stderr file",
            path.display()
        );
    }
}
