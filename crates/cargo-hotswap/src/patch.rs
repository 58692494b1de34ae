//! Build and link one thin patch: replay the hot crate's recorded rustc command (incremental,
//! so only what changed is compiled again), then link the crate's objects alone (rewritten to
//! use the program's statics and thread-locals, see [`crate::rewrite`]) into a shared object
//! whose other symbols stay undefined and resolve against the running program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::capture::{Invocation, ROLE_ENV};
use crate::link_direct;
use crate::link_with;
use crate::linker;
use crate::objects::{self, Source};
use crate::rewrite::{Placement, Program, Shared};
use hotswap::protocol::Fixed;

pub struct Patch {
    pub file: PathBuf,
    pub build: Duration,
    pub link: Duration,
    /// Compiler warnings, rendered as cargo shows them.
    pub warnings: Vec<String>,
    /// A binary crate's patch: the object files it was linked from (for the checks).
    pub objects: Vec<PathBuf>,
    /// The program's statics and thread-locals the patch uses (linkage names).
    pub shared: Vec<String>,
    /// Where the patch must be loaded, if it was linked at a fixed address.
    pub fixed: Option<Fixed>,
    /// Shared statics whose initial value the edit changed (readable names).
    pub changed_initialisers: Vec<String>,
    /// What it was linked from, to link it again for another process ([`link_again`]);
    /// `None` when it was linked from the rlib as is (at no fixed address).
    pub inputs: Option<Inputs>,
}

/// The objects a patch was linked from, kept until the patch is delivered: a library host's
/// processes each need their own link of a patch at a fixed address (each has the library at
/// its own address, and its own reservation). A library crate's are read from its rlib again,
/// which nothing rebuilds before the patch is delivered.
pub struct Inputs {
    crate_: Invocation,
    linker: String,
    patch_dir: PathBuf,
    number: u64,
    binary: bool,
    scratch: PathBuf,
    source: Source,
}

/// Links the patch `inputs` came from again, as copy number `copy` (its own file), with
/// `sharing`'s placement.
pub fn link_again(inputs: &Inputs, sharing: &Sharing, copy: usize) -> Result<Patch, Failure> {
    let started = Instant::now();
    let job = Job {
        crate_: &inputs.crate_,
        linker: &inputs.linker,
        patch_dir: &inputs.patch_dir,
        number: inputs.number,
        binary: inputs.binary,
        copy,
    };
    let linked = link_objects_or_float(&job, sharing, &inputs.scratch, &inputs.source)?;
    Ok(linked.into_patch(Duration::ZERO, started.elapsed(), Vec::new(), Vec::new()))
}

pub enum Failure {
    /// The code does not compile: the diagnostics, rendered.
    Compile(Vec<String>),
    /// The patch cannot be applied; the program must restart: why.
    Refused(String),
    /// The linker failed: its message.
    Link(String),
    /// Anything else: a message.
    Other(String),
}

