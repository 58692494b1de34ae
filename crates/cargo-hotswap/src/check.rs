//! Check (CLI side): before a patch is delivered, decide whether it can be applied everywhere
//! the changed code runs. Two questions, one module each:
//! - [`crate::layout`]: did a type the running program may hold change its layout (from the
//!   DWARF of the running build and of the patch)? The old code made those values; the new code
//!   would read them with the new layout.
//! - [`crate::reach`]: which functions' code changed, and does code that no patch replaces
//!   (the binary's own, other crates', copies of generic and `#[inline]` items) still reach the
//!   old versions directly? Then part of the program would keep the old code.
//!
//! Either answer is a restart, with a reason naming the function, the type or the caller. The
//! runtime checks signatures and fingerprints again when it loads the patch.
//!
//! Each check compares the build the program runs (its [`Build`], kept when the program was
//! built or the last patch was delivered) with the patch's.

use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::{layout, reach, sources};

/// One build of a hot crate, as the checks compare it: its rlib, or for the program's binary
/// crate its object files (links that no later build overwrites), its parsed sources, and what
/// was read from them (once, on first use; the layouts again only for other roots).
pub struct Build {
    files: Files,
    sources: Vec<syn::File>,
    layout: RefCell<Option<Layout>>,
    code: OnceCell<Result<reach::Code, String>>,
}

/// The layouts read of a build, and the shared statics (sorted, each once) they were read for:
/// they decide which units are read, so other statics mean another reading (which takes the
/// units' readings from this one, see `layout::Snapshot::read`).
struct Layout {
    shared: Vec<String>,
    snapshot: Rc<Result<layout::Snapshot, String>>,
}

impl Build {
    /// Keeps `rlib` (just built, with `sources` as they were compiled) as `keep`.
    ///
    /// A hard link suffices and costs nothing: rustc writes every output to a temporary file
    /// and renames it into place (a test below checks it), so a later build of the crate gives
    /// the rlib a new inode and the link keeps this build's bytes. Where a link is impossible
    /// (another file system), the file is copied.
    pub fn keep(rlib: &Path, keep: &Path, sources: Vec<syn::File>) -> Result<Build, String> {
        let _ = std::fs::remove_file(keep);
        if std::fs::hard_link(rlib, keep).is_err() {
            std::fs::copy(rlib, keep).map_err(|err| {
                format!(
                    "cannot keep a copy of {} as {}: {err}",
                    rlib.display(),
                    keep.display()
                )
            })?;
        }
        Ok(Build::new(Files::Rlib(keep.to_path_buf()), sources))
    }

