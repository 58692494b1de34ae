//! The `RUSTC_WRAPPER` role: during the app's build, every rustc command passes through here.
//!
//! For each crate it adds `--cfg hotswap` (hot mode), records the exact command, working
//! directory and environment (so a patch is compiled with the host's flags, features and
//! `-C metadata`, hence the same symbol names and `TypeId`s), and for the program's executable
//! routes the link through [`crate::linker`]. Hot crates are built as plain `rlib`s, which is all
//! the executable and the patches need.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Environment variable telling this binary which role it plays.
pub const ROLE_ENV: &str = "HOTSWAP_ROLE";
pub const ROLE_WRAPPER: &str = "rustc-wrapper";
/// Where compiler commands are recorded.
pub const CAPTURE_DIR_ENV: &str = "HOTSWAP_CAPTURE_DIR";
/// Comma-separated crate names of the hot crates.
pub const HOT_CRATES_ENV: &str = "HOTSWAP_HOT_CRATES";
/// The crate name of the program's binary crate when it is hot (its package depends on
/// `hotswap`): it gets type information like a hot library, and the linker role keeps its
/// objects.
pub const HOT_PROGRAM_ENV: &str = "HOTSWAP_HOT_PROGRAM";
/// A `RUSTC_WRAPPER` the user had before ours (sccache, …), run in turn.
pub const INNER_WRAPPER_ENV: &str = "HOTSWAP_INNER_WRAPPER";

