// Only functions and inherent impl blocks can be hot.
#[hotswap::hot]
pub struct State {
    pub ticks: u64,
}

fn main() {}
