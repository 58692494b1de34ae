//! Systems without an implementation yet: hot mode builds, and every patch is refused with a
//! message saying so.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

pub(crate) const BINARY_FORMAT: object::BinaryFormat = object::BinaryFormat::Elf;

pub(crate) fn architecture() -> object::Architecture {
    object::Architecture::Unknown
}

pub(crate) fn library_file_name(name: &str) -> String {
    format!("lib{name}.so")
}

pub(crate) fn inode(_meta: &Metadata) -> u64 {
    0
}

pub(crate) fn check_private(_dir: &Path) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}

pub(crate) fn private_dir() -> Result<PathBuf, String> {
    Err(UNSUPPORTED.into())
}

pub(crate) fn open_library(_path: &Path) -> Result<libloading::Library, String> {
    Err(UNSUPPORTED.into())
}

const UNSUPPORTED: &str = "hotswap supports Linux only so far; on this system the compiled-in \
                           code keeps running";
