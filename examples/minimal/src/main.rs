//! A loop that calls one hot function. See `src/lib.rs` and the README.

use std::time::Duration;

fn main() {
    let mut state = minimal::State::default();
    let ticks: Option<u64> = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
    loop {
        println!("{}", minimal::tick(&mut state));
        if ticks.is_some_and(|limit| state.ticks >= limit) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
