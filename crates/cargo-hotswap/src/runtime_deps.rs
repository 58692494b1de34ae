//! The packages only the runtime brings into a hot build, read from `Cargo.lock`: in hot mode
//! they are built without debug information, as the runtime itself is (`host.rs`).
//!
//! Why: the program's link takes the hot crates' whole dependency closure (`--whole-archive`),
//! and the runtime's dependencies (notify and its file watching, serde_json, tracing, object, …)
//! carried most of the debug information it read and wrote, none of it read by any check (the
//! layout check reads the hot crates' own objects). The bench's small program
//! (`first-build-small`): its hot executable went from 15.6 MB to 9.3 MB (the plain build's is
//! 5.9 MB), and its link from 324 M to 200 M instructions (callgrind, `--threads=1`, the whole
//! `cc` command; the plain link: 128 M). What goes is what a debugger or a backtrace would show
//! inside the runtime's own dependencies: their frames keep their function names (the symbol
//! table), not their files and lines.
//!
//! Only packages no workspace member reaches except through `hotswap` are changed: a
//! dependency the user's code also uses (their own `serde_json`) keeps the profile's debug
//! information. `Cargo.lock` is the resolved graph cargo builds from, with every kind of
//! dependency (normal, build, dev) and every platform's merged into one list, so a package it
//! shows the user reaching is one the user may reach: an error here only ever keeps debug
//! information. A spec that matches no package of the build (a dependency of another platform)
//! is ignored by cargo, silently.
//!
//! It is read rather than `cargo metadata`'s graph because the choice is needed before the build
//! starts, and the full `cargo metadata` costs a tenth of a second of CPU on a small program;
//! the file is TOML (`[[package]]` tables of `name`, `version`, `source`, `dependencies`), read
//! with `toml_edit` as `init.rs` reads manifests.
//!
//! Changing a package's profile changes its `-C metadata`, so the first hot build after this
//! change (or after a dependency moves between the user's and the runtime's side) builds those
//! packages again, once.

use std::collections::HashSet;

/// The runtime's package, whose own profile `host.rs` sets.
pub const RUNTIME: &str = "hotswap";

/// One `[[package]]` of a lock file.
#[derive(Debug, Default, PartialEq)]
struct Locked {
    name: String,
    version: String,
    /// `None` for a path package (a workspace member, or a path dependency such as a local
    /// checkout of `hotswap`).
    source: Option<String>,
    /// As written: `name`, `name version`, or `name version (source)`.
    dependencies: Vec<String>,
}

/// The package specs (`name@version`) of the packages that only [`RUNTIME`] brings in, given
/// the lock file's text and the workspace members' names; sorted. Empty when the file cannot be
/// read as a lock file, or when the runtime is not in it.
pub fn only_the_runtimes(lock: &str, members: &[&str]) -> Vec<String> {
    let packages = parse(lock);
    let Some(runtime) = packages
        .iter()
        .position(|p| p.name == RUNTIME && p.source.is_none())
        .or_else(|| packages.iter().position(|p| p.name == RUNTIME))
    else {
        return Vec::new();
    };
    let roots: Vec<usize> = packages
        .iter()
        .enumerate()
        // A member is a path package; `hotswap` itself may be a member (this repository's own
        // examples), and is the runtime, not user code.
        .filter(|(_, p)| p.source.is_none() && p.name != RUNTIME && members.contains(&&*p.name))
        .map(|(index, _)| index)
        .collect();
    let users = reached(&packages, &roots, Some(runtime));
    let runtimes = reached(&packages, &[runtime], None);
    let mut specs: Vec<String> = runtimes
        .into_iter()
        .filter(|&index| index != runtime && !users.contains(&index))
        .map(|index| format!("{}@{}", packages[index].name, packages[index].version))
        .collect();
    specs.sort();
    specs.dedup();
    specs
}

/// Every package reached from `roots` through dependencies (the roots included), not going
/// through `barrier`.
fn reached(packages: &[Locked], roots: &[usize], barrier: Option<usize>) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut queue: Vec<usize> = roots.to_vec();
    while let Some(index) = queue.pop() {
        if Some(index) == barrier || !seen.insert(index) {
            continue;
        }
        for dependency in &packages[index].dependencies {
            match resolve(packages, dependency) {
                Some(found) => queue.push(found),
                // Not resolvable (a lock file this reader misunderstands): count every package
                // of that name as reached, so nothing the user may use loses information.
                None => {
                    let name = dependency.split_whitespace().next().unwrap_or_default();
                    queue.extend(
                        packages
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| p.name == name)
                            .map(|(i, _)| i),
                    );
                }
            }
        }
    }
    seen
}

