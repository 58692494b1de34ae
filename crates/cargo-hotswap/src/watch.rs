//! Watch: notice saved source files and sort them into what can be patched and what needs a
//! restart.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::project::Project;
use crate::run::Event;

/// What a set of changed files asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Source files of these hot crates (by key, see `HotCrate::key`) changed.
    Patch(Vec<String>),
    /// Something that no patch can carry changed; the reason.
    Restart(String),
}

/// How far the save of a file has got, from the event that reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// The file is being replaced (created or written and not yet closed, renamed away,
    /// removed): more events are likely to follow.
    Writing,
    /// The file is whole: renamed into place (how most editors save), closed after writing,
    /// or only its metadata changed.
    Written,
}

impl Save {
    /// `None` for events that say nothing about a file's contents (opened, read) and for the
    /// pair of a rename, whose halves come as events of their own.
    fn of(kind: &EventKind) -> Option<Save> {
        match kind {
            // Renamed into place, or closed after writing: whole. A change of metadata alone
            // (`touch`) leaves the bytes as they are.
            EventKind::Modify(ModifyKind::Name(RenameMode::To))
            | EventKind::Modify(ModifyKind::Metadata(_))
            | EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Save::Written),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => None,
            // Created, written, renamed away or removed: an editor that moves the old file
            // aside or deletes it writes the new one next, so the save goes on (and, if
            // nothing follows, ends after `DEBOUNCE`).
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
                Some(Save::Writing)
            }
            _ => None,
        }
    }
}

/// After the last event of a save, how long to wait for more before building, when every
/// file is whole: editors that save several files at once rename them one right after the
/// other.
pub const SETTLE: Duration = Duration::from_millis(2);
/// ... and when a file is still being written: its close is due (an editor writing in place),
/// or, for a writer that never closes, this much quiet ends the save.
pub const DEBOUNCE: Duration = Duration::from_millis(15);

/// The files of one save, gathered from the watcher's events until it has settled.
#[derive(Default)]
pub struct Gather {
    paths: Vec<PathBuf>,
    writing: HashSet<PathBuf>,
}

impl Gather {
    pub fn add(&mut self, paths: Vec<PathBuf>, save: Save) {
        for path in paths {
            match save {
                Save::Writing => {
                    self.writing.insert(path.clone());
                }
                Save::Written => {
                    self.writing.remove(&path);
                }
            }
            if !self.paths.contains(&path) {
                self.paths.push(path);
            }
        }
    }

    /// How long to wait for the next event before the save counts as done. `hosts`: the
    /// patch goes to processes that are not ours (`run --lib`), each of which connects when it
    /// first calls into the library, in its own time: the full [`DEBOUNCE`] then, so that one
    /// connecting around the save is there when the patch is built.
    pub fn quiet(&self, hosts: bool) -> Duration {
        if self.writing.is_empty() && !hosts {
            SETTLE
        } else {
            DEBOUNCE
        }
    }

    /// The changed files, sorted.
    pub fn finish(mut self) -> Vec<PathBuf> {
        self.paths.sort();
        self.paths
    }
}

pub fn start(
    project: &Project,
    events: Sender<Event>,
) -> Result<notify::RecommendedWatcher, String> {
    let target = project.target_dir.parent().map(Path::to_path_buf);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let Some(save) = Save::of(&event.kind) else {
            return;
        };
        let paths: Vec<PathBuf> = event
            .paths
            .into_iter()
            .filter(|p| relevant(p) && !target.as_ref().is_some_and(|t| p.starts_with(t)))
            .collect();
        if !paths.is_empty() {
            let _ = events.send(Event::Changed(paths, save));
        }
    })
    .map_err(|err| format!("cannot watch files: {err}"))?;
    let mut recursive: Vec<PathBuf> = Vec::new();
    let mut flat: Vec<PathBuf> = vec![project.root.clone()];
    for member in &project.members {
        if let Some(dir) = member.manifest_path.parent() {
            flat.push(dir.to_path_buf());
        }
        for target in &member.targets {
            if let Some(dir) = target.src_path.parent() {
                recursive.push(dir.to_path_buf());
            }
        }
    }
    recursive.sort();
    recursive.dedup();
    // Drop directories inside another watched one.
    let nested: Vec<PathBuf> = recursive
        .iter()
        .filter(|d| recursive.iter().any(|o| o != *d && d.starts_with(o)))
        .cloned()
        .collect();
    recursive.retain(|d| !nested.contains(d));
    flat.sort();
    flat.dedup();
    for dir in &recursive {
        watcher
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|err| format!("cannot watch {}: {err}", dir.display()))?;
    }
    for dir in flat.iter().filter(|d| !recursive.contains(d)) {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|err| format!("cannot watch {}: {err}", dir.display()))?;
    }
    Ok(watcher)
}

fn relevant(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.ends_with('~') {
        return false;
    }
    name.ends_with(".rs") || name == "Cargo.toml" || name == "Cargo.lock"
}

/// Which hot crates each source file was compiled into, as rustc's dep-info of the builds the
/// program runs says (see [`crate::capture::Invocation::source_files`]): a file under `src/`
/// may belong to the library, to `src/main.rs`'s crate, or to both (a module both declare).
#[derive(Default)]
pub struct Owners(HashMap<PathBuf, Vec<String>>);

