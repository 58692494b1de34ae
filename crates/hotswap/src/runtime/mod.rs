//! The runtime linked into a hot-mode program.
//!
//! Data flows one way, one module a step:
//! [`watch`] (a rebuilt library appears) or [`deliver`] (the CLI sends a thin patch) →
//! [`stage`] (copied into a private directory) → [`check`] (a complete shared object for this
//! machine, with a manifest this program accepts) → [`load`] (`dlopen`, file removed) →
//! [`swap`] (every slot of the patch, or none) → [`crate::events`] (version, waiters,
//! subscribers) and back to the CLI. Across a restart by the CLI, [`carry`] hands the program's
//! `State` values from the old process to the new one. For thin patches linked at a fixed
//! address, [`reserve`] keeps the address space they are loaded at.

pub(crate) mod carry;
pub(crate) mod check;
pub(crate) mod deliver;
pub(crate) mod guest;
pub(crate) mod load;
pub(crate) mod migrate;
pub(crate) mod reserve;
pub(crate) mod stage;
pub(crate) mod swap;
pub(crate) mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::__private::{Entry, ENTRIES};
use crate::events::{Event, Events};
use crate::protocol::Fixed;

pub use crate::protocol::CONTROL_ENV;
/// Environment variable overriding where full library mode looks for `lib<crate>.so`.
pub const LIB_DIR_ENV: &str = "HOTSWAP_LIB_DIR";
/// Environment variable that makes the runtime print its messages to stderr.
pub const LOG_ENV: &str = "HOTSWAP_LOG";
/// Environment variable choosing the panic policy: `rollback` or `propagate` (the default).
pub const ON_PANIC_ENV: &str = "HOTSWAP_ON_PANIC";

/// Whether a panic in patched code rolls its patch back (see [`crate::PanicPolicy`]).
static ROLL_BACK: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_roll_back(on: bool) {
    ROLL_BACK.store(on, Ordering::Release);
}

/// A patch that was swapped in, kept so that it can be rolled back.
struct Record {
    version: u64,
    names: Vec<&'static str>,
    written: Vec<swap::Written>,
    rolled_back: bool,
}

/// What the runtime keeps for the life of the process.
pub(crate) struct Runtime {
    /// The host's `#[hot]` functions by full name.
    registry: HashMap<&'static str, &'static Entry>,
    /// Names two `#[hot]` functions share (e.g. one nested in a function body): never swapped.
    ambiguous: Vec<&'static str>,
    /// Where patches are copied before they are loaded; this process's alone.
    private_dir: Result<PathBuf, String>,
    /// One patch at a time.
    applying: Mutex<()>,
    /// Every patch swapped in, oldest first.
    history: Mutex<Vec<Record>>,
    verbose: bool,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Patched code panicked (called from its guard, in the program's runtime).
#[inline(never)]
pub(crate) fn panicked(function: &str, message: &str) {
    if let Some(runtime) = RUNTIME.get() {
        runtime.roll_back(function, message);
    }
}

/// Patched code panicked behind the guarded shim at `shim` (called from the shim's guard, in
/// the program's runtime): the function is the one a patch pointed at that shim.
#[inline(never)]
pub(crate) fn panicked_in(shim: *const (), message: &str) {
    if let Some(runtime) = RUNTIME.get() {
        if let Some(function) = runtime.guarded_function(shim) {
            runtime.roll_back(function, message);
        }
    }
}

pub(crate) fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(Events::default)
}

/// Starts the runtime once. Inside a self-contained patch library (a guest) this does nothing:
/// the host's runtime is the only one.
pub(crate) fn start() {
    if guest::is_guest() {
        return;
    }
    let mut first = false;
    let runtime = RUNTIME.get_or_init(|| {
        first = true;
        Runtime::new()
    });
    if first {
        runtime.launch();
    }
}

/// How a patch shares the host's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// A self-contained library with its own `std` (full library mode): call through the guard.
    Full,
    /// A thin patch whose undefined symbols resolve against the host: call directly.
    Thin,
}

/// How long each step of `apply` took, for the verbose log.
struct Phases {
    last: Instant,
    text: String,
}

impl Phases {
    fn new(started: Instant) -> Self {
        Phases {
            last: started,
            text: String::new(),
        }
    }

    fn mark(&mut self, phase: &str) {
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
        if !self.text.is_empty() {
            self.text.push_str(", ");
        }
        self.text.push_str(&format!("{phase} {ms:.2} ms"));
    }
}

