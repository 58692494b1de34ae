//! What `cargo metadata` says about the user's workspace: where it is, which crates are hot,
//! which program to run, and where our own target directory goes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
}

#[derive(Deserialize, Clone, Debug)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub manifest_path: PathBuf,
    pub dependencies: Vec<Dependency>,
    pub targets: Vec<Target>,
    #[serde(default)]
    pub default_run: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct Dependency {
    pub name: String,
    #[serde(default)]
    pub rename: Option<String>,
    /// `null` for a normal dependency, `"dev"` or `"build"`.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct Target {
    pub name: String,
    pub kind: Vec<String>,
    pub src_path: PathBuf,
}

/// A crate whose `#[hot]` functions can be patched: a library of the workspace that depends
/// on `hotswap`, or the binary crate of the program `run` starts (`src/main.rs`, `src/bin/x.rs`,
/// an example) when its package depends on `hotswap`.
#[derive(Clone, Debug)]
pub struct HotCrate {
    pub package: String,
    /// The crate name (`-` replaced by `_`), as rustc knows it.
    pub crate_name: String,
    pub kind: CrateKind,
    /// The target's name as the manifest gives it (`my-tool`); for the library of `run --lib`,
    /// its package's name.
    pub target: String,
    /// Directories holding its sources (the parent of each target's root file).
    pub source_dirs: Vec<PathBuf>,
    /// The crate's root source file (`src/lib.rs`, `src/main.rs`).
    pub root: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrateKind {
    Library,
    /// The program's own binary crate, or the library a host loads (`run --lib`): its thin
    /// patches are linked from its object files.
    Program,
}

impl HotCrate {
    /// Identifies the crate among the hot ones: a package may have a library and a binary of
    /// the same crate name (`game`, with `src/lib.rs` and `src/main.rs`).
    pub fn key(&self) -> String {
        match self.kind {
            CrateKind::Library => self.crate_name.clone(),
            CrateKind::Program => format!("{}(bin)", self.crate_name),
        }
    }