impl Failure {
    /// The message, whatever the kind.
    pub fn text(&self) -> String {
        match self {
            Failure::Compile(lines) => lines.concat(),
            Failure::Refused(text) | Failure::Link(text) | Failure::Other(text) => text.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Diagnostic {
    #[serde(rename = "$message_type")]
    message_type: Option<String>,
    level: Option<String>,
    rendered: Option<String>,
}

/// Keeps the patch's manifest (its `#[hot]` entries and `#[derive(Migrate)]` entries) and its
/// dispatch slots local to the patch. rustc gives a private static used from another codegen
/// unit a global symbol, and the running program exports the same name: without this, the
/// loader would bind the patch's registrations to the program's old entries. Local slots also
/// mean a version's functions call that same version, and save the loader one symbol lookup
/// per hot function. Everything else keeps its binding, so data the program exports (a
/// `pub static`) is still shared.
/// (`crates/hotswap-bench` reads this constant's text to link its patches the same way.)
const VERSION_SCRIPT: &str =
    "{\n  local: *__hotswap_entry_v1_*; *__HOTSWAP_STATE_*; *__hotswap_slot_*;\n};\n";

/// What [`VERSION_SCRIPT`]'s patterns look for in a name. A patch linked from objects this
/// reads gets a script that lists the names they match instead (see [`version_script`]).
const LOCAL_PATTERNS: [&str; 3] = ["__hotswap_entry_v1_", "__HOTSWAP_STATE_", "__hotswap_slot_"];

/// How a patch may share the running program's statics and thread-locals (see
/// [`crate::rewrite`]).
pub struct Sharing<'a> {
    pub program: &'a Program,
    /// Link at this address (inside the program's reservation), with the executable's load
    /// bias: statics are shared too. `None`: thread-locals only.
    pub fixed: Option<(u64, u64)>,
    /// The library a host loaded (`run --lib`), which the patch is linked against: its
    /// symbols are not in the host's global scope (Python loads extensions `RTLD_LOCAL`), so
    /// the patch names it as a dependency, by its `SONAME`, which the loader finds already
    /// loaded. `None`: the patch resolves against the executable.
    pub library: Option<&'a Path>,
}

/// A library crate compiled again for a patch (its rlib is where the capture says), not linked
/// yet: the caller may read the new build for the checks while [`link_library`] links it.
pub struct Compiled {
    build: Duration,
    warnings: Vec<String>,
}

/// Compiles library `crate_` again; [`link_library`] then links
/// `patch_dir/<crate>-<number>.so` from its rlib, or, when it may share the program's data,
/// from its objects rewritten to do so.
pub fn compile_library(crate_: &Invocation) -> Result<Compiled, Failure> {
    let started = Instant::now();
    let warnings = compile(crate_.command())?;
    Ok(Compiled {
        build: started.elapsed(),
        warnings,
    })
}

/// Links the patch of library `crate_` just compiled ([`compile_library`]).
pub fn link_library(
    crate_: &Invocation,
    linker: &str,
    sharing: &Sharing,
    share: bool,
    patch_dir: &Path,
    number: u64,
    compiled: Compiled,
) -> Result<Patch, Failure> {
    let Compiled { build, warnings } = compiled;
    let started = Instant::now();
    if !share {
        let mut inputs = vec![
            OsString::from("-Wl,--whole-archive"),
            crate_.rlib().into_os_string(),
            OsString::from("-Wl,--no-whole-archive"),
        ];
        inputs.extend(sharing.library.map(|l| l.as_os_str().to_owned()));
        let file = link(
            linker,
            patch_dir,
            &crate_.crate_name,
            number,
            VERSION_SCRIPT,
            &inputs,
            None,
        )?;
        return Ok(Patch {
            file,
            build,
            link: started.elapsed(),
            warnings,
            objects: Vec::new(),
            shared: Vec::new(),
            fixed: None,
            changed_initialisers: Vec::new(),
            inputs: None,
        });
    }
    let scratch = scratch_dir(patch_dir, number)?;
    let source = Source::Rlib(crate_.rlib());
    let job = Job {
        crate_,
        linker,
        patch_dir,
        number,
        binary: false,
        copy: 0,
    };
    let linked = link_objects_or_float(&job, sharing, &scratch, &source)?;
    let mut patch = linked.into_patch(build, started.elapsed(), warnings, Vec::new());
    patch.inputs = Some(job.inputs(&scratch, source));
    Ok(patch)
}

/// Compiles the program's binary crate `program` again and links `patch_dir/<crate>-<number>.so`
/// from its own object files, kept by the linker role in patch mode (see
/// [`linker::keep_for_patch`]): rustc writes into a scratch `--out-dir` (so the program's
/// executable is never overwritten), without the allocator shim and rustc's `symbols.o`, and
/// links nothing itself. The objects' thread-local references are then pointed at the
/// program's (see [`rewrite`]), which is what makes them linkable into a shared object at all.
/// `main` and everything else of the crate come along; `main` stays local to the patch.
pub fn build_program(
    program: &Invocation,
    linker: &str,
    sharing: &Sharing,
    patch_dir: &Path,
    number: u64,
) -> Result<Patch, Failure> {
    let started = Instant::now();
    let scratch = scratch_dir(patch_dir, number)?;
    let objects_dir = scratch.join("objects");
    std::fs::create_dir_all(&objects_dir)
        .map_err(|err| Failure::Other(format!("cannot create {}: {err}", scratch.display())))?;
    let mut args: Vec<String> = program.args.clone();
    match args.iter().position(|a| a == "--out-dir") {
        Some(at) if at + 1 < args.len() => args[at + 1] = scratch.display().to_string(),
        _ => args.extend(["--out-dir".into(), scratch.display().to_string()]),
    }
    let mut command = program.command_with(&args);
    command
        .env(ROLE_ENV, linker::ROLE_LINKER)
        .env(linker::PATCH_OBJECTS_ENV, &objects_dir);
    let warnings = compile(command)?;
    let build = started.elapsed();

    let started = Instant::now();
    let list = std::fs::read(objects_dir.join(linker::PATCH_OBJECTS_LIST))
        .map_err(|err| Failure::Other(format!("the patch's objects were not kept: {err}")))?;
    let names: Vec<String> = serde_json::from_slice(&list)
        .map_err(|err| Failure::Other(format!("the list of the patch's objects: {err}")))?;
    let objects: Vec<PathBuf> = names.iter().map(|name| objects_dir.join(name)).collect();
    let job = Job {
        crate_: program,
        linker,
        patch_dir,
        number,
        binary: true,
        copy: 0,
    };
    let source = Source::Files(objects.clone());
    let linked = link_objects_or_float(&job, sharing, &scratch, &source)?;
    let inputs = job.inputs(&scratch, source);
    let mut patch = linked.into_patch(build, started.elapsed(), warnings, objects);
    patch.inputs = Some(inputs);
    Ok(patch)
}

/// What a patch of objects is linked from and into.
struct Job<'a> {
    crate_: &'a Invocation,
    linker: &'a str,
    patch_dir: &'a Path,
    number: u64,
    /// A binary crate's objects (local-exec thread-locals, a `main` to keep local).
    binary: bool,
    /// Which link of the patch this is (0, or another process's, see [`link_again`]).
    copy: usize,
}

impl Job<'_> {
    fn inputs(&self, scratch: &Path, source: Source) -> Inputs {
        Inputs {
            crate_: self.crate_.clone(),
            linker: self.linker.to_owned(),
            patch_dir: self.patch_dir.to_owned(),
            number: self.number,
            binary: self.binary,
            scratch: scratch.to_owned(),
            source,
        }
    }
}