    /// Keeps a binary crate's `objects` in the directory `keep` (hard links, as for
    /// [`Build::keep`]: rustc writes each object as a new file).
    pub fn keep_objects(
        objects: &[PathBuf],
        keep: &Path,
        sources: Vec<syn::File>,
    ) -> Result<Build, String> {
        let _ = std::fs::remove_dir_all(keep);
        std::fs::create_dir_all(keep)
            .map_err(|err| format!("cannot create {}: {err}", keep.display()))?;
        let mut kept = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let name = object.file_name().map_or_else(
                || format!("{index}.o"),
                |n| n.to_string_lossy().into_owned(),
            );
            let path = keep.join(format!("{index}-{name}"));
            if std::fs::hard_link(object, &path).is_err() {
                std::fs::copy(object, &path)
                    .map_err(|err| format!("cannot keep a copy of {}: {err}", object.display()))?;
            }
            kept.push(path);
        }
        Ok(Build::new(
            Files::Objects(keep.to_path_buf(), kept),
            sources,
        ))
    }

    fn new(files: Files, sources: Vec<syn::File>) -> Build {
        Build {
            files,
            sources,
            layout: RefCell::new(None),
            code: OnceCell::new(),
        }
    }

    /// The layouts of this build, for the shared statics `shared`. `earlier`: a build whose
    /// units' readings may be taken for the units of this one with the same bytes (the running
    /// build, for a patch's: an edit rewrites few of the crate's units).
    fn layout(
        &self,
        crate_name: &str,
        shared: &[String],
        earlier: Option<&Build>,
    ) -> Rc<Result<layout::Snapshot, String>> {
        let mut key = shared.to_vec();
        key.sort_unstable();
        key.dedup();
        if let Some(kept) = &*self.layout.borrow() {
            if kept.shared == key {
                return kept.snapshot.clone();
            }
        }
        let earlier = earlier.map(|build| build.layout(crate_name, shared, None));
        let own = self.layout.borrow_mut().take();
        let mut readings: Vec<&layout::Snapshot> = Vec::new();
        readings.extend(
            own.as_ref()
                .and_then(|own| own.snapshot.as_ref().as_ref().ok()),
        );
        readings.extend(earlier.as_ref().and_then(|e| e.as_ref().as_ref().ok()));
        let snapshot = Rc::new(match &self.files {
            Files::Rlib(rlib) => {
                layout::Snapshot::read(rlib, crate_name, &self.sources, shared, &readings)
            }
            Files::Objects(_, objects) => layout::Snapshot::read_objects(
                objects,
                crate_name,
                &self.sources,
                shared,
                &readings,
            ),
        });
        *self.layout.borrow_mut() = Some(Layout {
            shared: key,
            snapshot: snapshot.clone(),
        });
        snapshot
    }

    /// The kept rlib of a library's build (read for its code while its patch links, see
    /// [`Build::with_code`]).
    pub fn kept_rlib(&self) -> Option<&Path> {
        match &self.files {
            Files::Rlib(rlib) => Some(rlib),
            Files::Objects(..) => None,
        }
    }

    /// This build with its code already read (`reach::Code::read_rlib` of [`Build::kept_rlib`],
    /// on another thread), so the checks do not read it again.
    pub fn with_code(self, code: Result<reach::Code, String>) -> Build {
        let _ = self.code.set(code);
        self
    }

    fn code(&self) -> Result<&reach::Code, String> {
        self.code
            .get_or_init(|| match &self.files {
                Files::Rlib(rlib) => reach::Code::read_rlib(rlib),
                Files::Objects(_, objects) => reach::Code::read_objects(objects),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// What a [`Build`] keeps on disk (and removes when dropped).
enum Files {
    Rlib(PathBuf),
    /// The directory, and the object files in it.
    Objects(PathBuf, Vec<PathBuf>),
}

impl Drop for Build {
    fn drop(&mut self) {
        match &self.files {
            Files::Rlib(rlib) => {
                let _ = std::fs::remove_file(rlib);
            }
            Files::Objects(dir, _) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Build {
    /// Reads what the checks need of this build now (not at the first check): the layouts and
    /// the code. The first error, if any, is kept for the check to report. `earlier`: as for
    /// the layouts (the build a patch is checked against).
    pub fn warm(&self, crate_name: &str, shared: &[String], earlier: Option<&Build>) {
        let _ = self.layout(crate_name, shared, earlier);
        let _ = self.code();
    }
}

/// The code of the running program that no patch of the hot crate replaces (the binary's own
/// objects, and the crates that depend on the hot crate), read once per program build.
pub struct Outside {
    paths: Vec<PathBuf>,
    code: OnceCell<Result<Vec<reach::Code>, String>>,
}

impl Outside {
    /// `paths`: object files and rlibs (see `Linked::outside`).
    pub fn new(paths: Vec<PathBuf>) -> Outside {
        Outside {
            paths,
            code: OnceCell::new(),
        }
    }

    fn code(&self) -> Result<&[reach::Code], String> {
        self.code
            .get_or_init(|| reach::read_outside(&self.paths))
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }
}

/// What the checks found.
pub struct Verdict {
    /// Functions whose code changed, by name (for the report line).
    pub changed: Vec<String>,
    /// Why the patch cannot be applied everywhere it runs; empty if it can.
    pub problems: Vec<String>,
    /// How long the checks took.
    pub took: Duration,
}

/// Compares the running build of `crate_name` with the patch's. `shared_statics`: linkage
/// names of the crate's statics the program shares with patches.
pub fn check(
    crate_name: &str,
    running: &Build,
    patch: &Build,
    outside: &Outside,
    shared_statics: &[String],
) -> Verdict {
    let started = Instant::now();
    let mut problems = Vec::new();
    let old = running.layout(crate_name, shared_statics, None);
    let new = patch.layout(crate_name, shared_statics, Some(running));
    match (old.as_ref(), new.as_ref()) {
        (Ok(old), Ok(new)) if old.has_type_info() && new.has_type_info() => {
            problems.extend(
                layout::compare(old, new, shared_statics)
                    .iter()
                    .map(layout::LayoutChange::describe),
            );
        }
        (Ok(_), Ok(_)) => problems.push(format!(
            "the build of `{crate_name}` has no type information, so the layouts of the types \
             the program holds cannot be compared"
        )),
        (Err(err), _) | (_, Err(err)) => problems.push(format!(
            "cannot compare the layouts of `{crate_name}`: {err}"
        )),
    }
    let mut changed = Vec::new();
    match (running.code(), patch.code(), outside.code()) {
        (Ok(old), Ok(new), Ok(outside)) => {
            let analysis = reach::analyse(
                crate_name,
                matches!(running.files, Files::Objects(..)),
                shared_statics,
                old,
                new,
                outside,
                &running.sources,
                &patch.sources,
            );
            // The first stale function and how many more: one is reason enough.
            problems.extend(analysis.restart_reason());
            changed = analysis.changed;
        }
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => problems.push(format!(
            "cannot tell which code of `{crate_name}` changed: {err}"
        )),
    }
    Verdict {
        changed,
        problems,
        took: started.elapsed(),
    }
}

/// What `cargo hotswap check-builds` compares.
pub struct Standalone {
    pub crate_name: String,
    pub running: PathBuf,
    pub running_root: PathBuf,
    pub patch: PathBuf,
    pub patch_root: PathBuf,
    pub outside: Vec<PathBuf>,
    pub shared: Vec<String>,
}

/// `cargo hotswap check-builds`: the checks on two given builds, with the time of each part:
/// reading the running build (done once per program build by `run`, before a patch), reading
/// the patch's (sources included: what every patch costs), and comparing. Prints one JSON
/// object; exits 0 when the patch could be delivered, 3 when it would restart the program.
pub fn check_builds(args: Standalone) -> i32 {
    let dir = match scratch_dir(&args.patch) {
        Ok(dir) => dir,
        Err(err) => {
            eprintln!("cargo-hotswap: {err}");
            return 1;
        }
    };
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    // The patch's units are read as `run` reads them: those with the running build's bytes
    // are taken from its reading.
    let read = |rlib: &Path,
                root: &Path,
                name: &str,
                earlier: Option<&Build>|
     -> Result<(Build, Duration), String> {
        let started = Instant::now();
        let build = Build::keep(rlib, &dir.join(name), sources::read_crate(root)?)?;
        build.warm(&args.crate_name, &args.shared, earlier);
        Ok((build, started.elapsed()))
    };
    let result = (|| -> Result<serde_json::Value, String> {
        let (running, running_took) =
            read(&args.running, &args.running_root, "running.rlib", None)?;
        let started = Instant::now();
        let outside = Outside::new(args.outside.clone());
        outside.code()?;
        let outside_took = started.elapsed();
        let (patch, patch_took) =
            read(&args.patch, &args.patch_root, "patch.rlib", Some(&running))?;
        let verdict = check(&args.crate_name, &running, &patch, &outside, &args.shared);
        Ok(serde_json::json!({
            "read_running_ms": ms(running_took),
            "read_outside_ms": ms(outside_took),
            "read_patch_ms": ms(patch_took),
            "compare_ms": ms(verdict.took),
            "per_patch_ms": ms(patch_took + verdict.took),
            "changed": verdict.changed,
            "problems": verdict.problems,
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(value) => {
            println!("{value}");
            if value["problems"].as_array().is_some_and(|p| p.is_empty()) {
                0
            } else {
                3
            }
        }
        Err(err) => {
            eprintln!("cargo-hotswap check-builds: {err}");
            1
        }
    }
}

/// A scratch directory for [`check_builds`]'s links, next to `rlib` (a hard link needs the
/// same file system; a copy would be timed as part of the read).
fn scratch_dir(rlib: &Path) -> Result<PathBuf, String> {
    let parent = rlib.parent().unwrap_or(Path::new("."));
    let dir = parent.join(format!(".hotswap-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check-builds` on two real builds of a crate whose type, lent to a hot function,
    /// gained a field: exit code 3 (the patch would restart the program).
    #[test]
    fn check_builds_finds_a_layout_change_between_two_builds() {
        let dir = tempfile::tempdir().unwrap();
        let build = |name: &str, fields: &str| -> (PathBuf, PathBuf) {
            let out = crate::test_rustc::compile(
                &dir.path().join(name),
                &format!(
                    "pub struct Counter {{ pub n: u64, {fields} }}\n\
                     pub fn __hotswap_impl_step(c: &mut Counter) -> u64 {{ c.n }}\n"
                ),
                &["-C", "debuginfo=2"],
                "libgame.rlib",
            );
            let root = dir.path().join(name).join("lib.rs");
            (out, root)
        };
        let (running, running_root) = build("old", "");
        let (patch, patch_root) = build("new", "pub speed: u32");
        let args = |patch: &Path, patch_root: &Path| Standalone {
            crate_name: "game".into(),
            running: running.clone(),
            running_root: running_root.clone(),
            patch: patch.to_path_buf(),
            patch_root: patch_root.to_path_buf(),
            outside: Vec::new(),
            shared: Vec::new(),
        };
        assert_eq!(check_builds(args(&patch, &patch_root)), 3);
        assert_eq!(check_builds(args(&running, &running_root)), 0);
    }

    /// The shared statics choose the units read, so a build's layouts are read again for
    /// others (a static shared only from the second check on is described), taking what the
    /// first reading read; for the same statics they are kept.
    #[test]
    fn the_layouts_are_read_again_for_other_shared_statics() {
        let dir = tempfile::tempdir().unwrap();
        let incremental = format!("incremental={}", dir.path().join("inc").display());
        let rlib = crate::test_rustc::compile(
            &dir.path().join("src"),
            "pub mod limits {\n\
                 pub struct Limit { pub most: u64 }\n\
                 pub static LIMIT: Limit = Limit { most: 9 };\n\
             }\n\
             pub mod play {\n\
                 pub struct Counter { pub n: u64 }\n\
                 pub fn __hotswap_impl_step(c: &mut Counter) -> u64 { c.n }\n\
             }\n",
            &[
                "-C",
                "debuginfo=2",
                "-C",
                &incremental,
                "-C",
                "codegen-units=16",
            ],
            "libgame.rlib",
        );
        let limit = {
            use object::{Object, ObjectSymbol};
            let data = std::fs::read(&rlib).unwrap();
            let archive = object::read::archive::ArchiveFile::parse(&*data).unwrap();
            archive
                .members()
                .map(Result::unwrap)
                .filter(|m| m.name().ends_with(b".o"))
                .find_map(|m| {
                    let file = object::File::parse(m.data(&*data).unwrap()).unwrap();
                    file.symbols()
                        .filter(|s| !s.is_undefined())
                        .filter_map(|s| s.name().ok().map(str::to_owned))
                        .find(|name| name.contains("6limits5LIMIT"))
                })
                .expect("LIMIT is defined")
        };
        let build = Build::keep(&rlib, &dir.path().join("kept.rlib"), Vec::new()).unwrap();
        let described = |snapshot: &layout::Snapshot| {
            snapshot
                .statics()
                .any(|(_, path)| path == "game::limits::LIMIT")
        };
        let first = build.layout("game", &[], None);
        let first = first.as_ref().as_ref().unwrap();
        assert!(!described(first), "the unit of LIMIT was read without it");
        let shared = std::slice::from_ref(&limit);
        let second = build.layout("game", shared, None);
        let read = second.as_ref().as_ref().unwrap();
        assert!(described(read), "LIMIT, shared now, is not described");
        let (fresh, taken) = read.units_read();
        assert!(fresh >= 1 && taken >= 1, "read {fresh}, taken {taken}");
        assert!(Rc::ptr_eq(&second, &build.layout("game", shared, None)));
    }

    /// What [`Build::keep`] relies on: a rebuild replaces the rlib by a new file.
    #[test]
    fn a_rebuild_leaves_a_kept_rlib_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("lib.rs");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let build = |body: &str| {
            std::fs::write(&source, format!("pub fn answer() -> u32 {{ {body} }}")).unwrap();
            let status = std::process::Command::new(&rustc)
                .args([
                    "--crate-type",
                    "lib",
                    "--crate-name",
                    "kept",
                    "--edition",
                    "2021",
                ])
                .arg("-C")
                .arg(format!("incremental={}", dir.path().join("inc").display()))
                .arg("--out-dir")
                .arg(dir.path())
                .arg(&source)
                .status()
                .unwrap();
            assert!(status.success());
        };
        build("1");
        let rlib = dir.path().join("libkept.rlib");
        let before = std::fs::read(&rlib).unwrap();
        let kept = Build::keep(&rlib, &dir.path().join("kept.rlib"), Vec::new()).unwrap();
        build("2");
        assert_ne!(
            std::fs::read(&rlib).unwrap(),
            before,
            "the rebuild changed nothing"
        );
        let Files::Rlib(path) = &kept.files else {
            panic!("an rlib kept as objects")
        };
        let path = path.clone();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        drop(kept);
        assert!(!path.exists(), "a dropped build leaves its file behind");
    }
}
