//! Build the program in hot mode with cargo, in `<target>/hotswap`, through our rustc wrapper.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::build_units;
use crate::capture::{
    CAPTURE_DIR_ENV, HOT_CRATES_ENV, HOT_PROGRAM_ENV, INNER_WRAPPER_ENV, ROLE_ENV, ROLE_WRAPPER,
};
use crate::progress::{self, BuildProgress};
use crate::project::{cargo, Program, Project};
use crate::report;
use crate::runtime_deps;

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
    filenames: Vec<PathBuf>,
    #[serde(default)]
    target: Option<MessageTarget>,
    #[serde(default)]
    message: Option<Rendered>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    fresh: Option<bool>,
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
///
/// The copy keeps the original's modification time, and is made again only when its size or
/// that time differ: cargo keys its cache of what rustc reports (`.rustc_info.json`: `-vV`, the
/// target's file names and cfgs) by the wrapper's path and modification time, so a fresh copy
/// each session would have cargo ask rustc again (three more compiler runs before the first
/// crate, a tenth of a second).
fn tool(project: &Project) -> Result<PathBuf, String> {
    use std::sync::OnceLock;
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let me = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
        let dir = project.target_dir.join("tool");
        let copy = dir.join("cargo-hotswap");
        let original = std::fs::metadata(&me)
            .and_then(|meta| Ok((meta.len(), meta.modified()?)))
            .map_err(|err| format!("cannot read {}: {err}", me.display()))?;
        let current = std::fs::metadata(&copy)
            .and_then(|meta| Ok((meta.len(), meta.modified()?)))
            .ok();
        if current == Some(original) {
            return Ok(copy);
        }
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let partial = dir.join(format!(".cargo-hotswap.{}", std::process::id()));
        std::fs::copy(&me, &partial)
            .and_then(|_| std::fs::File::options().write(true).open(&partial))
            .and_then(|file| file.set_modified(original.1))
            .and_then(|()| std::fs::rename(&partial, &copy))
            .map_err(|err| format!("cannot copy {} to {}: {err}", me.display(), copy.display()))?;
        Ok(copy)
    })
    .clone()
}

/// Builds the program (or, for `run --lib`, the library); returns the executable (the
/// library). Compiler errors are shown as cargo shows them.
/// The packages [`build`] compiles at opt-level 3 whatever the profile says: `#[hot]`'s
/// procedural macro and the crates it parses and prints with (syn's parser is also what most
/// derive macros run).
const FAST_MACROS: [&str; 4] = ["hotswap-macros", "syn", "quote", "proc-macro2"];

