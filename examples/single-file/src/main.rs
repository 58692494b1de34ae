//! A whole game loop in one file, with no `lib.rs`: `main` owns the world, and the `#[hot]`
//! functions below are patched into the running program when you edit this file under
//! `cargo hotswap run`. See the examples' README.

use std::time::Duration;

/// Everything the game knows. It lives in `main`, so it survives every patch.
pub struct World {
    pub frame: u64,
    pub x: i32,
    pub dx: i32,
    pub bounces: u64,
}

const WIDTH: i32 = 24;

/// One step of the game: move the ball, bounce it off the walls. Edit and save.
#[hotswap::hot]
pub fn update(world: &mut World) {
    world.frame += 1;
    world.x += world.dx;
    if world.x <= 0 || world.x >= WIDTH - 1 {
        world.dx = -world.dx;
        world.bounces += 1;
    }
}

/// The picture of one frame. Change the ball or the walls and save.
#[hotswap::hot]
pub fn render(world: &World) -> String {
    let mut row = vec![' '; WIDTH as usize];
    row[world.x.clamp(0, WIDTH - 1) as usize] = 'o';
    let row: String = row.into_iter().collect();
    format!("frame {} bounces {} |{row}|", world.frame, world.bounces)
}

fn main() {
    // `single-file N` stops after N frames (for scripts); without it the game runs until Ctrl-C.
    let frames: Option<u64> = std::env::args().nth(1).and_then(|arg| arg.parse().ok());
    let mut world = World {
        frame: 0,
        x: 1,
        dx: 1,
        bounces: 0,
    };
    loop {
        update(&mut world);
        println!("{}", render(&world));
        if frames.is_some_and(|limit| world.frame >= limit) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