/// A patch linked from rewritten objects.
struct Linked {
    file: PathBuf,
    shared: Shared,
    fixed: Option<Fixed>,
}

impl Linked {
    fn into_patch(
        self,
        build: Duration,
        link: Duration,
        warnings: Vec<String>,
        objects: Vec<PathBuf>,
    ) -> Patch {
        Patch {
            file: self.file,
            build,
            link,
            warnings,
            objects,
            changed_initialisers: self.shared.changed_initialisers,
            shared: self.shared.names,
            fixed: self.fixed,
            inputs: None,
        }
    }
}

/// [`link_objects`]; if linking at the fixed address fails (a linker without
/// `-Ttext-segment`, such as lld or mold behind `cc`), links the patch anywhere instead: its
/// statics then start afresh, as the CLI's fresh-copy warning says.
fn link_objects_or_float(
    job: &Job,
    sharing: &Sharing,
    scratch: &Path,
    source: &Source,
) -> Result<Linked, Failure> {
    match link_objects(job, sharing, scratch, source) {
        Err(Failure::Link(_)) if sharing.fixed.is_some() => {
            let anywhere = Sharing {
                fixed: None,
                ..*sharing
            };
            link_objects(job, &anywhere, scratch, source)
        }
        other => other,
    }
}

/// Rewrites `source`'s objects to share the program's data and links them.
fn link_objects(
    job: &Job,
    sharing: &Sharing,
    scratch: &Path,
    source: &Source,
) -> Result<Linked, Failure> {
    let placement = match sharing.fixed {
        Some((_, load_bias)) => Placement::Fixed { load_bias },
        None => Placement::Anywhere,
    };
    // The objects as rustc wrote them go to the checks, which compare them with the program's;
    // the link takes rewritten copies, in one archive of this link's own.
    let archive = scratch.join(format!("objects-{}.a", job.copy));
    let prepared = objects::prepare(
        source,
        &archive,
        sharing.program,
        placement,
        job.binary,
        &LOCAL_PATTERNS,
    )
    .map_err(|problem| match problem {
        objects::Problem::Refused(refusal) => {
            Failure::Refused(refusal.describe(&job.crate_.crate_name))
        }
        objects::Problem::Other(text) => Failure::Other(text),
    })?;
    let shared = prepared.shared;
    let mut inputs: Vec<OsString> = vec![
        "-Wl,--whole-archive".into(),
        prepared.archive.into_os_string(),
        "-Wl,--no-whole-archive".into(),
    ];
    inputs.extend(sharing.library.map(|l| l.as_os_str().to_owned()));
    let script = version_script(job.binary, prepared.matching.as_deref());
    let symbols = shared.script();
    let name = match job.copy {
        0 => job.crate_.crate_name.clone(),
        copy => format!("{}.{copy}", job.crate_.crate_name),
    };
    let file = link(
        job.linker,
        job.patch_dir,
        &name,
        job.number,
        &script,
        &inputs,
        sharing.fixed.map(|(base, _)| (base, symbols.as_str())),
    )?;
    let fixed = match sharing.fixed {
        Some((base, _)) => Some(Fixed {
            base,
            span: span(&file, base)?,
        }),
        None => None,
    };
    Ok(Linked {
        file,
        shared,
        fixed,
    })
}