pub fn build(
    project: &Project,
    program: &Program,
    options: &BuildOptions,
    token: &str,
) -> Result<PathBuf, String> {
    let me = tool(project)?;
    let profile = if options.release { "release" } else { "dev" };
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
        .arg(format!("profile.{profile}.package.hotswap.opt-level=3"))
        // ...and without debug information: no check reads the runtime's (the layout check
        // reads the hot crates' own), and the program's link takes the whole runtime
        // (`--whole-archive`), so its debug information would only lengthen that link (by a
        // fifth for a small program).
        .arg("--config")
        .arg(format!("profile.{profile}.package.hotswap.debug=0"))
        // ...and so are the packages only the runtime brings in: the link takes them whole
        // too, and they held most of its debug information (see `runtime_deps`).
        .args(runtime_dependencies(project, profile))
        // `#[hot]`'s macro and the parser it shares with most derive macros, optimised: every
        // patch's build runs them again on each item they expand (a proc macro's output is
        // never cached by incremental compilation), and at opt-level 0 they are several times
        // slower. Host code only: nothing of the program changes.
        .args(FAST_MACROS.iter().flat_map(|package| {
            [
                "--config".to_owned(),
                format!("profile.{profile}.package.{package}.opt-level=3"),
            ]
        }))
        .arg("-p")
        .arg(&program.package)
        .args(if program.library {
            vec!["--lib".to_owned()]
        } else if program.is_example {
            vec!["--example".to_owned(), program.name.clone()]
        } else {
            vec!["--bin".to_owned(), program.name.clone()]
        })
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
    let feature_args = feature_args(options);
    command.args(&feature_args);
    let started = Instant::now();
    let link_log = crate::linker::link_log(&project.capture_dir());
    let _ = std::fs::remove_file(&link_log);
    let state = Arc::new(Mutex::new(BuildProgress::default()));
    // The total: the last build's count when nothing it depends on changed, else estimated
    // while cargo builds (a second `cargo metadata`, with dependencies).
    let units_file = build_units::path(&project.target_dir, &program.name);
    let units_key = {
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let mut manifests = vec![
            project.root.join("Cargo.lock"),
            project.root.join("Cargo.toml"),
        ];
        manifests.extend(project.members.iter().map(|m| m.manifest_path.clone()));
        build_units::Key::new(&args, &manifests)
    };
    let remembered = build_units::remembered(&units_file, units_key);
    if let (Some(total), Ok(mut state)) = (remembered, state.lock()) {
        state.total = Some(total);
    }
    let estimate = remembered.is_none().then(|| {
        let state = Arc::clone(&state);
        let root = project.root.clone();
        let package = program.package.clone();
        std::thread::spawn(move || {
            let total = progress::estimate_units(&root, &package, &feature_args);
            if let Ok(mut state) = state.lock() {
                state.total = total;
                if !std::io::stderr().is_terminal() && state.total_due() {
                    report::info(&state.line());
                }
            }
        })
    });
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    // Cargo's own errors (bad manifest, …) arrive on stderr; keep the last lines for the report.
    let stderr = child.stderr.take().expect("piped");
    let status_state = Arc::clone(&state);
    let cargo_errors = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let plain = report::strip_ansi(&line);
            let trimmed = plain.trim_start();
            if let Some(name) = progress::compiling(trimmed) {
                if let Ok(mut state) = status_state.lock() {
                    state.current = Some(name.to_owned());
                    show(&mut state, false);
                }
            } else if !(trimmed.starts_with("Finished") || trimmed.starts_with("Blocking")) {
                kept.push(line);
            }
        }
        kept
    });
    let stdout = child.stdout.take().expect("piped");
    let mut executable = None;
    let mut success = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match message.reason.as_str() {
            "compiler-artifact" => {
                if let Ok(mut state) = state.lock() {
                    state.done += 1;
                    if message.fresh != Some(true) {
                        state.compiled += 1;
                    }
                    show(&mut state, true);
                }
                if message
                    .target
                    .as_ref()
                    .is_some_and(|t| t.name == program.name)
                {
                    if let Some(exe) = message.executable {
                        executable = Some(exe);
                    } else if program.library {
                        executable = message
                            .filenames
                            .into_iter()
                            .find(|f| f.extension().is_some_and(|e| e == "so"));
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
            "build-script-executed" => {
                if let Ok(mut state) = state.lock() {
                    state.done += 1;
                    show(&mut state, true);
                }
            }
            "build-finished" => success = message.success.unwrap_or(false),
            _ => {}
        }
    }
    let status = child.wait().map_err(|err| err.to_string())?;
    let cargo_errors = cargo_errors.join().unwrap_or_default();
    // The estimate ran beside the whole build (it is one `cargo metadata`): its line, if it
    // comes after the first unit's, is printed before the summary, not at some random moment.
    if let Some(estimate) = estimate {
        let _ = estimate.join();
    }
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
    let executable = executable.ok_or_else(|| {
        format!(
            "cargo built no {} named `{}`",
            if program.library {
                "shared library"
            } else {
                "executable"
            },
            program.name
        )
    })?;
    let link = program_link_time(&link_log, &program.name);
    if let Ok(state) = state.lock() {
        report::info(&state.summary(started.elapsed(), link));
        build_units::remember(&units_file, units_key, state.done);
    }
    Ok(executable)
}

/// `--config` arguments building each package only the runtime brings into the build (read from
/// the workspace's `Cargo.lock`, see [`runtime_deps`]) without debug information. None before
/// the lock file exists (cargo writes it on the first build).
fn runtime_dependencies(project: &Project, profile: &str) -> Vec<String> {
    let Ok(lock) = std::fs::read_to_string(project.root.join("Cargo.lock")) else {
        return Vec::new();
    };
    let members: Vec<&str> = project.members.iter().map(|m| m.name.as_str()).collect();
    runtime_deps::only_the_runtimes(&lock, &members)
        .into_iter()
        // Cargo refuses two overrides matching one package, and these have theirs.
        .filter(|spec| {
            let name = spec.split('@').next().unwrap_or(spec);
            !FAST_MACROS.contains(&name)
        })
        .flat_map(|spec| {
            [
                "--config".to_owned(),
                format!("profile.{profile}.package.\"{spec}\".debug=0"),
            ]
        })
        .collect()
}

/// Cargo's feature flags of `options`, for the build and for `cargo metadata`.
fn feature_args(options: &BuildOptions) -> Vec<String> {
    let mut args = Vec::new();
    if !options.features.is_empty() {
        args.push("--features".to_owned());
        args.push(options.features.join(","));
    }
    if options.all_features {
        args.push("--all-features".to_owned());
    }
    if options.no_default_features {
        args.push("--no-default-features".to_owned());
    }
    args
}

/// Shows the progress: redrawn in place on a terminal; otherwise a plain line when one is due
/// (`unit`: a unit just finished; a new crate started alone does not print a plain line).
fn show(state: &mut BuildProgress, unit: bool) {
    if std::io::stderr().is_terminal() {
        report::progress(&state.line());
    } else if unit && (state.plain_due(Instant::now()) || state.total_due()) {
        report::info(&state.line());
    }
}

/// How long the link of the program `name` took, as the linker role recorded it in this
/// build's `log` (none if cargo did not link it again).
fn program_link_time(log: &Path, name: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(log).ok()?;
    let crate_name = name.replace('-', "_");
    let total: f64 = text
        .lines()
        .filter_map(|line| {
            let (seconds, output) = line.split_once('\t')?;
            let file = Path::new(output).file_name()?.to_str()?;
            let stem = match file.strip_prefix("lib").and_then(|f| f.strip_suffix(".so")) {
                Some(library) => library,
                None => file.rsplit_once('-')?.0,
            };
            (stem == crate_name).then(|| seconds.parse::<f64>().ok())?
        })
        .sum();
    (total > 0.0).then(|| Duration::from_secs_f64(total))
}
