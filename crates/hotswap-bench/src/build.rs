//! Scratch projects and their builds.
//!
//! Each tool gets its own scratch workspace in the run's temporary directory, written from
//! `fixtures/`. All of them build into one shared target directory, `<repo>/target/bench`, so
//! repeated runs are incremental and never take the lock of the repo's main target directory.
//! Package names are unique across the scratch workspaces (`hsb_*`, `hlr_*`, `ss_*`), so their
//! outputs never collect in the same file; each artifact is copied out right after its build.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Version requirements of the tools compared against (what their READMEs tell users to add).
pub const HOT_LIB_RELOADER: &str = "0.8";
pub const SUBSECOND: &str = "0.7";

/// One scratch workspace.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Tool {
    Hotswap,
    HotLibReloader,
    Subsecond,
}

impl Tool {
    pub fn dir_name(self) -> &'static str {
        match self {
            Tool::Hotswap => "hotswap",
            Tool::HotLibReloader => "hot-lib-reloader",
            Tool::Subsecond => "subsecond",
        }
    }

    fn files(self) -> &'static [(&'static str, &'static str)] {
        macro_rules! fixture {
            ($($path:literal),* $(,)?) => {
                &[$(($path, include_str!(concat!("../fixtures/", $path)))),*]
            };
        }
        match self {
            Tool::Hotswap => fixture![
                "hotswap/Cargo.toml.in",
                "hotswap/hsb_add/Cargo.toml.in",
                "hotswap/hsb_add/src/lib.rs",
                "hotswap/hsb_host/Cargo.toml.in",
                "hotswap/hsb_host/src/main.rs",
            ],
            Tool::HotLibReloader => fixture![
                "hot-lib-reloader/Cargo.toml.in",
                "hot-lib-reloader/hlr_add/Cargo.toml.in",
                "hot-lib-reloader/hlr_add/src/lib.rs",
                "hot-lib-reloader/hlr_host/Cargo.toml.in",
                "hot-lib-reloader/hlr_host/src/main.rs",
            ],
            Tool::Subsecond => fixture![
                "subsecond/Cargo.toml.in",
                "subsecond/ss_add/Cargo.toml.in",
                "subsecond/ss_add/src/lib.rs",
                "subsecond/ss_host/Cargo.toml.in",
                "subsecond/ss_host/src/main.rs",
            ],
        }
    }

    /// The host package, which gets a copy of the shared harness.
    fn host(self) -> &'static str {
        match self {
            Tool::Hotswap => "hsb_host",
            Tool::HotLibReloader => "hlr_host",
            Tool::Subsecond => "ss_host",
        }
    }
}

const HARNESS: &str = include_str!("../fixtures/harness.rs");

/// A cargo profile of the scratch builds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Profile {
    /// `--release`: opt-level 3, no debug assertions.
    O3,
    /// The default `dev` profile: opt-level 0, debug assertions.
    O0,
    /// opt-level 3 with debug assertions (subsecond only: see its fixture).
    O3DebugAssertions,
}

impl Profile {
    pub fn label(self) -> &'static str {
        match self {
            Profile::O3 => "opt-level 3 (`--release`)",
            Profile::O0 => "opt-level 0 (dev profile)",
            Profile::O3DebugAssertions => "opt-level 3 + debug-assertions",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Profile::O3 => "o3",
            Profile::O0 => "o0",
            Profile::O3DebugAssertions => "o3da",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Profile::O3 => &["--release"],
            Profile::O0 => &[],
            Profile::O3DebugAssertions => &["--profile", "release-da"],
        }
    }

    fn out_dir(self) -> &'static str {
        match self {
            Profile::O3 => "release",
            Profile::O0 => "debug",
            Profile::O3DebugAssertions => "release-da",
        }
    }
}

/// One build whose output the bench runs or installs.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Artifact {
    pub tool: Tool,
    pub package: &'static str,
    pub profile: Profile,
    /// `--features hot` (hotswap only).
    pub hot: bool,
    /// `HSB_MARK` at compile time: what the library's `mark()` returns.
    pub mark: Option<u64>,
    /// A library (`lib<package>.so`) rather than an executable.
    pub library: bool,
}

impl Artifact {
    pub fn host(tool: Tool, profile: Profile, hot: bool) -> Self {
        Artifact {
            tool,
            package: tool.host(),
            profile,
            hot,
            mark: None,
            library: false,
        }
    }

    pub fn library(tool: Tool, package: &'static str, profile: Profile, mark: u64) -> Self {
        Artifact {
            tool,
            package,
            profile,
            hot: tool == Tool::Hotswap,
            mark: Some(mark),
            library: true,
        }
    }

    fn file_name(&self) -> String {
        if self.library {
            format!("lib{}.so", self.package)
        } else {
            self.package.to_string()
        }
    }

    /// Where the copy of this artifact lives in the run's directory.
    fn copy_name(&self) -> String {
        let mut name = format!("{}-{}", self.package, self.profile.short());
        if self.hot {
            name.push_str("-hot");
        }
        if let Some(mark) = self.mark {
            name.push_str(&format!("-mark{mark}"));
        }
        if self.library {
            name.push_str(".so");
        }
        name
    }

    /// The cargo command, as run in the scratch workspace.
    pub fn command(&self) -> String {
        let mut words = Vec::new();
        if let Some(mark) = self.mark {
            words.push(format!("HSB_MARK={mark}"));
        }
        words.push("cargo build".into());
        words.extend(self.profile.args().iter().map(|a| a.to_string()));
        words.push(format!("-p {}", self.package));
        if self.hot {
            words.push("--features hot".into());
        }
        words.join(" ")
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.copy_name())
    }
}

