//! End to end: each example of `examples/` run by the real `cargo hotswap run` on a copy of it
//! in a temporary directory (never the repository's sources), edited while it runs, as a user
//! follows examples/README.md. Each test asserts on what the program prints (its stdout, passed
//! through) or answers (the server), and on what the command reports (`[hotswap]` lines).
//! And one test that a normal `cargo build --release` of every example has no hot-reload code
//! and runs as a plain program.
//!
//! See `examples_support/mod.rs` for the copy, the session and the HTTP client.

mod examples_support;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use examples_support::{Example, Http, Session, Stream, OUTPUT, PATCH};

// ---------------------------------------------------------------------------------------------
// examples/minimal
// ---------------------------------------------------------------------------------------------

/// The number right after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// The minimal example, edited as the README's quick start says: the next tick prints the new
/// text and the tick counter (owned by `main`) carries on.
///
/// Fails if: the edit is not patched in (no `patched` message or no new text), or the patch
/// resets or skips the program's state (the ticks are not 1, 2, 3, ... across the patch).
#[test]
fn minimal_example_is_patched_and_keeps_counting() {
    let _serial = support::serial();
    let example = Example::copy("minimal");
    let (mut session, pid) = example.run(&["run"]);
    session.wait_out(
        "`tick 2: hello from the compiled-in code`",
        0,
        OUTPUT,
        |t| t == "tick 2: hello from the compiled-in code",
    );
    let edited = example.edited(
        "src/lib.rs",
        &[(
            "hello from the compiled-in code",
            "hello from the PATCHED code",
        )],
    );
    let (before, _) = example.patch(&session, "src/lib.rs", &edited, "1 function", 1);
    let patched = session.wait_out(
        "`tick N: hello from the PATCHED code`",
        before,
        OUTPUT,
        |t| t.ends_with(": hello from the PATCHED code"),
    );
    session.wait_out("a second patched tick", patched.seq + 1, OUTPUT, |t| {
        t.ends_with(": hello from the PATCHED code")
    });
    let ticks: Vec<(u64, bool)> = session
        .texts(Stream::Out, 0)
        .iter()
        .map(|(_, t)| {
            let tick = number_after(t, "tick ").unwrap_or_else(|| panic!("not a tick: {t:?}"));
            (tick, t.ends_with("PATCHED code"))
        })
        .collect();
    let numbers: Vec<u64> = ticks.iter().map(|(tick, _)| *tick).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "the tick counter did not carry on across the patch\n{}",
        session.transcript()
    );
    // Old text, then new text, never back.
    let first_new = ticks.iter().position(|(_, new)| *new).unwrap();
    assert!(first_new >= 2 && ticks[first_new..].iter().all(|(_, new)| *new));
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// examples/single-file
// ---------------------------------------------------------------------------------------------

/// The single-file example (a package with only `src/main.rs`), edited as the README says: the
/// ball is drawn anew from the next frame on, and the world `main` owns carries on.
///
/// Fails if: the edit of `main.rs` restarts the program or is not patched, or the frames do not
/// count on (1, 2, 3, ... across the patch: the world was reset).
#[test]
fn single_file_example_is_patched_and_the_world_carries_on() {
    let _serial = support::serial();
    let example = Example::copy("single-file");
    let (mut session, pid) = example.run(&["run"]);
    session.wait_out("`frame 3 ...`", 0, OUTPUT, |t| t.starts_with("frame 3 "));
    let edited = example.edited("src/main.rs", &[("= 'o';", "= '@';")]);
    let (before, line) = example.patch(&session, "src/main.rs", &edited, "2 functions", 1);
    assert!(
        line.text.ends_with("code changed: `single_file::render`"),
        "{:?}",
        line.text
    );
    let first = session.wait_out("a frame with `@`", before, OUTPUT, |t| t.contains('@'));
    session.wait_out("a second frame with `@`", first.seq + 1, OUTPUT, |t| {
        t.contains('@')
    });
    let frames: Vec<(u64, bool)> = session
        .texts(Stream::Out, 0)
        .iter()
        .map(|(_, t)| {
            let frame = number_after(t, "frame ").unwrap_or_else(|| panic!("not a frame: {t:?}"));
            (frame, t.contains('@'))
        })
        .collect();
    let numbers: Vec<u64> = frames.iter().map(|(frame, _)| *frame).collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "the world did not carry on across the patch\n{}",
        session.transcript()
    );
    let first_new = frames.iter().position(|(_, new)| *new).unwrap();
    assert!(first_new >= 3 && frames[first_new..].iter().all(|(_, new)| *new));
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// examples/game-of-life
// ---------------------------------------------------------------------------------------------

/// One line of the headless game: `gen G rule R alive A cells HEX`.
#[derive(Debug)]
struct Generation {
    generation: u64,
    rule: String,
    alive: usize,
    cells: Vec<bool>,
}

