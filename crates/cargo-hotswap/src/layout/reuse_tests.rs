//! Snapshots taking their units' readings from an earlier build's (see `units`), on real
//! incremental builds of a crate of several codegen units, edited as a user would.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use object::read::archive::ArchiveFile;

use super::*;

/// One module per codegen unit (incremental builds partition by module), each with a root:
/// a hot function, and a static shared with the program.
const CRATE: &str = r#"
pub mod config {
    pub struct Config { pub a: u32 FIELD }
    pub static CONFIG: Config = Config { a: 1 INIT };
    pub fn __hotswap_impl_read(c: &Config) -> u32 { c.a }
}
pub mod score {
    pub struct Score { pub points: u64, pub name: String }
    pub fn __hotswap_impl_add(s: &mut Score, n: u64) -> u64 { s.points += n; s.points + BODY }
}
pub mod world {
    pub struct World { pub scores: Vec<crate::score::Score>, pub tick: u32 }
    pub fn __hotswap_impl_step(w: &mut World) -> usize { w.tick += 1; w.scores.len() }
}
pub mod other {
    pub struct Cell { pub v: i16 }
    pub fn __hotswap_impl_poke(c: &mut Cell) -> i16 { c.v }
}
"#;

fn source(body: u64, grown: bool) -> String {
    CRATE
        .replace("BODY", &body.to_string())
        .replace("FIELD", if grown { ", pub b: u64" } else { "" })
        .replace("INIT", if grown { ", b: 2" } else { "" })
}

/// Builds `sources` one after the other, incrementally, as the same crate in the same place
/// (as the CLI's replays do); returns a copy of each build's rlib.
fn builds(dir: &Path, sources: &[String]) -> Vec<PathBuf> {
    let incremental = format!("incremental={}", dir.join("inc").display());
    sources
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let out = crate::test_rustc::compile(
                &dir.join("src"),
                text,
                &[
                    "-C",
                    "debuginfo=2",
                    "-C",
                    &incremental,
                    "-C",
                    "codegen-units=16",
                ],
                "libgame.rlib",
            );
            let kept = dir.join(format!("build-{index}.rlib"));
            std::fs::copy(&out, &kept).unwrap();
            kept
        })
        .collect()
}

/// The bytes of the rlib's codegen units.
fn units_of(rlib: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(rlib).unwrap();
    let archive = ArchiveFile::parse(&*data).unwrap();
    archive
        .members()
        .map(Result::unwrap)
        .filter(|m| m.name().ends_with(b".o"))
        .map(|m| m.data(&*data).unwrap().to_vec())
        .collect()
}

fn read(rlib: &Path, text: &str, shared: &[String], earlier: &[&Snapshot]) -> Snapshot {
    let file = syn::parse_file(text).unwrap();
    Snapshot::read(rlib, "game", &[file], shared, earlier).unwrap()
}

fn config_linkage(snapshot: &Snapshot) -> String {
    snapshot
        .statics()
        .find(|&(_, path)| path == "game::config::CONFIG")
        .map(|(linkage, _)| linkage.to_owned())
        .expect("CONFIG is described")
}

/// An edit of one body: the patch's snapshot taking the running build's readings is the one
/// read afresh (same table, down to the ids), and only its units with new bytes were read.
#[test]
fn a_snapshot_taking_earlier_readings_equals_one_read_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [source(1, false), source(2, false)];
    let rlibs = builds(dir.path(), &texts);
    let running = read(&rlibs[0], &texts[0], &[], &[]);
    assert_eq!(running.units.reused, 0);
    let fresh = read(&rlibs[1], &texts[1], &[], &[]);
    let taken = read(&rlibs[1], &texts[1], &[], &[&running]);
    assert!(taken.types == fresh.types, "the tables differ");
    assert_eq!(taken.units.read + taken.units.reused, fresh.units.read);

    // Exactly the chosen units whose bytes are not among the running build's were read.
    let old: HashSet<Vec<u8>> = units_of(&rlibs[0]).into_iter().collect();
    let new = units_of(&rlibs[1]);
    let changed = new.iter().filter(|unit| !old.contains(*unit)).count();
    assert!(changed >= 1, "the edit changed no unit");
    assert!(changed < new.len(), "the edit changed every unit");
    assert_eq!(
        taken.units.read,
        changed,
        "changed units: {changed} of {}",
        new.len()
    );
    assert!(taken.units.reused >= 1);
}

/// A shared static's type gains a field: the change is still refused, naming the field, though
/// the units the edit left alone were taken from the running build's reading.
#[test]
fn a_changed_static_is_found_when_other_units_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [source(1, false), source(1, true)];
    let rlibs = builds(dir.path(), &texts);
    let first = read(&rlibs[0], &texts[0], &[], &[]);
    let shared = vec![config_linkage(&first)];
    let running = read(&rlibs[0], &texts[0], &shared, &[&first]);
    assert_eq!(running.units.read, 0, "the same build was read again");
    let patch = read(&rlibs[1], &texts[1], &shared, &[&running]);
    assert!(patch.units.reused >= 1, "no unit was taken");
    assert!(patch.units.read >= 1, "the changed unit was not read");
    let found: Vec<String> = compare(&running, &patch, &shared)
        .iter()
        .map(LayoutChange::describe)
        .collect();
    let fresh = read(&rlibs[1], &texts[1], &shared, &[]);
    let fresh_found: Vec<String> = compare(&running, &fresh, &shared)
        .iter()
        .map(LayoutChange::describe)
        .collect();
    assert_eq!(found, fresh_found);
    assert!(
        found
            .iter()
            .any(|f| f.contains("Config") && f.contains("field `b: u64` added")),
        "{found:?}"
    );
}
