// `#[hot]` on a module needs the module's body inline. rustc refuses a file module given to an
// attribute macro first (E0658, on stable); the macro's own error says what to do instead.
#[hotswap::hot]
mod systems;

fn main() {}
