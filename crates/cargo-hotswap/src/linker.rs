//! The linker role: links the program's executable so that patches can link against it.
//!
//! Two changes to the command rustc gives the C compiler driver:
//! - every rlib of the hot crates and of everything they depend on is linked whole
//!   (`--whole-archive`), including ones rustc left out because the program does not use them
//!   yet, so a patch may call a dependency function the program never called;
//! - every global symbol is exported (`--export-dynamic`), so a patch's undefined symbols
//!   resolve against the running program: one logger, one allocator, one copy of each static.
//!
//! A library that a foreign host loads (`run --lib`: the package's `cdylib`) is linked the
//! same way, except that instead of `--export-dynamic` rustc's version script (which exports
//! only the `#[no_mangle]` items) is replaced by one that exports every global symbol: a patch
//! is linked against the library itself and resolves its symbols there.
//!
//! It also keeps what [`crate::reach`] needs to know what else runs the hot crates' code: the
//! program's own object files (rustc deletes them after linking) and the list of linked rlibs
//! of crates that depend on a hot crate.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::capture::{self, Invocation, CAPTURE_DIR_ENV, HOT_CRATES_ENV, ROLE_ENV};

pub const ROLE_LINKER: &str = "linker";
/// Set when rustc runs again to build a thin patch of the program's binary crate: the linker
/// role then keeps the crate's object files in this directory (listed in
/// [`PATCH_OBJECTS_LIST`]) and links nothing (see [`keep_for_patch`]).
pub const PATCH_OBJECTS_ENV: &str = "HOTSWAP_PATCH_OBJECTS";
/// The list of kept objects, in [`PATCH_OBJECTS_ENV`]'s directory (JSON, file names).
pub const PATCH_OBJECTS_LIST: &str = "objects.json";
/// The linker rustc would have used.
const REAL_LINKER_ENV: &str = "HOTSWAP_REAL_LINKER";

/// Written next to the captures after each link: which recorded commands built the hot crates
/// of which executable, and with which linker. Patches are built from these.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Linked {
    /// The executable, or the shared library of `run --lib`.
    pub executable: PathBuf,
    pub linker: String,
    /// Capture of each hot crate, by crate name.
    pub hot: Vec<(String, Invocation)>,
    /// The program's own object files (its crate's codegen units and whatever else rustc put on
    /// the link line outside an rlib), kept in [`Linked::objects_dir`].
    #[serde(default)]
    pub objects: Vec<PathBuf>,
    /// Rlibs on the link line of crates that depend on a hot crate, each with the hot crates it
    /// depends on (directly or not). A hot crate depending on another is listed for that one.
    #[serde(default)]
    pub dependents: Vec<(PathBuf, Vec<String>)>,
    /// The capture of the executable's own crate when it is hot (`HOTSWAP_HOT_PROGRAM`): its
    /// patches replay this command.
    #[serde(default)]
    pub program: Option<Invocation>,
}

/// The key of an executable or library name (`my-tool`, `libgame.so`) in the captures
/// directory.
fn key(name: &str) -> String {
    name.strip_suffix(".so").unwrap_or(name).replace('-', "_")
}

/// The prefix rustc gives the codegen units of the crate it links into `output`:
/// `<crate><extra>.` — the executable's file name, or the library's without `lib` and `.so`.
fn object_prefix(output: &Path) -> String {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".so")
        .and_then(|n| n.strip_prefix("lib"))
        .unwrap_or(&name);
    format!("{stem}.")
}

impl Linked {
    pub fn path(capture_dir: &Path, executable_name: &str) -> PathBuf {
        let key = key(executable_name);
        capture_dir.join(format!("linked-{key}.json.link"))
    }

    /// Where the program's object files are kept (one set per executable, the last link's).
    pub fn objects_dir(capture_dir: &Path, executable_name: &str) -> PathBuf {
        let key = key(executable_name);
        capture_dir.join(format!("objects-{key}"))
    }

    /// The code the executable links that may refer to hot crate `hot_crate` and is not that
    /// crate: the program's objects, then the rlibs of the crates depending on it (see
    /// `reach::read_outside`).
    pub fn outside(&self, hot_crate: &str) -> Vec<PathBuf> {
        let dependents = self
            .dependents
            .iter()
            .filter(|(_, hot)| hot.iter().any(|name| name == hot_crate))
            .map(|(rlib, _)| rlib);
        self.objects.iter().chain(dependents).cloned().collect()
    }