fn parse_generation(text: &str, width: usize, height: usize) -> Generation {
    let words: Vec<&str> = text.split(' ').collect();
    let ok = words.len() == 8
        && words[0] == "gen"
        && words[2] == "rule"
        && words[4] == "alive"
        && words[6] == "cells";
    assert!(ok, "not a generation line: {text:?}");
    let digits_per_row = width.div_ceil(4);
    let hex = words[7].as_bytes();
    assert_eq!(hex.len(), digits_per_row * height, "bad cells in {text:?}");
    let mut cells = Vec::with_capacity(width * height);
    for row in hex.chunks(digits_per_row) {
        for x in 0..width {
            let digit = (row[x / 4] as char).to_digit(16).expect("a hex digit");
            cells.push(digit & (8 >> (x % 4)) != 0);
        }
    }
    Generation {
        generation: words[1].parse().expect("a generation number"),
        rule: words[3].to_owned(),
        alive: words[5].parse().expect("a population"),
        cells,
    }
}

/// The next generation of `cells` (a `width` × `height` torus) under the B/S `rule`: written
/// here independently of the example's code.
fn life(cells: &[bool], width: usize, height: usize, rule: &str) -> Vec<bool> {
    let (born, survives) = rule.split_once('/').expect("a B/S rule");
    let counts = |part: &str, letter: char| -> Vec<usize> {
        let digits = part.strip_prefix(letter).expect("B.../S...");
        digits
            .chars()
            .map(|c| c.to_digit(10).unwrap() as usize)
            .collect()
    };
    let (born, survives) = (counts(born, 'B'), counts(survives, 'S'));
    let mut next = vec![false; cells.len()];
    for y in 0..height {
        for x in 0..width {
            let mut n = 0;
            for dy in [height - 1, 0, 1] {
                for dx in [width - 1, 0, 1] {
                    if (dx, dy) != (0, 0) {
                        n += cells[(y + dy) % height * width + (x + dx) % width] as usize;
                    }
                }
            }
            let i = y * width + x;
            next[i] = if cells[i] {
                survives.contains(&n)
            } else {
                born.contains(&n)
            };
        }
    }
    next
}

/// The Game of Life, headless, with its rule changed from Conway's `B3/S23` to Seeds (`B2/S`,
/// where no cell survives) while it runs.
///
/// Fails if: the rule edit is not patched in (no `patched` message, no generation under
/// `B2/S`); the board (owned by `main`) is reset or loses a generation (the generation numbers
/// are not 0, 1, 2, ... across the patch); a generation does not follow from the one before
/// under the rule it reports (checked against a separate implementation, so the old code
/// running under the new rule's name, or a corrupted board, fails); the new rule never changed
/// the evolution (the board after the first `B2/S` step must differ from what `B3/S23` would
/// have made of the same board).
#[test]
fn game_of_life_changes_its_rule_and_the_board_carries_on() {
    let _serial = support::serial();
    let example = Example::copy("game-of-life");
    let (mut session, pid) = example.run(&["run", "--", "--headless", "--interval-ms", "50"]);
    let header = session.wait_out("`life WxH seed N`", 0, OUTPUT, |t| t.starts_with("life "));
    let size = header.text.split(' ').nth(1).unwrap();
    let (width, height) = size.split_once('x').unwrap();
    let (width, height): (usize, usize) = (width.parse().unwrap(), height.parse().unwrap());
    session.wait_out("`gen 5 rule B3/S23 ...`", header.seq, OUTPUT, |t| {
        t.starts_with("gen 5 rule B3/S23 ")
    });

    let edited = example.edited(
        "src/lib.rs",
        &[(
            "pub const RULE: &str = \"B3/S23\";",
            "pub const RULE: &str = \"B2/S\";",
        )],
    );
    // `step` and `draw` are the crate's hot functions; a patch carries both.
    let (before, _) = example.patch(&session, "src/lib.rs", &edited, "2 functions", 1);
    // From the save on (the program's lines and the command's come through two pipes, in no
    // fixed order between them); only the patched code prints `B2/S`.
    let mut since = before;
    for _ in 0..5 {
        since = session
            .wait_out("a generation under `B2/S`", since, OUTPUT, |t| {
                t.starts_with("gen ") && t.contains(" rule B2/S ")
            })
            .seq
            + 1;
    }

    let generations: Vec<Generation> = session
        .texts(Stream::Out, header.seq + 1)
        .iter()
        .filter(|(seq, _)| *seq < since)
        .map(|(_, text)| parse_generation(text, width, height))
        .collect();
    let numbers: Vec<u64> = generations.iter().map(|g| g.generation).collect();
    assert_eq!(
        numbers,
        (0..numbers.len() as u64).collect::<Vec<_>>(),
        "the board did not carry on generation by generation across the patch\n{}",
        session.transcript()
    );
    assert_eq!(generations[0].rule, "seed");
    let first_new = generations
        .iter()
        .position(|g| g.rule == "B2/S")
        .expect("a B2/S generation");
    for (index, generation) in generations.iter().enumerate().skip(1) {
        let expected_rule = if index < first_new { "B3/S23" } else { "B2/S" };
        assert_eq!(
            generation.rule, expected_rule,
            "generation {} reports rule {} (the rule changed once, at generation {})",
            generation.generation, generation.rule, generations[first_new].generation
        );
        let previous = &generations[index - 1];
        let expected = life(&previous.cells, width, height, &generation.rule);
        assert!(
            generation.cells == expected,
            "generation {} does not follow from generation {} under {}",
            generation.generation,
            previous.generation,
            generation.rule
        );
        assert_eq!(
            generation.alive,
            generation.cells.iter().filter(|&&c| c).count(),
            "wrong population in generation {}",
            generation.generation
        );
    }
    // The new rule really made a different board than the old one would have.
    let under_conway = life(&generations[first_new - 1].cells, width, height, "B3/S23");
    assert!(
        generations[first_new].cells != under_conway,
        "the first B2/S generation ({}) is what B3/S23 would have made: the rule did not change \
         the evolution",
        generations[first_new].generation
    );
    session.interrupt_and_check(pid, 130);
}