/// A patch swapped in.
pub(crate) struct Applied {
    pub version: u64,
    pub functions: usize,
    /// `State` values migrated to a new layout.
    pub states: usize,
    pub took: Duration,
}

impl Runtime {
    fn new() -> Self {
        if let Ok(policy) = std::env::var(ON_PANIC_ENV) {
            set_roll_back(policy.eq_ignore_ascii_case("rollback"));
        }
        let mut registry = HashMap::new();
        let mut ambiguous = Vec::new();
        for entry in ENTRIES.iter() {
            if registry.insert(entry.name.as_str(), entry).is_some() {
                ambiguous.push(entry.name.as_str());
            }
            // Every slot starts at its function's boot shim (`shims.rs`), which starts the
            // runtime: from now on calls go straight to the implementation. No patch can have
            // been swapped in yet (patches arrive only after `launch`), so the slot holds the
            // boot shim; a thread still inside it runs the implementation too.
            entry.slot.set(entry.implementation);
        }
        let runtime = Runtime {
            registry,
            ambiguous,
            private_dir: crate::platform::private_dir(&std::process::id().to_string()),
            applying: Mutex::new(()),
            history: Mutex::new(Vec::new()),
            verbose: std::env::var_os(LOG_ENV).is_some_and(|v| !v.is_empty() && v != "0"),
        };
        for name in &runtime.ambiguous {
            runtime.warn(&format!(
                "two `#[hot]` functions are named `{name}` (one may be nested in a function \
                 body); patches that change them are refused: rename one"
            ));
        }
        runtime
    }

    fn launch(&'static self) {
        if let Some(socket) = std::env::var_os(CONTROL_ENV) {
            deliver::spawn(self, PathBuf::from(socket));
        } else {
            watch::spawn(self, self.library_paths());
        }
    }

