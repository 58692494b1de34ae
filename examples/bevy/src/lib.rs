//! The hot part of the Bevy example: its components, its resource and its systems. `main.rs`
//! builds the `App`, whose `World` holds the entities and the tick: they survive every patch.
//!
//! Edit a system's body while the game runs (`SPEED`, the text `report` prints) and save: the
//! next tick runs the new code on the same entities. Change a component's fields and the
//! command restarts the game instead, naming the component (the running `World` holds values
//! of the old layout).

use bevy::prelude::*;

/// Where an entity is.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

/// How far an entity moves per tick, before `SPEED`.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vel {
    pub x: i32,
    pub y: i32,
}

/// The number of ticks reported so far.
#[derive(Resource, Default, Debug)]
pub struct Tick(pub u64);

/// Each tick an entity moves by its velocity times this.
const SPEED: i32 = 1;

/// The entities the game starts with: a position and a velocity each.
pub const START: [((i32, i32), (i32, i32)); 3] =
    [((0, 0), (1, 0)), ((10, 10), (0, -1)), ((-5, 3), (2, 1))];

/// Startup: spawns the entities of [`START`] (runs once, before the first tick).
#[hotswap::hot]
pub fn setup(mut commands: Commands) {
    for ((x, y), (vx, vy)) in START {
        commands.spawn((Pos { x, y }, Vel { x: vx, y: vy }));
    }
}

/// Moves every entity by its velocity times `SPEED`.
#[hotswap::hot]
pub fn movement(mut q: Query<(&mut Pos, &Vel)>) {
    for (mut pos, vel) in &mut q {
        pos.x += vel.x * SPEED;
        pos.y += vel.y * SPEED;
    }
}

/// Counts the tick and prints one line: `tick 17 pos 17,0 10,-7 29,20`.
#[hotswap::hot]
pub fn report(q: Query<&Pos>, mut tick: ResMut<Tick>) {
    tick.0 += 1;
    let positions: Vec<String> = q.iter().map(|p| format!("{},{}", p.x, p.y)).collect();
    println!("tick {} pos {}", tick.0, positions.join(" "));
}
