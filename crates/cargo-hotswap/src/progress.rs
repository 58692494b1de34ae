//! The progress of the program's build, as `cargo hotswap run` shows it: units done out of the
//! units cargo will build, and the crate being compiled; then one line of phase times.
//!
//! The total is an estimate from `cargo metadata` (see [`estimate_units`]): cargo has no stable
//! way to list the units of a build (`--unit-graph` and `--build-plan` are unstable), so the
//! line shows it as `~N`, and never a total below what is already done.
//!
//! On a terminal the line is redrawn in place on every change (see [`crate::report::progress`]);
//! otherwise a plain line is printed for the first unit and then at most every
//! [`PLAIN_INTERVAL`], so a log is not flooded.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The least time between two plain (not terminal) progress lines.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// What is known of a build while it runs.
#[derive(Debug, Default)]
pub struct BuildProgress {
    /// Units cargo is expected to build (an estimate), once known.
    pub total: Option<usize>,
    /// Units finished: compiled or fresh artifacts and build scripts run.
    pub done: usize,
    /// Of `done`, artifacts that were compiled (not fresh).
    pub compiled: usize,
    /// The crate cargo last started compiling.
    pub current: Option<String>,
    /// When the last plain line was printed (`None`: none yet).
    last_plain: Option<Instant>,
    /// Whether a plain line with the total was printed.
    total_shown: bool,
}

impl BuildProgress {
    /// `building (hot mode): 37/~122 crates, compiling bevy_ecs`.
    pub fn line(&self) -> String {
        let mut text = format!("building (hot mode): {}", self.done);
        if let Some(total) = self.total {
            text.push_str(&format!("/~{}", total.max(self.done)));
        }
        text.push_str(" crates");
        if let Some(current) = &self.current {
            text.push_str(&format!(", compiling {current}"));
        }
        text
    }

    /// Whether a plain line is due at `now`: the first, then one per [`PLAIN_INTERVAL`]. Marks
    /// it printed when it is.
    pub fn plain_due(&mut self, now: Instant) -> bool {
        let due = self
            .last_plain
            .is_none_or(|last| now.saturating_duration_since(last) >= PLAIN_INTERVAL);
        if due {
            self.last_plain = Some(now);
            self.total_shown |= self.total.is_some();
        }
        due
    }

    /// Whether a plain line is due because the total just became known (the estimate may come
    /// after the first unit's line): once, when some unit is done and no line showed the total.
    /// A build's log then always has a line with its total, whatever came first.
    pub fn total_due(&mut self) -> bool {
        let due = self.total.is_some() && !self.total_shown && self.done > 0;
        if due {
            self.total_shown = true;
        }
        due
    }

    /// `built in 63.2 s: 118 crates compiled, 4 fresh, link 2.1 s`: what was measured. `link` is
    /// the time of the program's own link, when the linker role recorded one.
    pub fn summary(&self, elapsed: Duration, link: Option<Duration>) -> String {
        let fresh = self.done.saturating_sub(self.compiled);
        let mut text = format!(
            "built in {}: {} {} compiled",
            seconds(elapsed),
            self.compiled,
            if self.compiled == 1 {
                "crate"
            } else {
                "crates"
            }
        );
        if fresh > 0 {
            text.push_str(&format!(", {fresh} fresh"));
        }
        if let Some(link) = link {
            text.push_str(&format!(", link {}", seconds(link)));
        }
        text
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// The crate name of cargo's status line `Compiling serde v1.0.0 (...)`, if it is one.
pub fn compiling(status: &str) -> Option<&str> {
    let mut words = status.split_whitespace();
    (words.next()? == "Compiling").then_some(())?;
    words.next()
}

// ---------------------------------------------------------------------------------------------
// The total
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetaPackage>,
    resolve: Option<Resolve>,
}

#[derive(Deserialize)]
struct MetaPackage {
    id: String,
    name: String,
    targets: Vec<MetaTarget>,
}

#[derive(Deserialize)]
struct MetaTarget {
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    #[serde(default)]
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    #[serde(default)]
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    kind: Option<String>,
}

/// The number of units `cargo build -p package` is expected to build, from `cargo metadata` of
/// the workspace at `root` resolved for this machine (`--filter-platform`) with `features`
/// (cargo's own flags, as given to the build): the package's library and the program, and for
/// every package reachable through normal and build dependencies its library plus, if it has
/// one, its build script (compiled, then run). An estimate: features are those of the whole
/// workspace, and a crate built twice (for build scripts with other features) counts once.
pub fn estimate_units(root: &Path, package: &str, features: &[String]) -> Option<usize> {
    let host = host_triple()?;
    let output = Command::new(crate::project::cargo())
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(&host)
        .args(features)
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout).ok()?;
    count_units(&metadata, package)
}

fn host_triple() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).arg("-vV").output().ok()?;
    String::from_utf8(output.stdout)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
}

