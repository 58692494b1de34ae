//! Carry: `State` values handed from a process that `cargo hotswap run` stops for a restart to
//! the process it starts in its place.
//!
//! Old process ([`save`], on [`ToApp::SaveStates`](crate::protocol::ToApp::SaveStates)): every
//! live `State` is locked, serialised by the code that made its value (as a migration does),
//! and left locked for good (frozen), so nothing changes after the snapshot; the values go to a
//! file in the CLI's private directory, written under a temporary name (mode 0600) and renamed.
//!
//! New process ([`take`], from every `State::new`): the file named by [`CARRY_ENV`] is read and
//! removed at the first need (once per process); each `State` takes the next unclaimed value of
//! its type name (and key), read by its own, new, `deserialize`. What was taken is reported to
//! the CLI once the runtime has connected ([`connected`]), whichever comes first.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Runtime;
use crate::__private::StateEntry;
use crate::protocol::{StateProblem, ToCli, CARRY_ENV, CONTROL_ENV};
use crate::state::live_states;

/// How long a save waits, in all, for the program to stop borrowing its states.
const BORROW_WAIT: Duration = Duration::from_secs(1);

/// Version of the file's layout: a file of another version (a hotswap upgrade in between) is
/// not read.
const FORMAT: u32 = 1;

/// The file: every value saved, in the order the old process created its `State`s.
#[derive(Serialize, Deserialize)]
struct CarryFile {
    format: u32,
    states: Vec<Saved>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    /// `TypeLayout::name` of the value's type.
    r#type: String,
    #[serde(default)]
    key: Option<String>,
    /// What the type's `serialize` made of it (JSON text).
    value: String,
}

// ---------------------------------------------------------------------------------------------
// Old process
// ---------------------------------------------------------------------------------------------

/// Saves every live `State` into `path` and freezes it; the answer to `SaveStates`.
pub(crate) fn save(runtime: &Runtime, path: &Path) -> ToCli {
    match save_to(runtime, path) {
        Ok((saved, unsaved)) => ToCli::StatesSaved {
            saved,
            unsaved,
            error: None,
        },
        Err(error) => {
            runtime.warn(&format!("cannot save the states for a restart: {error}"));
            ToCli::StatesSaved {
                saved: 0,
                unsaved: Vec::new(),
                error: Some(error),
            }
        }
    }
}

fn save_to(runtime: &Runtime, path: &Path) -> Result<(usize, Vec<StateProblem>), String> {
    let dir = path
        .parent()
        .filter(|_| path.is_absolute() && path.file_name().is_some())
        .ok_or_else(|| format!("{} is not a file's absolute path", path.display()))?;
    crate::platform::check_private(dir)?;
    // No patch migrates a value while it is being saved (and none can after: frozen values
    // refuse to migrate).
    let _no_patch = runtime
        .applying
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let deadline = Instant::now() + BORROW_WAIT;
    let mut states = Vec::new();
    let mut unsaved = Vec::new();
    for cell in live_states() {
        let entry = cell.entry();
        let problem = |reason: String| StateProblem {
            name: entry.layout.name.as_str().to_owned(),
            key: cell.key().map(str::to_owned),
            reason,
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        // A frozen cell's lock is already ours (a second request), for good.
        if !cell.is_frozen() && !cell.try_acquire_for(wait) {
            unsaved.push(problem(format!(
                "the program kept it borrowed (`State::get_mut`) for more than {} s",
                BORROW_WAIT.as_secs()
            )));
            continue;
        }
        // Held for the rest of the process: the program is about to be stopped, and the value
        // it goes on with must be the one saved.
        cell.freeze();
        let bytes = catch_unwind(AssertUnwindSafe(|| (entry.serialize)(cell.value())))
            .map_err(|_| "its code panicked while serialising it".to_owned())
            .and_then(|r| r.map_err(|e| format!("its code could not serialise it: {e}")))
            .and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| "it serialised to bytes that are not UTF-8".to_owned())
            });
        match bytes {
            Ok(value) => states.push(Saved {
                r#type: entry.layout.name.as_str().to_owned(),
                key: cell.key().map(str::to_owned),
                value,
            }),
            Err(reason) => unsaved.push(problem(reason)),
        }
    }
    let saved = states.len();
    let file = CarryFile {
        format: FORMAT,
        states,
    };
    let bytes = serde_json::to_vec(&file).map_err(|err| err.to_string())?;
    write_atomically(path, &bytes)?;
    runtime.info(&format!(
        "saved {saved} state(s) to {} for a restart; they stay locked until the process exits",
        path.display()
    ));
    Ok((saved, unsaved))
}

/// Writes `bytes` to a temporary file next to `path` (mode 0600, created anew), then renames it
/// over `path`: a reader sees the whole file or none.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&temp, path));
    result.map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write {}: {err}", path.display())
    })
}

// ---------------------------------------------------------------------------------------------
// New process
// ---------------------------------------------------------------------------------------------