/// One recorded rustc command.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Invocation {
    pub crate_name: String,
    pub crate_types: Vec<String>,
    pub extra_filename: String,
    pub out_dir: PathBuf,
    /// Paths given with `--extern` (rlib, rmeta or proc-macro library).
    pub externs: Vec<PathBuf>,
    pub rustc: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Invocation {
    fn parse(rustc: PathBuf, args: Vec<String>) -> Option<Invocation> {
        let mut crate_name = None;
        let mut crate_types = Vec::new();
        let mut extra_filename = String::new();
        let mut out_dir = None;
        let mut externs = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--crate-name" => crate_name = iter.next().cloned(),
                "--crate-type" => crate_types.extend(iter.next().cloned()),
                "--out-dir" => out_dir = iter.next().map(PathBuf::from),
                "--extern" => {
                    if let Some((_, path)) = iter.next().and_then(|spec| spec.split_once('=')) {
                        externs.push(PathBuf::from(path));
                    }
                }
                "-C" => {
                    if let Some(extra) = iter.next().and_then(|v| v.strip_prefix("extra-filename="))
                    {
                        extra_filename = extra.to_owned();
                    }
                }
                other => {
                    if let Some(extra) = other.strip_prefix("-Cextra-filename=") {
                        extra_filename = extra.to_owned();
                    }
                }
            }
        }
        let crate_name = crate_name.filter(|name| name != "___")?;
        Some(Invocation {
            crate_name,
            crate_types,
            extra_filename,
            out_dir: out_dir?,
            externs,
            rustc,
            args,
            cwd: std::env::current_dir().ok()?,
            env: std::env::vars().collect(),
        })
    }

    pub fn is_library(&self) -> bool {
        self.crate_types.iter().any(|t| t == "lib" || t == "rlib")
    }

    /// The rlib this command writes.
    pub fn rlib(&self) -> PathBuf {
        self.out_dir.join(format!(
            "lib{}{}.rlib",
            self.crate_name, self.extra_filename
        ))
    }

    /// Whether this command builds an executable (a binary crate; build scripts excepted).
    pub fn is_program(&self) -> bool {
        self.crate_types.iter().any(|t| t == "bin") && !self.crate_name.starts_with("build_script_")
    }

    /// Whether this command builds a C-compatible shared library (`cdylib`).
    pub fn is_cdylib(&self) -> bool {
        self.crate_types.iter().any(|t| t == "cdylib")
    }

    /// The executable or shared library this command links (`<out-dir>/<crate><extra>`, or
    /// `<out-dir>/lib<crate><extra>.so`), if it links one.
    pub fn artifact(&self) -> Option<PathBuf> {
        if self.is_program() {
            Some(
                self.out_dir
                    .join(format!("{}{}", self.crate_name, self.extra_filename)),
            )
        } else if self.is_cdylib() {
            Some(
                self.out_dir
                    .join(format!("lib{}{}.so", self.crate_name, self.extra_filename)),
            )
        } else {
            None
        }
    }

    /// The source files the last run of this command read, from the dep-info file rustc wrote
    /// next to its output (`<out-dir>/<crate><extra>.d`; cargo asks for one with
    /// `--emit=dep-info,link`). Empty when there is none.
    pub fn source_files(&self) -> Vec<PathBuf> {
        let path = self
            .out_dir
            .join(format!("{}{}.d", self.crate_name, self.extra_filename));
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        // The first rule lists every input: `<output>: <input> <input> ...`, spaces in names
        // escaped with `\`.
        let Some(first) = text.lines().next() else {
            return Vec::new();
        };
        let Some((_, inputs)) = first.split_once(": ") else {
            return Vec::new();
        };
        let mut files = Vec::new();
        let mut current = String::new();
        let mut chars = inputs.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.extend(chars.next()),
                ' ' => {
                    if !current.is_empty() {
                        files.push(self.cwd.join(std::mem::take(&mut current)));
                    }
                }
                _ => current.push(c),
            }
        }
        if !current.is_empty() {
            files.push(self.cwd.join(current));
        }
        files
    }

    /// The record's file name in the capture directory.
    pub(crate) fn file_name(&self) -> String {
        format!(
            "{}{}-{}.json",
            self.crate_name,
            self.extra_filename,
            self.crate_types.join("-")
        )
    }

    /// Every command recorded in `dir` as far as the crate graph goes: without the arguments,
    /// environment, compiler and directory (`args`, `env` empty), which are most of each record
    /// and which a link, reading every record, needs only for the few it keeps (see
    /// [`Invocation::full`]).
    pub fn load_graph(dir: &Path) -> Vec<Invocation> {
        /// The fields of a record the graph needs; serde skips the others unread.
        #[derive(Deserialize)]
        struct Node {
            crate_name: String,
            crate_types: Vec<String>,
            extra_filename: String,
            out_dir: PathBuf,
            externs: Vec<PathBuf>,
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice::<Node>(&bytes).ok())
            .map(|node| Invocation {
                crate_name: node.crate_name,
                crate_types: node.crate_types,
                extra_filename: node.extra_filename,
                out_dir: node.out_dir,
                externs: node.externs,
                rustc: PathBuf::new(),
                args: Vec::new(),
                cwd: PathBuf::new(),
                env: Vec::new(),
            })
            .collect()
    }

    /// The whole record of this command in `dir` (for one [`Invocation::load_graph`] gave).
    pub fn full(&self, dir: &Path) -> Result<Invocation, String> {
        let path = dir.join(self.file_name());
        let bytes =
            std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Runs the recorded command again, as the build ran it.
    pub fn command(&self) -> Command {
        self.command_with(&self.args)
    }

    /// The recorded command with other arguments (same compiler, directory, environment).
    pub fn command_with(&self, args: &[String]) -> Command {
        let mut command = Command::new(&self.rustc);
        command
            .args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

/// Rlibs of `roots` and of everything they depend on, through the recorded `--extern`s.
pub fn library_closure(all: &[Invocation], roots: &[&Invocation]) -> Vec<PathBuf> {
    let by_rlib: HashMap<PathBuf, &Invocation> = all
        .iter()
        .filter(|inv| inv.is_library())
        .map(|inv| (inv.rlib(), inv))
        .collect();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut queue: Vec<&Invocation> = roots.to_vec();
    while let Some(inv) = queue.pop() {
        let rlib = inv.rlib();
        if seen.contains(&rlib) {
            continue;
        }
        seen.push(rlib);
        for path in &inv.externs {
            let as_rlib = path.with_extension("rlib");
            if let Some(dep) = by_rlib.get(&as_rlib) {
                queue.push(dep);
            }
        }
    }
    seen.retain(|path| path.exists());
    seen
}

pub fn wrapper_main() -> i32 {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprintln!("cargo-hotswap (rustc wrapper): no compiler given");
        return 2;
    }
    let rustc = PathBuf::from(args.remove(0));
    let mut args: Vec<String> = args
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let mut command = match std::env::var_os(INNER_WRAPPER_ENV).filter(|w| !w.is_empty()) {
        Some(inner) => {
            let mut command = Command::new(inner);
            command.arg(&rustc);
            command
        }
        None => Command::new(&rustc),
    };
    command.env_remove(ROLE_ENV);
    if let Some(mut invocation) = Invocation::parse(rustc, args.clone()) {
        args.extend(["--cfg".into(), "hotswap".into()]);
        let hot: Vec<String> = std::env::var(HOT_CRATES_ENV)
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect();
        if hot.contains(&invocation.crate_name) && invocation.is_library() {
            strip_extra_crate_types(&mut args);
            invocation.crate_types.retain(|t| t == "lib" || t == "rlib");
            ensure_type_info(&mut args);
        }
        let is_program = invocation.is_program();
        let is_hot_artifact = (is_program || invocation.is_cdylib())
            && std::env::var(HOT_PROGRAM_ENV).is_ok_and(|name| name == invocation.crate_name);
        if is_hot_artifact {
            ensure_type_info(&mut args);
        }
        // Every executable, and the library a foreign host loads (`run --lib`), are linked by
        // the linker role.
        if is_program || is_hot_artifact {
            crate::linker::route_link_through_us(&mut args, &mut command);
        }
        invocation.args = args.clone();
        if let Some(dir) = std::env::var_os(CAPTURE_DIR_ENV) {
            if let Err(err) = record(Path::new(&dir), &invocation) {
                eprintln!("cargo-hotswap: cannot record the compiler command: {err}");
            }
        }
    }
    let err = command.args(&args).exec();
    eprintln!("cargo-hotswap: cannot run the compiler: {err}");
    1
}

/// Drops `cdylib`, `dylib` and `staticlib` outputs: the host links the rlib and patches are
/// linked from it, so building the others only costs time.
fn strip_extra_crate_types(args: &mut Vec<String>) {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = std::mem::take(args).into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--crate-type" {
            if let Some(kind) = iter.next() {
                if matches!(kind.as_str(), "cdylib" | "dylib" | "staticlib") {
                    continue;
                }
                out.push(arg);
                out.push(kind);
            }
            continue;
        }
        out.push(arg);
    }
    *args = out;
}

