//! Watch (full library mode): notice that a hot crate's library was rebuilt.
//!
//! Events for the library's file restart a short settle timer; when the file has been quiet
//! for [`SETTLE`], it is handed to the pipeline. A writer that is still busy keeps producing
//! events, and a file left incomplete is refused by the check and retried on its next change.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};

use super::{PatchKind, Runtime};

/// How long a library must stay unchanged before it is loaded.
pub(crate) const SETTLE: Duration = Duration::from_millis(8);

/// How long to wait before trying again a file that looked incomplete and has not changed
/// since; the second attempt reports what is wrong.
pub(crate) const RETRY: Duration = Duration::from_millis(250);

/// What identifies one version of a file, to skip events that changed nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Identity {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn identity(path: &Path) -> Option<Identity> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Identity {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: crate::platform::inode(&meta),
    })
}

pub(crate) fn spawn(runtime: &'static Runtime, libraries: Vec<PathBuf>) {
    if libraries.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("hotswap-watch".into())
        .spawn(move || watch(runtime, libraries));
    if let Err(err) = spawned {
        runtime.warn(&format!("cannot start the library watcher: {err}"));
    }
}

fn watch(runtime: &'static Runtime, libraries: Vec<PathBuf>) {
    let (sender, events) = mpsc::channel();
    let mut watcher = match notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    }) {
        Ok(watcher) => watcher,
        Err(err) => return runtime.warn(&format!("cannot watch for rebuilt libraries: {err}")),
    };
    let dirs: HashSet<&Path> = libraries.iter().filter_map(|lib| lib.parent()).collect();
    for dir in dirs {
        if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            runtime.warn(&format!("cannot watch {}: {err}", dir.display()));
        }
    }
    // The library present at start is the code the program already runs. Read before saying
    // "watching": a library written after that message must count as a change (read after
    // it, a write in between would be taken for the program's own code and never loaded).
    let mut seen: HashMap<PathBuf, Option<Identity>> = libraries
        .iter()
        .map(|lib| (lib.clone(), identity(lib)))
        .collect();
    for library in &libraries {
        runtime.info(&format!("watching {}", library.display()));
    }
    let mut pending: HashSet<PathBuf> = HashSet::new();
    // Files that looked incomplete: the next attempt reports whatever it finds.
    let mut retry: HashSet<PathBuf> = HashSet::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let wait = deadline.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(Instant::now())
        });
        match events.recv_timeout(wait) {
            Ok(Ok(event)) => {
                if !relevant(&event.kind) {
                    continue;
                }
                for path in event.paths {
                    if seen.contains_key(&path) {
                        // A new change: a writer is busy, so be patient again.
                        retry.remove(&path);
                        pending.insert(path);
                        deadline = Some(Instant::now() + SETTLE);
                    }
                }
            }
            Ok(Err(err)) => runtime.warn(&format!("file watcher: {err}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                deadline = None;
                let mut again = Vec::new();
                for path in pending.drain() {
                    let now = identity(&path);
                    let last = seen.get_mut(&path).expect("only watched paths are pending");
                    let retrying = retry.remove(&path);
                    if now.is_none() || (now == *last && !retrying) {
                        continue;
                    }
                    match runtime.attempt(&path, PatchKind::Full, !retrying) {
                        // Looks half-written: try once more if nothing else happens to it.
                        Err(None) => again.push(path),
                        _ => *last = now,
                    }
                }
                if !again.is_empty() {
                    retry.extend(again.iter().cloned());
                    pending.extend(again);
                    deadline = Some(Instant::now() + RETRY);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn relevant(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}
