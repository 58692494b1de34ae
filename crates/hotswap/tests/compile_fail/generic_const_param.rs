// A const parameter is a generic parameter too.
#[hotswap::hot]
pub fn zeros<const N: usize>() -> [u8; N] {
    [0; N]
}

fn main() {}
