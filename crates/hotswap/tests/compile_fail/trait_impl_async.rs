// An `async fn` in a `#[hot]` trait impl is not supported (yet); `#[hot(skip)]` keeps it cold.
pub trait Fetch {
    async fn fetch(&self) -> u64;
}

pub struct Source(pub u64);

#[hotswap::hot(?Send)]
impl Fetch for Source {
    async fn fetch(&self) -> u64 {
        self.0
    }
}

fn main() {}
