//! The hot part of the minimal example. Edit the text below while the program runs.

/// What the program keeps between ticks: it survives every reload.
#[derive(Default)]
pub struct State {
    pub ticks: u64,
}

/// Called once per tick by `main`. Change the message and save: the next tick prints it.
#[hotswap::hot]
pub fn tick(state: &mut State) -> String {
    state.ticks += 1;
    format!("tick {}: hello from the compiled-in code", state.ticks)
}
