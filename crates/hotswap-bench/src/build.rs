//! Scratch projects and their builds.
//!
//! Each tool gets its own scratch workspace in the run's temporary directory, written from
//! `fixtures/`. All of them build into one shared target directory, `<repo>/target/bench`, so
//! repeated runs are incremental and never take the lock of the repo's main target directory.
//! Package names are unique across the scratch workspaces (`hsb_*`, `hlr_*`, `ss_*`, `hse_*`,
//! `hle_*`), so their outputs never collect in the same file; each artifact is copied out right
//! after its build.
//!
//! Thin-patch rows have their host built by the real `cargo hotswap run` (into
//! `<repo>/target/bench/hotswap`; the program it starts exits at once) and build their patches as
//! it does for a save: the hot crate's recorded rustc command replayed after an edit of its
//! source, then the rlib alone linked into a shared object with the CLI's own version script
//! (`crates/cargo-hotswap/src/patch.rs`, read at compile time).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Version requirements of the tools compared against (what their READMEs tell users to add).
pub const HOT_LIB_RELOADER: &str = "0.8";
pub const SUBSECOND: &str = "0.7";

/// Dependencies of the heavy hot crate of the edit-to-effect rows: a web service's (over a
/// hundred crates in the tree).
pub(crate) const HEAVY_DEPENDENCIES: &str = r#"tokio = { version = "1", features = ["full"] }
axum = { version = "0.8", features = ["ws", "multipart", "macros"] }
tower-http = { version = "0.6", features = ["trace", "cors", "compression-gzip", "fs"] }
tracing-subscriber = { version = "0.3", features = ["env-filter", "json"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;

/// One scratch workspace (or, for `Cli`, the repository's own `cargo-hotswap`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Tool {
    Hotswap,
    HotLibReloader,
    Subsecond,
    /// A hot crate with many `#[hot]` functions (generated) and its host.
    Scale,
    /// Edit-to-effect with `cargo hotswap run`: a hot crate and its host, small or heavy (one
    /// workspace each: `cargo hotswap run` links every hot crate of the workspace into the
    /// program, see BENCHMARKS.md).
    EditSmall,
    EditHeavy,
    /// The small crate's code in a package with only `src/main.rs` (the program's own binary
    /// crate is the hot one).
    EditMain,
    /// The small crate's code in a `cdylib` run under `cargo hotswap run --lib`: loaded by a C
    /// program (`EditCHost`) or, as a PyO3 extension module, by `python3` (`EditPython`).
    EditCHost,
    EditPython,
    /// A headless Bevy app whose system is in the hot crate (`cargo hotswap run`, and a plain
    /// `cargo build` of the same edit).
    EditBevy,
    /// An egui window (eframe, glow on X11) whose `update` is in the hot crate, run under the
    /// bench's own Xvfb (`cargo hotswap run`, and a plain `cargo build` of the same edit).
    EditEgui,
    /// The same edits with hot-lib-reloader.
    EditHlrSmall,
    EditHlrHeavy,
    /// subsecond's edits, hot-patched by the Dioxus CLI's `dx serve --hotpatch`: the small and
    /// heavy crates' code behind `subsecond::call` (`subsecond.rs`).
    DxSmall,
    DxHeavy,
    /// `cargo-hotswap` itself, built from this repository.
    Cli,
}

impl Tool {
    pub fn dir_name(self) -> &'static str {
        match self {
            Tool::Hotswap => "hotswap",
            Tool::HotLibReloader => "hot-lib-reloader",
            Tool::Subsecond => "subsecond",
            Tool::Scale => "scale",
            Tool::EditSmall => "edit-small",
            Tool::EditHeavy => "edit-heavy",
            Tool::EditMain => "edit-main",
            Tool::EditCHost => "edit-c-host",
            Tool::EditPython => "edit-python",
            Tool::EditBevy => "edit-bevy",
            Tool::EditEgui => "edit-egui",
            Tool::EditHlrSmall => "edit-hlr-small",
            Tool::EditHlrHeavy => "edit-hlr-heavy",
            Tool::DxSmall => "dx-small",
            Tool::DxHeavy => "dx-heavy",
            Tool::Cli => "cli",
        }
    }

    /// The crate whose source a thin patch's edit changes, the file, and the line edited (to
    /// `const MARK: u64 = N;`).
    fn mark_line(self) -> Option<(&'static str, &'static str)> {
        match self {
            Tool::Hotswap => Some((
                "hsb_add/src/lib.rs",
                "const MARK: u64 = parse(option_env!(\"HSB_MARK\"));",
            )),
            Tool::Scale => Some(("hsb_scale/src/lib.rs", "const MARK: u64 = 0;")),
            _ => None,
        }
    }

    /// An edit row of a framework's app (the `edit-frameworks` region).
    pub fn is_framework_edit(self) -> bool {
        matches!(self, Tool::EditBevy | Tool::EditEgui)
    }

    /// A workspace of subsecond's edit rows, run by `dx serve --hotpatch` (`subsecond.rs`).
    pub fn is_dx_edit(self) -> bool {
        matches!(self, Tool::DxSmall | Tool::DxHeavy)
    }

    /// An edit-to-effect workspace of hot-lib-reloader.
    pub fn is_hlr_edit(self) -> bool {
        matches!(self, Tool::EditHlrSmall | Tool::EditHlrHeavy)
    }

    /// The hot crate of a thin-patch workspace.
    pub fn hot_crate(self) -> &'static str {
        match self {
            Tool::Scale => "hsb_scale",
            _ => "hsb_add",
        }
    }

    /// Every file of the scratch workspace: (path relative to its root, text), placeholders
    /// still in.
    fn files(self, scale_functions: usize) -> Vec<(String, String)> {
        macro_rules! fixture {
            ($($path:literal),* $(,)?) => {
                vec![$(($path.to_string(), include_str!(concat!("../fixtures/", $path)).to_string())),*]
            };
        }
        let prefix = format!("{}/", self.dir_name());
        let mut files: Vec<(String, String)> = match self {
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
            Tool::Scale => fixture![
                "scale/Cargo.toml.in",
                "scale/hsb_scale/Cargo.toml.in",
                "scale/hsb_scale_host/Cargo.toml.in",
                "scale/hsb_scale_host/src/main.rs",
            ],
            Tool::EditSmall | Tool::EditHeavy | Tool::EditHlrSmall | Tool::EditHlrHeavy => {
                return edit_files(self)
            }
            Tool::EditMain => return edit_main_files(),
            Tool::EditCHost | Tool::EditPython => return edit_library_files(self),
            Tool::EditBevy => return edit_bevy_files(),
            Tool::EditEgui => return edit_egui_files(),
            Tool::DxSmall | Tool::DxHeavy => return crate::subsecond::files(self),
            Tool::Cli => return Vec::new(),
        }
        .into_iter()
        .map(|(path, text)| {
            let relative = path
                .strip_prefix(&prefix)
                .expect("fixture paths start with the tool");
            let relative = relative.strip_suffix(".in").unwrap_or(relative);
            (relative.to_string(), text)
        })
        .collect();
        let host = self.host();
        files.push((format!("{host}/src/harness.rs"), HARNESS.to_string()));
        if matches!(self, Tool::Hotswap | Tool::Scale) {
            files.push((format!("{host}/src/channel.rs"), CHANNEL.to_string()));
        }
        if self == Tool::Scale {
            files.push(("hsb_scale/src/lib.rs".into(), scale_lib(scale_functions)));
        }
        files
    }

    /// The host package of a measuring workspace, which gets a copy of the shared harness.
    pub fn host(self) -> &'static str {
        match self {
            Tool::Hotswap => "hsb_host",
            Tool::HotLibReloader => "hlr_host",
            Tool::Subsecond => "ss_host",
            Tool::Scale => "hsb_scale_host",
            _ => "",
        }
    }
}

