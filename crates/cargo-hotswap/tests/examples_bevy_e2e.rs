//! Issue 12 end to end: `examples/bevy`, a headless Bevy game whose systems are `#[hot]`, run by
//! the real `cargo hotswap run` on a copy of it in a temporary directory and edited while it
//! runs, as a Bevy user would: a system's body (patched; the `World` that `main`'s `App` owns
//! keeps its entities and its tick), two systems in one save (one patch), a component's fields
//! (a restart naming the component: the `World` holds values of the old layout), a system added
//! in `main.rs` (a restart: `main` changed).
//!
//! Every check is on what the program prints (`tick N pos x,y x,y x,y`, one line per tick) and
//! on the command's `[hotswap]` lines; a program is found by the pid it prints first
//! (`bevy-game pid N`), and its later lines follow that line on stdout. Nothing depends on the
//! order of lines between stdout and stderr, nor on how long anything took.
//!
//! The first build compiles Bevy (a few minutes on a cold target directory).

mod examples_support;
mod support;

use examples_support::{Example, Line, Session, OUTPUT, PATCH};
use support::RESTART;

/// The example's entities, as `src/lib.rs` spawns them: (position, velocity) each. Written here
/// again, so that the test checks the example's numbers rather than reading them from it.
const START: [([i64; 2], [i64; 2]); 3] = [([0, 0], [1, 0]), ([10, 10], [0, -1]), ([-5, 3], [2, 1])];

/// One line of `report`: `tick N <word> a,b c,d ...` (`word` is `pos` until the test changes it;
/// a position has two coordinates, or three once `Pos` has a `z`).
#[derive(Debug, Clone)]
struct Tick {
    tick: u64,
    word: String,
    positions: Vec<Vec<i64>>,
}

