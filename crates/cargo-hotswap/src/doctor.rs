//! `cargo hotswap doctor`: placeholder replaced below.
pub fn run() -> i32 {
    crate::report::error("doctor is not implemented yet");
    2
}
