//! Proves that `#[hot]` refuses, at compile time and with an explanation pointing at the
//! offending token, every function shape a patch could not replace safely, and that it accepts
//! (and leaves working) every shape it claims to support.
//!
//! This runs in a normal build (hotswap without its `hot` feature). The same files are built in
//! hot mode by `tests/hot_mode_macro.rs`.
//!
//! How it fails if the feature breaks: a refusal that is dropped makes the compile-fail case
//! compile (trybuild reports "expected compile failure"); a changed message or span no longer
//! matches the committed `.stderr` file; a pass case that no longer compiles, or whose `main`
//! asserts a wrong result, fails the `pass` half. Regenerate the `.stderr` files after an
//! intended change with `TRYBUILD=overwrite cargo test -p hotswap --test refusals` and review them.

// Proves every refusal and every accepted shape in a normal build (see the top of the file).
#[test]
fn hot_refuses_what_it_cannot_swap_and_accepts_the_rest() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
    t.pass("tests/pass/*.rs");
}
