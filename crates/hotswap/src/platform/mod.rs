//! Everything that differs between operating systems, so the rest of the runtime reads the same
//! everywhere. Linux is implemented and tested; other systems get a clear error at run time.

#![allow(missing_docs, dead_code)]

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::*;
