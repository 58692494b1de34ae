//! A loop over a `hotswap::State<Player>`: see `src/lib.rs`.
//!
//! `state-migration [NAME] [TURNS]`: the player's name (default `ferris`) and how many turns to
//! play (default: until stopped), one turn every 200 ms.

use std::time::Duration;

use state_migration::Player;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "ferris".to_owned());
    let turns: Option<u64> = args.next().and_then(|turns| turns.parse().ok());
    // Built here, before any patch; from now on only `#[hot]` code touches it.
    let mut player = hotswap::State::new(Player {
        name,
        ..Player::default()
    });
    let mut turn = 0;
    while turns.is_none_or(|last| turn < last) {
        turn += 1;
        println!("{}", state_migration::tick(&mut player));
        std::thread::sleep(Duration::from_millis(200));
    }
}