const HARNESS: &str = include_str!("../fixtures/harness.rs");
const CHANNEL: &str = include_str!("../fixtures/channel.rs");

/// The CLI's patch builder, read for the version script it links patches with, so the bench's
/// patches are linked exactly as the CLI next to it links them.
const CLI_PATCH_RS: &str = include_str!("../../cargo-hotswap/src/patch.rs");

/// The text of `const VERSION_SCRIPT: &str = "…";` in the CLI's patch.rs, if it has one.
fn cli_version_script() -> Option<String> {
    let start = CLI_PATCH_RS.find("const VERSION_SCRIPT: &str =")?;
    let rest = CLI_PATCH_RS[start + "const VERSION_SCRIPT: &str =".len()..].trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(text),
            '\\' => match chars.next()? {
                'n' => text.push('\n'),
                't' => text.push('\t'),
                '\n' => {
                    // A line continuation: skip the next line's leading blanks.
                    let skipped: String = chars.clone().take_while(|c| c.is_whitespace()).collect();
                    for _ in 0..skipped.chars().count() {
                        chars.next();
                    }
                }
                other => text.push(other),
            },
            other => text.push(other),
        }
    }
    None
}

/// `hsb_scale`'s source: `mark()` and `functions` functions `f{i}(x: u64) -> u64`, all `#[hot]`.
fn scale_lib(functions: usize) -> String {
    let mut text = format!(
        "//! Generated by hotswap-bench: {functions} `#[hot]` functions and a build marker.\n\n\
         /// Which build this is: the bench edits the line below for each thin patch.\n\
         #[hotswap::hot]\npub fn mark() -> u64 {{\n    MARK\n}}\n\nconst MARK: u64 = 0;\n"
    );
    for i in 0..functions {
        text.push_str(&format!(
            "\n#[hotswap::hot]\npub fn f{i}(x: u64) -> u64 {{\n    x.wrapping_add({i})\n}}\n"
        ));
    }
    text
}

