//! The control channel between `cargo hotswap run` and the program it runs: one JSON object per
//! line over a Unix socket that only the same user can reach. Shared by both sides (the CLI
//! depends on this crate for it), so the two can never disagree on the format.

use serde::{Deserialize, Serialize};

/// Environment variable naming the CLI's control socket; set by `cargo hotswap run`.
pub const CONTROL_ENV: &str = "HOTSWAP_CONTROL";

/// Longest line either side accepts; longer ones are dropped unread.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Environment variable naming the file of `State` values carried over a restart: set by
/// `cargo hotswap run` for a program it starts in place of one that saved its states
/// ([`ToApp::SaveStates`]). Read (and the file removed) once per process, and only under the
/// CLI (with [`CONTROL_ENV`] set).
pub const CARRY_ENV: &str = "HOTSWAP_CARRY";

/// A `State` value that could not be carried over a restart, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProblem {
    /// The value's type, `module::Type` (as `#[derive(Migrate)]` names it).
    pub name: String,
    /// The key it was created with (`State::with_key`), if any.
    #[serde(default)]
    pub key: Option<String>,
    /// What went wrong (for a value the new type cannot read, serde's error).
    pub reason: String,
}

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
        /// The address range the program reserved for patches linked at a fixed address (so
        /// that they can share the program's private statics), if it could.
        #[serde(default)]
        reserved: Option<Reservation>,
        /// The image the runtime is linked into, which patches are linked against.
        #[serde(default)]
        image: Option<Image>,
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
    /// The answer to [`ToApp::SaveStates`]. From then on the program's `State`s stay locked
    /// (`get_mut` blocks) until it exits, so the values saved are the last ones it had.
    StatesSaved {
        /// How many values the file holds.
        saved: usize,
        /// The live values that could not be saved.
        #[serde(default)]
        unsaved: Vec<StateProblem>,
        /// Set when no file could be written at all (then `saved` is 0).
        #[serde(default)]
        error: Option<String>,
    },
    /// What a program started with [`CARRY_ENV`] took from the values carried over: sent once
    /// its runtime has connected, for the `State`s created until then, and again for each one
    /// created later that found a value.
    Carried {
        /// Values taken over.
        carried: usize,
        /// `State`s that started from the value the program gave them instead, although a value
        /// was carried for them (the new type could not read it).
        #[serde(default)]
        fresh: Vec<StateProblem>,
        /// Set when the carried file could not be read at all.
        #[serde(default)]
        error: Option<String>,
    },
}

/// Where a patch linked at a fixed address must be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixed {
    /// Its first address (page-aligned): the address of its first `PT_LOAD` segment.
    pub base: u64,
    /// The length of its image, from `base` to the end of its last `PT_LOAD` segment, rounded
    /// up to a page.
    pub span: u64,
}

/// An address range a program keeps mapped `PROT_NONE` for thin patches linked at a fixed
/// address, below its executable (within reach of the executable's data for 32-bit
/// PC-relative references), and where the executable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// First address of the range (page-aligned).
    pub start: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The load bias of the image the runtime is linked into (the executable, or the library a
    /// host loaded): the run-time address of a symbol of its `.symtab` is its `st_value` plus
    /// this.
    pub load_bias: u64,
}

/// The executable or shared library a process runs hotswap's runtime from (its `Hello`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The file the loader mapped.
    pub path: String,
    /// Its inode when it was mapped (`None` if it could not be read): a patch is linked against
    /// that file only while the path still names it.
    #[serde(default)]
    pub inode: Option<u64>,
    /// A shared library a host loaded (`cargo hotswap run --lib`), not the main executable.
    pub library: bool,
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
        /// Set when the patch was linked to be loaded at a fixed address: the range
        /// `[base, base + span)`, inside the program's [`Reservation`] and not given to an
        /// earlier patch. The program releases exactly that range right before loading it, and
        /// refuses the patch, before any of its code runs, if it was loaded anywhere else.
        #[serde(default)]
        fixed: Option<Fixed>,
    },
    /// Serialise every live `State` into the file `path` (in the CLI's private directory;
    /// written under a temporary name, mode 0600, then renamed) and answer with
    /// [`ToCli::StatesSaved`]. The CLI then stops the program and starts its replacement with
    /// [`CARRY_ENV`] naming the file.
    SaveStates {
        /// Absolute path of the file to write.
        path: String,
    },
}