pub struct Builder {
    repo: PathBuf,
    /// Source of the `hotswap` crate the scratch projects depend on.
    hotswap_dir: PathBuf,
    target: PathBuf,
    work: PathBuf,
    cargo: String,
    written: HashMap<Tool, Result<PathBuf, String>>,
    built: HashMap<Artifact, Result<PathBuf, String>>,
    pub log: Vec<String>,
}

impl Builder {
    pub fn new(repo: &Path, hotswap_dir: &Path, work: &Path) -> Self {
        Builder {
            repo: repo.to_path_buf(),
            hotswap_dir: hotswap_dir.to_path_buf(),
            target: repo.join("target").join("bench"),
            work: work.to_path_buf(),
            cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            written: HashMap::new(),
            built: HashMap::new(),
            log: Vec::new(),
        }
    }

    pub fn workspace(&mut self, tool: Tool) -> Result<PathBuf, String> {
        if let Some(done) = self.written.get(&tool) {
            return done.clone();
        }
        let result = self.write_workspace(tool);
        self.written.insert(tool, result.clone());
        result
    }

    fn write_workspace(&self, tool: Tool) -> Result<PathBuf, String> {
        let root = self.work.join("ws").join(tool.dir_name());
        let prefix = format!("{}/", tool.dir_name());
        for (path, text) in tool.files() {
            let relative = path
                .strip_prefix(&prefix)
                .expect("fixture paths start with the tool");
            let relative = relative.strip_suffix(".in").unwrap_or(relative);
            let text = text
                .replace("{{HOTSWAP}}", &self.hotswap_dir.display().to_string())
                .replace("{{HLR_VERSION}}", HOT_LIB_RELOADER)
                .replace("{{SUBSECOND_VERSION}}", SUBSECOND);
            write(&root.join(relative), &text)?;
        }
        write(
            &root.join(tool.host()).join("src").join("harness.rs"),
            HARNESS,
        )?;
        if tool == Tool::Hotswap {
            // Same dependency versions as the repo itself.
            let lock = self.repo.join("Cargo.lock");
            if lock.exists() {
                std::fs::copy(&lock, root.join("Cargo.lock"))
                    .map_err(|err| format!("cannot copy Cargo.lock: {err}"))?;
            }
        }
        Ok(root)
    }

    /// Builds `artifact` (once per run) and returns the path of its copy.
    pub fn get(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        if let Some(done) = self.built.get(artifact) {
            return done.clone();
        }
        let result = self.build(artifact);
        if let Err(err) = &result {
            eprintln!("hotswap-bench: build of {artifact} failed: {err}");
        }
        self.built.insert(artifact.clone(), result.clone());
        result
    }

    fn build(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        let root = self.workspace(artifact.tool)?;
        eprintln!(
            "hotswap-bench: building {artifact}: {} (in the {} scratch workspace)",
            artifact.command(),
            artifact.tool.dir_name()
        );
        let mut command = Command::new(&self.cargo);
        command
            .current_dir(&root)
            .arg("build")
            .args(artifact.profile.args())
            .args(["-p", artifact.package]);
        if artifact.hot {
            command.args(["--features", "hot"]);
        }
        clean_env(&mut command);
        command.env("CARGO_TARGET_DIR", &self.target);
        if let Some(mark) = artifact.mark {
            command.env("HSB_MARK", mark.to_string());
        }
        let output = command
            .output()
            .map_err(|err| format!("cannot run cargo: {err}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.log.push(format!(
            "$ {}  # {} scratch workspace\n{stderr}",
            artifact.command(),
            artifact.tool.dir_name()
        ));
        if !output.status.success() {
            return Err(first_error(&stderr));
        }
        let built = self
            .target
            .join(artifact.profile.out_dir())
            .join(artifact.file_name());
        let copy = self.work.join("bin").join(artifact.copy_name());
        std::fs::create_dir_all(copy.parent().expect("has a parent"))
            .map_err(|err| format!("cannot create the bin directory: {err}"))?;
        std::fs::copy(&built, &copy)
            .map_err(|err| format!("cannot copy {}: {err}", built.display()))?;
        Ok(copy)
    }

    /// The version of `package` that the scratch workspace of `tool` resolved.
    pub fn resolved_version(&self, tool: Tool, package: &str) -> Option<String> {
        let root = self.work.join("ws").join(tool.dir_name());
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).ok()?;
        let mut lines = lock.lines();
        while let Some(line) = lines.next() {
            if line.trim() == format!("name = \"{package}\"") {
                let version = lines.next()?;
                return Some(
                    version
                        .trim()
                        .trim_start_matches("version = ")
                        .trim_matches('"')
                        .to_string(),
                );
            }
        }
        None
    }
}

/// Environment variables that would change what a scratch build or a host does: flags meant for
/// the repo's own build, and hotswap's own switches.
pub fn clean_env(command: &mut Command) {
    for name in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "HSB_MARK",
        "HSB_PATCH",
        "HOTSWAP_CONTROL",
        "HOTSWAP_LIB_DIR",
        "HOTSWAP_LOG",
        "HOTSWAP_BUILD_TOKEN",
    ] {
        command.env_remove(name);
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
}

/// The first `error` line of cargo's output and the line after it, for the report.
fn first_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.iter().position(|line| line.starts_with("error")) {
        Some(i) => lines[i..lines.len().min(i + 3)]
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" "),
        None => lines.last().unwrap_or(&"cargo failed").to_string(),
    }
}
