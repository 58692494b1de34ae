//! The hot part of the state-migration example: a player whose type you can change while the
//! program runs.
//!
//! Add a field to `Player` (for example `pub level: u32`), use it in `tick`, and save: the
//! runtime migrates the live value (fields kept by name, the new one takes its default) and
//! `cargo hotswap run` reports `patched 1 function, migrated 1 state value`.

/// The program's state. It lives in a `hotswap::State` that `main` owns; only `#[hot]` code
/// reads or writes it, because after a migration only the new code knows its layout.
#[derive(Default, serde::Serialize, serde::Deserialize, hotswap::Migrate)]
#[serde(default)]
pub struct Player {
    pub name: String,
    pub score: u64,
}

/// One turn: the player scores a point. Returns the line `main` prints.
#[hotswap::hot]
pub fn tick(player: &mut hotswap::State<Player>) -> String {
    let mut player = player.get_mut();
    player.score += 1;
    format!("name={} score={}", player.name, player.score)
}
