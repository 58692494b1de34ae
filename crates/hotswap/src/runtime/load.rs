//! Load: `dlopen` the staged copy, delete it from disk, and find the manifest entries.
//!
//! A loaded patch is never unloaded: code, vtables and `&'static str`s of every version stay
//! valid for as long as anything might still point into them.

use std::mem::ManuallyDrop;

use super::check::{Manifest, Section};
use super::reserve::Claim;
use super::stage::Staged;
use crate::__private::{Entry, Slot, StateEntry, ENTRY_ABI};
use crate::platform;

/// A patch in memory. Dropping it does not unload it.
pub(crate) struct Loaded {
    library: ManuallyDrop<libloading::Library>,
    /// Where it was loaded: its section addresses are relative to this.
    base: usize,
}

/// Loads the staged patch; with `fixed`, at the address it was linked for, inside the range
/// the program reserved (`reserve`), or not at all.
pub(crate) fn open(staged: Staged, fixed: Option<Claim>) -> Result<Loaded, String> {
    // The fixed range is released as late as possible, right before the `dlopen`: from here on
    // another thread's `mmap` may take the hole, which the check after the load catches.
    let fixed = fixed.map(Claim::release).transpose()?;
    // `open_library` reads the load address (`l_addr`) right after `dlopen` returns, before
    // anything else touches the library.
    let opened = platform::open_library(staged.path());
    let (library, base) = opened.map_err(|err| {
        let hint = if err.contains("undefined symbol") {
            ". The patch uses code the running program does not contain (a function it never \
             used, e.g. of the standard library); restart the program"
        } else {
            ""
        };
        format!("the dynamic loader refused it: {err}{hint}")
    })?;
    if let Some(wanted) = fixed {
        if base != 0 {
            // Loaded elsewhere, so its PC-relative references to the program's statics point at
            // the wrong memory: refused before anything reads its sections or calls into it.
            // (`dlopen` itself runs ELF initialisers, `.init_array`; a patch of `#[hot]` code
            // has none unless its crate registers a constructor.) It stays loaded, as every
            // patch does: patches are never unloaded (`dlclose` would run its finalisers and
            // pull the mapping from under anything that got hold of an address in it).
            std::mem::forget(library);
            return Err(format!(
                "the patch was not loaded at its fixed address 0x{wanted:x} (the range was \
                 taken); nothing of it ran; the program keeps its code"
            ));
        }
    }
    // The mapping keeps the bytes alive; the file itself is no longer needed.
    drop(staged);
    Ok(Loaded {
        library: ManuallyDrop::new(library),
        base,
    })
}

/// Why a patch whose manifest points outside it is refused.
const NOT_OWN: &str = "its manifest points into the running program instead of into the patch \
                       (the patch was linked with its manifest symbols global): link patches \
                       with `cargo hotswap`, which keeps them local";

impl Loaded {
    /// The patch's manifest entries, from its registration section.
    pub fn entries(&self, manifest: &Manifest) -> Result<Vec<&'static Entry>, String> {
        // SAFETY: the check found the `ENTRIES` section of this library, a whole number of
        // `Entry`s long, which `__register!` fills with `Entry`s only (one per `#[hot]`
        // function, each aligned as `Entry` is, so they lie end to end), relocated by the
        // loader. Their `abi` is checked before anything else of them is used.
        let entries: Vec<&'static Entry> = unsafe { self.in_place(manifest.entries) };
        let (start, end) = self.image(manifest);
        let inside = |address: *const ()| (start..end).contains(&(address as usize));
        // An entry lies in the patch by construction; what it points at must too. A patch
        // linked so that its manifest symbols stay global has its entries' slot references
        // bound by the loader to the running program's slots of the same names. (Entries of
        // another `ENTRY_ABI` have other fields: `check::compatible` refuses them by that.)
        if entries.iter().filter(|e| e.abi == ENTRY_ABI).all(|entry| {
            inside(entry.slot as *const Slot as *const ())
                && inside(entry.implementation)
                && inside(entry.guarded)
        }) {
            Ok(entries)
        } else {
            Err(NOT_OWN.into())
        }
    }

    /// Where the patch's image lies in this process.
    fn image(&self, manifest: &Manifest) -> (usize, usize) {
        (
            self.base.wrapping_add(manifest.image.start as usize),
            self.base.wrapping_add(manifest.image.end as usize),
        )
    }

    /// The patch's `#[derive(Migrate)]` entries, from its registration section.
    pub fn state_entries(&self, manifest: &Manifest) -> Result<Vec<&'static StateEntry>, String> {
        match manifest.states {
            // SAFETY: as in `entries`, for the `STATES` section of `&'static StateEntry`s.
            Some(section) => self.own(manifest, unsafe { self.registrations(section) }),
            None => Ok(Vec::new()),
        }
    }

    /// Refuses registrations that point outside the patch. A patch linked so that its manifest
    /// symbols stay global has them bound by the loader to the running program's entries of the
    /// same names, and would silently "swap" the old code back in.
    fn own<T>(
        &self,
        manifest: &Manifest,
        found: Vec<&'static T>,
    ) -> Result<Vec<&'static T>, String> {
        let (start, end) = self.image(manifest);
        if found
            .iter()
            .all(|item| (start..end).contains(&(*item as *const T as usize)))
        {
            Ok(found)
        } else {
            Err(NOT_OWN.into())
        }
    }

    /// Whether the library carries its own copy of the runtime (full library mode).
    pub fn is_guest(&self) -> bool {
        self.function(super::guest::GUEST_INIT_SYMBOL).is_some()
    }

    /// The `T`s a registration section of this library holds in place.
    ///
    /// # Safety
    /// `section` must be a section of this library holding only `T`s, end to end.
    unsafe fn in_place<T>(&self, section: Section) -> Vec<&'static T> {
        let start = self.base.wrapping_add(section.address as usize) as *const T;
        let count = section.size as usize / std::mem::size_of::<T>();
        // SAFETY: per the contract, `count` values of `T` live at `start` (the section is
        // mapped at base + its address, and the library is never unloaded).
        unsafe { std::slice::from_raw_parts(start, count) }
            .iter()
            .collect()
    }

    /// The `&'static T`s a registration section of this library holds.
    ///
    /// # Safety
    /// `section` must be a section of this library holding only `&'static T`s.
    unsafe fn registrations<T>(&self, section: Section) -> Vec<&'static T> {
        let start = self.base.wrapping_add(section.address as usize) as *const &'static T;
        let count = section.size as usize / std::mem::size_of::<&'static T>();
        // SAFETY: per the contract, `count` references live at `start` (the section is mapped
        // at base + its address, and the library is never unloaded).
        unsafe { std::slice::from_raw_parts(start, count) }.to_vec()
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
}
