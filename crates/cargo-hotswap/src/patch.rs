//! Build and link one thin patch: replay the hot crate's recorded rustc command (incremental,
//! so only what changed is compiled again), then link its rlib alone into a shared object
//! whose other symbols stay undefined and resolve against the running program.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::capture::Invocation;

pub struct Patch {
    pub file: PathBuf,
    pub build: Duration,
    pub link: Duration,
    /// Compiler warnings, rendered as cargo shows them.
    pub warnings: Vec<String>,
}

pub enum Failure {
    /// The code does not compile: the diagnostics, rendered.
    Compile(Vec<String>),
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
const VERSION_SCRIPT: &str =
    "{\n  local: *__hotswap_entry_v1_*; *__HOTSWAP_STATE_*; *__hotswap_slot_*;\n};\n";

/// Compiles `crate_` again and links `patch_dir/<crate>-<number>.so`.
pub fn build(
    crate_: &Invocation,
    linker: &str,
    patch_dir: &Path,
    number: u64,
) -> Result<Patch, Failure> {
    let started = Instant::now();
    let output = crate_
        .command()
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
    let build = started.elapsed();

    let started = Instant::now();
    let version_script = patch_dir.join("patch.ver");
    std::fs::write(&version_script, VERSION_SCRIPT).map_err(|err| {
        Failure::Other(format!("cannot write {}: {err}", version_script.display()))
    })?;
    let file = patch_dir.join(format!("{}-{number}.so", crate_.crate_name));
    let partial = patch_dir.join(format!(".{}-{number}.so.partial", crate_.crate_name));
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
        .arg(format!("-Wl,--version-script={}", version_script.display()))
        .arg("-o")
        .arg(&partial)
        .arg("-Wl,--whole-archive")
        .arg(crate_.rlib())
        .arg("-Wl,--no-whole-archive")
        .output()
        .map_err(|err| Failure::Other(format!("cannot run the linker `{linker}`: {err}")));
    let _ = std::fs::remove_file(&version_script);
    let output = output?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::Other(format!(
            "linking the patch failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    // Complete before it is visible under its final name.
    std::fs::rename(&partial, &file)
        .map_err(|err| Failure::Other(format!("cannot move the patch into place: {err}")))?;
    Ok(Patch {
        file,
        build,
        link: started.elapsed(),
        warnings,
    })
}