/// The version script of a patch linked from objects: [`VERSION_SCRIPT`], with `main` local
/// too for a binary crate (the program's is the one that runs). `matching`: the names its
/// patterns match in the objects, listed instead of the patterns, which the linker would
/// otherwise match against every symbol (a tenth of a heavy crate's link); `None`: the
/// patterns.
fn version_script(binary: bool, matching: Option<&[String]>) -> String {
    let main = if binary { "main; " } else { "" };
    match matching {
        Some(names) => {
            let mut script = format!("{{\n  local: {main}");
            for name in names {
                script.push_str(name);
                script.push_str("; ");
            }
            // A script that makes nothing local still needs an entry.
            if names.is_empty() && !binary {
                script.push_str("__hotswap_no_local_symbol; ");
            }
            script.push_str("\n};\n");
            script
        }
        None => VERSION_SCRIPT.replacen("local: ", &format!("local: {main}"), 1),
    }
}

/// A fresh scratch directory for patch `number`'s objects.
fn scratch_dir(patch_dir: &Path, number: u64) -> Result<PathBuf, Failure> {
    let scratch = patch_dir.join(format!("bin-{number}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)
        .map_err(|err| Failure::Other(format!("cannot create {}: {err}", scratch.display())))?;
    Ok(scratch)
}

/// How much address space the linked patch takes from `base`: to the end of its last `PT_LOAD`
/// segment, rounded up to a page.
fn span(file: &Path, base: u64) -> Result<u64, Failure> {
    use object::read::elf::{FileHeader, ProgramHeader};
    let fail = |err: String| Failure::Other(format!("{}: {err}", file.display()));
    let data = crate::statics::map(file).map_err(fail)?;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data)
        .map_err(|e| fail(e.to_string()))?;
    let endian = header.endian().map_err(|e| fail(e.to_string()))?;
    let segments = header
        .program_headers(endian, &*data)
        .map_err(|e| fail(e.to_string()))?;
    let loads = segments
        .iter()
        .filter(|s| s.p_type(endian) == object::elf::PT_LOAD);
    let first = loads.clone().map(|s| s.p_vaddr(endian)).min();
    let end = loads.map(|s| s.p_vaddr(endian) + s.p_memsz(endian)).max();
    match (first, end) {
        (Some(first), Some(end)) if first == base => Ok((end - base).div_ceil(4096) * 4096),
        (first, _) => Err(fail(format!("linked at {first:#x?} instead of {base:#x}"))),
    }
}

/// Runs a rustc command; its warnings, or its errors.
fn compile(mut command: Command) -> Result<Vec<String>, Failure> {
    let output = command
        .output()
        .map_err(|err| Failure::Other(format!("cannot run rustc: {err}")))?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        match serde_json::from_str::<Diagnostic>(line) {
            Ok(diag) if diag.message_type.as_deref() == Some("diagnostic") => {
                let Some(rendered) = diag.rendered else {
                    continue;
                };
                match diag.level.as_deref() {
                    Some("error") | Some("error: internal compiler error") => errors.push(rendered),
                    _ => warnings.push(rendered),
                }
            }
            Ok(_) => {}
            // Not JSON: print it as it came.
            Err(_) if !line.trim().is_empty() => errors.push(format!("{line}\n")),
            Err(_) => {}
        }
    }
    if !output.status.success() {
        if errors.is_empty() {
            errors.push(format!("rustc failed ({})\n", output.status));
        }
        return Err(Failure::Compile(errors));
    }
    Ok(warnings)
}