    /// How messages name it: the package for a library, the binary for the program.
    pub fn shown(&self) -> String {
        match self.kind {
            CrateKind::Library => self.package.clone(),
            CrateKind::Program => self.target.clone(),
        }
    }
}

/// The program `run` builds and starts.
#[derive(Clone, Debug)]
pub struct Program {
    pub package: String,
    /// The binary's or example's name; for a library, its target name (the crate name).
    pub name: String,
    pub is_example: bool,
    /// The package's `cdylib`, loaded by a host `run --lib` starts (not a program of ours).
    pub library: bool,
}

pub struct Project {
    pub root: PathBuf,
    /// `<target dir>/hotswap`: our builds never touch the user's normal ones.
    pub target_dir: PathBuf,
    pub members: Vec<Package>,
    pub hot: Vec<HotCrate>,
    /// The member `cargo run` would pick without `-p`: the one whose manifest was given, or
    /// whose directory holds the current directory (the innermost).
    pub current: Option<String>,
}

impl Project {
    pub fn load(manifest_path: Option<&Path>) -> Result<Project, String> {
        let mut command = Command::new(cargo());
        command.args(["metadata", "--format-version", "1", "--no-deps"]);
        if let Some(path) = manifest_path {
            command.arg("--manifest-path").arg(path);
        }
        let output = command
            .output()
            .map_err(|err| format!("cannot run `cargo metadata`: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "`cargo metadata` failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let metadata: Metadata = serde_json::from_slice(&output.stdout)
            .map_err(|err| format!("cannot read `cargo metadata` output: {err}"))?;
        let members: Vec<Package> = metadata
            .packages
            .into_iter()
            .filter(|package| metadata.workspace_members.contains(&package.id))
            .collect();
        let hot = members.iter().filter_map(hot_crate).collect();
        let current = current_member(&members, manifest_path);
        Ok(Project {
            root: metadata.workspace_root,
            target_dir: metadata.target_directory.join("hotswap"),
            members,
            hot,
            current,
        })
    }

    /// Picks the program to run, as `cargo run` would.
    pub fn program(
        &self,
        package: Option<&str>,
        bin: Option<&str>,
        example: Option<&str>,
    ) -> Result<Program, String> {
        // Without `-p`, the package of the current directory, as `cargo run` does (if it has
        // what was asked for; otherwise every member is a candidate).
        let package = package.or_else(|| {
            let current = self
                .members
                .iter()
                .find(|p| Some(&p.name) == self.current.as_ref())?;
            let fits = match (example, bin) {
                (Some(example), _) => has_target(current, "example", example),
                (None, Some(bin)) => has_target(current, "bin", bin),
                (None, None) => current
                    .targets
                    .iter()
                    .any(|t| t.kind.iter().any(|k| k == "bin")),
            };
            fits.then_some(current.name.as_str())
        });
        let candidates: Vec<&Package> = match package {
            Some(name) => {
                let found: Vec<&Package> = self.members.iter().filter(|p| p.name == name).collect();
                if found.is_empty() {
                    return Err(format!("no package `{name}` in this workspace"));
                }
                found
            }
            None => self.members.iter().collect(),
        };
        if let Some(example) = example {
            return candidates
                .iter()
                .find(|p| has_target(p, "example", example))
                .map(|p| Program {
                    package: p.name.clone(),
                    name: example.to_owned(),
                    is_example: true,
                    library: false,
                })
                .ok_or_else(|| format!("no example `{example}` found"));
        }
        if let Some(bin) = bin {
            return candidates
                .iter()
                .find(|p| has_target(p, "bin", bin))
                .map(|p| Program {
                    package: p.name.clone(),
                    name: bin.to_owned(),
                    is_example: false,
                    library: false,
                })
                .ok_or_else(|| format!("no binary `{bin}` found"));
        }
        let mut bins = Vec::new();
        for package in &candidates {
            let own: Vec<&Target> = package
                .targets
                .iter()
                .filter(|t| t.kind.iter().any(|k| k == "bin"))
                .collect();
            let chosen = match (&package.default_run, own.len()) {
                (Some(default), _) => own.iter().find(|t| &t.name == default).copied(),
                (None, 1) => Some(own[0]),
                _ => None,
            };
            if let Some(target) = chosen {
                bins.push(Program {
                    package: package.name.clone(),
                    name: target.name.clone(),
                    is_example: false,
                    library: false,
                });
            } else if own.len() > 1 {
                return Err(format!(
                    "package `{}` has several binaries; choose one with --bin ({})",
                    package.name,
                    own.iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        match bins.len() {
            1 => Ok(bins.remove(0)),
            0 => Err("no binary to run: add a `src/main.rs` or pass --bin / --example".into()),
            _ => Err(format!(
                "several packages have a binary; choose one with -p ({})",
                bins.iter()
                    .map(|b| b.package.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The `cdylib` of `package` (or of the current directory's package) that `run --lib`
    /// builds for a foreign host to load.
    pub fn library(&self, package: Option<&str>) -> Result<Program, String> {
        let is_cdylib = |t: &Target| t.kind.iter().any(|k| k == "cdylib");
        let candidates: Vec<&Package> = match package.or(self.current.as_deref()) {
            Some(name) => self.members.iter().filter(|p| p.name == name).collect(),
            None => self
                .members
                .iter()
                .filter(|p| p.targets.iter().any(is_cdylib))
                .collect(),
        };
        let package = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(match package {
                    Some(name) => format!("no package `{name}` in this workspace"),
                    None => "no package of this workspace builds a `cdylib`".into(),
                })
            }
            several => {
                return Err(format!(
                    "several packages build a `cdylib`; choose one with -p ({})",
                    several
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        };
        let target = package
            .targets
            .iter()
            .find(|t| is_cdylib(t))
            .ok_or_else(|| {
                format!(
                "package `{}` builds no `cdylib`: add `[lib] crate-type = [\"cdylib\"]` to its \
                 Cargo.toml for a host to load it",
                package.name
            )
            })?;
        Ok(Program {
            package: package.name.clone(),
            name: target.name.clone(),
            is_example: false,
            library: true,
        })
    }

    /// Whether a change to `path` can matter to the program of `package`: a manifest or lock
    /// file, a file outside every member, or a file of `package` or of a member it depends on
    /// (directly or not; dev-dependencies do not count). Editing another member of the
    /// workspace (another example, a tool) neither patches nor restarts the program.
    pub fn concerns(&self, package: &str, path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "Cargo.toml" || name == "Cargo.lock" {
            return true;
        }
        let owner = self
            .members
            .iter()
            .filter_map(|m| Some((m.manifest_path.parent()?, m)))
            .filter(|(dir, _)| path.starts_with(dir))
            .max_by_key(|(dir, _)| dir.components().count());
        let Some((_, owner)) = owner else {
            return true;
        };
        let mut used = vec![package];
        let mut next = 0;
        while let Some(&current) = used.get(next) {
            next += 1;
            let Some(member) = self.members.iter().find(|m| m.name == current) else {
                continue;
            };
            for dep in &member.dependencies {
                let is_member = self.members.iter().any(|m| m.name == dep.name);
                if is_member && dep.kind.as_deref() != Some("dev") && !used.contains(&&*dep.name) {
                    used.push(&dep.name);
                }
            }
        }
        used.contains(&owner.name.as_str())
    }

    /// Adds the binary crate of `program` to the hot crates when its package depends on
    /// `hotswap` (an example may have it as a dev-dependency): `#[hot]` functions in
    /// `src/main.rs`, `src/bin/*.rs` or `examples/*.rs` are patched like a library's.
    pub fn add_program(&mut self, program: &Program) {
        let Some(package) = self.members.iter().find(|p| p.name == program.package) else {
            return;
        };
        let kind = match (program.library, program.is_example) {
            (true, _) => "cdylib",
            (false, true) => "example",
            (false, false) => "bin",
        };
        let Some(target) = package
            .targets
            .iter()
            .find(|t| t.name == program.name && t.kind.iter().any(|k| k == kind))
        else {
            return;
        };
        let uses_hotswap = package.dependencies.iter().any(|dep| {
            dep.name == "hotswap"
                && dep.rename.is_none()
                && match dep.kind.as_deref() {
                    None => true,
                    Some("dev") => program.is_example,
                    _ => false,
                }
        });
        if !uses_hotswap {
            return;
        }
        let hot = HotCrate {
            package: package.name.clone(),
            crate_name: target.name.replace('-', "_"),
            kind: CrateKind::Program,
            // A library is named by its package, as hot libraries are.
            target: if program.library {
                package.name.clone()
            } else {
                target.name.clone()
            },
            source_dirs: target
                .src_path
                .parent()
                .map(Path::to_path_buf)
                .into_iter()
                .collect(),
            root: target.src_path.clone(),
        };
        self.hot.retain(|c| c.kind != CrateKind::Program);
        // The library a host loads is patched from its own objects, like a binary crate.
        if program.library {
            self.hot.retain(|c| c.package != program.package);
        }
        self.hot.push(hot);
    }

    /// The binaries and examples of the workspace that `run` would treat as hot crates (their
    /// package depends on `hotswap`), as `package/target`.
    pub fn hot_capable_programs(&self) -> Vec<String> {
        let mut found = Vec::new();
        for package in &self.members {
            for target in &package.targets {
                let is_example = target.kind.iter().any(|k| k == "example");
                if !is_example && !target.kind.iter().any(|k| k == "bin") {
                    continue;
                }
                let program = Program {
                    package: package.name.clone(),
                    name: target.name.clone(),
                    is_example,
                    library: false,
                };
                let mut probe = Project {
                    root: self.root.clone(),
                    target_dir: self.target_dir.clone(),
                    members: vec![package.clone()],
                    hot: Vec::new(),
                    current: None,
                };
                probe.add_program(&program);
                if probe.hot_program().is_some() {
                    found.push(format!("{}/{}", package.name, target.name));
                }
            }
        }
        found
    }

    /// The program's binary crate, if it is hot.
    pub fn hot_program(&self) -> Option<&HotCrate> {
        self.hot.iter().find(|c| c.kind == CrateKind::Program)
    }

    /// The hot libraries.
    pub fn hot_libraries(&self) -> impl Iterator<Item = &HotCrate> {
        self.hot.iter().filter(|c| c.kind == CrateKind::Library)
    }

    /// The hot crate `key` names (see [`HotCrate::key`]).
    pub fn hot_crate(&self, key: &str) -> Option<&HotCrate> {
        self.hot.iter().find(|c| c.key() == key)
    }

    /// Where the build records compiler commands (see `capture`).
    pub fn capture_dir(&self) -> PathBuf {
        self.target_dir.join("captures")
    }
}

/// The member whose manifest is `manifest_path`, or else whose directory is the innermost one
/// holding the current directory.
fn current_member(members: &[Package], manifest_path: Option<&Path>) -> Option<String> {
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(given) = manifest_path {
        let given = canonical(given);
        return members
            .iter()
            .find(|p| canonical(&p.manifest_path) == given)
            .map(|p| p.name.clone());
    }
    let here = canonical(&std::env::current_dir().ok()?);
    members
        .iter()
        .filter_map(|p| Some((canonical(p.manifest_path.parent()?), p)))
        .filter(|(dir, _)| here.starts_with(dir))
        .max_by_key(|(dir, _)| dir.components().count())
        .map(|(_, p)| p.name.clone())
}

fn has_target(package: &Package, kind: &str, name: &str) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.name == name && t.kind.iter().any(|k| k == kind))
}

fn hot_crate(package: &Package) -> Option<HotCrate> {
    let uses_hotswap = package
        .dependencies
        .iter()
        .any(|dep| dep.name == "hotswap" && dep.rename.is_none());
    let lib = package.targets.iter().find(|t| {
        t.kind
            .iter()
            .any(|k| matches!(k.as_str(), "lib" | "rlib" | "cdylib" | "dylib"))
    })?;
    if !uses_hotswap {
        return None;
    }
    let mut source_dirs: Vec<PathBuf> = package
        .targets
        .iter()
        .filter_map(|t| t.src_path.parent().map(Path::to_path_buf))
        .collect();
    source_dirs.sort();
    source_dirs.dedup();
    Some(HotCrate {
        package: package.name.clone(),
        crate_name: lib.name.replace('-', "_"),
        kind: CrateKind::Library,
        target: lib.name.clone(),
        source_dirs,
        root: lib.src_path.clone(),
    })
}

/// The `cargo` that invoked us (cargo sets `CARGO` for subcommands), or the one on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}
