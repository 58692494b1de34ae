// `?Send` is about the future of an `async fn`: a plain function has none.
#[hotswap::hot(?Send)]
pub fn step(value: u32) -> u32 {
    value + 1
}

fn main() {}
