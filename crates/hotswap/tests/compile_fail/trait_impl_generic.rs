// A trait impl of a generic type is instantiated in the crates that use it.
pub struct Wrapper<T>(pub T);

#[hotswap::hot]
impl<T: std::fmt::Display> std::fmt::Display for Wrapper<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

fn main() {}
