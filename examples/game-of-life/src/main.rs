//! Conway's Game of Life in the terminal. The board lives here, in `main`; the rule and the
//! drawing are `#[hot]` functions in `src/lib.rs`.
//!
//! ```text
//! game-of-life [--headless] [--seed N] [--size WxH] [--generations N] [--interval-ms N]
//! ```
//!
//! `--headless` (or `LIFE_HEADLESS=1`) prints one line per generation instead of drawing:
//! `gen G rule R alive A cells HEX` (see `game_of_life::draw`).

use std::io::Write;
use std::time::Duration;

use game_of_life::Board;

struct Options {
    headless: bool,
    seed: u64,
    width: usize,
    height: usize,
    generations: Option<u64>,
    interval: Duration,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        headless: std::env::var_os("LIFE_HEADLESS").is_some_and(|v| v != "0"),
        seed: 42,
        width: 40,
        height: 20,
        generations: None,
        interval: Duration::from_millis(100),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--headless" => options.headless = true,
            "--seed" => options.seed = number(&value("--seed")?)?,
            "--generations" => options.generations = Some(number(&value("--generations")?)?),
            "--interval-ms" => {
                options.interval = Duration::from_millis(number(&value("--interval-ms")?)?)
            }
            "--size" => {
                let size = value("--size")?;
                let (w, h) = size.split_once('x').ok_or("--size takes WxH, e.g. 40x20")?;
                (options.width, options.height) = (number(w)? as usize, number(h)? as usize);
                if options.width < 3 || options.height < 3 {
                    return Err("the board needs at least 3x3 cells".into());
                }
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn main() {
    let options = options().unwrap_or_else(|err| {
        eprintln!("game-of-life: {err}");
        std::process::exit(2);
    });
    let mut board = Board::random(options.width, options.height, options.seed);
    let mut out = std::io::stdout().lock();
    if options.headless {
        let _ = writeln!(
            out,
            "life {}x{} seed {}",
            options.width, options.height, options.seed
        );
    } else {
        // Clear the screen once; each frame then starts at the top left.
        let _ = write!(out, "\x1b[2J");
    }
    let _ = write!(
        out,
        "{}",
        game_of_life::draw(&board, "seed", options.headless)
    );
    let _ = out.flush();
    while options
        .generations
        .is_none_or(|last| board.generation < last)
    {
        std::thread::sleep(options.interval);
        let rule = game_of_life::step(&mut board);
        if write!(
            out,
            "{}",
            game_of_life::draw(&board, rule, options.headless)
        )
        .and_then(|()| out.flush())
        .is_err()
        {
            break; // stdout closed
        }
    }
}
