//! The control channel between `cargo hotswap run` and the program it runs: one JSON object per
//! line over a Unix socket that only the same user can reach. Shared by both sides (the CLI
//! depends on this crate for it), so the two can never disagree on the format.

use serde::{Deserialize, Serialize};

/// Environment variable naming the CLI's control socket; set by `cargo hotswap run`.
pub const CONTROL_ENV: &str = "HOTSWAP_CONTROL";

/// Longest line either side accepts; longer ones are dropped unread.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Program → CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToCli {
    /// Sent once on connecting.
    Hello {
        /// The program's process id.
        pid: u32,
        /// Its current [`version`](crate::version).
        version: u64,
    },
    /// A patch was swapped in.
    Applied {
        /// The id of the [`ToApp::Patch`] message.
        id: u64,
        /// The new version.
        version: u64,
        /// How many functions it replaced.
        functions: usize,
        /// How many `State` values were migrated to a changed type.
        #[serde(default)]
        states: usize,
        /// Stage, check, load and swap, in microseconds.
        micros: u64,
    },
    /// Patched code panicked and its patch was rolled back (roll-back policy).
    RolledBack {
        /// The new version.
        version: u64,
        /// The version that panicked.
        from: u64,
        /// The function that panicked.
        function: String,
        /// The panic's message.
        message: String,
    },
    /// A patch was refused; the program keeps running the code it had.
    Refused {
        /// The id of the [`ToApp::Patch`] message.
        id: u64,
        /// What was wrong.
        reason: String,
    },
}

/// CLI → program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToApp {
    /// Load the thin patch at `path` (in the CLI's private directory).
    Patch {
        /// Echoed in the answer.
        id: u64,
        /// Absolute path of the patch file.
        path: String,
    },
}