/// The values carried into this process, and what is still to be reported to the CLI.
#[derive(Default)]
struct Inbox {
    /// Unclaimed values; a claimed one becomes `None`.
    states: Vec<Option<Saved>>,
    /// Taken since the last report.
    carried: usize,
    fresh: Vec<StateProblem>,
    error: Option<String>,
    /// Whether there is anything to report (a value taken or refused, or a read error).
    pending: bool,
    /// The control channel, once the runtime has connected.
    sink: Option<Arc<Mutex<UnixStream>>>,
}

impl Inbox {
    /// The first unclaimed value of type `name` saved with the same key (or none, as `key`).
    fn claim(&mut self, name: &str, key: Option<&str>) -> Option<Saved> {
        self.states
            .iter_mut()
            .find(|s| {
                s.as_ref()
                    .is_some_and(|s| s.r#type == name && s.key.as_deref() == key)
            })
            .and_then(Option::take)
    }
}

/// Reads the carried file once: only under the CLI, and only in the program's own runtime (a
/// self-contained library never claims values).
fn inbox() -> &'static Mutex<Inbox> {
    static INBOX: OnceLock<Mutex<Inbox>> = OnceLock::new();
    INBOX.get_or_init(|| {
        let mut inbox = Inbox::default();
        if std::env::var_os(CONTROL_ENV).is_some() {
            if let Some(path) = std::env::var_os(CARRY_ENV).map(PathBuf::from) {
                match read(&path) {
                    Ok(states) => inbox.states = states.into_iter().map(Some).collect(),
                    Err(Some(error)) => {
                        inbox.error = Some(error);
                        inbox.pending = true;
                    }
                    // No such file: inherited from a parent that read it (or the CLI gone).
                    Err(None) => {}
                }
            }
        }
        Mutex::new(inbox)
    })
}

fn lock_inbox() -> std::sync::MutexGuard<'static, Inbox> {
    inbox()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The values in `path`, which is removed; `Err(None)` if there is no such file.
fn read(path: &Path) -> Result<Vec<Saved>, Option<String>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(None);
    }
    let result = check_and_read(path);
    let _ = std::fs::remove_file(path);
    result.map_err(|err| Some(format!("{}: {err}", path.display())))
}

fn check_and_read(path: &Path) -> Result<Vec<Saved>, String> {
    // Only this user can have written it: what it holds becomes the program's state.
    let dir = path.parent().ok_or("no directory")?;
    crate::platform::check_private(dir)?;
    crate::platform::check_owned_file(path)?;
    let bytes = std::fs::read(path).map_err(|err| err.to_string())?;
    let file: CarryFile = serde_json::from_slice(&bytes).map_err(|err| err.to_string())?;
    if file.format != FORMAT {
        return Err(format!(
            "it was written by another version of hotswap (format {}, this one reads {FORMAT})",
            file.format
        ));
    }
    Ok(file.states)
}

/// The value a new `State` starts with: `value` (a `Box` of `entry`'s version), or, if a value
/// of its type (and key) was carried over a restart, that one read by `entry` (and `value` is
/// dropped). A carried value `entry` cannot read is dropped instead, and reported.
pub(crate) fn take(entry: &'static StateEntry, key: Option<&str>, value: *mut ()) -> *mut () {
    if super::guest::is_guest() {
        return value;
    }
    let name = entry.layout.name.as_str();
    let claimed = lock_inbox().claim(name, key);
    let Some(saved) = claimed else {
        return value;
    };
    // Not under the inbox's lock: `deserialize` is the program's code.
    let read = catch_unwind(AssertUnwindSafe(|| {
        (entry.deserialize)(saved.value.as_bytes())
    }));
    let (value, fresh) = match read {
        Ok(Ok(carried)) => {
            (entry.drop)(value);
            (carried, None)
        }
        Ok(Err(error)) => (
            value,
            Some(format!(
                "the new code could not read the value carried over ({error})"
            )),
        ),
        Err(_) => (
            value,
            Some("the new code panicked while reading the value carried over".to_owned()),
        ),
    };
    let mut inbox = lock_inbox();
    match fresh {
        None => inbox.carried += 1,
        Some(reason) => {
            if let Some(runtime) = super::RUNTIME.get() {
                runtime.warn(&format!("`{name}` starts fresh: {reason}"));
            }
            inbox.fresh.push(StateProblem {
                name: name.to_owned(),
                key: key.map(str::to_owned),
                reason,
            });
        }
    }
    inbox.pending = true;
    flush(inbox);
    value
}

/// The runtime has connected to the CLI: report what was taken so far, and from now on each
/// `State` that takes a value as it is created.
pub(crate) fn connected(sink: Arc<Mutex<UnixStream>>) {
    let mut inbox = lock_inbox();
    inbox.sink = Some(sink);
    flush(inbox);
}