/// `cargo hotswap run` without `-p` in an example's directory of a workspace of several
/// examples (as in this repository) runs that example, as `cargo run` would; saving files of
/// another example, which the program does not depend on, neither patches nor restarts it.
///
/// Fails if: the command does not pick the package of the current directory (it asks for `-p`
/// or starts another program); an edit of the other example (its hot library or its `main.rs`)
/// restarts or patches the running program; the example's own edit is not patched in; the
/// board starts again.
#[test]
fn an_example_runs_from_its_directory_and_other_examples_do_not_disturb_it() {
    let _serial = support::serial();
    let example = Example::workspace(&["game-of-life", "state-migration"]);
    let (mut session, pid) = example.run(&["run", "--", "--headless", "--interval-ms", "50"]);
    let first = session.wait_out("`gen 3 rule B3/S23 ...`", 0, OUTPUT, |t| {
        t.starts_with("gen 3 rule B3/S23 ")
    });
    // The other example's hot library is not linked into this program (linked whole, a stale
    // copy of it could even break the link).
    let program = symbols(&examples_support::e2e_binary(
        "hotswap/debug",
        "game-of-life",
    ));
    assert!(program
        .iter()
        .any(|name| name.starts_with("game_of_life::")));
    let foreign: Vec<&String> = program
        .iter()
        .filter(|name| name.contains("state_migration::"))
        .collect();
    assert!(
        foreign.is_empty(),
        "the program links the other example's library: {:?}",
        &foreign[..foreign.len().min(5)]
    );
    let before = session.mark();
    for other in [
        "../state-migration/src/lib.rs",
        "../state-migration/src/main.rs",
    ] {
        let source = example.read(other);
        example.save(
            other,
            &format!("{source}\n// edited while game-of-life runs\n"),
        );
    }
    // Give the command time to see those saves before the next one (it handles events in
    // order, so any reaction to them would be reported before the patch below).
    std::thread::sleep(Duration::from_secs(1));
    let edited = example.edited(
        "src/lib.rs",
        &[(
            "pub const RULE: &str = \"B3/S23\";",
            "pub const RULE: &str = \"B36/S23\";",
        )],
    );
    let (_, patched) = example.patch(&session, "src/lib.rs", &edited, "2 functions", 1);
    let reactions: Vec<String> = session
        .texts(Stream::Err, before)
        .into_iter()
        .filter(|(seq, text)| *seq < patched.seq && !text.contains("building a patch"))
        .map(|(_, text)| text)
        .collect();
    assert!(
        reactions.is_empty(),
        "editing another example disturbed the program: {reactions:?}\n{}",
        session.transcript()
    );
    let after = session.wait_out("`gen N rule B36/S23 ...`", before, OUTPUT, |t| {
        t.starts_with("gen ") && t.contains(" rule B36/S23 ")
    });
    let numbers: Vec<u64> = session
        .texts(Stream::Out, first.seq)
        .iter()
        .filter(|(seq, text)| *seq <= after.seq && text.starts_with("gen "))
        .map(|(_, text)| number_after(text, "gen ").unwrap())
        .collect();
    assert_eq!(
        numbers,
        (3..3 + numbers.len() as u64).collect::<Vec<_>>(),
        "the board did not carry on\n{}",
        session.transcript()
    );
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// examples/state-migration
// ---------------------------------------------------------------------------------------------

/// The value of `key=` in a `name=... score=... level=...` line.
fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(' ')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// A field added to the type of a `hotswap::State` while the program runs.
///
/// Fails if: the patch that adds the field is not applied with a migration (no `patched 1
/// function, migrated 1 state value` message); the value does not carry over (the score does
/// not continue one by one, or the name is lost); the new field does not start at its default
/// (`level=0`); the migrated value is lost again by the next patch that keeps the layout (the
/// level, now counted by the new code, must continue); a layout-preserving patch claims a
/// migration.
#[test]
fn state_migration_keeps_the_value_when_a_field_is_added() {
    let _serial = support::serial();
    let example = Example::copy("state-migration");
    let (mut session, pid) = example.run(&["run", "--", "alice"]);
    session.wait_out("`name=alice score=3`", 0, OUTPUT, |t| {
        t == "name=alice score=3"
    });

    // 1. Add `level` (and show it): the live value is migrated, the level starts at 0.
    let with_level = example.edited(
        "src/lib.rs",
        &[
            ("    pub score: u64,\n", "    pub score: u64,\n    pub level: u32,\n"),
            (
                "format!(\"name={} score={}\", player.name, player.score)",
                "format!(\n        \"name={} score={} level={}\",\n        player.name, player.score, player.level\n    )",
            ),
        ],
    );
    let (before, _) = example.patch(
        &session,
        "src/lib.rs",
        &with_level,
        "1 function, migrated 1 state value",
        1,
    );
    let first = session.wait_out("`... level=0`", before, OUTPUT, |t| t.contains(" level="));
    assert_eq!(
        value_of(&first.text, "level"),
        Some("0"),
        "{:?}",
        first.text
    );

    // 2. Use the new field: same layout, so nothing to migrate; the level counts from 0.
    let counting = with_level.replace(
        "    player.score += 1;\n",
        "    player.score += 1;\n    player.level += 1;\n",
    );
    assert_ne!(counting, with_level);
    let (before, patched) = example.patch(&session, "src/lib.rs", &counting, "1 function", 2);
    assert!(
        !patched.text.contains("migrated"),
        "a patch that keeps the layout migrated: {:?}",
        patched.text
    );
    let mut since = before;
    for _ in 0..3 {
        since = session
            .wait_out("a line of the second patch", since, OUTPUT, |t| {
                value_of(t, "level").is_some_and(|level| level != "0")
            })
            .seq
            + 1;
    }

    let lines: Vec<String> = session
        .texts(Stream::Out, 0)
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.starts_with("name="))
        .collect();
    let scores: Vec<u64> = lines
        .iter()
        .map(|t| value_of(t, "score").unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        scores,
        (1..=scores.len() as u64).collect::<Vec<_>>(),
        "the score did not carry on one by one across the migration\n{}",
        session.transcript()
    );
    assert!(
        lines.iter().all(|t| value_of(t, "name") == Some("alice")),
        "the name was lost\n{}",
        session.transcript()
    );
    // Levels: none (v0), then 0s (v1), then 1, 2, 3, ... (v2): the migrated field kept its
    // value across the second patch and the new code counts it.
    let levels: Vec<Option<u64>> = lines
        .iter()
        .map(|t| value_of(t, "level").map(|l| l.parse().unwrap()))
        .collect();
    let first_level = levels.iter().position(Option::is_some).unwrap();
    assert!(first_level >= 3 && levels[..first_level].iter().all(Option::is_none));
    let counted: Vec<u64> = levels[first_level..]
        .iter()
        .map(|l| l.expect("a level after the migration"))
        .skip_while(|&l| l == 0)
        .collect();
    assert_eq!(
        counted,
        (1..=counted.len() as u64).collect::<Vec<_>>(),
        "the level did not count on from its default\n{}",
        session.transcript()
    );
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// examples/server
// ---------------------------------------------------------------------------------------------

/// What the keep-alive client saw: `(body, client address)` per request, or the error that
/// stopped it.
#[derive(Default)]
struct ClientLog {
    responses: Vec<(String, std::net::SocketAddr)>,
    error: Option<String>,
}

/// Requests `/` over one keep-alive connection, every 20 ms, until `stop` (bounded: at most
/// 20,000 requests or 10 minutes).
fn keep_alive_client(
    port: u16,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<ClientLog>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let fail = |error: String| log.lock().unwrap().error = Some(error);
        let mut http = match Http::connect(port) {
            Ok(http) => http,
            Err(err) => return fail(format!("cannot connect: {err}")),
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        for _ in 0..20_000 {
            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                return;
            }
            match http.get("/") {
                Ok(response) if response.status == 200 => {
                    if response
                        .header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    {
                        return fail(format!("the server closes the connection: {response:?}"));
                    }
                    log.lock()
                        .unwrap()
                        .responses
                        .push((response.body, http.local));
                }
                Ok(response) => return fail(format!("status {}: {response:?}", response.status)),
                Err(err) => return fail(format!("request failed: {err}")),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// The chunks of one `/stream` response as they arrive; `Ok(())` at its end.
#[derive(Default)]
struct StreamLog {
    chunks: Vec<String>,
    end: Option<Result<(), String>>,
}

fn stream_client(
    port: u16,
    chunks: u32,
    log: Arc<Mutex<StreamLog>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let result = (|| -> std::io::Result<()> {
            let mut http = Http::connect(port)?;
            let response = http.send(&format!("/stream?chunks={chunks}&interval_ms=100"))?;
            if response.status != 200 {
                return Err(std::io::Error::other(format!("{response:?}")));
            }
            let mut pending = String::new();
            http.chunks(&response, |piece| {
                pending.push_str(&String::from_utf8_lossy(piece));
                while let Some(end) = pending.find('\n') {
                    let line = pending[..end].to_owned();
                    pending.drain(..=end);
                    log.lock().unwrap().chunks.push(line);
                }
            })
        })();
        log.lock().unwrap().end = Some(result.map_err(|err| err.to_string()));
    })
}

/// Polls `condition` every 10 ms until it holds; panics with `what` and the transcript after
/// `timeout` (which only bounds a hang).
fn wait_until(
    session: &Session,
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "waited {timeout:?} for {what}\n{}",
            session.transcript()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The axum server, patched while a client sends requests over one keep-alive connection and
/// a slow streaming response is open. Its handlers are `#[hot] async fn`s routed directly (an
/// extractor, `State`); the edit changes the body of the async `index` and of the sync `chunk`.
///
/// Fails if: a request fails or gets another status than 200, or the server closes the
/// keep-alive connection (the client uses one socket throughout and stops at the first error);
/// the responses do not switch to the new handler's text (or switch back); the request
/// counter of the hot crate (a private static) or of `main` restarts or skips; the streaming response opened before the
/// patch does not complete with every chunk in order, or its chunks after the patch do not come
/// from the new code (each chunk's text is built by the hot code running when it is sent).
#[test]
fn server_is_patched_under_open_connections() {
    let _serial = support::serial();
    let example = Example::copy("server");
    let (mut session, pid) = example.run(&["run", "--", "0"]);
    let listening = session.wait_out("`listening on http://127.0.0.1:PORT`", 0, OUTPUT, |t| {
        t.starts_with("listening on http://127.0.0.1:")
    });
    let port: u16 = listening.text.rsplit(':').next().unwrap().parse().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let client_log = Arc::new(Mutex::new(ClientLog::default()));
    let client = keep_alive_client(port, Arc::clone(&stop), Arc::clone(&client_log));
    let responses = || client_log.lock().unwrap().responses.len();
    let client_alive = || client_log.lock().unwrap().error.is_none();
    wait_until(&session, "3 responses to `/`", OUTPUT, || {
        responses() >= 3 || !client_alive()
    });

    // Each attempt opens a stream, then patches: the stream must be open across the patch. A
    // stream that ended before the patch was applied (a very slow patch) proves nothing, and
    // the next attempt opens a longer one with another edit.
    let original = example.read("src/lib.rs");
    let mut chunks = 60; // 6 s at 100 ms
    let mut old_text = "compiled-in handler".to_owned();
    let mut verified_stream = false;
    for version in 1..=3u64 {
        let new_text = format!("patched handler v{version}");
        let stream_log = Arc::new(Mutex::new(StreamLog::default()));
        let stream = stream_client(port, chunks, Arc::clone(&stream_log));
        wait_until(&session, "the first chunk of /stream", OUTPUT, || {
            let log = stream_log.lock().unwrap();
            !log.chunks.is_empty() || log.end.is_some()
        });
        let edited = original.replace("compiled-in handler", &new_text);
        assert_ne!(edited, original);
        let (_, patched) = example.patch(&session, "src/lib.rs", &edited, "3 functions", version);
        // `index` is a `#[hot] async fn` that axum routes directly: its body changed.
        assert!(
            patched
                .text
                .contains("code changed: `server::chunk`, `server::index`"),
            "{}",
            patched.text
        );
        // The keep-alive client gets the new text (a few times, to see it stays).
        wait_until(&session, "3 responses with the new text", PATCH, || {
            let log = client_log.lock().unwrap();
            log.error.is_some()
                || log
                    .responses
                    .iter()
                    .filter(|(body, _)| body.contains(&new_text))
                    .count()
                    >= 3
        });
        // The stream completes.
        wait_until(
            &session,
            "the end of /stream",
            PATCH + Duration::from_millis(200 * chunks as u64),
            || stream_log.lock().unwrap().end.is_some(),
        );
        stream.join().unwrap();
        let log = stream_log.lock().unwrap();
        assert_eq!(
            log.end,
            Some(Ok(())),
            "the streaming response failed\n{}",
            session.transcript()
        );
        assert_eq!(log.chunks.len(), chunks as usize, "{:?}", log.chunks);
        let mut patched_from = None;
        for (index, chunk) in log.chunks.iter().enumerate() {
            let number = format!("chunk {}/{chunks} from the ", index + 1);
            let old = format!("{number}{old_text}");
            let new = format!("{number}{new_text}");
            assert!(
                chunk == &old || chunk == &new,
                "chunk {} is {chunk:?}; expected {old:?} or {new:?}",
                index + 1
            );
            if chunk == &new {
                patched_from.get_or_insert(index);
            } else {
                assert!(
                    patched_from.is_none(),
                    "chunk {} came from the old code after chunk {} came from the new: {:?}",
                    index + 1,
                    patched_from.unwrap() + 1,
                    log.chunks
                );
            }
        }
        old_text = new_text;
        if patched_from.is_some_and(|first| first > 0) {
            verified_stream = true;
            break;
        }
        // The whole stream came before the patch: try again, longer.
        chunks *= 4;
    }
    assert!(
        verified_stream,
        "no streaming response stayed open across a patch (each ended before the patch was \
         applied)\n{}",
        session.transcript()
    );

    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let log = client_log.lock().unwrap();
    assert_eq!(
        log.error,
        None,
        "the keep-alive client failed\n{}",
        session.transcript()
    );
    let first_address = log.responses[0].1;
    assert!(
        log.responses
            .iter()
            .all(|(_, address)| *address == first_address),
        "the client's socket changed"
    );
    // Every response: the old or a newer text, never an older one again; the request counter
    // of `main` counts on: 1, 2, 3, ...
    let version_of = |body: &str| -> u64 {
        if body.starts_with("Hello from the compiled-in handler! (request ") {
            0
        } else {
            let rest = body
                .strip_prefix("Hello from the patched handler v")
                .unwrap_or_else(|| panic!("unexpected body {body:?}"));
            rest.split('!').next().unwrap().parse().unwrap()
        }
    };
    let mut last_version = 0;
    for (index, (body, _)) in log.responses.iter().enumerate() {
        let version = version_of(body);
        assert!(
            version >= last_version,
            "response {} came from an older version ({version}) than the one before ({last_version})",
            index + 1
        );
        last_version = version;
        // `request` is the hot crate's private static, `main counted` main's `State`.
        let request = number_after(body, "(request ").unwrap();
        assert_eq!(
            request,
            index as u64 + 1,
            "the private request counter did not count on: {body:?}"
        );
        assert_eq!(
            number_after(body, "main counted "),
            Some(index as u64 + 1),
            "main's request counter did not count on: {body:?}"
        );
        assert!(body.ends_with(")\n"), "{body:?}");
    }
    assert!(
        version_of(&log.responses[0].0) == 0 && last_version >= 1,
        "the responses did not switch to the new handler"
    );
    drop(log);
    session.interrupt_and_check(pid, 130);
}

// ---------------------------------------------------------------------------------------------
// Release builds
// ---------------------------------------------------------------------------------------------

/// The examples' packages (and binaries).
const EXAMPLES: [&str; 9] = [
    "minimal",
    "game-of-life",
    "server",
    "state-migration",
    "single-file",
    "bevy-game",
    "reload-feature",
    "serialized-state",
    "egui-app",
];

/// The examples that are libraries for another program to load (`cdylib`s): the package, its
/// file in the target directory, and a symbol its host looks up in it.
const LIBRARIES: [(&str, &str, &str); 2] = [
    ("c-host-lib", "libc_host_lib.so", "step"),
    ("python-ext", "libpython_ext.so", "PyInit_python_ext"),
];

/// `cargo build --release` in the repository with `args`, into the shared target directory.
fn cargo_build_release(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .args(["build", "--release"])
        .args(args)
        .current_dir(support::workspace_root())
        .env("CARGO_TARGET_DIR", support::e2e_target_dir());
    for name in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(name);
    }
    let output = command.output().expect("cannot run cargo");
    assert!(
        output.status.success(),
        "cargo build --release {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every symbol name of `binary` (static and dynamic tables), demangled without hashes.
fn symbols(binary: &std::path::Path) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(binary)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", binary.display()));
    let file = object::File::parse(&*data).expect("the binary is an object file");
    let mut names: Vec<String> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter_map(|symbol| symbol.name().ok())
        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The hot-reload machinery a normal build must not contain: `dlopen`, the manifest entries of
/// `#[hot]` functions, and code of the runtime and the loader's dependencies.
fn machinery(symbols: &[String]) -> Vec<&str> {
    const PATHS: [&str; 4] = [
        "hotswap::runtime::",
        "hotswap::__private::",
        "libloading::",
        "notify::",
    ];
    symbols
        .iter()
        .map(String::as_str)
        .filter(|name| {
            name.split('@').next() == Some("dlopen")
                || name.contains("__hotswap_entry")
                || PATHS.iter().any(|path| {
                    // A path from a crate root: `<notify::X as Y>::z` but not `inotify::`,
                    // `tokio::sync::notify::` or `Condvar::notify_one`.
                    name.match_indices(path).any(|(at, _)| {
                        !name[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    })
                })
        })
        .collect()
}

/// Runs `binary args` to its end (bounded) and returns its stdout.
fn run_plain(binary: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new(binary)
        .args(args)
        .env_remove("LIFE_HEADLESS")
        .env_remove("PORT")
        .env_remove("HOTSWAP_LIBRARY")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
    assert!(
        output.status.success(),
        "{} {args:?}: {output:?}",
        binary.display()
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `cargo build --release -p <example>`, as a user builds for production, gives a plain
/// program: no `dlopen`, no `#[hot]` manifest entries, no code of the runtime, the loader or
/// the watcher; and each example runs as such a plain program. So do the two examples that are
/// libraries (`cdylib`s): the C host's library, loaded by `host.c` built with `cc`, and the
/// Python extension module, loaded by `app.py`. A hot build of one example and of one library
/// (`--features hotswap/hot`) shows the same search finds all of it.
///
/// Fails if: a release build of an example links any of the hot-reload machinery (for example
/// if `#[hot]`'s normal expansion, `State` or `Migrate` kept a call into the runtime), if an
/// example does not build or run as a plain program (a library: with its host), or if the
/// search cannot see the machinery at all (the hot builds).
#[test]
fn release_builds_of_the_examples_are_plain_programs() {
    // The search finds crate-root paths only.
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let found = names(&[
        "<notify::inotify::INotifyWatcher as notify::Watcher>::watch",
        "dlopen@GLIBC_2.34",
        "__hotswap_entry_v1_minimal_tick_0",
    ]);
    assert_eq!(machinery(&found).len(), 3);
    let not_found = names(&[
        "tokio::sync::notify::Notify::notified",
        "std::sync::Condvar::notify_one",
        "inotify::Inotify::init",
        "dlopen_helper",
    ]);
    assert_eq!(machinery(&not_found), Vec::<&str>::new());

    let _serial = support::serial();
    let mut args = Vec::new();
    for example in EXAMPLES {
        args.extend(["-p", example]);
    }
    for (package, _, _) in LIBRARIES {
        args.extend(["-p", package]);
    }
    cargo_build_release(&args);
    for example in EXAMPLES {
        let binary = examples_support::e2e_binary("release", example);
        let symbols = symbols(&binary);
        let own = format!("{}::", example.replace('-', "_"));
        assert!(
            symbols.iter().any(|name| name.contains(&own)),
            "{} has no symbol of its own crate to inspect (stripped?)",
            binary.display()
        );
        let mut found = machinery(&symbols);
        if example == "egui-app" {
            // Its GUI stack loads the system's OpenGL, EGL, X11 and Wayland libraries at run
            // time (glutin, x11-dl, wayland-sys through libloading 0.8): their `dlopen` and
            // `libloading::` are not ours. The runtime, the manifest entries and the watcher
            // are still looked for.
            found.retain(|name| {
                name.split('@').next() != Some("dlopen") && !name.contains("libloading::")
            });
        }
        assert!(
            found.is_empty(),
            "the release build of `{example}` contains hot-reload machinery: {:?}",
            &found[..found.len().min(10)]
        );
    }

    for (package, file, entry) in LIBRARIES {
        let library = examples_support::e2e_binary("release", file);
        let symbols = symbols(&library);
        assert!(
            symbols.iter().any(|name| name == entry),
            "{} has no `{entry}` (not the library its host loads?)",
            library.display()
        );
        let found = machinery(&symbols);
        assert!(
            found.is_empty(),
            "the release build of `{package}` contains hot-reload machinery: {:?}",
            &found[..found.len().min(10)]
        );
    }

    // Each runs as a plain program.
    let release = |name| examples_support::e2e_binary("release", name);
    let out = run_plain(&release("minimal"), &["2"]);
    assert!(
        out.ends_with("tick 2: hello from the compiled-in code\n"),
        "{out:?}"
    );
    let out = run_plain(&release("state-migration"), &["bob", "2"]);
    assert_eq!(out, "name=bob score=1\nname=bob score=2\n");
    let out = run_plain(
        &release("game-of-life"),
        &["--headless", "--generations", "3", "--interval-ms", "1"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[4].starts_with("gen 3 rule B3/S23 alive "), "{out}");
    server_answers_once(&release("server"));
    let out = run_plain(&release("single-file"), &["3"]);
    assert_eq!(
        out,
        "frame 1 bounces 0 |  o                     |\n\
         frame 2 bounces 0 |   o                    |\n\
         frame 3 bounces 0 |    o                   |\n"
    );
    // The Bevy game: its pid, then one line per tick of `MinimalPlugins`' loop, then it exits.
    let out = run_plain(&release("bevy-game"), &["3"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == 4 && lines[0].starts_with("bevy-game pid "),
        "{out}"
    );
    assert_eq!(
        lines[1..],
        [
            "tick 1 pos 1,0 10,9 -3,4",
            "tick 2 pos 2,0 10,8 -1,5",
            "tick 3 pos 3,0 10,7 1,6"
        ],
        "{out}"
    );
    // Without its `reload` feature, reload-feature is plain (and says so).
    let out = run_plain(&release("reload-feature"), &["2"]);
    assert_eq!(
        out,
        "hot reload: off\n\
         step 1: from the compiled-in code\n\
         step 2: from the compiled-in code\n"
    );
    let out = run_plain(&release("serialized-state"), &["2"]);
    assert_eq!(
        out,
        "day 1: apple=4 pear=6 plum=2\nday 2: apple=5 pear=7 plum=3\n"
    );
    egui_draws_three_frames(&release("egui-app"));
    // The libraries, each in its host: the C program built with `cc`, and Python.
    let host = release("c-host");
    let cc = std::process::Command::new("cc")
        .arg(support::workspace_root().join("examples/c-host/host.c"))
        .arg("-o")
        .arg(&host)
        .arg("-ldl")
        .output()
        .expect("cannot run cc");
    assert!(cc.status.success(), "cc host.c failed: {cc:?}");
    let library = release("libc_host_lib.so");
    let out = run_plain(&host, &[library.to_str().unwrap(), "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == 5 && lines[0].starts_with("host pid "),
        "{out}"
    );
    assert_eq!(
        lines[1..],
        [
            "step v1 counter 1 version 0 calls 1",
            "host counter 1 got 2",
            "step v1 counter 2 version 0 calls 2",
            "host counter 2 got 4"
        ],
        "{out}"
    );
    let app = support::workspace_root().join("examples/python/app.py");
    let library = release("libpython_ext.so");
    let out = run_plain(
        std::path::Path::new("python3"),
        &[app.to_str().unwrap(), library.to_str().unwrap(), "2"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == 3 && lines[0].starts_with("python pid "),
        "{out}"
    );
    assert_eq!(
        lines[1..],
        [
            "py n 1 kept 1 greet hello x from v1 score 1 version 0",
            "py n 2 kept 2 greet hello x from v1 score 3 version 0"
        ],
        "{out}"
    );

    // The search sees the machinery in a hot build.
    cargo_build_release(&["-p", "game-of-life", "--features", "hotswap/hot"]);
    let hot = symbols(&release("game-of-life"));
    let found = machinery(&hot);
    for item in [
        "dlopen",
        "__hotswap_entry",
        "hotswap::runtime::",
        "hotswap::__private::",
        "libloading::",
        "notify::",
    ] {
        assert!(
            found.iter().any(|name| name.contains(item)),
            "the hot build of game-of-life has no `{item}`: the search cannot see the machinery"
        );
    }
    // And in a library, whose Rust symbols are not exported.
    cargo_build_release(&["-p", "c-host-lib", "--features", "hotswap/hot"]);
    let hot = symbols(&release("libc_host_lib.so"));
    let found = machinery(&hot);
    for item in [
        "dlopen",
        "__hotswap_entry",
        "hotswap::runtime::",
        "notify::",
    ] {
        assert!(
            found.iter().any(|name| name.contains(item)),
            "the hot build of c-host-lib has no `{item}`: the search cannot see the machinery"
        );
    }
}

/// Runs the release egui app on a virtual display (`Xvfb`, software OpenGL) for three frames,
/// one report a frame, and checks it drew them and closed its window.
fn egui_draws_three_frames(binary: &std::path::Path) {
    let xvfb = examples_support::Xvfb::start();
    let output = std::process::Command::new(binary)
        .env("DISPLAY", &xvfb.display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("EGUI_APP_FRAMES", "3")
        .env("EGUI_APP_REPORT_EVERY", "1")
        .env("EGUI_APP_TEXT", "plain")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("egui-app pid "), "{out}");
    let frames: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("frame "))
        .collect();
    // The window closes after the frame that asked for it (egui may run one more).
    assert!(frames.len() >= 3, "{out}");
    for (n, line) in frames[..3].iter().enumerate() {
        let expected = format!(
            "frame {} clicks 0 count 0 text \"plain\" banner #286ec8",
            n + 1
        );
        assert_eq!(*line, expected, "{out}");
    }
}

/// Starts the release server on a free port, checks one answer of `/`, and stops it.
fn server_answers_once(binary: &std::path::Path) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(binary)
        .arg("0")
        .env_remove("PORT")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cannot start the server");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    let result = (|| {
        read.map_err(|err| err.to_string())?;
        let port: u16 = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|port| port.parse().ok())
            .ok_or(format!("unexpected first line {line:?}"))?;
        let mut http = Http::connect(port).map_err(|err| err.to_string())?;
        let response = http.get("/").map_err(|err| err.to_string())?;
        Ok::<_, String>(response.body)
    })();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        result,
        Ok("Hello from the compiled-in handler! (request 1, main counted 1)\n".to_owned())
    );
}
