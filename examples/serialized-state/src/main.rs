//! A loop over a `hotswap::State<Shelf>`: see `src/lib.rs`.
//!
//! `serialized-state [DAYS]`: how many days to run (default: until stopped), one every 200 ms.

use std::time::Duration;

use serialized_state::Shelf;

fn main() {
    let days: Option<u64> = std::env::args().nth(1).and_then(|days| days.parse().ok());
    // Made here, before any patch, and filled by `#[hot]` code, the only code that touches it.
    let mut shelf = hotswap::State::new(Shelf::default());
    for (name, count) in [("apple", 3), ("pear", 5), ("plum", 1)] {
        serialized_state::stock(&mut shelf, name, count);
    }
    let mut day = 0;
    while days.is_none_or(|last| day < last) {
        day += 1;
        println!("{}", serialized_state::day(&mut shelf));
        std::thread::sleep(Duration::from_millis(200));
    }
}
