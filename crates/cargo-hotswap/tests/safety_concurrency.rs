//! Swapping under load: 8 threads call `#[hot]` functions in a tight loop while the test, playing
//! `cargo hotswap run`, swaps 200 thin patches into the program over its control channel
//! (alternating two prebuilt patches of the same crate). See `safety_support/swaps.rs` for the
//! program and the driver; `examples/soak.rs` runs the same scenario for 10,000 swaps.

mod safety_support;

use safety_support::swaps;

/// Fails if: the program crashes or stops answering during the swaps (the driver panics with
/// its output); a call returns a pair mixing two versions, e.g. a patch's `pair` calling the
/// program's copy of its private helper (the program prints INCONSISTENT and exits with 3); a
/// `&'static str` of an old version becomes unreadable (a segfault, or BAD LABEL and exit 4);
/// a patch is refused or answered with the wrong version; a swap answered `applied` does not
/// put that patch's code in place (the checker's tag after version N is not patch N's); fewer
/// than 200 versions were reached; a staged copy is left in the program's private directory.
/// (Checked by breaking the feature: with `-Bsymbolic-functions` left out of the patch link, the
/// patch's functions bind to the program's copies, and the test fails at swap 1 with "swap 1 did
/// not put its patch's code in place": the checker saw `tag=1`.)
#[test]
fn two_hundred_swaps_while_eight_threads_call_hot_functions() {
    let _serial = safety_support::serial();
    let setup = swaps::prepare("hs_safety_swaps", false);
    let outcome = swaps::run(&setup, 200, 8, |_, _| {});
    eprintln!(
        "200 swaps under 8 calling threads: {} calls ({} by the least lucky thread), longest \
         single call {:?}, swaps took {:?}",
        outcome.calls, outcome.fewest, outcome.longest_call, outcome.took
    );
    assert_eq!(outcome.version, 200, "not every swap was applied");
    assert_eq!(
        outcome.exit_code,
        Some(0),
        "the program did not exit cleanly"
    );
    assert!(
        outcome.fewest > 0,
        "a calling thread made no call at all: {outcome:?}"
    );
    assert!(
        outcome.files_left.is_empty(),
        "staged patch files left in the program's private directory: {:?}",
        outcome.files_left
    );
}
