// A non-Rust ABI function is usually called by address from foreign code.
#[hotswap::hot]
pub extern "C" fn callback(value: i32) -> i32 {
    value + 1
}

fn main() {}