/// Links `inputs` into `patch_dir/<name>-<number>.so`, complete before it appears under that
/// name.
/// With `fixed`, the patch is linked to be loaded at that address, and the linker script text
/// defines the symbols the rewriter introduced (their absolute addresses).
/// The session's patch linker ([`link_with::chosen`]) links it; if that fails, or its patch does
/// not start at the fixed address, `cc` links it again before the link counts as failed.
fn link(
    linker: &str,
    patch_dir: &Path,
    name: &str,
    number: u64,
    version_script: &str,
    inputs: &[OsString],
    fixed: Option<(u64, &str)>,
) -> Result<PathBuf, Failure> {
    let script = patch_dir.join(format!("patch-{number}.ver"));
    std::fs::write(&script, version_script)
        .map_err(|err| Failure::Other(format!("cannot write {}: {err}", script.display())))?;
    let symbols = patch_dir.join(format!("patch-{number}.ld"));
    if let Some((_, text)) = fixed {
        std::fs::write(&symbols, text)
            .map_err(|err| Failure::Other(format!("cannot write {}: {err}", symbols.display())))?;
    }
    let file = patch_dir.join(format!("{name}-{number}.so"));
    let partial = patch_dir.join(format!(".{name}-{number}.so.partial"));
    let placement = fixed.map(|(base, _)| (base, symbols.as_path()));
    let attempts = link_with::attempts(fixed.is_some());
    let (result, failed) = link_trying(linker, &attempts, &script, &partial, inputs, placement);
    if let (Ok(()), Some((fast, why))) = (&result, failed) {
        link_with::demote(fast, &why);
    }
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&symbols);
    if let Err(failure) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(failure);
    }
    std::fs::rename(&partial, &file)
        .map_err(|err| Failure::Other(format!("cannot move the patch into place: {err}")))?;
    Ok(file)
}

