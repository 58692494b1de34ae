//! A headless Bevy game: `main` builds the `App` (its `World` owns the entities and the tick,
//! so they survive every patch) and schedules the hot systems of `src/lib.rs`. It runs at
//! 20 ticks a second; `bevy-game N` stops after N ticks.

use std::time::Duration;

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy_game as game;

/// Stop after this many ticks (none: run until interrupted).
#[derive(Resource)]
struct Limit(Option<u64>);

fn stop_at_limit(limit: Res<Limit>, tick: Res<game::Tick>, mut exit: MessageWriter<AppExit>) {
    if limit.0.is_some_and(|limit| tick.0 >= limit) {
        exit.write(AppExit::Success);
    }
}

fn main() -> AppExit {
    let limit = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
    println!("bevy-game pid {}", std::process::id());
    App::new()
        .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(50))))
        .init_resource::<game::Tick>()
        .insert_resource(Limit(limit))
        .add_systems(Startup, game::setup)
        .add_systems(Update, (game::movement, game::report).chain())
        .add_systems(Last, stop_at_limit)
        .run()
}