/// An edit-to-effect workspace: a small or a heavy hot crate and its host, for hotswap (`hse_*`,
/// run by `cargo hotswap run`) or hot-lib-reloader (`hle_*`, a `cdylib`).
fn edit_files(tool: Tool) -> Vec<(String, String)> {
    const SMALL: &str = include_str!("../fixtures/edit/small.rs");
    const HEAVY: &str = include_str!("../fixtures/edit/heavy.rs");
    const HOTSWAP_HOST: &str = include_str!("../fixtures/edit/hotswap_host.rs");
    const HLR_HOST: &str = include_str!("../fixtures/edit/hlr_host.rs");
    let hlr = tool.is_hlr_edit();
    let prefix = if hlr { "hle" } else { "hse" };
    let (size, source) = match tool {
        Tool::EditSmall | Tool::EditHlrSmall => ("small", SMALL),
        _ => ("heavy", HEAVY),
    };
    let mut members = Vec::new();
    let mut files = Vec::new();
    {
        let lib = format!("{prefix}_{size}");
        let host = format!("{lib}_host");
        let mut manifest = package_manifest(&lib);
        if hlr {
            // hot-lib-reloader loads a library file; a `cdylib` is self-contained (no
            // libstd-*.so to find at run time), as in its per-call rows.
            manifest.push_str("\n[lib]\ncrate-type = [\"cdylib\"]\n");
        }
        manifest.push_str("\n[dependencies]\n");
        if !hlr {
            manifest.push_str("hotswap = { path = \"{{HOTSWAP}}\" }\n");
        }
        if size == "heavy" {
            manifest.push_str(HEAVY_DEPENDENCIES);
        }
        if !hlr {
            manifest.push_str(
                "\n[lints.rust]\nunexpected_cfgs = { level = \"warn\", check-cfg = [\"cfg(hotswap)\"] }\n",
            );
        }
        let attribute = if hlr {
            "#[unsafe(no_mangle)]"
        } else {
            "#[hotswap::hot]"
        };
        files.push((format!("{lib}/Cargo.toml"), manifest));
        files.push((
            format!("{lib}/src/lib.rs"),
            source.replace("{{HOT}}", attribute),
        ));
        let mut manifest = package_manifest(&host);
        manifest.push_str("\n[dependencies]\n");
        if hlr {
            manifest.push_str("hot-lib-reloader = \"{{HLR_VERSION}}\"\n");
        } else {
            manifest.push_str(&format!("{lib} = {{ path = \"../{lib}\" }}\n"));
        }
        files.push((format!("{host}/Cargo.toml"), manifest));
        files.push((
            format!("{host}/src/main.rs"),
            if hlr { HLR_HOST } else { HOTSWAP_HOST }.replace("{{CRATE}}", &lib),
        ));
        members.push(lib);
        members.push(host);
    }
    files.push((
        "Cargo.toml".into(),
        format!(
            "# Scratch workspace written by hotswap-bench (edit-to-effect rows).\n[workspace]\n\
             resolver = \"2\"\nmembers = [{}]\n",
            members
                .iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    files
}

/// The edit-main workspace: one package, `hse_main`, whose `src/main.rs` holds the small crate's
/// code (`#[hot] tick`) and the loop that prints it every 5 ms.
fn edit_main_files() -> Vec<(String, String)> {
    const SMALL: &str = include_str!("../fixtures/edit/small.rs");
    let source = format!(
        "{}\nfn main() {{\n    for n in 0u64.. {{\n        println!(\"{{}}\", tick(n));\n        \
         std::thread::sleep(std::time::Duration::from_millis(5));\n    }}\n}}\n",
        SMALL.replace("{{HOT}}", "#[hotswap::hot]")
    );
    vec![
        (
            "Cargo.toml".into(),
            "# Scratch workspace written by hotswap-bench (edit-to-effect, main.rs only).\n\
             [workspace]\nresolver = \"2\"\nmembers = [\"hse_main\"]\n"
                .into(),
        ),
        (
            "hse_main/Cargo.toml".into(),
            "[package]\nname = \"hse_main\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nhotswap = { path = \"{{HOTSWAP}}\" }\n\n\
             [lints.rust]\nunexpected_cfgs = { level = \"warn\", check-cfg = [\"cfg(hotswap)\"] }\n"
                .into(),
        ),
        ("hse_main/src/main.rs".into(), source),
    ]
}

/// A `cdylib` edit workspace for `cargo hotswap run --lib`: one package, `hse_c_host` or
/// `hse_python`, whose `src/lib.rs` holds the small crate's code (its `tick`, renamed `line`, is
/// the function edited) and the entry point its host calls every 5 ms, which prints `line`: a
/// `#[hot]` `extern "C" fn tick` for the C host (`host.c`, compiled by the bench), a
/// `#[pyfunction] tick` of a PyO3 module for `python3 host.py`.
fn edit_library_files(tool: Tool) -> Vec<(String, String)> {
    const SMALL: &str = include_str!("../fixtures/edit/small.rs");
    let (name, entry, dependency, host) = match tool {
        Tool::EditCHost => (
            "hse_c_host",
            include_str!("../fixtures/edit/c_host_lib.rs"),
            "",
            ("host.c", include_str!("../fixtures/edit/c_host.c")),
        ),
        _ => (
            "hse_python",
            include_str!("../fixtures/edit/python_lib.rs"),
            // As examples/python/Cargo.toml (the copied Cargo.lock has its version).
            "pyo3 = { version = \"0.30.1\", features = [\"extension-module\"] }\n",
            ("host.py", include_str!("../fixtures/edit/host.py")),
        ),
    };
    let small = SMALL.replace("{{HOT}}", "#[hotswap::hot]").replace(
        "pub fn tick(n: u64) -> String",
        "pub fn line(n: u64) -> String",
    );
    vec![
        (
            "Cargo.toml".into(),
            format!(
                "# Scratch workspace written by hotswap-bench (edit-to-effect, a `cdylib` under \
                 `cargo hotswap run --lib`).\n[workspace]\nresolver = \"2\"\nmembers = [\"{name}\"]\n"
            ),
        ),
        (
            format!("{name}/Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
                 publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
                 hotswap = {{ path = \"{{{{HOTSWAP}}}}\" }}\n{dependency}\n\
                 [lints.rust]\nunexpected_cfgs = {{ level = \"warn\", check-cfg = [\"cfg(hotswap)\"] }}\n"
            ),
        ),
        (format!("{name}/src/lib.rs"), format!("{small}{entry}")),
        (host.0.to_string(), host.1.to_string()),
    ]
}

/// The Bevy edit workspace: `hse_bevy` (the `tick` system, `#[hot]`) and `hse_bevy_host` (the
/// app), on the Bevy of the repository's `examples/bevy` (headless: `MinimalPlugins`).
fn edit_bevy_files() -> Vec<(String, String)> {
    framework_files(
        "Bevy",
        "hse_bevy",
        include_str!("../fixtures/edit/bevy.rs"),
        include_str!("../fixtures/edit/bevy_host.rs"),
        "bevy = { version = \"0.19\", default-features = false, features = [\"std\"] }\n",
    )
}

/// The egui edit workspace: `hse_egui` (`#[hot] impl eframe::App`) and `hse_egui_host` (the
/// window, `eframe::run_native`), on the eframe of the repository's `examples/egui` (glow on
/// X11 only).
fn edit_egui_files() -> Vec<(String, String)> {
    framework_files(
        "egui",
        "hse_egui",
        include_str!("../fixtures/edit/egui.rs"),
        include_str!("../fixtures/edit/egui_host.rs"),
        "eframe = { version = \"0.33\", default-features = false, features = [\"glow\", \"x11\", \
         \"default_fonts\"] }\n",
    )
}

/// A framework's edit workspace: the hot crate `lib` (from `lib_source`, `{{HOT}}` replaced by
/// `#[hotswap::hot]`) and `<lib>_host` (from `host_source`, `{{CRATE}}` replaced by `lib`), both
/// on the framework's `dependency` line.
fn framework_files(
    framework: &str,
    lib: &str,
    lib_source: &str,
    host_source: &str,
    dependency: &str,
) -> Vec<(String, String)> {
    let host = format!("{lib}_host");
    vec![
        (
            "Cargo.toml".into(),
            format!(
                "# Scratch workspace written by hotswap-bench (edit-to-effect, {framework}).\n\
                 [workspace]\nresolver = \"2\"\nmembers = [\"{lib}\", \"{host}\"]\n"
            ),
        ),
        (
            format!("{lib}/Cargo.toml"),
            format!(
                "{}\n[dependencies]\nhotswap = {{ path = \"{{{{HOTSWAP}}}}\" }}\n{dependency}\n\
                 [lints.rust]\nunexpected_cfgs = {{ level = \"warn\", check-cfg = [\"cfg(hotswap)\"] }}\n",
                package_manifest(lib)
            ),
        ),
        (
            format!("{lib}/src/lib.rs"),
            lib_source.replace("{{HOT}}", "#[hotswap::hot]"),
        ),
        (
            format!("{host}/Cargo.toml"),
            format!(
                "{}\n[dependencies]\n{lib} = {{ path = \"../{lib}\" }}\n{dependency}",
                package_manifest(&host)
            ),
        ),
        (
            format!("{host}/src/main.rs"),
            host_source.replace("{{CRATE}}", lib),
        ),
    ]
}

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
    /// Built as `cargo hotswap run` builds: a host through its rustc wrapper and linker, or a
    /// thin patch (`library`) of its hot crate.
    pub thin: bool,
    /// `HSB_MARK` at compile time (or, for a thin patch, the `MARK` its edit writes): what the
    /// library's `mark()` returns.
    pub mark: Option<u64>,
    /// A library (`lib<package>.so`) rather than an executable.
    pub library: bool,
}

impl Artifact {
    pub fn host(tool: Tool, profile: Profile, hot: bool) -> Self {
        Self::named(tool, tool.host(), profile, hot)
    }

    pub fn named(tool: Tool, package: &'static str, profile: Profile, hot: bool) -> Self {
        Artifact {
            tool,
            package,
            profile,
            hot,
            thin: false,
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
            thin: false,
            mark: Some(mark),
            library: true,
        }
    }

    /// The host of `tool`'s workspace built as `cargo hotswap run` builds it.
    pub fn thin_host(tool: Tool, profile: Profile) -> Self {
        Artifact {
            thin: true,
            ..Self::host(tool, profile, false)
        }
    }

    /// A thin patch of `tool`'s hot crate whose `mark()` returns `mark`.
    pub fn thin_patch(tool: Tool, profile: Profile, mark: u64) -> Self {
        Artifact {
            tool,
            package: tool.hot_crate(),
            profile,
            hot: false,
            thin: true,
            mark: Some(mark),
            library: true,
        }
    }

    /// The `cargo-hotswap` binary of this repository (release build).
    pub fn cli() -> Self {
        Self::named(Tool::Cli, "cargo-hotswap", Profile::O3, false)
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
        if self.thin {
            name.push_str("-thin");
        }
        if let Some(mark) = self.mark {
            name.push_str(&format!("-mark{mark}"));
        }
        if self.library {
            name.push_str(".so");
        }
        name
    }

    /// The command, as run in the scratch workspace.
    pub fn command(&self) -> String {
        if self.tool == Tool::Cli {
            return "cargo build --release -p cargo-hotswap --target-dir <repo>/target/bench/cli \
                    (in the repository)"
                .into();
        }
        if self.thin && self.library {
            let (file, line) = self.tool.mark_line().unwrap_or(("?", "?"));
            let mark = self.mark.unwrap_or(0);
            return format!(
                "edit {file}: `{line}` → `const MARK: u64 = {mark};`, replay {}'s recorded rustc \
                 command, `cc -shared -Wl,-Bsymbolic-functions -Wl,-z,noexecstack{} -o PATCH \
                 -Wl,--whole-archive lib{}.rlib -Wl,--no-whole-archive` (as `cargo hotswap run` \
                 does), restore the file",
                self.package,
                if cli_version_script().is_some() {
                    " -Wl,--version-script=patch.ver"
                } else {
                    ""
                },
                self.package
            );
        }
        if self.thin {
            return format!(
                "cargo-hotswap hotswap run -p {}{} -- built (builds into \
                 <repo>/target/bench/hotswap; the program exits at once; then Ctrl-C)",
                self.package,
                if self.profile == Profile::O3 {
                    " --release"
                } else {
                    ""
                }
            );
        }
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

/// How a thin patch was built.
#[derive(Clone, Copy, Debug)]
pub struct ThinBuild {
    /// The recorded rustc command, replayed after the edit (incremental).
    pub rustc: Duration,
    pub link: Duration,
    /// The checks `cargo hotswap run` makes before delivering it (reading the patch's build
    /// and comparing it with the running one: `cargo hotswap check-builds`'s `per_patch_ms`),
    /// if they ran.
    pub check: Option<Duration>,
    pub bytes: u64,
}

pub struct Builder {
    repo: PathBuf,
    /// Source of the `hotswap` crate the scratch projects depend on.
    hotswap_dir: PathBuf,
    target: PathBuf,
    work: PathBuf,
    cargo: String,
    scale_functions: usize,
    written: HashMap<Tool, Result<PathBuf, String>>,
    built: HashMap<Artifact, Result<PathBuf, String>>,
    /// Thin patches built in this run, with their build times.
    pub thin_builds: HashMap<Artifact, ThinBuild>,
    pub log: Vec<String>,
}

impl Builder {
    pub fn new(repo: &Path, hotswap_dir: &Path, work: &Path, scale_functions: usize) -> Self {
        Builder {
            repo: repo.to_path_buf(),
            hotswap_dir: hotswap_dir.to_path_buf(),
            target: repo.join("target").join("bench"),
            work: work.to_path_buf(),
            cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            scale_functions,
            written: HashMap::new(),
            built: HashMap::new(),
            thin_builds: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// `<repo>/target/bench`, every scratch build's target directory.
    pub fn target(&self) -> &Path {
        &self.target
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
        for (relative, text) in tool.files(self.scale_functions) {
            let text = text
                .replace("{{HOTSWAP}}", &self.hotswap_dir.display().to_string())
                .replace("{{HLR_VERSION}}", HOT_LIB_RELOADER)
                .replace("{{SUBSECOND_VERSION}}", SUBSECOND);
            write(&root.join(relative), &text)?;
        }
        if matches!(
            tool,
            Tool::Hotswap
                | Tool::Scale
                | Tool::EditSmall
                | Tool::EditHeavy
                | Tool::EditMain
                | Tool::EditCHost
                | Tool::EditPython
                | Tool::EditBevy
                | Tool::EditEgui
                | Tool::DxHeavy
        ) {
            // Same dependency versions as the repo itself.
            let lock = self.repo.join("Cargo.lock");
            if lock.exists() {
                std::fs::copy(&lock, root.join("Cargo.lock"))
                    .map_err(|err| format!("cannot copy Cargo.lock: {err}"))?;
            }
        }
        Ok(root)
    }

    /// `cargo` in `tool`'s scratch workspace, with a clean environment and the bench's target
    /// directory.
    pub fn cargo(&mut self, tool: Tool) -> Result<Command, String> {
        let root = self.workspace(tool)?;
        let mut command = Command::new(&self.cargo);
        command.current_dir(&root);
        clean_env(&mut command);
        command.env("CARGO_TARGET_DIR", &self.target);
        Ok(command)
    }

    /// Builds `artifact` (once per run) and returns the path of its copy.
    pub fn get(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        if let Some(done) = self.built.get(artifact) {
            return done.clone();
        }
        let result = if artifact.tool == Tool::Cli {
            self.build_cli()
        } else if artifact.thin && artifact.library {
            self.build_thin_patch(artifact)
        } else {
            self.build(artifact)
        };
        if let Err(err) = &result {
            eprintln!("hotswap-bench: build of {artifact} failed: {err}");
        }
        self.built.insert(artifact.clone(), result.clone());
        result
    }

    /// Runs `command`, logs its output under `what`, and returns its stderr or the first error.
    fn logged(&mut self, mut command: Command, what: String) -> Result<String, String> {
        let output = command
            .output()
            .map_err(|err| format!("cannot run {what}: {err}"))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.log.push(format!("$ {what}\n{stderr}"));
        if !output.status.success() {
            return Err(first_error(&stderr));
        }
        Ok(stderr)
    }

    fn build_cli(&mut self) -> Result<PathBuf, String> {
        let target = self.target.join("cli");
        eprintln!(
            "hotswap-bench: building cargo-hotswap (release) into {}",
            target.display()
        );
        let mut command = Command::new(&self.cargo);
        command
            .current_dir(&self.repo)
            .args(["build", "--release", "-p", "cargo-hotswap", "--target-dir"])
            .arg(&target);
        clean_env(&mut command);
        self.logged(command, Artifact::cli().command())?;
        Ok(target.join("release").join("cargo-hotswap"))
    }

    /// Has the real `cargo hotswap run` build `artifact`'s program (it starts the program, which
    /// exits at once, then gets Ctrl-C), and keeps a copy of the program and of the CLI's record
    /// of its link (`<target>/hotswap/captures/linked-<exe>.json.link`), which names the
    /// recorded rustc command of the hot crate that patches replay.
    fn build_with_cli(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        let cli = self.get(&Artifact::cli())?;
        let root = self.workspace(artifact.tool)?;
        eprintln!(
            "hotswap-bench: building {artifact}: {} (in the {} scratch workspace)",
            artifact.command(),
            artifact.tool.dir_name()
        );
        let mut command = Command::new(&cli);
        command
            .current_dir(&root)
            .args(["hotswap", "run", "-p", artifact.package]);
        if artifact.profile == Profile::O3 {
            command.arg("--release");
        }
        command.args(["--", "built"]);
        clean_env(&mut command);
        command
            .env("CARGO_TARGET_DIR", &self.target)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", cli.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut seen = Vec::new();
        let started = loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let failed = line.contains("build failed");
                    let done = failed || line.contains("exited (");
                    seen.push(line);
                    if done {
                        break !failed;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(_)) = child.try_wait() {
                        break false;
                    }
                }
                Err(_) => break false,
            }
        };
        // Ctrl-C, as a user stops it; then make sure it is gone.
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe {
            kill(child.id() as i32, 2);
        }
        let stop = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        while let Ok(line) = lines.try_recv() {
            seen.push(line);
        }
        self.log
            .push(format!("$ {}\n{}", artifact.command(), seen.join("\n")));
        if !started {
            let tail: Vec<&str> = seen.iter().rev().take(12).map(String::as_str).collect();
            return Err(format!(
                "`cargo hotswap run` did not build and start the program: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        let record = self.target.join("hotswap").join("captures").join(format!(
            "linked-{}.json.link",
            artifact.package.replace('-', "_")
        ));
        let text = std::fs::read(&record)
            .map_err(|err| format!("cannot read {}: {err}", record.display()))?;
        let linked: serde_json::Value =
            serde_json::from_slice(&text).map_err(|err| format!("{}: {err}", record.display()))?;
        let executable = linked["executable"]
            .as_str()
            .ok_or_else(|| format!("{} names no executable", record.display()))?;
        let copy = self.copy_out(Path::new(executable), artifact)?;
        // The record is per executable name, for whichever profile was built last: keep this
        // build's for its patches.
        std::fs::write(record_copy(&copy), &text).map_err(|err| err.to_string())?;
        Ok(copy)
    }

    fn build(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        if artifact.thin {
            return self.build_with_cli(artifact);
        }
        let mut command = self.cargo(artifact.tool)?;
        eprintln!(
            "hotswap-bench: building {artifact}: {} (in the {} scratch workspace)",
            artifact.command(),
            artifact.tool.dir_name()
        );
        command
            .arg("build")
            .args(artifact.profile.args())
            .args(["-p", artifact.package]);
        if artifact.hot {
            command.args(["--features", "hot"]);
        }
        if let Some(mark) = artifact.mark {
            command.env("HSB_MARK", mark.to_string());
        }
        let target = self.target.clone();
        self.logged(
            command,
            format!(
                "{}  # {} scratch workspace",
                artifact.command(),
                artifact.tool.dir_name()
            ),
        )?;
        let built = target
            .join(artifact.profile.out_dir())
            .join(artifact.file_name());
        self.copy_out(&built, artifact)
    }

    fn copy_out(&self, built: &Path, artifact: &Artifact) -> Result<PathBuf, String> {
        let copy = self.work.join("bin").join(artifact.copy_name());
        std::fs::create_dir_all(copy.parent().expect("has a parent"))
            .map_err(|err| format!("cannot create the bin directory: {err}"))?;
        std::fs::copy(built, &copy)
            .map_err(|err| format!("cannot copy {}: {err}", built.display()))?;
        Ok(copy)
    }

    /// Edits the hot crate's source, replays its recorded rustc command and links the rlib into
    /// a shared object, as `cargo hotswap run` does for a save (crates/cargo-hotswap/src/patch.rs);
    /// then puts the source back.
    fn build_thin_patch(&mut self, artifact: &Artifact) -> Result<PathBuf, String> {
        let host = Artifact::thin_host(artifact.tool, artifact.profile);
        let record = record_copy(&self.get(&host)?);
        let root = self.workspace(artifact.tool)?;
        let (file, line) = artifact.tool.mark_line().ok_or("no thin patches here")?;
        let mark = artifact.mark.unwrap_or(0);
        eprintln!("hotswap-bench: building {artifact} (a thin patch, as `cargo hotswap run` does)");
        let text = std::fs::read(&record)
            .map_err(|err| format!("cannot read {}: {err}", record.display()))?;
        let linked: serde_json::Value =
            serde_json::from_slice(&text).map_err(|err| format!("{}: {err}", record.display()))?;
        let linker = linked["linker"].as_str().unwrap_or("cc").to_string();
        let capture = linked["hot"]
            .as_array()
            .and_then(|hot| hot.iter().find(|pair| pair[0] == artifact.package))
            .map(|pair| pair[1].clone())
            .ok_or_else(|| {
                format!(
                    "{} has no capture of {}",
                    record.display(),
                    artifact.package
                )
            })?;
        let strings = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let source = root.join(file);
        let original = std::fs::read_to_string(&source).map_err(|err| err.to_string())?;
        if !original.contains(line) {
            return Err(format!("{file} has no line `{line}`"));
        }
        let rlib = PathBuf::from(capture["out_dir"].as_str().unwrap_or(".")).join(format!(
            "lib{}{}.rlib",
            capture["crate_name"].as_str().unwrap_or(artifact.package),
            capture["extra_filename"].as_str().unwrap_or("")
        ));
        // The build the program runs, for the checks: rustc replaces the rlib by a new file,
        // so a hard link keeps this one.
        let checks = self.work.join("check");
        let running = checks.join(format!("{}.running.rlib", artifact.copy_name()));
        let _ = std::fs::remove_file(&running);
        let kept = std::fs::hard_link(&rlib, &running).is_ok();
        let running_root = checks.join("running").join(file);
        write(&running_root, &original)?;
        let edited = original.replace(line, &format!("const MARK: u64 = {mark};"));
        write(&source, &edited)?;
        let mut rustc = Command::new(capture["rustc"].as_str().unwrap_or("rustc"));
        rustc
            .args(strings(&capture["args"]))
            .current_dir(capture["cwd"].as_str().unwrap_or("."))
            .env_clear();
        for pair in capture["env"].as_array().into_iter().flatten() {
            if let (Some(key), Some(value)) = (pair[0].as_str(), pair[1].as_str()) {
                rustc.env(key, value);
            }
        }
        let started = Instant::now();
        let compiled = rustc.output();
        let rustc_took = started.elapsed();
        write(&source, &original)?;
        let compiled = compiled.map_err(|err| format!("cannot run rustc: {err}"))?;
        if !compiled.status.success() {
            let stderr = String::from_utf8_lossy(&compiled.stderr);
            return Err(format!(
                "the replayed rustc command failed: {}",
                stderr
                    .chars()
                    .rev()
                    .take(600)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect::<String>()
            ));
        }
        let check = if kept {
            let patch_root = checks.join("patch").join(file);
            write(&patch_root, &edited)?;
            let outside = strings(&linked["objects"]);
            let checked = self.check_builds(
                capture["crate_name"].as_str().unwrap_or(artifact.package),
                (&running, &running_root),
                (&rlib, &patch_root),
                &outside,
            );
            let _ = std::fs::remove_file(&running);
            match checked {
                Ok(took) => Some(took),
                Err(err) => {
                    eprintln!("hotswap-bench: the checks of {artifact} failed: {err}");
                    None
                }
            }
        } else {
            None
        };
        let copy = self.work.join("bin").join(artifact.copy_name());
        std::fs::create_dir_all(copy.parent().expect("has a parent"))
            .map_err(|err| format!("cannot create the bin directory: {err}"))?;
        let mut link = Command::new(&linker);
        link.arg("-shared")
            .arg("-Wl,-Bsymbolic-functions")
            .arg("-Wl,-z,noexecstack");
        if let Some(script) = cli_version_script() {
            let file = self.work.join("bin").join("patch.ver");
            write(&file, &script)?;
            link.arg(format!("-Wl,--version-script={}", file.display()));
        }
        let started = Instant::now();
        let linked = link
            .arg("-o")
            .arg(&copy)
            .arg("-Wl,--whole-archive")
            .arg(&rlib)
            .arg("-Wl,--no-whole-archive")
            .output()
            .map_err(|err| format!("cannot run the linker `{linker}`: {err}"))?;
        let link_took = started.elapsed();
        if !linked.status.success() {
            return Err(format!(
                "linking the patch failed: {}",
                first_error(&String::from_utf8_lossy(&linked.stderr))
            ));
        }
        let bytes = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
        self.thin_builds.insert(
            artifact.clone(),
            ThinBuild {
                rustc: rustc_took,
                link: link_took,
                check,
                bytes,
            },
        );
        Ok(copy)
    }

    /// Runs `cargo hotswap check-builds` (the CLI's checks before a delivery) on the running
    /// build and the patch's; returns what a patch pays (`per_patch_ms`: reading the patch's
    /// build and sources, and comparing).
    fn check_builds(
        &mut self,
        crate_name: &str,
        (running, running_root): (&Path, &Path),
        (patch, patch_root): (&Path, &Path),
        outside: &[String],
    ) -> Result<Duration, String> {
        let cli = self.get(&Artifact::cli())?;
        let mut command = Command::new(&cli);
        command
            .args(["hotswap", "check-builds", "--crate", crate_name])
            .arg("--running")
            .arg(running)
            .arg("--running-root")
            .arg(running_root)
            .arg("--patch")
            .arg(patch)
            .arg("--patch-root")
            .arg(patch_root);
        for path in outside {
            command.arg("--outside").arg(path);
        }
        let output = command
            .output()
            .map_err(|err| format!("cannot run {}: {err}", cli.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|err| {
            format!(
                "no report ({err}): {}",
                first_error(&String::from_utf8_lossy(&output.stderr))
            )
        })?;
        let ms = value["per_patch_ms"]
            .as_f64()
            .ok_or_else(|| format!("no per_patch_ms in {value}"))?;
        Ok(Duration::from_secs_f64(ms / 1e3))
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

/// Where the copy of a thin host's link record lives.
fn record_copy(host_copy: &Path) -> PathBuf {
    host_copy.with_extension("link.json")
}

extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
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
        "HOTSWAP_ROLE",
        "HOTSWAP_CAPTURE_DIR",
        "HOTSWAP_HOT_CRATES",
        "HOTSWAP_ON_PANIC",
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

/// The `[package]` table of a scratch workspace's member `name` (no dependencies).
pub(crate) fn package_manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_library_workspaces_hold_the_small_code_and_their_host() {
        for (tool, package, host) in [
            (super::Tool::EditCHost, "hse_c_host", "host.c"),
            (super::Tool::EditPython, "hse_python", "host.py"),
        ] {
            let files = tool.files(0);
            let file = |name: &str| {
                files
                    .iter()
                    .find(|(path, _)| path == name)
                    .map(|(_, text)| text.clone())
                    .unwrap_or_else(|| panic!("{tool:?} has no {name}"))
            };
            let lib = file(&format!("{package}/src/lib.rs"));
            assert!(lib.contains("let label = \"edit-0\";"), "{lib}");
            assert!(
                lib.contains("#[hotswap::hot]\npub fn line(n: u64) -> String"),
                "{lib}"
            );
            assert!(!lib.contains("{{HOT}}"), "{lib}");
            let manifest = file(&format!("{package}/Cargo.toml"));
            assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
            assert!(file(host).contains("HOTSWAP_LIBRARY"));
        }
    }

    #[test]
    /// The bench links its thin patches with the CLI's version script; without it the
    /// program refuses them (their manifests bind to the program's), so a CLI whose script the
    /// bench cannot read must fail here, not in the middle of a run.
    fn the_cli_version_script_is_read_whole() {
        let script = super::cli_version_script().expect("the CLI's VERSION_SCRIPT is read");
        assert!(script.trim_end().ends_with("};"), "{script:?}");
        assert!(script.contains("local:"), "{script:?}");
        assert!(script.contains("*__hotswap_entry_v1_*"), "{script:?}");
    }
}
