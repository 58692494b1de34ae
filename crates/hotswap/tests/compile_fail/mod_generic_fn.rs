// A `pub fn` of a `#[hot] mod` that cannot be hot is refused, naming it and the ways out.
#[hotswap::hot]
pub mod systems {
    pub fn step(value: u32) -> u32 {
        value + 1
    }

    pub fn largest<T: PartialOrd + Copy>(items: &[T]) -> T {
        items[0]
    }
}

fn main() {}