/// Makes a hot crate's objects describe every type in their DWARF (`-C debuginfo=2`, kept in
/// the objects rather than split out): the layout check compares the types of the running build
/// with the patch's (see [`crate::layout`]). Profiles with `debug = 0` or `1` (release, or a
/// user's choice) carry no type information otherwise. Debug information changes neither the
/// code nor the symbol names, so the program and its patches still match.
fn ensure_type_info(args: &mut Vec<String>) {
    let mut out = Vec::with_capacity(args.len() + 4);
    let mut iter = std::mem::take(args).into_iter();
    let replaced =
        |value: &str| value.starts_with("debuginfo=") || value.starts_with("split-debuginfo=");
    while let Some(arg) = iter.next() {
        if arg == "-C" {
            match iter.next() {
                Some(value) if replaced(&value) => {}
                Some(value) => {
                    out.push(arg);
                    out.push(value);
                }
                None => out.push(arg),
            }
        } else if arg.strip_prefix("-C").is_some_and(replaced) {
        } else {
            out.push(arg);
        }
    }
    out.extend(["-C", "debuginfo=2", "-C", "split-debuginfo=off"].map(String::from));
    *args = out;
}

fn record(dir: &Path, invocation: &Invocation) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(invocation.file_name());
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, serde_json::to_vec(invocation)?)?;
    std::fs::rename(temp, path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A recorded library command of crate `name` in `dir`, depending on `externs`.
    pub(crate) fn inv(name: &str, externs: &[&str], dir: &Path) -> Invocation {
        Invocation {
            crate_name: name.into(),
            crate_types: vec!["lib".into()],
            extra_filename: "-h".into(),
            out_dir: dir.into(),
            externs: externs
                .iter()
                .map(|e| dir.join(format!("lib{e}-h.rmeta")))
                .collect(),
            rustc: "rustc".into(),
            args: vec![],
            cwd: dir.into(),
            env: vec![],
        }
    }

    #[test]
    fn closure_follows_externs_transitively_and_skips_unrelated_crates() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["game", "serde_json", "itoa", "unrelated"] {
            std::fs::write(dir.path().join(format!("lib{name}-h.rlib")), b"").unwrap();
        }
        let all = vec![
            inv("game", &["serde_json"], dir.path()),
            inv("serde_json", &["itoa"], dir.path()),
            inv("itoa", &[], dir.path()),
            inv("unrelated", &[], dir.path()),
        ];
        let closure = library_closure(&all, &[&all[0]]);
        let names: Vec<String> = closure
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(!names.iter().any(|n| n.contains("unrelated")));
    }

    #[test]
    fn hot_crates_always_get_type_information() {
        let mut args: Vec<String> = [
            "-C",
            "debuginfo=0",
            "-Cdebuginfo=1",
            "-C",
            "opt-level=3",
            "x.rs",
        ]
        .map(String::from)
        .to_vec();
        ensure_type_info(&mut args);
        assert_eq!(
            args,
            [
                "-C",
                "opt-level=3",
                "x.rs",
                "-C",
                "debuginfo=2",
                "-C",
                "split-debuginfo=off"
            ]
        );
    }

    #[test]
    fn extra_crate_types_are_dropped_but_lib_kept() {
        let mut args: Vec<String> = ["--crate-type", "lib", "--crate-type", "cdylib", "x.rs"]
            .map(String::from)
            .to_vec();
        strip_extra_crate_types(&mut args);
        assert_eq!(args, ["--crate-type", "lib", "x.rs"]);
    }
}
