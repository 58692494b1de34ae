// `#[hot]` takes no arguments.
#[hotswap::hot(fast)]
pub fn step(value: u32) -> u32 {
    value + 1
}

fn main() {}
