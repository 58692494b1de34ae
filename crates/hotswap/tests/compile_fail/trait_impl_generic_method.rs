// A generic method of a trait impl is instantiated in the crates that call it.
pub trait Store {
    fn put<T: Into<u64>>(&mut self, value: T);
}

pub struct Total(pub u64);

#[hotswap::hot]
impl Store for Total {
    fn put<T: Into<u64>>(&mut self, value: T) {
        self.0 += value.into();
    }
}

fn main() {}
