// An `impl Trait` return type is chosen by the body, so a patch could change it.
#[hotswap::hot]
pub fn numbers() -> impl Iterator<Item = u32> {
    0..3
}

fn main() {}
