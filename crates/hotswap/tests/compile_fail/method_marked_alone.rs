// A method needs its type's name: `#[hot]` goes on the impl block, not on one method.
pub struct Counter {
    count: u32,
}

impl Counter {
    #[hotswap::hot]
    pub fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }
}

fn main() {}
