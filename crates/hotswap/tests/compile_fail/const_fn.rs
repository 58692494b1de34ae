// A `const fn` may run at compile time, where no patch can reach it.
#[hotswap::hot]
pub const fn answer() -> u32 {
    42
}

fn main() {}
