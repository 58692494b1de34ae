// The methods of a generic impl are instantiated in the crates that use them.
pub struct Wrapper<T>(pub T);

#[hotswap::hot]
impl<T: Clone> Wrapper<T> {
    pub fn get(&self) -> T {
        self.0.clone()
    }
}

fn main() {}
