// The future type of an `async fn` changes with its body.
#[hotswap::hot]
pub async fn fetch() -> u32 {
    1
}

fn main() {}
