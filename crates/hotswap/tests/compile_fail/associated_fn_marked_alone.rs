// Same for an associated function that names `Self` without a receiver.
pub struct Counter {
    count: u32,
}

impl Counter {
    #[hotswap::hot]
    pub fn new() -> Self {
        Counter { count: 0 }
    }
}

fn main() {}
