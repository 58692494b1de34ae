// `impl Trait` is found inside other types too (here behind a reference).
#[hotswap::hot]
pub fn show(value: &impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
