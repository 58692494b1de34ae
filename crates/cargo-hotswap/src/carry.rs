//! Carry (CLI side): hand the program's `State` values over a restart.
//!
//! Just before the program is stopped for a restart, it is asked over the control channel to
//! save its states into a file in our private directory ([`ToApp::SaveStates`]); the program
//! started in its place gets the file's name in
//! [`CARRY_ENV`](hotswap::protocol::CARRY_ENV), takes the values as it creates
//! its `State`s, and reports what it took ([`ToCli::Carried`], printed by [`carried`]). If the
//! old program cannot hand them over (it exited, crashed, never connected, does not answer),
//! the restart goes on and says so.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use hotswap::protocol::{StateProblem, ToApp, ToCli};
use object::{Object, ObjectSection};

use crate::app::{self, App};
use crate::deliver::{AskError, Peers};
use crate::report;

/// How long a restart waits for the program to save its states: a bound on a hang (the program
/// answers as soon as it has serialised them), not a guess at how long that takes.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What a restart carries over to the new program.
pub enum Handover {
    /// Nothing, and nothing to say (a first start; a program with no states).
    Nothing,
    /// The file the new program reads.
    File(PathBuf),
    /// The values could not be carried over, for this reason.
    Failed(String),
}

impl Handover {
    /// The file to hand the new program.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Handover::File(path) => Some(path),
            _ => None,
        }
    }

    /// Says, once the new program has started, that its state could not be carried over.
    pub fn report(&self) {
        if let Handover::Failed(reason) = self {
            report::warn(&format!("restarted; state could not be carried: {reason}"));
        }
    }
}

/// What the restart path remembers about the running program.
#[derive(Default)]
pub struct Carry {
    /// How the program ended on its own, until it is started again.
    exited: Option<ExitStatus>,
    /// Whether the running executable has `#[derive(hotswap::Migrate)]` types: if not, a
    /// program that cannot be asked had no states to lose, and nothing is said.
    has_states: bool,
    /// The last file handed over (removed at the next restart if nobody read it).
    file: Option<PathBuf>,
}

impl Carry {
    /// The program ended on its own.
    pub fn exited(&mut self, status: ExitStatus) {
        self.exited = Some(status);
    }

    /// `executable` was started.
    pub fn started(&mut self, executable: &Path) {
        self.exited = None;
        self.has_states = registers_states(executable);
    }

    /// Before the program (if any) is stopped for a restart: asks it to save its states into
    /// `<dir>/carry-<generation>.json` and waits for its answer.
    pub fn hand_over(
        &mut self,
        app: Option<&App>,
        peers: &Peers,
        dir: &Path,
        generation: u64,
    ) -> Handover {
        if let Some(stale) = self.file.take() {
            let _ = std::fs::remove_file(stale);
        }
        let has_states = self.has_states;
        let gone = |status: ExitStatus| {
            if has_states {
                Handover::Failed(exit_reason(status))
            } else {
                Handover::Nothing
            }
        };
        let Some(app) = app else {
            return match self.exited.take() {
                Some(status) => gone(status),
                None => Handover::Nothing,
            };
        };
        if let Some(status) = app.exited() {
            return gone(status);
        }
        let path = dir.join(format!("carry-{generation}.json"));
        let question = ToApp::SaveStates {
            path: path.display().to_string(),
        };
        let is_answer = |m: &ToCli| matches!(m, ToCli::StatesSaved { .. });
        let (saved, unsaved, error) = match peers.ask(app.pid, &question, is_answer, ANSWER_WAIT) {
            Ok(ToCli::StatesSaved {
                saved,
                unsaved,
                error,
            }) => (saved, unsaved, error),
            Ok(_) => unreachable!("only `StatesSaved` answers"),
            Err(AskError::NotConnected) if has_states => {
                return Handover::Failed(
                    "the program was not connected to the CLI (its runtime starts at its \
                     first #[hot] call)"
                        .into(),
                )
            }
            Err(AskError::NotConnected) => return Handover::Nothing,
            Err(AskError::TimedOut) => {
                return Handover::Failed(format!(
                    "the program did not answer within {} s",
                    ANSWER_WAIT.as_secs()
                ))
            }
            Err(failure @ (AskError::Closed | AskError::Write(_))) => {
                return match (app.exited(), failure) {
                    (Some(status), _) => gone(status),
                    (None, AskError::Write(err)) => {
                        Handover::Failed(format!("cannot ask the program for it: {err}"))
                    }
                    (None, _) => Handover::Failed(
                        "the program closed the control channel without answering".into(),
                    ),
                }
            }
        };
        for problem in &unsaved {
            report::warn(&format!(
                "{} could not be carried over the restart: {}",
                describe(problem),
                problem.reason
            ));
        }
        if let Some(error) = error {
            return Handover::Failed(format!("the program could not save it: {error}"));
        }
        if saved == 0 {
            let _ = std::fs::remove_file(&path);
            return Handover::Nothing;
        }
        self.file = Some(path.clone());
        Handover::File(path)
    }
}

/// Prints what a restarted program took of the values carried over ([`ToCli::Carried`]).
pub fn carried(carried: usize, fresh: &[StateProblem], error: Option<&str>) {
    if carried > 0 {
        report::ok(&format!(
            "restarted; carried {carried} state value{}",
            if carried == 1 { "" } else { "s" }
        ));
    }
    for problem in fresh {
        report::warn(&format!(
            "restarted; {} started fresh: {}",
            describe(problem),
            problem.reason
        ));
    }
    if let Some(error) = error {
        report::warn(&format!(
            "restarted; state could not be carried: the new program could not read it: {error}"
        ));
    }
}

/// "`game::Game`", or "`game::Game` (key "left")".
fn describe(problem: &StateProblem) -> String {
    match &problem.key {
        Some(key) => format!("`{}` (key {key:?})", problem.name),
        None => format!("`{}`", problem.name),
    }
}

/// "the program had exited with code 3", "the program was killed by SIGSEGV (11)".
fn exit_reason(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("the program had exited with code {code}"),
        None => format!("the program was {}", app::describe(status).0),
    }
}

/// Whether `executable` registers a `#[derive(hotswap::Migrate)]` type (its section of
/// `hotswap::__private::STATES` is not empty); true when that cannot be told.
fn registers_states(executable: &Path) -> bool {
    let Ok(data) = crate::statics::map(executable) else {
        return true;
    };
    let Ok(file) = object::File::parse(&*data) else {
        return true;
    };
    file.section_by_name(hotswap::platform::STATES_SECTION)
        .is_some_and(|section| section.size() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exits_are_described_as_the_reason() {
        assert_eq!(
            exit_reason(ExitStatus::from_raw(3 << 8)),
            "the program had exited with code 3"
        );
        assert_eq!(
            exit_reason(ExitStatus::from_raw(libc::SIGSEGV)),
            "the program was killed by SIGSEGV (11)"
        );
    }

    #[test]
    fn an_executable_without_state_types_registers_none() {
        // This test binary has no `#[derive(Migrate)]` type.
        let me = std::env::current_exe().unwrap();
        assert!(!registers_states(&me));
        assert!(registers_states(Path::new("/nonexistent/executable")));
    }
}
