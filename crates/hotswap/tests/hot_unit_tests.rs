//! Runs hotswap's own unit tests in hot mode.
//!
//! The runtime (`src/runtime/`) and parts of `src/events.rs` exist only in hot mode
//! (`cfg(any(hotswap, feature = "hot"))`), so `cargo test --workspace` compiles their unit tests
//! out and never runs them. This test runs `cargo test -p hotswap --features hot --lib` (in the
//! shared end-to-end target directory) so they run with the rest of the suite.
//!
//! How it fails: any failing hot-mode unit test fails this test with cargo's output; so does a
//! run that executes no test at all (e.g. if the cfg gating changed and compiled them all out).

mod support;

// Proves the hot-mode unit tests pass (see the top of the file).
#[test]
fn the_hot_mode_unit_tests_pass() {
    let output = support::cargo_output(
        &support::workspace_root(),
        &["test", "-p", "hotswap", "--features", "hot", "--lib"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "hot-mode unit tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let passed: u64 = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(passed > 0, "no hot-mode unit test ran:\n{stdout}");
    eprintln!("{passed} hot-mode unit tests passed");
}
