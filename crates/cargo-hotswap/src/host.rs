//! Build the program in hot mode with cargo, in `<target>/hotswap`, through our rustc wrapper.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::capture::{
    CAPTURE_DIR_ENV, HOT_CRATES_ENV, HOT_PROGRAM_ENV, INNER_WRAPPER_ENV, ROLE_ENV, ROLE_WRAPPER,
};
use crate::project::{cargo, Program, Project};
use crate::report;

/// Options passed through to cargo.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub release: bool,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    executable: Option<PathBuf>,
    #[serde(default)]
    target: Option<MessageTarget>,
    #[serde(default)]
    message: Option<Rendered>,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct MessageTarget {
    name: String,
}

#[derive(Deserialize)]
struct Rendered {
    rendered: Option<String>,
    level: Option<String>,
}

/// A copy of this binary at a fixed place in our target directory, used as the rustc wrapper
/// and linker. Reinstalling `cargo-hotswap` while a session runs replaces the original (its
/// path then reads `… (deleted)`), which would break every later build of the session.
fn tool(project: &Project) -> Result<PathBuf, String> {
    use std::sync::OnceLock;
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let me = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
        let dir = project.target_dir.join("tool");
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let copy = dir.join("cargo-hotswap");
        let partial = dir.join(format!(".cargo-hotswap.{}", std::process::id()));
        std::fs::copy(&me, &partial)
            .and_then(|_| std::fs::rename(&partial, &copy))
            .map_err(|err| format!("cannot copy {} to {}: {err}", me.display(), copy.display()))?;
        Ok(copy)
    })
    .clone()
}

/// Builds the program; returns the executable. Compiler errors are shown as cargo shows them.
pub fn build(
    project: &Project,
    program: &Program,
    options: &BuildOptions,
    token: &str,
) -> Result<PathBuf, String> {
    let me = tool(project)?;
    let hot: Vec<&str> = project
        .hot_libraries()
        .map(|c| c.crate_name.as_str())
        .collect();
    let mut command = Command::new(cargo());
    command
        .arg("build")
        .arg("--message-format=json-diagnostic-rendered-ansi")
        // The runtime itself optimised even in a dev build: checking a patch of thousands of
        // functions is several times faster, and nothing of the user's code changes.
        .arg("--config")
        .arg(format!(
            "profile.{}.package.hotswap.opt-level=3",
            if options.release { "release" } else { "dev" }
        ))
        .arg("-p")
        .arg(&program.package)
        .arg(if program.is_example {
            "--example"
        } else {
            "--bin"
        })
        .arg(&program.name)
        .arg("--target-dir")
        .arg(&project.target_dir)
        .current_dir(&project.root)
        .env("RUSTC_WRAPPER", &me)
        .env(ROLE_ENV, ROLE_WRAPPER)
        .env(CAPTURE_DIR_ENV, project.capture_dir())
        .env(HOT_CRATES_ENV, hot.join(","))
        .env(
            HOT_PROGRAM_ENV,
            project.hot_program().map_or("", |c| c.crate_name.as_str()),
        )
        .env("HOTSWAP_BUILD_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(inner) = std::env::var_os("RUSTC_WRAPPER").filter(|w| !w.is_empty()) {
        command.env(INNER_WRAPPER_ENV, inner);
    }
    if options.release {
        command.arg("--release");
    }
    if !options.features.is_empty() {
        command.arg("--features").arg(options.features.join(","));
    }
    if options.all_features {
        command.arg("--all-features");
    }
    if options.no_default_features {
        command.arg("--no-default-features");
    }
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    // Cargo's own errors (bad manifest, …) arrive on stderr; keep the last lines for the report.
    let stderr = child.stderr.take().expect("piped");
    let cargo_errors = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let plain = report::strip_ansi(&line);
            let trimmed = plain.trim_start();
            if trimmed.starts_with("Compiling") {
                report::progress(&format!("building (hot mode): {trimmed}"));
            } else if !(trimmed.starts_with("Finished") || trimmed.starts_with("Blocking")) {
                kept.push(line);
            }
        }
        kept
    });
    let stdout = child.stdout.take().expect("piped");
    let mut executable = None;
    let mut success = false;
    let mut compiled = 0usize;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" => {
                compiled += 1;
                let name = message.target.as_ref().map_or("", |t| t.name.as_str());
                report::progress(&format!(
                    "building (hot mode): {compiled} crates, last {name}"
                ));
                if message
                    .target
                    .as_ref()
                    .is_some_and(|t| t.name == program.name)
                {
                    if let Some(exe) = message.executable {
                        executable = Some(exe);
                    }
                }
            }
            "compiler-message" => {
                if let Some(Rendered {
                    rendered: Some(text),
                    level,
                }) = message.message
                {
                    if level.as_deref() != Some("warning")
                        || std::env::var_os("HOTSWAP_WARNINGS").is_some()
                    {
                        report::diagnostics(&[text]);
                    }
                }
            }
            "build-finished" => success = message.success.unwrap_or(false),
            _ => {}
        }
    }
    let status = child.wait().map_err(|err| err.to_string())?;
    let cargo_errors = cargo_errors.join().unwrap_or_default();
    report::clear_progress();
    if !status.success() || !success {
        let detail: Vec<&String> = cargo_errors
            .iter()
            .filter(|l| !l.trim().is_empty() && !l.contains("warning"))
            .collect();
        let detail = detail
            .iter()
            .rev()
            .take(15)
            .rev()
            .map(|l| format!("  {}", report::strip_ansi(l)))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(format!(
            "the build failed{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(":\n{detail}")
            }
        ));
    }
    executable.ok_or_else(|| format!("cargo built no executable named `{}`", program.name))
}