    /// The kept objects split in two: the program crate's own codegen units (what its patches
    /// replace; the allocator shim left out, as [`keep_for_patch`] leaves it out of a patch),
    /// and the others (rustc's `symbols.o`, the shim, objects given with `-C link-arg`).
    pub fn program_objects(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let prefix = object_prefix(&self.executable);
        self.objects.iter().cloned().partition(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with(&prefix)
                && name.ends_with(".rcgu.o")
                && !std::fs::read(path).is_ok_and(|bytes| is_allocator_shim(&bytes))
        })
    }

    pub fn load(capture_dir: &Path, executable_name: &str) -> Result<Linked, String> {
        let path = Self::path(capture_dir, executable_name);
        let bytes = std::fs::read(&path).map_err(|err| {
            format!(
                "cannot read {}: {err} (was the program built by cargo hotswap?)",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|err| format!("{}: {err}", path.display()))
    }
}

/// Called by the rustc wrapper for the program's crate: make rustc link through this binary.
pub fn route_link_through_us(args: &mut Vec<String>, command: &mut Command) {
    let mut real = None;
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut iter = std::mem::take(args).into_iter();
    while let Some(arg) = iter.next() {
        if arg == "-C" {
            match iter.next() {
                Some(value) if value.starts_with("linker=") => {
                    real = Some(value["linker=".len()..].to_owned());
                }
                Some(value) => {
                    out.push(arg);
                    out.push(value);
                }
                None => out.push(arg),
            }
        } else if let Some(value) = arg.strip_prefix("-Clinker=") {
            real = Some(value.to_owned());
        } else {
            out.push(arg);
        }
    }
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cargo-hotswap"));
    out.push("-C".into());
    out.push(format!("linker={}", me.display()));
    *args = out;
    command.env(ROLE_ENV, ROLE_LINKER);
    command.env(REAL_LINKER_ENV, real.unwrap_or_else(|| "cc".into()));
}

/// Where the linker role notes how long each link of a build took (`<seconds>\t<output>` a
/// line), for the build's summary; the CLI removes it before each build.
pub fn link_log(capture_dir: &Path) -> PathBuf {
    capture_dir.join("links.log")
}

pub fn main() -> i32 {
    let started = std::time::Instant::now();
    let args = expand_response_files(std::env::args_os().skip(1).collect());
    let patch_mode = std::env::var_os(PATCH_OBJECTS_ENV).is_some();
    let code = link(args.clone());
    if let Some(dir) = std::env::var_os(CAPTURE_DIR_ENV).filter(|_| code == 0 && !patch_mode) {
        let output = args
            .iter()
            .position(|a| a == "-o")
            .and_then(|at| args.get(at + 1));
        if let Some(output) = output {
            use std::io::Write;
            let line = format!(
                "{:.6}\t{}\n",
                started.elapsed().as_secs_f64(),
                Path::new(output).display()
            );
            // One short append per link: whole lines even when links run side by side.
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(link_log(Path::new(&dir)))
                .and_then(|mut log| log.write_all(line.as_bytes()));
        }
    }
    code
}

/// Links (or, in patch mode, keeps the objects); returns the exit code.
fn link(args: Vec<OsString>) -> i32 {
    let real = std::env::var(REAL_LINKER_ENV).unwrap_or_else(|_| "cc".into());
    if let Some(dir) = std::env::var_os(PATCH_OBJECTS_ENV) {
        return match keep_for_patch(Path::new(&dir), &args) {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("cargo-hotswap (linker): {err}");
                1
            }
        };
    }
    let (args, replaced) = match std::env::var_os(CAPTURE_DIR_ENV) {
        Some(dir) => match rewrite(Path::new(&dir), &real, args.clone(), &hot_names()) {
            Ok(rewritten) => (rewritten.args, rewritten.replaced),
            Err(err) => {
                eprintln!("cargo-hotswap (linker): {err}; linking without hot-swap support");
                (args, Vec::new())
            }
        },
        None => (args, Vec::new()),
    };
    // The object sets this link replaced are removed while the linker runs: freeing their
    // blocks can take tens of milliseconds, and rustc waits for the link.
    let sweep = (!replaced.is_empty()).then(|| {
        std::thread::spawn(move || {
            for dir in replaced {
                let _ = std::fs::remove_dir_all(dir);
            }
        })
    });
    let code = run_linker(&real, &args);
    if let Some(sweep) = sweep {
        let _ = sweep.join();
    }
    code
}

