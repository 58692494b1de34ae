//! The hot part of the Game of Life: the rule ([`step`]) and the picture ([`draw`]). Edit either
//! while the program runs; the board (owned by `main`) carries on from the generation it is at.
//!
//! Try `RULE = "B36/S23"` (HighLife), `"B2/S"` (Seeds) or `"B3678/S34678"` (Day & Night), or
//! change the characters `draw` uses for live cells.

/// The rule in B/S notation: a dead cell with a number of live neighbours listed after `B` is
/// born; a live cell with a number listed after `S` survives. Conway's rule is `B3/S23`.
pub const RULE: &str = "B3/S23";

/// The board: a torus of `width` × `height` cells (the edges wrap around).
pub struct Board {
    pub width: usize,
    pub height: usize,
    /// Row by row; `true` is alive.
    pub cells: Vec<bool>,
    /// How many steps made this board.
    pub generation: u64,
}

impl Board {
    /// A random board (about one cell in three alive), the same for the same `seed`.
    pub fn random(width: usize, height: usize, seed: u64) -> Board {
        // xorshift64*: small, fast and good enough for a soup.
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let cells = (0..width * height)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                state.wrapping_mul(0x2545_f491_4f6c_dd1d) < u64::MAX / 3
            })
            .collect();
        Board {
            width,
            height,
            cells,
            generation: 0,
        }
    }

    /// The number of live cells.
    pub fn alive(&self) -> usize {
        self.cells.iter().filter(|&&alive| alive).count()
    }

    fn live_neighbours(&self, x: usize, y: usize) -> usize {
        let mut count = 0;
        for dy in [self.height - 1, 0, 1] {
            for dx in [self.width - 1, 0, 1] {
                if (dx, dy) != (0, 0) {
                    let (nx, ny) = ((x + dx) % self.width, (y + dy) % self.height);
                    count += usize::from(self.cells[ny * self.width + nx]);
                }
            }
        }
        count
    }
}

/// The neighbour counts of a B/S rule: `(born, survives)`, indexed by the number of live
/// neighbours (0 to 8).
fn parse_rule(rule: &str) -> ([bool; 9], [bool; 9]) {
    let mut born = [false; 9];
    let mut survives = [false; 9];
    for part in rule.split('/') {
        let (counts, digits) = match part.as_bytes().first() {
            Some(b'B') => (&mut born, &part[1..]),
            Some(b'S') => (&mut survives, &part[1..]),
            _ => continue,
        };
        for digit in digits.bytes().filter(u8::is_ascii_digit) {
            if let Some(slot) = counts.get_mut(usize::from(digit - b'0')) {
                *slot = true;
            }
        }
    }
    (born, survives)
}

/// Advances the board by one generation under [`RULE`]; returns the rule it applied.
#[hotswap::hot]
pub fn step(board: &mut Board) -> &'static str {
    let (born, survives) = parse_rule(RULE);
    let mut next = vec![false; board.cells.len()];
    for y in 0..board.height {
        for x in 0..board.width {
            let n = board.live_neighbours(x, y);
            let i = y * board.width + x;
            next[i] = if board.cells[i] { survives[n] } else { born[n] };
        }
    }
    board.cells = next;
    board.generation += 1;
    RULE
}

/// The picture of the board after a step under `rule`: an ANSI terminal frame, or with
/// `headless` one line `gen G rule R alive A cells HEX` (each row as hex digits, four cells per
/// digit, the leftmost cell in the digit's highest bit), which tests and scripts can read.
#[hotswap::hot]
pub fn draw(board: &Board, rule: &str, headless: bool) -> String {
    if headless {
        let mut hex = String::with_capacity(board.cells.len() / 4 + board.height);
        for row in board.cells.chunks(board.width) {
            for four in row.chunks(4) {
                let digit = four
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (i, &alive)| acc | (u32::from(alive) << (3 - i)));
                hex.push(char::from_digit(digit, 16).unwrap_or('?'));
            }
        }
        return format!(
            "gen {} rule {rule} alive {} cells {hex}\n",
            board.generation,
            board.alive()
        );
    }
    // Cursor home, then the board two characters per cell, then a status line.
    let mut frame = String::from("\x1b[H");
    for row in board.cells.chunks(board.width) {
        for &alive in row {
            frame.push_str(if alive { "\x1b[32m██\x1b[0m" } else { "  " });
        }
        frame.push_str("\x1b[K\n");
    }
    frame.push_str(&format!(
        "generation {:>6}   alive {:>4}   rule {rule:<12}   edit src/lib.rs and save\x1b[K\n",
        board.generation,
        board.alive()
    ));
    frame
}