/// Links with each of `attempts` in turn until one gives a patch (a fast linker's, at a fixed
/// address, must start there). The result, and the first linker that failed and why, if a
/// later one succeeded or not.
fn link_trying(
    linker: &str,
    attempts: &[link_with::Flags],
    script: &Path,
    partial: &Path,
    inputs: &[OsString],
    placement: Option<(u64, &Path)>,
) -> (Result<(), Failure>, Option<(link_with::Linker, String)>) {
    let mut result = Err(Failure::Other("no linker to try".into()));
    let mut failed = None;
    for (at, flags) in attempts.iter().enumerate() {
        let last = at + 1 == attempts.len();
        // `cc`'s patch is checked where it is used, as it always was; a fast linker's here
        // too, so that `cc` can do better.
        let check = placement.map(|(base, _)| base).filter(|_| !last);
        // The linker started directly, then, if that failed, through the driver.
        let direct = link_direct::enabled()
            .then(|| link_with::direct_command(linker, flags, script, partial, inputs, placement))
            .flatten();
        let mut direct_failed = None;
        if let Some(command) = direct {
            result = run_link(command, linker, partial, check);
            match &result {
                Ok(()) => break,
                Err(failure) => {
                    let _ = std::fs::remove_file(partial);
                    direct_failed = Some(failure.text());
                }
            }
        }
        let Some(command) = link_with::command(linker, flags, script, partial, inputs, placement)
        else {
            continue;
        };
        result = run_link(command, linker, partial, check);
        match &result {
            Ok(()) => {
                if let Some(why) = direct_failed {
                    link_direct::give_up(flags.linker, &why);
                }
                break;
            }
            Err(failure) if !last => {
                let _ = std::fs::remove_file(partial);
                failed.get_or_insert((flags.linker, failure.text()));
            }
            Err(_) => {}
        }
    }
    (result, failed)
}