/// Runs the real linker on `args`; returns its exit code.
fn run_linker(real: &str, args: &[OsString]) -> i32 {
    let mut command = Command::new(real);
    command.env_remove(ROLE_ENV);
    // Long command lines go through a response file, as rustc does.
    let total: usize = args.iter().map(|a| a.len() + 1).sum();
    if total > 100_000 {
        let file = std::env::temp_dir().join(format!("hotswap-link-{}.args", std::process::id()));
        let text: Vec<String> = args
            .iter()
            .map(|a| escape_response(&a.to_string_lossy()))
            .collect();
        if std::fs::write(&file, text.join("\n")).is_ok() {
            let mut at = OsString::from("@");
            at.push(&file);
            let status = command.arg(at).status();
            let _ = std::fs::remove_file(&file);
            return match status {
                Ok(status) => status.code().unwrap_or(1),
                Err(err) => {
                    eprintln!("cargo-hotswap: cannot run the linker `{real}`: {err}");
                    1
                }
            };
        }
    }
    // Waited for, not `exec`ed: the time of the link goes into the build's summary.
    match command.args(args).status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(err) => {
            eprintln!("cargo-hotswap: cannot run the linker `{real}`: {err}");
            1
        }
    }
}

/// The hot crates' names, as the CLI set them for the build.
fn hot_names() -> Vec<String> {
    std::env::var(HOT_CRATES_ENV)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The link line [`rewrite`] made, and the object sets it replaced (to be removed).
struct Rewritten {
    args: Vec<OsString>,
    replaced: Vec<PathBuf>,
}

fn rewrite(
    capture_dir: &Path,
    real: &str,
    args: Vec<OsString>,
    hot_names: &[String],
) -> Result<Rewritten, String> {
    let all = Invocation::load_graph(capture_dir);
    let on_line = |path: &Path| args.iter().any(|a| Path::new(a) == path);
    let output: Option<PathBuf> = args
        .iter()
        .position(|a| a == "-o")
        .and_then(|at| args.get(at + 1))
        .map(PathBuf::from);
    // A hot binary crate's patches may call any crate it depends on (rustc leaves unused ones
    // off the line) and carry all of its code, also what the program's link dropped as unused
    // (such as the instances of generic code it borrows from its dependencies).
    let program = output.as_deref().and_then(|exe| hot_program(&all, exe));
    let program = program.map(|lean| lean.full(capture_dir)).transpose()?;
    let program_closure = program
        .as_ref()
        .map(|p| capture::library_closure(&all, &[p]))
        .unwrap_or_default();
    let mut hot: Vec<(String, &Invocation)> = Vec::new();
    for name in hot_names {
        let mut candidates: Vec<&Invocation> = all
            .iter()
            .filter(|inv| &inv.crate_name == name && inv.is_library())
            .collect();
        // The capture whose rlib this link uses (the newest if several match). A hot crate
        // this program does not link (another member of the workspace) is left out: linking
        // it whole would pull in an unrelated, possibly stale, library that may not even link.
        candidates.retain(|inv| on_line(&inv.rlib()) || program_closure.contains(&inv.rlib()));
        candidates.sort_by_key(|inv| {
            std::fs::metadata(inv.rlib())
                .and_then(|m| m.modified())
                .ok()
        });
        if let Some(inv) = candidates.pop() {
            hot.push((name.clone(), inv));
        }
    }
    let mut roots: Vec<&Invocation> = hot.iter().map(|(_, inv)| *inv).collect();
    roots.extend(program.as_ref());
    let closure = capture::library_closure(&all, &roots);
    let hot_rlibs: Vec<(String, PathBuf)> = hot
        .iter()
        .map(|(name, inv)| (name.clone(), inv.rlib()))
        .collect();
    let rlibs_on_line: Vec<PathBuf> = args
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.extension().is_some_and(|ext| ext == "rlib"))
        .collect();
    let dependents = dependents(&all, &hot_rlibs, &rlibs_on_line);
    // Object files outside any archive: the program's own codegen units (and rustc's small
    // helper objects).
    let objects: Vec<PathBuf> = args
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.extension().is_some_and(|ext| ext == "o") && p.is_file())
        .collect();

    let mut out: Vec<OsString> = Vec::with_capacity(args.len() + closure.len() * 3 + 4);
    let mut inserted = false;
    let whole = |out: &mut Vec<OsString>, path: &Path| {
        out.push("-Wl,--whole-archive".into());
        out.push(path.as_os_str().to_owned());
        out.push("-Wl,--no-whole-archive".into());
    };
    for arg in &args {
        let path = Path::new(arg);
        let is_rlib = path.extension().is_some_and(|ext| ext == "rlib");
        if is_rlib && !inserted {
            inserted = true;
            for extra in closure.iter().filter(|p| !on_line(p)) {
                whole(&mut out, extra);
            }
        }
        if is_rlib && closure.iter().any(|p| p == path) {
            whole(&mut out, path);
        } else {
            out.push(arg.clone());
        }
    }
    // A shared library exports what its version script says: all of it, in place of rustc's
    // list of `#[no_mangle]` items. An executable exports everything with `--export-dynamic`.
    let shared_library = args.iter().any(|a| a == "-shared");
    if shared_library && program.is_some() {
        // Written whole under a private name and renamed: links may run side by side.
        let script = capture_dir.join("export-all.ver");
        let partial = capture_dir.join(format!(".export-all.ver.{}", std::process::id()));
        std::fs::write(&partial, "{\n  global: *;\n};\n")
            .and_then(|()| std::fs::rename(&partial, &script))
            .map_err(|err| format!("cannot write {}: {err}", script.display()))?;
        let mut replaced = false;
        for arg in out.iter_mut() {
            if arg.to_string_lossy().starts_with("-Wl,--version-script=") {
                let mut ours = OsString::from("-Wl,--version-script=");
                ours.push(&script);
                *arg = ours;
                replaced = true;
            }
        }
        if !replaced {
            return Err("rustc gave the library's link no version script to replace".into());
        }
        // A patch names the library as a dependency by this name, which the loader matches
        // with the library the host already loaded, wherever it loaded it from.
        if let Some(name) = output.as_deref().and_then(Path::file_name) {
            let mut soname = OsString::from("-Wl,-soname,");
            soname.push(name);
            out.push(soname);
        }
    } else {
        out.push("-Wl,--export-dynamic".into());
    }
    // Rlibs carry a metadata member without a `.note.GNU-stack` section; linked whole it
    // would otherwise ask for an executable stack.
    out.push("-Wl,-z,noexecstack".into());

    let mut replaced = Vec::new();
    if let Some(executable) = output {
        let name = executable
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Cargo links into deps/<name>-<hash> and then hard-links to <name>; key by the
        // stem before the hash so the CLI finds it from the final name (a library:
        // deps/lib<name>.so, no hash).
        let stem = name.strip_suffix(".so").unwrap_or(&name);
        let key = stem.rsplit_once('-').map_or(stem, |(stem, _)| stem);
        // Only worth keeping when there is a hot crate to compare against.
        let objects = if hot.is_empty() && program.is_none() {
            Vec::new()
        } else {
            match keep_objects(&Linked::objects_dir(capture_dir, key), &objects) {
                Ok(kept) => {
                    replaced = kept.replaced;
                    kept.objects
                }
                Err(err) => {
                    eprintln!(
                        "cargo-hotswap (linker): cannot keep the program's object files: {err}"
                    );
                    Vec::new()
                }
            }
        };
        let linked = Linked {
            executable,
            linker: real.to_owned(),
            hot: hot
                .into_iter()
                .map(|(name, inv)| Ok((name, inv.full(capture_dir)?)))
                .collect::<Result<_, String>>()?,
            objects,
            dependents,
            program,
        };
        let bytes = serde_json::to_vec(&linked).map_err(|e| e.to_string())?;
        std::fs::write(Linked::path(capture_dir, key), bytes)
            .map_err(|err| format!("cannot record the link: {err}"))?;
    }
    Ok(Rewritten {
        args: out,
        replaced,
    })
}

