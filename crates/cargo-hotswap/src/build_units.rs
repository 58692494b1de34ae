//! The total of a build's progress line (`building (hot mode): 37/~122 crates`), remembered.
//!
//! Estimating it takes a `cargo metadata` with the whole dependency graph (see
//! [`crate::progress::estimate_units`]): a tenth of a second of CPU for a small program, more for
//! a large one, spent while cargo builds. A later session of the same program usually builds the
//! same units, so the count of the last successful build is kept in the target directory, keyed
//! by what decides the units: the cargo arguments of the build and the contents of `Cargo.lock`
//! and of every manifest of the workspace. When the key matches, that count is the total and
//! `cargo metadata` is not run; otherwise the total is estimated as before.
//!
//! Still an estimate (`~`): a build script's `rerun-if` or a `.cargo/config.toml` can change the
//! units without changing the key, and the line never shows a total below what is done.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the unit count of a build depends on, hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key(u64);

impl Key {
    /// `args`: the build's cargo arguments (package, target, features, profile); `manifests`:
    /// `Cargo.lock` and the manifests (a file that cannot be read counts as empty).
    pub fn new(args: &[String], manifests: &[PathBuf]) -> Key {
        // Only compared with keys this same binary wrote, so a hasher stable across Rust
        // releases is not needed: a different one just means one more estimate.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        args.hash(&mut hasher);
        for path in manifests {
            path.hash(&mut hasher);
            std::fs::read(path).unwrap_or_default().hash(&mut hasher);
        }
        Key(hasher.finish())
    }
}

#[derive(Serialize, Deserialize)]
struct Remembered {
    key: Key,
    units: usize,
}

/// The file that remembers the last count of the program named `name` (one per program: a
/// session builds one).
pub fn path(target_dir: &Path, name: &str) -> PathBuf {
    target_dir.join(format!("units-{name}.json"))
}

/// The unit count of the last successful build with this key, if there was one.
pub fn remembered(file: &Path, key: Key) -> Option<usize> {
    let bytes = std::fs::read(file).ok()?;
    let remembered: Remembered = serde_json::from_slice(&bytes).ok()?;
    (remembered.key == key && remembered.units > 0).then_some(remembered.units)
}

/// Remembers `units` for `key` (best effort: a file that cannot be written means one more
/// estimate next time).
pub fn remember(file: &Path, key: Key, units: usize) {
    let Ok(bytes) = serde_json::to_vec(&Remembered { key, units }) else {
        return;
    };
    // Written whole under a private name, then renamed: two sessions may build side by side.
    let partial = file.with_extension(format!("json.{}", std::process::id()));
    if std::fs::write(&partial, bytes).is_ok() && std::fs::rename(&partial, file).is_err() {
        let _ = std::fs::remove_file(&partial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_reused_only_while_the_arguments_and_manifests_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(&lock, "version = 4").unwrap();
        std::fs::write(&manifest, "[package]").unwrap();
        let manifests = [lock.clone(), manifest.clone()];
        let args = ["-p".to_owned(), "app".to_owned()];
        let file = path(dir.path(), "app");
        let key = Key::new(&args, &manifests);
        assert_eq!(remembered(&file, key), None, "nothing remembered yet");
        remember(&file, key, 56);
        assert_eq!(remembered(&file, Key::new(&args, &manifests)), Some(56));
        // Other arguments (a feature, `--release`): estimated again.
        let release = ["-p".to_owned(), "app".to_owned(), "--release".to_owned()];
        assert_eq!(remembered(&file, Key::new(&release, &manifests)), None);
        // A changed manifest or lock file: estimated again.
        std::fs::write(&manifest, "[package]\n[dependencies]\nserde = \"1\"").unwrap();
        assert_eq!(remembered(&file, Key::new(&args, &manifests)), None);
        std::fs::write(&manifest, "[package]").unwrap();
        std::fs::write(&lock, "version = 4\n[[package]]").unwrap();
        assert_eq!(remembered(&file, Key::new(&args, &manifests)), None);
        // A garbled file is no count.
        std::fs::write(&file, "{").unwrap();
        assert_eq!(remembered(&file, key), None);
    }
}