/// Runs one link; with `check`, its patch must start at that base.
fn run_link(
    mut command: Command,
    linker: &str,
    partial: &Path,
    check: Option<u64>,
) -> Result<(), Failure> {
    match command.output() {
        Err(err) => Err(Failure::Other(format!(
            "cannot run the linker `{linker}`: {err}"
        ))),
        Ok(output) if !output.status.success() => Err(Failure::Link(format!(
            "linking the patch failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))),
        Ok(_) => match check {
            Some(base) => span(partial, base).map(|_| ()),
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link_with::{Flags, Linker};

    /// A patch linked from the archive (objects without their debug sections, rewritten, and
    /// a version script listing names) is the file that linking each rewritten object as
    /// rustc wrote it, with the script's patterns, gives: byte for byte, at a fixed address,
    /// sharing the program's static and thread-local the same way.
    #[test]
    fn a_patch_from_the_archive_is_the_one_its_objects_give() {
        use object::{Object as _, ObjectSymbol as _};
        let dir = tempfile::tempdir().unwrap();
        let object = crate::objects::tests::debug_object(dir.path());
        let bytes = std::fs::read(&object).unwrap();
        let find = |part: &str, kind: object::SymbolKind| {
            let file = object::File::parse(&*bytes).unwrap();
            let name = file
                .symbols()
                .filter(|s| s.kind() == kind && !s.is_undefined())
                .filter_map(|s| s.name().ok().map(str::to_owned))
                .find(|n| n.contains(part));
            name.unwrap()
        };
        let (count, tl) = (
            find("5COUNT", object::SymbolKind::Data),
            find("2TL", object::SymbolKind::Tls),
        );
        let program = Program::for_tests(0x40, &[(&tl, (0x10, 8))], &[(&count, (0x5000, 8))]);
        let load_bias = 0x5555_5555_4000;
        let base = load_bias - 0x2000_0000;
        let placement = Placement::Fixed { load_bias };

        let mut shared = Shared::default();
        let rewritten =
            crate::rewrite::rewrite_object(&bytes, &program, placement, false, &mut shared)
                .unwrap()
                .expect("the object uses the program's data");
        let rewritten_file = dir.path().join("rewritten.o");
        std::fs::write(&rewritten_file, rewritten).unwrap();
        let patches = dir.path().join("patches");
        std::fs::create_dir_all(&patches).unwrap();
        let script = shared.script();
        let whole = link(
            "cc",
            &patches,
            "whole",
            1,
            VERSION_SCRIPT,
            &[rewritten_file.into_os_string()],
            Some((base, &script)),
        )
        .map_err(|f| f.text())
        .unwrap();

        let crate_: Invocation = serde_json::from_value(serde_json::json!({
            "crate_name": "game", "crate_types": ["lib"], "extra_filename": "",
            "out_dir": dir.path(), "externs": [], "rustc": "rustc", "args": [],
            "cwd": dir.path(), "env": [],
        }))
        .unwrap();
        let job = Job {
            crate_: &crate_,
            linker: "cc",
            patch_dir: &patches,
            number: 2,
            binary: false,
            copy: 0,
        };
        let sharing = Sharing {
            program: &program,
            fixed: Some((base, load_bias)),
            library: None,
        };
        let scratch = scratch_dir(&patches, 2).map_err(|f| f.text()).unwrap();
        let linked = link_objects(&job, &sharing, &scratch, &Source::Files(vec![object]))
            .map_err(|f| f.text())
            .unwrap();
        assert_eq!(linked.shared.names, shared.names);
        assert_eq!(linked.shared.script(), script);
        assert_eq!(linked.shared.names.len(), 2, "{:?}", shared.names);
        let (whole, archived) = (std::fs::read(whole).unwrap(), std::fs::read(&linked.file));
        assert!(whole == archived.unwrap(), "the patches differ");
    }

    /// The listed script makes local what the patterns would, and `main` for a binary crate.
    #[test]
    fn the_version_script_lists_what_its_patterns_match() {
        let globs: Vec<String> = LOCAL_PATTERNS.iter().map(|p| format!("*{p}*;")).collect();
        assert_eq!(
            VERSION_SCRIPT,
            format!(
                "{{\n  local: {};\n}};\n",
                globs.join(" ").trim_end_matches(';')
            )
        );
        let names = ["_ZN4game15__hotswap_slot_417h0123456789abcdefE".to_owned()];
        let listed = version_script(false, Some(&names));
        assert_eq!(listed, format!("{{\n  local: {}; \n}};\n", names[0]));
        assert!(version_script(true, Some(&names)).contains("local: main; _ZN4game"));
        assert!(version_script(false, Some(&[])).contains("local: __hotswap_no_local_symbol;"));
        assert_eq!(version_script(false, None), VERSION_SCRIPT);
        assert!(version_script(true, None).contains("local: main; *__hotswap_entry_v1_*;"));
    }

    /// A fast linker that fails (here: a driver flag nobody knows) leaves the patch to `cc`,
    /// at the fixed address, and is named as the one that failed.
    #[test]
    fn cc_links_what_the_fast_linker_could_not() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("p.c");
        std::fs::write(
            &source,
            "__attribute__((visibility(\"hidden\"))) extern long __hs_d0;\n\
             long p(void) { return __hs_d0; }\n",
        )
        .unwrap();
        let object = dir.path().join("p.o");
        let status = Command::new("cc")
            .args(["-fPIC", "-c", "-o"])
            .arg(&object)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success());
        let script = dir.path().join("p.ver");
        std::fs::write(&script, VERSION_SCRIPT).unwrap();
        let symbols = dir.path().join("p.ld");
        std::fs::write(&symbols, "HIDDEN(__hs_d0 = 0x7e0000123450);\n").unwrap();
        let partial = dir.path().join("p.so");
        let broken = Flags {
            linker: Linker::RustLld,
            path: None,
            args: vec!["-fuse-ld=no-such-linker".into()],
        };
        let cc = Flags {
            linker: Linker::Cc,
            path: None,
            args: Vec::new(),
        };
        let base = 0x7e00_0000_0000;
        let (result, failed) = link_trying(
            "cc",
            &[broken, cc],
            &script,
            &partial,
            &[object.into_os_string()],
            Some((base, &symbols)),
        );
        assert!(result.is_ok(), "{:?}", result.err().map(|f| f.text()));
        assert_eq!(failed.map(|(l, _)| l), Some(Linker::RustLld));
        assert!(span(&partial, base).is_ok());
    }
}