/// The package a `dependencies` entry names: by name alone when it is the only one of that
/// name, else by name and version (and source, when two share both).
fn resolve(packages: &[Locked], entry: &str) -> Option<usize> {
    let mut words = entry.splitn(3, ' ');
    let name = words.next()?;
    let version = words.next();
    let source = words
        .next()
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'));
    let matching: Vec<usize> = packages
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.name == name
                && version.is_none_or(|v| p.version == v)
                && source.is_none_or(|s| p.source.as_deref() == Some(s))
        })
        .map(|(index, _)| index)
        .collect();
    (matching.len() == 1).then(|| matching[0])
}

/// The `[[package]]` tables of a lock file as cargo writes it.
fn parse(text: &str) -> Vec<Locked> {
    let Ok(lock) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let Some(packages) = lock.get("package").and_then(|p| p.as_array_of_tables()) else {
        return Vec::new();
    };
    let text_of = |table: &toml_edit::Table, key: &str| {
        table.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    packages
        .iter()
        .filter_map(|table| {
            Some(Locked {
                name: text_of(table, "name")?,
                version: text_of(table, "version").unwrap_or_default(),
                source: text_of(table, "source"),
                dependencies: table
                    .get("dependencies")
                    .and_then(|d| d.as_array())
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|item| item.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's small workspace (`edit-small`), as cargo wrote its lock file: a hot crate on
    /// a path checkout of `hotswap`, and its host.
    const SMALL: &str = include_str!("../testdata/edit-small.lock");

    #[test]
    fn the_runtimes_own_dependencies_are_found_in_a_real_lock_file() {
        let specs = only_the_runtimes(SMALL, &["hse_small", "hse_small_host"]);
        for expected in [
            "notify@8.2.1",
            "serde_json@1.0.154",
            "tracing-core@0.1.36",
            "hotswap-macros@0.1.0",
            "libc@0.2.191",
        ] {
            assert!(specs.iter().any(|s| s == expected), "{expected}: {specs:?}");
        }
        // The runtime itself (its profile is set on its own) and the members are not.
        for absent in ["hotswap@", "hse_small@", "hse_small_host@"] {
            assert!(!specs.iter().any(|s| s.starts_with(absent)), "{specs:?}");
        }
    }

    #[test]
    fn a_dependency_the_user_shares_keeps_its_debug_information() {
        // The host depends on serde_json itself (and so on what serde_json depends on).
        let shared = SMALL.replace(
            "name = \"hse_small_host\"\nversion = \"0.0.0\"\ndependencies = [\n",
            "name = \"hse_small_host\"\nversion = \"0.0.0\"\ndependencies = [\n \"serde_json\",\n",
        );
        assert_ne!(shared, SMALL, "the lock file's host entry moved");
        let specs = only_the_runtimes(&shared, &["hse_small", "hse_small_host"]);
        for kept in ["serde_json@", "itoa@", "serde_core@", "memchr@"] {
            assert!(
                !specs.iter().any(|s| s.starts_with(kept)),
                "{kept}: {specs:?}"
            );
        }
        assert!(specs.iter().any(|s| s.starts_with("notify@")), "{specs:?}");
    }

    #[test]
    fn two_versions_of_a_name_are_told_apart() {
        let lock = "version = 4\n\n\
            [[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"hotswap\",\n \"syn 1.0.0\",\n]\n\n\
            [[package]]\nname = \"hotswap\"\nversion = \"0.1.0\"\ndependencies = [\"syn 2.0.0\", \"log\"]\n\n\
            [[package]]\nname = \"log\"\nversion = \"0.4.0\"\nsource = \"registry+x\"\n\n\
            [[package]]\nname = \"syn\"\nversion = \"1.0.0\"\nsource = \"registry+x\"\n\n\
            [[package]]\nname = \"syn\"\nversion = \"2.0.0\"\nsource = \"registry+x\"\n";
        assert_eq!(
            only_the_runtimes(lock, &["app"]),
            ["log@0.4.0", "syn@2.0.0"]
        );
        // `hotswap` as a member of the workspace is still the runtime.
        assert_eq!(
            only_the_runtimes(lock, &["app", "hotswap"]),
            ["log@0.4.0", "syn@2.0.0"]
        );
        // Without the runtime, or without a lock file: nothing.
        assert!(only_the_runtimes(&lock.replace("hotswap", "other"), &["app"]).is_empty());
        assert!(only_the_runtimes("", &["app"]).is_empty());
    }

    #[test]
    fn an_entry_this_reader_cannot_resolve_counts_as_the_users() {
        let lock = "[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\n \"hotswap\",\n \"log 9.9.9\",\n]\n\n\
            [[package]]\nname = \"hotswap\"\nversion = \"0.1.0\"\ndependencies = [\n \"log\",\n]\n\n\
            [[package]]\nname = \"log\"\nversion = \"0.4.0\"\nsource = \"registry+x\"\n";
        assert!(only_the_runtimes(lock, &["app"]).is_empty());
    }
}
