//! Build and link one thin patch: replay the hot crate's recorded rustc command (incremental,
//! so only what changed is compiled again), then link its rlib alone into a shared object
//! whose other symbols stay undefined and resolve against the running program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::capture::{Invocation, ROLE_ENV};
use crate::linker;
use crate::rewrite::{self, ProgramTls};

pub struct Patch {
    pub file: PathBuf,
    pub build: Duration,
    pub link: Duration,
    /// Compiler warnings, rendered as cargo shows them.
    pub warnings: Vec<String>,
    /// A binary crate's patch: the object files it was linked from (for the checks).
    pub objects: Vec<PathBuf>,
    /// A binary crate's patch: the program's thread-locals it uses (linkage names).
    pub shared_thread_locals: Vec<String>,
}

pub enum Failure {
    /// The code does not compile: the diagnostics, rendered.
    Compile(Vec<String>),
    /// The patch cannot be applied; the program must restart: why.
    Refused(String),
    /// Anything else: a message.
    Other(String),
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

/// Compiles library `crate_` again and links `patch_dir/<crate>-<number>.so` from its rlib.
pub fn build(
    crate_: &Invocation,
    linker: &str,
    patch_dir: &Path,
    number: u64,
) -> Result<Patch, Failure> {
    let started = Instant::now();
    let warnings = compile(crate_.command())?;
    let build = started.elapsed();
    let started = Instant::now();
    let inputs = [
        OsString::from("-Wl,--whole-archive"),
        crate_.rlib().into_os_string(),
        OsString::from("-Wl,--no-whole-archive"),
    ];
    let file = link(
        linker,
        patch_dir,
        &crate_.crate_name,
        number,
        VERSION_SCRIPT,
        &inputs,
    )?;
    Ok(Patch {
        file,
        build,
        link: started.elapsed(),
        warnings,
        objects: Vec::new(),
        shared_thread_locals: Vec::new(),
    })
}

/// Compiles the program's binary crate `program` again and links `patch_dir/<crate>-<number>.so`
/// from its own object files, kept by the linker role in patch mode (see
/// [`linker::keep_for_patch`]): rustc writes into a scratch `--out-dir` (so the program's
/// executable is never overwritten), without the allocator shim and rustc's `symbols.o`, and
/// links nothing itself. The objects' thread-local references are then pointed at the
/// program's (see [`rewrite`]). `main` and everything else of the crate come along; `main`
/// stays local to the patch.
pub fn build_program(
    program: &Invocation,
    linker: &str,
    thread_locals: &ProgramTls,
    patch_dir: &Path,
    number: u64,
) -> Result<Patch, Failure> {
    let started = Instant::now();
    let scratch = patch_dir.join(format!("bin-{number}"));
    let objects_dir = scratch.join("objects");
    let _ = std::fs::remove_dir_all(&scratch);
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
    // The objects as rustc wrote them go to the checks, which compare them with the program's;
    // the link takes rewritten copies where a thread-local is shared.
    let mut objects = Vec::with_capacity(names.len());
    let mut inputs: Vec<OsString> = Vec::with_capacity(names.len());
    let mut shared = Vec::new();
    for name in names {
        let path = objects_dir.join(&name);
        let mut bytes = std::fs::read(&path)
            .map_err(|err| Failure::Other(format!("cannot read {}: {err}", path.display())))?;
        let names = rewrite::share_thread_locals(&mut bytes, thread_locals)
            .map_err(|refusal| Failure::Refused(refusal.describe(&program.crate_name)))?;
        let input = if names.is_empty() {
            path.clone()
        } else {
            let rewritten = scratch.join(&name);
            std::fs::write(&rewritten, &bytes).map_err(|err| {
                Failure::Other(format!("cannot write {}: {err}", rewritten.display()))
            })?;
            rewritten
        };
        for name in names {
            if !shared.contains(&name) {
                shared.push(name);
            }
        }
        inputs.push(input.into_os_string());
        objects.push(path);
    }
    // `main` too: the program's is the one that runs.
    let script = VERSION_SCRIPT.replacen("local: ", "local: main; ", 1);
    let file = link(
        linker,
        patch_dir,
        &program.crate_name,
        number,
        &script,
        &inputs,
    )?;
    Ok(Patch {
        file,
        build,
        link: started.elapsed(),
        warnings,
        objects,
        shared_thread_locals: shared,
    })
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
fn link(
    linker: &str,
    patch_dir: &Path,
    name: &str,
    number: u64,
    version_script: &str,
    inputs: &[OsString],
) -> Result<PathBuf, Failure> {
    let script = patch_dir.join(format!("patch-{number}.ver"));
    std::fs::write(&script, version_script)
        .map_err(|err| Failure::Other(format!("cannot write {}: {err}", script.display())))?;
    let file = patch_dir.join(format!("{name}-{number}.so"));
    let partial = patch_dir.join(format!(".{name}-{number}.so.partial"));
    let output = Command::new(linker)
        .arg("-shared")
        // Calls between the patch's own functions bind inside the patch: the new code calls
        // the new code. Data still binds to the program where the program exports it.
        .arg("-Wl,-Bsymbolic-functions")
        .arg("-Wl,-z,noexecstack")
        // No debug information: nothing can read it once the file is deleted after loading
        // (backtraces and debuggers look for the file), and it is most of a patch's size, held
        // on disk for as long as the patch stays mapped.
        .arg("-Wl,-S")
        .arg(format!("-Wl,--version-script={}", script.display()))
        .arg("-o")
        .arg(&partial)
        .args(inputs)
        .output()
        .map_err(|err| Failure::Other(format!("cannot run the linker `{linker}`: {err}")));
    let _ = std::fs::remove_file(&script);
    let output = output?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::Other(format!(
            "linking the patch failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    std::fs::rename(&partial, &file)
        .map_err(|err| Failure::Other(format!("cannot move the patch into place: {err}")))?;
    Ok(file)
}
