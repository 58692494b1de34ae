// A type parameter: each instantiation is compiled into the caller, out of a patch's reach.
#[hotswap::hot]
pub fn pick<T: Copy>(value: T) -> T {
    value
}

fn main() {}