fn parse_tick(text: &str) -> Option<Tick> {
    let mut words = text.split(' ');
    if words.next()? != "tick" {
        return None;
    }
    let tick = words.next()?.parse().ok()?;
    let word = words.next()?.to_owned();
    let positions = words
        .map(|p| {
            p.split(',')
                .map(|c| c.parse().ok())
                .collect::<Option<Vec<i64>>>()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Tick {
        tick,
        word,
        positions,
    })
}

/// By how many velocities every entity moved from `before` to `after`: the same whole factor for
/// all of them, or `None` (a position that does not follow from the one before under any rule).
fn factor(before: &[Vec<i64>], after: &[Vec<i64>]) -> Option<i64> {
    if before.len() != START.len() || after.len() != START.len() {
        return None;
    }
    let mut found = None;
    for ((old, new), (_, vel)) in before.iter().zip(after).zip(START) {
        for axis in 0..2 {
            let moved = new[axis] - old[axis];
            if vel[axis] == 0 {
                if moved != 0 {
                    return None;
                }
                continue;
            }
            if moved % vel[axis] != 0 {
                return None;
            }
            let f = moved / vel[axis];
            if *found.get_or_insert(f) != f {
                return None;
            }
        }
    }
    found
}

/// The first tick's positions of a game that moves `speed` velocities a tick (with `extra`
/// coordinates appended, for a `Pos` with more fields).
fn first_positions(speed: i64, extra: &[i64]) -> Vec<Vec<i64>> {
    START
        .iter()
        .map(|(pos, vel)| {
            let mut p = vec![pos[0] + vel[0] * speed, pos[1] + vel[1] * speed];
            p.extend_from_slice(extra);
            p
        })
        .collect()
}

/// Waits, from line `since` on, for the tick lines of the program until `done` holds for those
/// seen so far (each line is looked at once, in order); returns them with their line numbers.
fn wait_ticks(
    session: &Session,
    what: &str,
    since: usize,
    mut done: impl FnMut(&[(usize, Tick)]) -> bool,
) -> Vec<(usize, Tick)> {
    let mut seen = Vec::new();
    // A line each 50 ms; 4000 of them bound a program that never shows what is awaited.
    for _ in 0..4000 {
        let next = seen
            .last()
            .map_or(since, |(seq, _): &(usize, Tick)| seq + 1);
        let line = session.wait_out(what, next, OUTPUT, |t| t.starts_with("tick "));
        let tick = parse_tick(&line.text).unwrap_or_else(|| {
            panic!("not a tick line: {:?}\n{}", line.text, session.transcript())
        });
        seen.push((line.seq, tick));
        if done(&seen) {
            return seen;
        }
    }
    panic!("never saw {what}\n{}", session.transcript());
}

/// Saves `contents` as `relative` and returns the first outcome the command reports, which must
/// be a restart of the game; returns its reason.
fn expect_restart(
    example: &Example,
    session: &Session,
    relative: &str,
    contents: &str,
) -> (usize, Line, String) {
    let before = session.mark();
    example.save(relative, contents);
    let patched = format!("[hotswap] {}: patched ", example.package);
    let outcome = session.wait_for("the outcome of the save", before, PATCH, |line| {
        support::is_save_outcome(line, &patched)
    });
    let prefix = format!("[hotswap] restarting `{}`: ", example.package);
    let reason = outcome
        .text
        .strip_prefix(&prefix)
        .unwrap_or_else(|| {
            panic!(
                "expected a restart, got {:?}\n{}",
                outcome.text,
                session.transcript()
            )
        })
        .to_owned();
    (before, outcome, reason)
}

/// Waits for the program started after the `restarting` line `outcome` (saved at line
/// `before`): its pid, and the line number of its `bevy-game pid N` line.
fn wait_restarted(session: &Session, before: usize, outcome: &Line, old_pid: u32) -> (u32, usize) {
    let pid = session.wait_started(outcome.seq, RESTART);
    assert_ne!(pid, old_pid, "the game was not restarted");
    // From before the save: the new program's first line may come before the command's.
    let first = session.wait_out("the new game's pid line", before, OUTPUT, |t| {
        t == format!("bevy-game pid {pid}")
    });
    (pid, first.seq)
}

/// The Bevy example edited as examples/README.md says.
///
/// Fails if:
/// 1. an edit of `movement`'s speed is not patched in (no `patched` line naming
///    `bevy_game::movement`), or the game does not carry on under the new rule: the ticks must
///    count 1, 2, 3, ... and each tick's positions follow from the previous tick's by the
///    velocities times 1 (the old code) and then 2 (the new), never back — so the entities in
///    Bevy's `World` kept their positions and the `Tick` resource its count;
/// 2. an edit of `movement` and `report` in one save is not one patch naming both, or the game
///    does not go on from where it was (speed 3, the new text), as above;
/// 3. a field added to the component `Pos` is patched (the new code would read the `World`'s
///    old `Pos` values with the new layout) instead of restarting with a reason naming `Pos`,
///    or the restarted game does not run the new code (three coordinates);
/// 4. a system added in `main.rs` does not restart the game naming `main`, or the new game does
///    not run that system.
#[test]
fn bevy_systems_are_patched_and_the_world_carries_on() {
    let _serial = support::serial();
    let mut example = Example::copy("bevy");
    example.package = "bevy-game".to_owned();
    let (mut session, pid) = example.run(&["run"]);
    let first = session
        .wait_out("the game's pid line", 0, OUTPUT, |t| {
            t == format!("bevy-game pid {pid}")
        })
        .seq;
    let ticks = wait_ticks(&session, "`tick 3 ...`", first, |seen| seen.len() >= 3);
    assert_eq!(
        ticks[0].1.positions,
        first_positions(1, &[]),
        "the first tick is not the spawned entities moved once\n{}",
        session.transcript()
    );

    // 1. The speed of `movement`: patched, and the entities go on from where they are, faster.
    let faster = example.edited(
        "src/lib.rs",
        &[("const SPEED: i32 = 1;", "const SPEED: i32 = 2;")],
    );
    let (_, patched) = example.patch(&session, "src/lib.rs", &faster, "3 functions", 1);
    assert!(
        patched
            .text
            .ends_with("code changed: `bevy_game::movement`"),
        "{:?}",
        patched.text
    );
    let factor_of = |seen: &[(usize, Tick)], i: usize| -> Option<i64> {
        factor(&seen[i - 1].1.positions, &seen[i].1.positions)
    };
    let last_factors = |seen: &[(usize, Tick)], n: usize, f: i64| {
        seen.len() > n && (seen.len() - n..seen.len()).all(|i| factor_of(seen, i) == Some(f))
    };
    wait_ticks(&session, "3 ticks at speed 2", first, |seen| {
        last_factors(seen, 3, 2)
    });

    // 2. `movement` and `report` in one save: one patch naming both.
    let both = example.edited(
        "src/lib.rs",
        &[
            ("const SPEED: i32 = 2;", "const SPEED: i32 = 3;"),
            ("\"tick {} pos {}\"", "\"tick {} at {}\""),
        ],
    );
    let (_, patched) = example.patch(&session, "src/lib.rs", &both, "3 functions", 2);
    assert!(
        patched
            .text
            .ends_with("code changed: `bevy_game::movement`, `bevy_game::report`"),
        "{:?}",
        patched.text
    );
    let ticks = wait_ticks(&session, "3 ticks at speed 3 saying `at`", first, |seen| {
        last_factors(seen, 3, 3) && seen[seen.len() - 3..].iter().all(|(_, t)| t.word == "at")
    });

    // Everything the first game printed: one tick after the other, each following from the one
    // before by speed 1, then 2, then 3 (a patch takes effect between two systems' calls at
    // most: the text and the speed each switch once, never back).
    let numbers: Vec<u64> = ticks.iter().map(|(_, t)| t.tick).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "the tick did not count on across the patches\n{}",
        session.transcript()
    );
    let factors: Vec<i64> = (1..ticks.len())
        .map(|i| {
            factor_of(&ticks, i).unwrap_or_else(|| {
                panic!(
                    "tick {} does not follow from tick {} by the velocities: {:?} then {:?}\n{}",
                    ticks[i].1.tick,
                    ticks[i - 1].1.tick,
                    ticks[i - 1].1.positions,
                    ticks[i].1.positions,
                    session.transcript()
                )
            })
        })
        .collect();
    assert!(
        factors.windows(2).all(|w| w[0] <= w[1])
            && factors.first() == Some(&1)
            && factors.contains(&2)
            && factors.last() == Some(&3),
        "the speed did not go 1, then 2, then 3: {factors:?}"
    );
    let words: Vec<&str> = ticks.iter().map(|(_, t)| t.word.as_str()).collect();
    let first_at = words.iter().position(|w| *w == "at").unwrap();
    assert!(
        words[..first_at].iter().all(|w| *w == "pos")
            && words[first_at..].iter().all(|w| *w == "at"),
        "the text changed back and forth: {words:?}"
    );
    assert_eq!(
        support::started_pids(&session, &example.package),
        [pid],
        "restarted"
    );

    // 3. A field added to the component `Pos`: the `World` holds `Pos` values of the old
    // layout, which the new systems would misread. A restart, naming `Pos`.
    let with_z = example.edited(
        "src/lib.rs",
        &[
            (
                "pub struct Pos {\n    pub x: i32,\n    pub y: i32,\n}",
                "pub struct Pos {\n    pub x: i32,\n    pub y: i32,\n    pub z: i32,\n}",
            ),
            ("Pos { x, y }", "Pos { x, y, z: 7 }"),
            (
                "format!(\"{},{}\", p.x, p.y)",
                "format!(\"{},{},{}\", p.x, p.y, p.z)",
            ),
        ],
    );
    let (before, outcome, reason) = expect_restart(&example, &session, "src/lib.rs", &with_z);
    assert!(
        reason.contains("`bevy_game::")
            && reason.contains("`Pos` grew from 8 to 12 bytes (field `z: i32` added)"),
        "the restart does not name the component's change: {reason:?}\n{}",
        session.transcript()
    );
    let (pid, first) = wait_restarted(&session, before, &outcome, pid);
    let ticks = wait_ticks(&session, "2 ticks of the new game", first, |seen| {
        seen.len() >= 2
    });
    assert_eq!(ticks[0].1.tick, 1, "{:?}", ticks[0].1);
    assert_eq!(
        ticks[0].1.positions,
        first_positions(3, &[7]),
        "the restarted game does not run the new code from its start\n{}",
        session.transcript()
    );

    // 4. A system added in `main.rs`: `main` changed, and the running `main` keeps the code it
    // started with: a restart, and the new game runs the new system.
    let with_system = example.edited(
        "src/main.rs",
        &[
            (
                "fn main() -> AppExit {",
                "fn greet(tick: Res<game::Tick>) {\n    println!(\"greet {}\", tick.0);\n}\n\nfn main() -> AppExit {",
            ),
            (
                ".add_systems(Last, stop_at_limit)",
                ".add_systems(Last, (stop_at_limit, greet))",
            ),
        ],
    );
    let (before, outcome, reason) = expect_restart(&example, &session, "src/main.rs", &with_system);
    assert!(
        reason.contains("`bevy_game::main` changed"),
        "the restart does not name `main`: {reason:?}\n{}",
        session.transcript()
    );
    let (pid, first) = wait_restarted(&session, before, &outcome, pid);
    session.wait_out("`greet 2` from the new system", first, OUTPUT, |t| {
        t == "greet 2"
    });
    let ticks = wait_ticks(&session, "2 ticks of the new game", first, |seen| {
        seen.len() >= 2
    });
    assert_eq!(ticks[0].1.positions, first_positions(3, &[7]));

    session.interrupt_and_check(pid, 130);
}

