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
