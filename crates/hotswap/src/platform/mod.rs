//! Everything that differs between operating systems, so the rest of the runtime reads the same
//! everywhere. Linux is implemented and tested; other systems get a clear error at run time.

#![allow(missing_docs, dead_code)]

use std::sync::atomic::AtomicPtr;

/// An acquire load of a dispatch slot. On x86-64 every plain load already has acquire
/// semantics, so it is one `mov`, written as inline assembly so that it stays one instruction
/// even at opt-level 0 (where `AtomicPtr::load` is two calls).
#[inline(always)]
pub fn load_acquire(slot: &AtomicPtr<()>) -> *const () {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let value: *const ();
        // SAFETY: reads one aligned pointer-sized word from a live `AtomicPtr`; x86-64 loads
        // are atomic and have acquire ordering (TSO), which is what `Ordering::Acquire` gives.
        // The asm touches no stack and no flags and only reads memory.
        unsafe {
            std::arch::asm!(
                "mov {value}, qword ptr [{slot}]",
                value = out(reg) value,
                // A cast, not `AtomicPtr::as_ptr`: that is a call at opt-level 0. `AtomicPtr<T>`
                // has the same in-memory representation as `*mut T`.
                slot = in(reg) slot as *const AtomicPtr<()>,
                options(nostack, preserves_flags, readonly),
            );
        }
        value
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        slot.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::*;

/// An error with the errors it wraps: libloading's own message is only "dlopen failed" or
/// "dlsym failed"; the loader's (which symbol, which file) is its source.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