impl Owners {
    /// `files`: for each hot crate (by key, see `HotCrate::key`), its source files.
    pub fn new(files: impl IntoIterator<Item = (String, Vec<PathBuf>)>) -> Owners {
        let mut map: HashMap<PathBuf, Vec<String>> = HashMap::new();
        for (key, paths) in files {
            for path in paths {
                let keys = map.entry(path).or_default();
                if !keys.contains(&key) {
                    keys.push(key.clone());
                }
            }
        }
        Owners(map)
    }
}

/// Sorts changed files: sources of hot crates can be patched; manifests, the lock file, build
/// scripts and sources of other crates need a rebuild and restart. A file is a hot crate's when
/// its last build read it (`owners`), or else when it lies in the crate's directories (a new
/// file, or no build yet) and is not the root of another target.
pub fn classify(project: &Project, owners: &Owners, paths: &[PathBuf]) -> Change {
    let mut hot: Vec<String> = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let shown = path.strip_prefix(&project.root).unwrap_or(path).display();
        if name == "Cargo.toml" || name == "Cargo.lock" {
            return Change::Restart(format!("{shown} changed (dependencies may differ)"));
        }
        if name == "build.rs" {
            return Change::Restart(format!("{shown} changed (build script)"));
        }
        let built: Vec<String> = owners
            .0
            .get(path)
            .map(|keys| {
                keys.iter()
                    .filter(|key| project.hot_crate(key).is_some())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let owners: Vec<String> = if !built.is_empty() {
            built
        } else if let Some(program) = project.hot_program().filter(|c| c.root == *path) {
            vec![program.key()]
        } else {
            project
                .hot_libraries()
                .find(|c| {
                    c.source_dirs.iter().any(|d| path.starts_with(d))
                        && !is_bin_source(project, path)
                })
                .map(|c| vec![c.key()])
                .unwrap_or_default()
        };
        if owners.is_empty() {
            return Change::Restart(format!(
                "{shown} changed (not in a crate with #[hot] functions)"
            ));
        }
        for key in owners {
            if !hot.contains(&key) {
                hot.push(key);
            }
        }
    }
    Change::Patch(hot)
}

/// `src/main.rs`, `src/bin/*` and the like belong to the program, not to the hot library.
fn is_bin_source(project: &Project, path: &Path) -> bool {
    project.members.iter().flat_map(|p| &p.targets).any(|t| {
        let is_lib = t.kind.iter().any(|k| k.ends_with("lib"));
        if is_lib {
            return false;
        }
        if path == t.src_path {
            return true;
        }
        // Files under a binary's own directory (src/bin/name/..., examples/...).
        t.src_path
            .parent()
            .is_some_and(|dir| dir.file_name().is_some_and(|n| n != "src") && path.starts_with(dir))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        PathBuf::from(format!("/w/src/{name}"))
    }

    #[test]
    fn a_rename_into_place_settles_at_once_and_a_write_in_place_waits_for_its_close() {
        // An editor that writes a temporary file and renames it over the source.
        let mut renamed = Gather::default();
        renamed.add(vec![path("lib.rs")], Save::Written);
        assert_eq!(renamed.quiet(false), SETTLE);
        assert_eq!(
            renamed.quiet(true),
            DEBOUNCE,
            "library hosts connect in their own time"
        );

        // One that truncates and writes the file itself: created/written, then closed.
        let mut in_place = Gather::default();
        in_place.add(vec![path("lib.rs")], Save::Writing);
        assert_eq!(in_place.quiet(false), DEBOUNCE);
        in_place.add(vec![path("other.rs")], Save::Written);
        assert_eq!(in_place.quiet(false), DEBOUNCE, "lib.rs is still open");
        in_place.add(vec![path("lib.rs")], Save::Written);
        assert_eq!(in_place.quiet(false), SETTLE);
        in_place.add(vec![path("lib.rs")], Save::Writing);
        assert_eq!(
            in_place.quiet(false),
            DEBOUNCE,
            "written again after its close"
        );
        assert_eq!(in_place.finish(), vec![path("lib.rs"), path("other.rs")]);
    }

    #[test]
    fn events_are_read_as_the_save_they_belong_to() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind};
        let of = |kind| Save::of(&kind);
        assert_eq!(of(EventKind::Create(CreateKind::File)), Some(Save::Writing));
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            Some(Save::Writing)
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Close(AccessMode::Write))),
            Some(Save::Written)
        );
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Name(RenameMode::To))),
            Some(Save::Written)
        );
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))),
            Some(Save::Written)
        );
        assert_eq!(of(EventKind::Remove(RemoveKind::File)), Some(Save::Writing));
        // vim's default: the old file is renamed to a backup, then the new one is written.
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Name(RenameMode::From))),
            Some(Save::Writing)
        );
        assert_eq!(
            of(EventKind::Modify(ModifyKind::Name(RenameMode::Both))),
            None
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Open(AccessMode::Any))),
            None
        );
        assert_eq!(
            of(EventKind::Access(AccessKind::Close(AccessMode::Read))),
            None
        );
    }
}