fn count_units(metadata: &Metadata, package: &str) -> Option<usize> {
    let packages: HashMap<&str, &MetaPackage> = metadata
        .packages
        .iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    let nodes: HashMap<&str, &Node> = metadata
        .resolve
        .as_ref()?
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n))
        .collect();
    let start = metadata.packages.iter().find(|p| p.name == package)?;
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue = vec![start.id.as_str()];
    let mut units = 1; // the program (bin or example) itself
    while let Some(id) = queue.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(package) = packages.get(id) else {
            continue;
        };
        let has = |kinds: &[&str]| {
            package
                .targets
                .iter()
                .any(|t| t.kind.iter().any(|k| kinds.contains(&k.as_str())))
        };
        if has(&["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"]) {
            units += 1;
        }
        if has(&["custom-build"]) {
            units += 2;
        }
        for dep in nodes.get(id).map(|n| n.deps.as_slice()).unwrap_or_default() {
            let used = dep.dep_kinds.is_empty()
                || dep
                    .dep_kinds
                    .iter()
                    .any(|k| k.kind.as_deref() != Some("dev"));
            if used {
                queue.push(dep.pkg.as_str());
            }
        }
    }
    Some(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_done_of_the_estimate_and_the_current_crate() {
        let mut progress = BuildProgress::default();
        assert_eq!(progress.line(), "building (hot mode): 0 crates");
        progress.done = 37;
        progress.total = Some(122);
        progress.current = Some("bevy_ecs".into());
        assert_eq!(
            progress.line(),
            "building (hot mode): 37/~122 crates, compiling bevy_ecs"
        );
        // An estimate below what is done shows what is done.
        progress.done = 130;
        assert!(progress
            .line()
            .starts_with("building (hot mode): 130/~130 crates"));
    }

    #[test]
    fn a_total_known_after_the_first_line_gets_a_line_of_its_own_once() {
        let mut progress = BuildProgress::default();
        let start = Instant::now();
        assert!(!progress.total_due(), "nothing done yet");
        progress.done = 1;
        assert!(progress.plain_due(start));
        assert!(!progress.total_due(), "no total yet");
        progress.total = Some(57);
        assert!(progress.total_due());
        assert!(!progress.total_due(), "once");
        // Known before the first line: that line shows it, and no other is due.
        let mut early = BuildProgress {
            total: Some(57),
            done: 1,
            ..BuildProgress::default()
        };
        assert!(early.plain_due(start));
        assert!(!early.total_due());
    }

    #[test]
    fn plain_lines_come_first_then_at_most_one_per_interval() {
        let mut progress = BuildProgress::default();
        let start = Instant::now();
        assert!(progress.plain_due(start), "the first line is always due");
        assert!(!progress.plain_due(start));
        assert!(!progress.plain_due(start + PLAIN_INTERVAL / 2));
        assert!(progress.plain_due(start + PLAIN_INTERVAL));
        assert!(!progress.plain_due(start + PLAIN_INTERVAL + PLAIN_INTERVAL / 2));
        assert!(progress.plain_due(start + PLAIN_INTERVAL * 3));
    }

    #[test]
    fn the_summary_says_what_was_measured() {
        let progress = BuildProgress {
            done: 122,
            compiled: 118,
            ..BuildProgress::default()
        };
        assert_eq!(
            progress.summary(
                Duration::from_millis(63_240),
                Some(Duration::from_millis(2_100))
            ),
            "built in 63.2 s: 118 crates compiled, 4 fresh, link 2.1 s"
        );
        let progress = BuildProgress {
            done: 1,
            compiled: 1,
            ..BuildProgress::default()
        };
        assert_eq!(
            progress.summary(Duration::from_millis(400), None),
            "built in 0.4 s: 1 crate compiled"
        );
    }

    #[test]
    fn compiling_reads_cargos_status_line() {
        assert_eq!(compiling("Compiling serde v1.0.219"), Some("serde"));
        assert_eq!(compiling("Compiling app v0.1.0 (/x/app)"), Some("app"));
        assert_eq!(compiling("Finished `dev` profile"), None);
    }

    #[test]
    fn units_are_counted_from_the_program_through_normal_and_build_dependencies() {
        let json = r#"{
          "packages": [
            {"id": "app", "name": "app", "targets": [{"kind": ["lib"]}, {"kind": ["bin"]}]},
            {"id": "serde", "name": "serde", "targets": [{"kind": ["lib"]}, {"kind": ["custom-build"]}]},
            {"id": "derive", "name": "derive", "targets": [{"kind": ["proc-macro"]}]},
            {"id": "cc", "name": "cc", "targets": [{"kind": ["lib"]}]},
            {"id": "testonly", "name": "testonly", "targets": [{"kind": ["lib"]}]},
            {"id": "other", "name": "other", "targets": [{"kind": ["lib"]}]}
          ],
          "resolve": {"nodes": [
            {"id": "app", "deps": [
              {"pkg": "serde", "dep_kinds": [{"kind": null}]},
              {"pkg": "testonly", "dep_kinds": [{"kind": "dev"}]},
              {"pkg": "cc", "dep_kinds": [{"kind": "build"}]}
            ]},
            {"id": "serde", "deps": [{"pkg": "derive", "dep_kinds": [{"kind": null}]}]},
            {"id": "derive", "deps": []},
            {"id": "cc", "deps": []},
            {"id": "testonly", "deps": []},
            {"id": "other", "deps": []}
          ]}
        }"#;
        let metadata: Metadata = serde_json::from_str(json).unwrap();
        // app: lib + bin; serde: lib + build script (compile, run); derive; cc.
        assert_eq!(count_units(&metadata, "app"), Some(7));
        assert_eq!(count_units(&metadata, "nothing"), None);
    }
}
