// Only lifetime bounds may appear in the `where` clause of a hot function.
#[hotswap::hot]
pub fn length(text: &str) -> usize
where
    String: From<&'static str>,
{
    text.len()
}

fn main() {}