/// Sends the pending report if the runtime is connected.
fn flush(mut inbox: std::sync::MutexGuard<'static, Inbox>) {
    if !inbox.pending {
        return;
    }
    let Some(sink) = inbox.sink.clone() else {
        return;
    };
    let message = ToCli::Carried {
        carried: std::mem::take(&mut inbox.carried),
        fresh: std::mem::take(&mut inbox.fresh),
        error: inbox.error.take(),
    };
    inbox.pending = false;
    drop(inbox);
    let mut stream = sink.lock().unwrap_or_else(|e| e.into_inner());
    if super::deliver::send(&mut stream, &message).is_err() {
        drop(stream);
        lock_inbox().sink = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carry.json");
        write_atomically(&path, b"{}").unwrap();
        write_atomically(&path, b"{\"again\":1}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"again\":1}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_file_is_read_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carry.json");
        let file = CarryFile {
            format: FORMAT,
            states: vec![Saved {
                r#type: "game::Game".into(),
                key: None,
                value: "{\"counter\":7}".into(),
            }],
        };
        write_atomically(&path, &serde_json::to_vec(&file).unwrap()).unwrap();
        let states = read(&path).unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].value, "{\"counter\":7}");
        assert!(!path.exists(), "the file was not removed once read");
        assert!(matches!(read(&path), Err(None)));
    }

    #[test]
    fn values_are_claimed_in_order_by_type_name_and_key() {
        let saved = |ty: &str, key: Option<&str>, value: &str| {
            Some(Saved {
                r#type: ty.into(),
                key: key.map(Into::into),
                value: value.into(),
            })
        };
        let mut inbox = Inbox {
            states: vec![
                saved("g::A", None, "1"),
                saved("g::B", None, "2"),
                saved("g::A", Some("left"), "3"),
                saved("g::A", None, "4"),
            ],
            ..Inbox::default()
        };
        let value = |s: Option<Saved>| s.map(|s| s.value);
        assert_eq!(
            value(inbox.claim("g::A", Some("left"))).as_deref(),
            Some("3")
        );
        assert_eq!(value(inbox.claim("g::A", Some("left"))), None);
        assert_eq!(value(inbox.claim("g::A", None)).as_deref(), Some("1"));
        assert_eq!(value(inbox.claim("g::A", None)).as_deref(), Some("4"));
        assert_eq!(value(inbox.claim("g::A", None)), None);
        assert_eq!(value(inbox.claim("g::C", None)), None);
        assert_eq!(value(inbox.claim("g::B", None)).as_deref(), Some("2"));
    }

    #[derive(Serialize, Deserialize)]
    struct Counter {
        n: u64,
    }

    impl crate::__private::Described for Counter {
        const LAYOUT: &'static crate::__private::TypeLayout =
            &crate::__private::TypeLayout::new("carry_tests::Counter", 8, 8, &[]);
    }

    impl crate::__private::Migratable for Counter {
        const ENTRY: &'static StateEntry = &StateEntry::of::<Counter>();
    }

    /// The only test that makes `State`s (the registry is the process's).
    #[test]
    fn a_save_writes_every_live_state_in_order_and_freezes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carry.json");
        let first = crate::State::new(Counter { n: 5 });
        let keyed = crate::State::with_key("right", Counter { n: 9 });
        let runtime = Runtime::new();
        let (saved, unsaved) = save_to(&runtime, &path).unwrap();
        assert_eq!((saved, unsaved.len()), (2, 0));
        let states = read(&path).unwrap();
        let found: Vec<(&str, Option<&str>, &str)> = states
            .iter()
            .map(|s| (s.r#type.as_str(), s.key.as_deref(), s.value.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("carry_tests::Counter", None, "{\"n\":5}"),
                ("carry_tests::Counter", Some("right"), "{\"n\":9}"),
            ]
        );
        // Asked again (the states are frozen, their locks already held): the same values.
        let (again, unsaved) = save_to(&runtime, &path).unwrap();
        assert_eq!((again, unsaved.len()), (2, 0));
        assert_eq!(read(&path).unwrap()[0].value, "{\"n\":5}");
        // What the new code does with a value: read it with its own `deserialize`.
        use crate::__private::Migratable;
        let value = (Counter::ENTRY.deserialize)(states[1].value.as_bytes()).unwrap();
        // SAFETY: `deserialize` of `Counter`'s entry returns a `Box<Counter>`.
        assert_eq!(unsafe { &*value.cast::<Counter>() }.n, 9);
        (Counter::ENTRY.drop)(value);
        // Frozen: dropping the states returns (leaving the values to the ending process).
        drop(first);
        drop(keyed);
    }

    #[test]
    fn a_file_of_another_format_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carry.json");
        write_atomically(&path, b"{\"format\":99,\"states\":[]}").unwrap();
        let error = read(&path).err().flatten().unwrap();
        assert!(error.contains("another version of hotswap"), "{error}");
        assert!(!path.exists());
    }
}