/// The capture of the crate linked into `executable` (`<out-dir>/<crate><extra>`), if it is
/// the hot program (`HOTSWAP_HOT_PROGRAM`).
fn hot_program(all: &[Invocation], executable: &Path) -> Option<Invocation> {
    let hot = std::env::var(capture::HOT_PROGRAM_ENV).ok()?;
    all.iter()
        .filter(|inv| inv.crate_name == hot)
        .find(|inv| inv.artifact().as_deref() == Some(executable))
        .cloned()
}

/// Patch mode (rustc replaying a hot binary crate's command, see [`PATCH_OBJECTS_ENV`]): keeps
/// the crate's own codegen units (`<output>.<…>.rcgu.o`: rustc deletes them once the linker
/// returns) in `dir`, and writes an empty file as the output, which nothing uses. Left out:
/// rustc's `symbols.o` (it lives elsewhere), every library, and the allocator shim (the unit
/// defining `__rust_alloc`), since the program has one and a patch must use the program's.
pub fn keep_for_patch(dir: &Path, args: &[OsString]) -> Result<(), String> {
    let mut output = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-o" {
            output = iter.next().map(PathBuf::from);
        }
    }
    let output = output.ok_or("rustc gave the linker no `-o`")?;
    let prefix = object_prefix(&output);
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let mut kept: Vec<String> = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if !(name.starts_with(&prefix) && name.ends_with(".rcgu.o")) {
            continue;
        }
        let bytes =
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        if is_allocator_shim(&bytes) {
            continue;
        }
        let _ = std::fs::remove_file(dir.join(&name));
        std::fs::write(dir.join(&name), &bytes)
            .map_err(|err| format!("cannot keep {name}: {err}"))?;
        kept.push(name);
    }
    if kept.is_empty() {
        return Err(format!(
            "no object file of {} on the link line",
            output.display()
        ));
    }
    let list = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(PATCH_OBJECTS_LIST), list)
        .map_err(|err| format!("cannot write the list of objects: {err}"))?;
    std::fs::write(&output, b"").map_err(|err| format!("cannot write {}: {err}", output.display()))
}

