//! Stage: copy a patch into this process's private directory before anything reads it.
//!
//! The copy is what gets checked and loaded, so a writer still busy with the original (or one
//! that rewrites it later) can never change the bytes between the check and `dlopen`, and
//! nobody else can write into the directory. The copy is deleted as soon as it is loaded, or
//! when the attempt fails; a crash in between leaves it for the next start to sweep away.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A patch ready to be checked and loaded: our own copy (removed from disk when dropped) or a
/// patch in the CLI's private directory (left to the CLI, which removes it once answered).
pub(crate) struct Staged {
    path: PathBuf,
    ours: bool,
}

impl Staged {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A thin patch the CLI wrote into its own private directory (mode 0700, ours, checked) is
/// loaded where it is: only this user can write there, exactly as in our own directory, and
/// copying a large patch would cost more than the rest of the swap. The CLI removes it once the
/// program has answered.
///
/// Only once per path: `dlopen` of a path it loaded before returns that old library without
/// reading the file, so a new patch written under a name used before must be copied (to a name
/// of its own) or the program would report new code and keep running the old.
pub(crate) fn in_place(file: &Path) -> Option<Staged> {
    static SEEN: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let dir = file.parent()?;
    crate::platform::check_private(dir).ok()?;
    crate::platform::check_owned_file(file).ok()?;
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !seen
        .get_or_insert_with(HashSet::new)
        .insert(file.to_path_buf())
    {
        return None;
    }
    Some(Staged {
        path: file.to_path_buf(),
        ours: false,
    })
}

pub(crate) fn copy(file: &Path, private_dir: &Path) -> Result<Staged, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "patch".into());
    let extension = file
        .extension()
        .map(|ext| format!(".{}", ext.to_string_lossy()))
        .unwrap_or_default();
    let staged = Staged {
        path: private_dir.join(format!("{stem}-{number}{extension}")),
        ours: true,
    };
    std::fs::copy(file, &staged.path).map_err(|err| {
        format!(
            "cannot copy {} to {}: {err}",
            file.display(),
            private_dir.display()
        )
    })?;
    Ok(staged)
}
