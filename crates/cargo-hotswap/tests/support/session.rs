//! A scratch workspace running under `cargo hotswap run`, for the end-to-end tests that drive
//! one program through saves (`trust_e2e`, `trait_e2e`): start it, save a new hot crate, and
//! wait for what the command reports and what the program prints.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout: a program is found by the pid it prints (`host pid=N`), and its later lines follow
//! that line on its own stream.

use super::{Cli, Line, Scratch, Stream, FIRST_BUILD, OUTPUT, PATCH, RESTART};

/// A running session: the workspace, the command, and the program.
pub struct Session {
    pub scratch: Scratch,
    pub cli: Cli,
    /// The program's pid.
    pub pid: u32,
    /// The number of the program's `host pid=` line (its later lines come after it).
    pub first: usize,
}

impl Session {
    /// A workspace whose `app/src/main.rs` is `main_rs` (`GAME` stands for the hot crate's
    /// name) and whose `game/src/lib.rs` is `lib_rs`, with `manifest` appended to the
    /// workspace's `Cargo.toml`, running under `cargo hotswap run` until the program printed a
    /// line starting with `first`. The program must print `host pid=N` first.
    pub fn start(
        prefix: &str,
        main_rs: &str,
        lib_rs: &str,
        first: &str,
        manifest: &str,
    ) -> Session {
        let scratch = Scratch::new(prefix);
        if !manifest.is_empty() {
            let root = scratch.read("Cargo.toml");
            scratch.save("Cargo.toml", &format!("{root}\n{manifest}"));
        }
        scratch.save("app/src/main.rs", &main_rs.replace("GAME", &scratch.game));
        scratch.save_game(lib_rs);
        let cli = scratch.start(&["run"]);
        let started = cli.wait_started(0, FIRST_BUILD);
        let host = cli.wait_out("the program's first line", 0, OUTPUT, |t| {
            t == format!("host pid={}", started.pid)
        });
        cli.wait_out(&format!("`{first}...`"), host.seq, OUTPUT, |t| {
            t.starts_with(first)
        });
        Session {
            scratch,
            cli,
            pid: started.pid,
            first: host.seq,
        }
    }

    /// Saves `lib_rs` and returns the number of the line before the save and the first outcome
    /// the command reports for it (patched, refused, does not compile, restarting).
    pub fn save(&self, lib_rs: &str) -> (usize, Line) {
        let before = self.cli.mark();
        self.scratch.save_game(lib_rs);
        let patched = format!("[hotswap] {}: patched ", self.scratch.game);
        let line = self
            .cli
            .wait_for("the outcome of the save", before, PATCH, |line| {
                super::is_save_outcome(line, &patched)
            });
        (before, line)
    }

    /// Saves `lib_rs` and expects it patched as version `version`, the line starting
    /// `patched {count}` and naming the code of each of `changed` as changed (`GAME` stands for
    /// the hot crate's name); returns the number of the line before the save.
    pub fn expect_patch(&self, lib_rs: &str, version: u64, count: &str, changed: &[&str]) -> usize {
        let (before, outcome) = self.save(lib_rs);
        let game = &self.scratch.game;
        assert!(
            outcome
                .text
                .starts_with(&format!("[hotswap] {game}: patched {count}"))
                && outcome
                    .text
                    .contains(&format!("— version {version}; build ")),
            "expected a patch, got {:?}\n{}",
            outcome.text,
            self.cli.transcript()
        );
        let (_, list) = outcome
            .text
            .split_once("; code changed: ")
            .unwrap_or_else(|| panic!("no `code changed` in {:?}", outcome.text));
        for name in changed {
            let name = format!("`{}`", name.replace("GAME", game));
            assert!(
                list.split(", ").any(|n| n == name),
                "the patch line does not name {name} as changed: {:?}",
                outcome.text
            );
        }
        before
    }

    /// After the outcome line `outcome` of a save made at line `before`: waits for the program
    /// the command starts again and makes it this session's program; returns the number of its
    /// `host pid=` line.
    pub fn wait_restarted(&mut self, before: usize, outcome: &Line) -> usize {
        let started = self.cli.wait_started(outcome.seq, RESTART);
        assert_ne!(started.pid, self.pid, "the program was not restarted");
        // Found by the pid it prints, from before the save: its first line may arrive before
        // the command's `started` line.
        let host = self
            .cli
            .wait_out("the new program's first line", before, OUTPUT, |t| {
                t == format!("host pid={}", started.pid)
            });
        self.pid = started.pid;
        self.first = host.seq;
        host.seq
    }

    /// The first line starting with `prefix` that the program printed from line `from` on.
    pub fn line_of(&self, from: usize, prefix: &str) -> Line {
        self.cli
            .wait_out(&format!("`{prefix}...`"), from, OUTPUT, |t| {
                t.starts_with(prefix)
            })
    }

    /// Every stdout line from `from` on that starts with `prefix`, without waiting.
    pub fn lines_since(&self, from: usize, prefix: &str) -> Vec<String> {
        self.cli
            .texts(Stream::Out, from)
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(prefix))
            .collect()
    }
}
