//! The hot part of the reload-feature example: one `#[hot]` function that describes a step.
//!
//! Whether it is hot is decided by the build, not by this code: with the package's `reload`
//! feature (which switches on `hotswap/hot`) or under `cargo hotswap run` it dispatches through a
//! swappable slot; in a plain `cargo run` or `cargo build --release` it is an ordinary function.

/// What `main` keeps between steps; it survives every reload.
#[derive(Default)]
pub struct Counter {
    pub steps: u64,
}

/// One step. Edit the text and save (and, without the CLI, rebuild with `--features reload`).
#[hotswap::hot]
pub fn step(counter: &mut Counter) -> String {
    counter.steps += 1;
    format!("step {}: from the compiled-in code", counter.steps)
}
