//! A loop over one hot function whose hot reloading is a cargo feature: see `src/lib.rs`.
//!
//! `reload-feature [STEPS]`: how many steps to run (default: until stopped), one every 500 ms.
//! The first line says which build this is: `hot reload: on` or `hot reload: off`.

use std::time::Duration;

fn main() {
    let steps: Option<u64> = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
    // `is_hot` is a constant of the build: true with `--features reload` or under
    // `cargo hotswap run`, false in a plain build (where nothing of the runtime is linked).
    println!(
        "hot reload: {}",
        if hotswap::is_hot() { "on" } else { "off" }
    );
    let mut counter = reload_feature::Counter::default();
    loop {
        println!("{}", reload_feature::step(&mut counter));
        if steps.is_some_and(|last| counter.steps >= last) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
