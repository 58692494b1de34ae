// Only the Rust and C ABIs are supported.
#[hotswap::hot]
pub extern "system" fn callback(value: i32) -> i32 {
    value + 1
}

fn main() {}
