//! Load: `dlopen` the staged copy, delete it from disk, and find the manifest entries.
//!
//! A loaded patch is never unloaded: code, vtables and `&'static str`s of every version stay
//! valid for as long as anything might still point into them.

use std::mem::ManuallyDrop;

use super::check::Manifest;
use super::stage::Staged;
use crate::__private::{Entry, StateEntry};
use crate::platform;

/// A patch in memory. Dropping it does not unload it.
pub(crate) struct Loaded {
    library: ManuallyDrop<libloading::Library>,
}

pub(crate) fn open(staged: Staged, _manifest: &Manifest) -> Result<Loaded, String> {
    let library = platform::open_library(staged.path()).map_err(|err| {
        format!(
            "the dynamic loader refused it: {err}. If a symbol is missing, the patch uses code \
             the running program does not contain; restart the program"
        )
    })?;
    // The mapping keeps the bytes alive; the file itself is no longer needed.
    drop(staged);
    Ok(Loaded {
        library: ManuallyDrop::new(library),
    })
}

impl Loaded {
    /// The patch's manifest entries, by the symbols the check found.
    pub fn entries(&self, manifest: &Manifest) -> Result<Vec<&'static Entry>, String> {
        manifest
            .entry_symbols
            .iter()
            .map(|name| {
                // SAFETY: the check found `name` among the library's defined dynamic symbols
                // with the entry prefix, which only `#[hot]` emits, for a `static Entry`.
                // The library is never unloaded, so the reference is valid for 'static.
                unsafe {
                    let symbol = self
                        .library
                        .get::<*const Entry>(name.as_bytes())
                        .map_err(|err| format!("cannot find its manifest entry {name}: {err}"))?;
                    let entry: *const Entry = symbol
                        .try_as_raw_ptr()
                        .unwrap_or(std::ptr::null_mut())
                        .cast();
                    entry
                        .as_ref()
                        .ok_or_else(|| format!("its manifest entry {name} is null"))
                }
            })
            .collect()
    }

    /// The patch's `#[derive(Migrate)]` entries.
    pub fn state_entries(&self, manifest: &Manifest) -> Result<Vec<&'static StateEntry>, String> {
        manifest
            .state_symbols
            .iter()
            .map(|name| {
                // SAFETY: the check found `name` among the library's defined dynamic symbols
                // with the state prefix, which only `#[derive(Migrate)]` emits, for a
                // `static StateEntry`. The library is never unloaded.
                unsafe {
                    let symbol = self
                        .library
                        .get::<*const StateEntry>(name.as_bytes())
                        .map_err(|err| format!("cannot find its state entry {name}: {err}"))?;
                    let entry: *const StateEntry = symbol
                        .try_as_raw_ptr()
                        .unwrap_or(std::ptr::null_mut())
                        .cast();
                    entry
                        .as_ref()
                        .ok_or_else(|| format!("its state entry {name} is null"))
                }
            })
            .collect()
    }

    /// The address of a function the library exports, if it has one.
    pub fn function(&self, name: &str) -> Option<*const ()> {
        // SAFETY: only the address is read here; callers know the symbol's real type.
        unsafe {
            let symbol = self
                .library
                .get::<unsafe extern "C" fn()>(name.as_bytes())
                .ok()?;
            Some(*symbol as *const ())
        }
    }

    /// Leaves the library mapped for the rest of the process.
    pub fn keep_forever(self) {}
}
