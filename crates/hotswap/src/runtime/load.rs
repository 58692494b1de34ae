//! Load: `dlopen` the staged copy, delete it from disk, and find the manifest entries.
//!
//! A loaded patch is never unloaded: code, vtables and `&'static str`s of every version stay
//! valid for as long as anything might still point into them.

use std::mem::ManuallyDrop;

use super::check::{Manifest, Symbol};
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
        // SAFETY: the check found these names among the library's defined dynamic symbols with
        // the entry prefix, which only `#[hot]` emits, each for a `static Entry`.
        unsafe { self.statics(&manifest.entry_symbols, "manifest entry") }
    }

    /// The patch's `#[derive(Migrate)]` entries.
    pub fn state_entries(&self, manifest: &Manifest) -> Result<Vec<&'static StateEntry>, String> {
        // SAFETY: as in `entries`: the state prefix is only emitted by `#[derive(Migrate)]`,
        // each for a `static StateEntry`.
        unsafe { self.statics(&manifest.state_symbols, "state entry") }
    }

    /// The statics the library exports as `symbols`.
    ///
    /// One `dlsym` finds where the library was loaded; every other address is that base plus
    /// the symbol's value from the file (10,000 `dlsym`s would cost milliseconds).
    ///
    /// # Safety
    /// Each symbol must be a defined symbol of this library for a `static T`.
    unsafe fn statics<T>(&self, symbols: &[Symbol], what: &str) -> Result<Vec<&'static T>, String> {
        let Some(first) = symbols.first() else {
            return Ok(Vec::new());
        };
        // SAFETY: only the address is read.
        let found = unsafe { self.library.get::<*const T>(first.name.as_bytes()) }
            .map_err(|err| {
                format!(
                    "cannot find its {what} {}: {}",
                    first.name,
                    platform::error_chain(&err)
                )
            })?
            .try_as_raw_ptr()
            .map_or(0, |address| address as usize);
        let base = (found as u64).wrapping_sub(first.address);
        symbols
            .iter()
            .map(|symbol| {
                let address = base.wrapping_add(symbol.address) as usize as *const T;
                // SAFETY: per this function's contract the symbol is a `static T` of this
                // library, which is loaded at `base` and never unloaded.
                unsafe { address.as_ref() }
                    .ok_or_else(|| format!("its {what} {} is null", symbol.name))
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