/// Whether this object is rustc's allocator shim: it defines `__rust_alloc` (mangled, in
/// current rustc, as `_RNv…7___rustc12___rust_alloc`).
fn is_allocator_shim(bytes: &[u8]) -> bool {
    use object::{Object, ObjectSymbol};
    let Ok(file) = object::File::parse(bytes) else {
        return false;
    };
    file.symbols().any(|symbol| {
        symbol.is_definition()
            && symbol
                .name()
                .is_ok_and(|name| name == "__rust_alloc" || name.ends_with("12___rust_alloc"))
    })
}

/// Rlibs among `on_line` whose crates depend, through the recorded `--extern`s, on one of the
/// `hot` crates (name, rlib), each with the names of those it depends on.
fn dependents(
    all: &[Invocation],
    hot: &[(String, PathBuf)],
    on_line: &[PathBuf],
) -> Vec<(PathBuf, Vec<String>)> {
    let by_rlib: HashMap<PathBuf, &Invocation> = all
        .iter()
        .filter(|inv| inv.is_library())
        .map(|inv| (inv.rlib(), inv))
        .collect();
    /// Indices into `hot` of the hot crates `rlib` depends on.
    fn reaches(
        rlib: &Path,
        by_rlib: &HashMap<PathBuf, &Invocation>,
        hot: &[(String, PathBuf)],
        known: &mut HashMap<PathBuf, Vec<usize>>,
    ) -> Vec<usize> {
        if let Some(answer) = known.get(rlib) {
            return answer.clone();
        }
        // Crate graphs have no cycles; this only guards against a malformed record.
        known.insert(rlib.to_owned(), Vec::new());
        let mut answer = Vec::new();
        for dep in by_rlib.get(rlib).map_or(&[][..], |inv| &inv.externs[..]) {
            let dep = dep.with_extension("rlib");
            let direct = hot.iter().position(|(_, path)| *path == dep);
            for index in direct.into_iter().chain(reaches(&dep, by_rlib, hot, known)) {
                if !answer.contains(&index) {
                    answer.push(index);
                }
            }
        }
        answer.sort_unstable();
        known.insert(rlib.to_owned(), answer.clone());
        answer
    }
    let mut known = HashMap::new();
    on_line
        .iter()
        .filter_map(|rlib| {
            let reached = reaches(rlib, &by_rlib, hot, &mut known);
            (!reached.is_empty()).then(|| {
                let names = reached.iter().map(|&i| hot[i].0.clone()).collect();
                (rlib.clone(), names)
            })
        })
        .collect()
}