    /// The libraries full library mode watches: `lib<crate>.so` for every crate with `#[hot]`
    /// functions, next to the executable unless `HOTSWAP_LIB_DIR` says otherwise.
    fn library_paths(&self) -> Vec<PathBuf> {
        let dir = std::env::var_os(LIB_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(Path::to_path_buf))
            });
        let Some(dir) = dir else {
            self.warn("cannot find the executable's directory; set HOTSWAP_LIB_DIR");
            return Vec::new();
        };
        let mut crates: Vec<&str> = self
            .registry
            .keys()
            .map(|name| name.split("::").next().unwrap_or(name))
            .collect();
        crates.sort_unstable();
        crates.dedup();
        crates
            .into_iter()
            .map(|name| dir.join(crate::platform::library_file_name(name)))
            .collect()
    }

    /// The whole pipeline for one file: stage, check, load, swap, report. On any failure the
    /// running code is left as it was and the reason is reported. With `fixed` (a thin patch
    /// from the CLI), the patch was linked to be loaded at that range of the program's
    /// reservation (see [`reserve`]): the range is checked before anything of the patch is
    /// mapped, released right before `dlopen`, and the patch is refused if the loader put it
    /// anywhere else.
    pub(crate) fn apply(
        &self,
        file: &Path,
        kind: PatchKind,
        fixed: Option<Fixed>,
    ) -> Result<Applied, String> {
        self.attempt_at(file, kind, fixed, false)
            .map_err(|r| r.unwrap_or_default())
    }

    /// Like [`apply`](Self::apply) with no fixed address, but a file that looks incomplete (a
    /// writer may still be busy) is not reported: `Err(None)`, and the caller tries again later.
    pub(crate) fn attempt(
        &self,
        file: &Path,
        kind: PatchKind,
        quiet_if_incomplete: bool,
    ) -> Result<Applied, Option<String>> {
        self.attempt_at(file, kind, None, quiet_if_incomplete)
    }

    fn attempt_at(
        &self,
        file: &Path,
        kind: PatchKind,
        fixed: Option<Fixed>,
        quiet_if_incomplete: bool,
    ) -> Result<Applied, Option<String>> {
        let _one_at_a_time = self
            .applying
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = Instant::now();
        let source = file.display().to_string();
        let result = self.apply_locked(file, kind, fixed, started);
        if let Err(reason) = &result {
            if quiet_if_incomplete && reason.contains(check::INCOMPLETE) {
                return Err(None);
            }
        }
        match &result {
            Ok(applied) => {
                self.info(&format!(
                    "reloaded {source}: {} function(s), {} state(s) migrated, version {}, {:.2} ms",
                    applied.functions,
                    applied.states,
                    applied.version,
                    applied.took.as_secs_f64() * 1e3
                ));
                events().publish(Event::Reloaded {
                    version: applied.version,
                    source,
                    functions: applied.functions,
                    states: applied.states,
                    took: applied.took,
                });
            }
            Err(reason) => {
                self.warn(&format!("refused {source}: {reason}"));
                events().publish(Event::Refused {
                    source,
                    reason: reason.clone(),
                });
            }
        }
        result.map_err(Some)
    }

    fn apply_locked(
        &self,
        file: &Path,
        kind: PatchKind,
        fixed: Option<Fixed>,
        started: Instant,
    ) -> Result<Applied, String> {
        let mut phases = Phases::new(started);
        // Before anything of the patch is read or mapped.
        let claim = fixed.map(reserve::claim).transpose()?;
        let private_dir = self.private_dir.as_ref().map_err(Clone::clone)?;
        let in_place = match kind {
            PatchKind::Thin => stage::in_place(file),
            PatchKind::Full => None,
        };
        let staged = match in_place {
            Some(staged) => staged,
            None => stage::copy(file, private_dir)?,
        };
        phases.mark("stage");
        let manifest = check::file(staged.path())?;
        if let Some(claim) = &claim {
            claim.holds(&manifest.image)?;
        }
        phases.mark("check file");
        let library = load::open(staged, claim)?;
        phases.mark("dlopen");
        let entries = library.entries(&manifest)?;
        let states = library.state_entries(&manifest)?;
        phases.mark("entries");
        if library.is_guest() {
            // Before any of the library's code runs, migrations included.
            guest::init_guest(&library)?;
        }
        let mut migration = migrate::plan(&states)?;
        let plan = check::compatible(&self.registry, &entries, &migration.type_names())?;
        phases.mark("check signatures");
        if let Some(name) = plan
            .swaps
            .iter()
            .map(|s| s.name)
            .find(|n| self.ambiguous.contains(n))
        {
            return Err(format!(
                "two `#[hot]` functions of this program are named `{name}`, so the patch cannot \
                 tell which to replace; rename one and restart"
            ));
        }
        migration.prepare()?;
        phases.mark("migrate");
        let written = swap::apply(&plan, kind, ROLL_BACK.load(Ordering::Acquire));
        // A function new in the patch has only the patch's own slot, which starts at its boot
        // shim like any slot (`shims.rs`); the program's runtime, started long ago, points it
        // at the implementation here, so the patch's code calls it directly.
        for entry in entries
            .iter()
            .filter(|e| !self.registry.contains_key(e.name.as_str()))
        {
            entry.slot.set(entry.implementation);
        }
        let functions = written.len();
        let states = migration.commit();
        phases.mark("swap");
        tracing::debug!(target: "hotswap", "phases: {}", phases.text);
        if self.verbose {
            eprintln!("[hotswap] phases: {}", phases.text);
        }
        let version = events().bump();
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Record {
                version,
                names: plan.swaps.iter().map(|s| s.name).collect(),
                written,
                rolled_back: false,
            });
        Ok(Applied {
            version,
            functions,
            states,
            took: started.elapsed(),
        })
    }

    /// Rolls back the newest live patch that contains `function`, under the roll-back policy.
    /// The name of the function whose slot a patch pointed at the guarded shim `shim`.
    fn guarded_function(&self, shim: *const ()) -> Option<&'static str> {
        let history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        history.iter().rev().find_map(|record| {
            let i = record.written.iter().position(|w| w.after == shim)?;
            record.names.get(i).copied()
        })
    }

    fn roll_back(&self, function: &str, message: &str) {
        if !ROLL_BACK.load(Ordering::Acquire) {
            return;
        }
        let mut history = self
            .history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(record) = history
            .iter_mut()
            .rev()
            .find(|r| !r.rolled_back && r.names.contains(&function))
        else {
            return;
        };
        let restored = swap::undo(&record.written);
        record.rolled_back = true;
        let from = record.version;
        drop(history);
        let version = events().bump();
        self.warn(&format!(
            "`{function}` panicked in version {from} ({message}); rolled {restored} function(s) \
             of that patch back to the code before it (now version {version})"
        ));
        events().publish(Event::RolledBack {
            version,
            from,
            function: function.to_owned(),
            message: message.to_owned(),
        });
    }

    pub(crate) fn info(&self, message: &str) {
        tracing::info!(target: "hotswap", "{message}");
        if self.verbose {
            eprintln!("[hotswap] {message}");
        }
    }

    pub(crate) fn warn(&self, message: &str) {
        tracing::warn!(target: "hotswap", "{message}");
        if self.verbose {
            eprintln!("[hotswap] {message}");
        }
    }
}
