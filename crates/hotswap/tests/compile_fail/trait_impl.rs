// Trait methods are called through vtables and generic code a patch cannot see.
pub struct Meters(pub f64);

#[hotswap::hot]
impl std::fmt::Display for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} m", self.0)
    }
}

fn main() {}