/// What [`keep_objects`] kept, and the earlier sets it moved aside for removal.
struct Kept {
    objects: Vec<PathBuf>,
    replaced: Vec<PathBuf>,
}

/// Keeps `objects` in `dir` (hard links, copies across file systems), replacing the set kept
/// by the previous link. rustc deletes a binary crate's objects once it is linked, and writes
/// new files rather than rewriting these, so the links keep the contents this link used.
///
/// The previous set is renamed to `.<dir>.old.<pid>` rather than removed here: removing it is
/// left to the caller (see [`link`]), with any such set an interrupted link left behind.
fn keep_objects(dir: &Path, objects: &[PathBuf]) -> std::io::Result<Kept> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)?;
    let mut names: Vec<String> = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        let mut name = object
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{index}.o"));
        if names.contains(&name) {
            name = format!("{index}-{name}");
        }
        let kept = staging.join(&name);
        if std::fs::hard_link(object, &kept).is_err() {
            std::fs::copy(object, &kept)?;
        }
        names.push(name);
    }
    let old_prefix = format!(".{name}.old.");
    let old = dir.with_file_name(format!("{old_prefix}{}", std::process::id()));
    if std::fs::rename(dir, &old).is_err() {
        // None yet (or not renamable: removed the slow way).
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::rename(&staging, dir)?;
    let replaced = dir
        .parent()
        .and_then(|parent| std::fs::read_dir(parent).ok())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&old_prefix))
        .map(|entry| entry.path())
        .collect();
    Ok(Kept {
        objects: names.into_iter().map(|name| dir.join(name)).collect(),
        replaced,
    })
}

/// Replaces `@file` arguments by the arguments the file holds (one per line, as rustc writes
/// them for GNU-like linkers, with `\` escapes).
fn expand_response_files(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let text = arg.to_string_lossy();
        if let Some(file) = text.strip_prefix('@') {
            if let Ok(contents) = std::fs::read_to_string(file) {
                out.extend(
                    contents
                        .lines()
                        .map(|line| OsString::from(unescape_response(line))),
                );
                continue;
            }
        }
        out.push(arg);
    }
    out
}