/// `movement` as an exclusive system: it takes the `World` and queries the components inside
/// its body, so no hot signature shows `Vel`.
const EXCLUSIVE_MOVEMENT: &str = "#[hotswap::hot]
pub fn movement(world: &mut World) {
    let mut q = world.query::<(&mut Pos, &Vel)>();
    for (mut pos, vel) in q.iter_mut(world) {
        pos.x += vel.x * SPEED;
        pos.y += vel.y * SPEED;
    }
}";

/// An exclusive system (`fn movement(world: &mut World)`) is patched like any other, and a
/// field added to a component it reaches only inside its body (`Vel`, which no hot function's
/// signature shows) restarts the game naming the component: the `World` holds `Vel` values of
/// the old layout.
///
/// Fails if: the exclusive system's body edit is not patched, or the component's change is
/// patched (the new code would misread the `World`'s values) or restarts without naming it.
#[test]
fn a_component_reached_only_inside_an_exclusive_system_restarts_when_it_changes() {
    let _serial = support::serial();
    let mut example = Example::copy("bevy");
    example.package = "bevy-game".to_owned();
    let exclusive = example.edited(
        "src/lib.rs",
        &[(
            "#[hotswap::hot]\npub fn movement(mut q: Query<(&mut Pos, &Vel)>) {\n    for (mut pos, vel) in &mut q {\n        pos.x += vel.x * SPEED;\n        pos.y += vel.y * SPEED;\n    }\n}",
            EXCLUSIVE_MOVEMENT,
        )],
    );
    example.save("src/lib.rs", &exclusive);
    let (session, pid) = example.run(&["run"]);
    let first = session
        .wait_out("the game's pid line", 0, OUTPUT, |t| {
            t == format!("bevy-game pid {pid}")
        })
        .seq;
    wait_ticks(&session, "`tick 2 ...`", first, |seen| seen.len() >= 2);

    // The exclusive system's body: patched.
    let faster = exclusive.replace("const SPEED: i32 = 1;", "const SPEED: i32 = 2;");
    let (_, line) = example.patch(&session, "src/lib.rs", &faster, "", 1);
    assert!(
        line.text.ends_with("code changed: `bevy_game::movement`"),
        "{:?}\n{}",
        line.text,
        session.transcript()
    );

    // A field added to `Vel`: a restart naming it.
    let with_z = faster
        .replace(
            "pub struct Vel {\n    pub x: i32,\n    pub y: i32,\n}",
            "pub struct Vel {\n    pub x: i32,\n    pub y: i32,\n    pub z: i32,\n}",
        )
        .replace("Vel { x: vx, y: vy }", "Vel { x: vx, y: vy, z: 0 }");
    assert_ne!(with_z, faster, "the example's `Vel` changed");
    let (_, _, reason) = expect_restart(&example, &session, "src/lib.rs", &with_z);
    assert!(
        reason.contains("`Vel` (a Bevy `Component`: the running `World` keeps its values)")
            && reason.contains("`Vel` grew from 8 to 12 bytes (field `z: i32` added)"),
        "the restart does not name the component's change: {reason:?}\n{}",
        session.transcript()
    );
}
