// `impl Trait` in argument position is an anonymous type parameter.
#[hotswap::hot]
pub fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