fn unescape_response(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escape_response(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    for c in arg.chars() {
        if c == '\\' || c == ' ' || c == '"' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::capture::tests::inv;

    #[test]
    fn dependents_are_the_crates_that_use_a_hot_crate() {
        let dir = Path::new("/d");
        let all = vec![
            inv("game", &["serde"], dir),
            inv("serde", &[], dir),
            inv("ui", &["game"], dir),
            inv("menu", &["ui", "serde"], dir),
            inv("unrelated", &["serde"], dir),
        ];
        let rlib = |name: &str| dir.join(format!("lib{name}-h.rlib"));
        let on_line: Vec<PathBuf> = ["game", "serde", "ui", "menu", "unrelated"]
            .map(rlib)
            .to_vec();
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dependents(&all, &[("game".into(), rlib("game"))], &on_line),
            [
                (rlib("ui"), names(&["game"])),
                (rlib("menu"), names(&["game"]))
            ]
        );
        // Two hot crates, one using the other: `ui` is outside code for `game`.
        let hot = [("game".into(), rlib("game")), ("ui".into(), rlib("ui"))];
        assert_eq!(
            dependents(&all, &hot, &on_line),
            [
                (rlib("ui"), names(&["game"])),
                (rlib("menu"), names(&["game", "ui"]))
            ]
        );
        let linked = Linked {
            objects: vec!["/o/app.o".into()],
            dependents: dependents(&all, &hot, &on_line),
            ..Linked::default()
        };
        assert_eq!(
            linked.outside("game"),
            [PathBuf::from("/o/app.o"), rlib("ui"), rlib("menu")]
        );
        assert_eq!(
            linked.outside("ui"),
            [PathBuf::from("/o/app.o"), rlib("menu")]
        );
    }

    #[test]
    fn the_programs_objects_are_kept_and_replaced_by_the_next_link() {
        let scratch = tempfile::tempdir().unwrap();
        let build = scratch.path().join("deps");
        std::fs::create_dir_all(build.join("other")).unwrap();
        let first = [
            build.join("app-1.app.a-cgu.0.rcgu.o"),
            build.join("app-1.app.a-cgu.1.rcgu.o"),
            build.join("other/app-1.app.a-cgu.1.rcgu.o"),
        ];
        for (i, path) in first.iter().enumerate() {
            std::fs::write(path, format!("object {i}")).unwrap();
        }
        let dir = Linked::objects_dir(scratch.path(), "app");
        let kept = keep_objects(&dir, &first).unwrap();
        assert!(kept.replaced.is_empty());
        let kept = kept.objects;
        assert_eq!(kept.len(), 3);
        // rustc deletes its objects after the link; the kept ones stay, same names where free.
        for path in &first {
            std::fs::remove_file(path).unwrap();
        }
        assert_eq!(kept[0], dir.join("app-1.app.a-cgu.0.rcgu.o"));
        assert_eq!(std::fs::read_to_string(&kept[2]).unwrap(), "object 2");
        let second = [build.join("app-1.app.b-cgu.0.rcgu.o")];
        std::fs::write(&second[0], "new").unwrap();
        let kept = keep_objects(&dir, &second).unwrap();
        // The first set is moved aside, whole, for the caller to remove.
        assert_eq!(kept.replaced.len(), 1);
        assert_eq!(std::fs::read_dir(&kept.replaced[0]).unwrap().count(), 3);
        for old in &kept.replaced {
            std::fs::remove_dir_all(old).unwrap();
        }
        let kept = kept.objects;
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), "new");
        // Old records without these fields still load.
        let old: Linked =
            serde_json::from_str(r#"{"executable":"/x","linker":"cc","hot":[]}"#).unwrap();
        assert!(old.outside("game").is_empty());
    }

    #[test]
    fn a_link_records_the_objects_and_the_dependent_rlibs() {
        let scratch = tempfile::tempdir().unwrap();
        let (captures, deps) = (scratch.path().join("captures"), scratch.path().join("deps"));
        std::fs::create_dir_all(&deps).unwrap();
        for (name, externs) in [("game", vec![]), ("ui", vec!["game"]), ("log", vec![])] {
            let mut inv = inv(name, &externs, &deps);
            inv.args = vec![format!("{name}/src/lib.rs")];
            std::fs::write(inv.rlib(), b"!<arch>\n").unwrap();
            std::fs::create_dir_all(&captures).unwrap();
            let record = serde_json::to_vec(&inv).unwrap();
            std::fs::write(captures.join(inv.file_name()), record).unwrap();
        }
        let object = deps.join("app-1.app.a-cgu.0.rcgu.o");
        std::fs::write(&object, b"object").unwrap();
        let rlib = |name: &str| deps.join(format!("lib{name}-h.rlib"));
        let args: Vec<OsString> = vec![
            object.clone().into(),
            rlib("ui").into(),
            rlib("game").into(),
            rlib("log").into(),
            "-o".into(),
            deps.join("app-1").into(),
        ];
        let out = rewrite(&captures, "cc", args, &["game".to_owned()])
            .unwrap()
            .args;
        assert!(out.windows(3).any(|w| w[0] == "-Wl,--whole-archive"
            && w[1] == rlib("game").as_os_str()
            && w[2] == "-Wl,--no-whole-archive"));
        std::fs::remove_file(&object).unwrap();
        let linked = Linked::load(&captures, "app").unwrap();
        assert_eq!(linked.dependents, [(rlib("ui"), vec!["game".to_owned()])]);
        // The hot crate's whole record, for its patches (the graph is read without them).
        assert_eq!(linked.hot.len(), 1);
        assert_eq!(linked.hot[0].1.args, ["game/src/lib.rs"]);
        assert_eq!(
            linked.objects,
            [Linked::objects_dir(&captures, "app").join("app-1.app.a-cgu.0.rcgu.o")]
        );
        assert_eq!(std::fs::read(&linked.objects[0]).unwrap(), b"object");
        assert_eq!(
            linked.outside("game"),
            [linked.objects[0].clone(), rlib("ui")]
        );
    }

    #[test]
    fn response_file_escapes_round_trip() {
        for arg in ["plain", "with space", r"back\slash", "quote\"d"] {
            assert_eq!(unescape_response(&escape_response(arg)), arg);
        }
    }
}
