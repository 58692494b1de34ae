//! Systems without an implementation yet: hot mode builds, and every patch is refused with a
//! message saying so.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

pub const BINARY_FORMAT: object::BinaryFormat = object::BinaryFormat::Elf;

pub fn architecture() -> object::Architecture {
    object::Architecture::Unknown
}

pub fn library_file_name(name: &str) -> String {
    format!("lib{name}.so")
}

pub fn inode(_meta: &Metadata) -> u64 {
    0
}

pub fn check_private(_dir: &Path) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}

pub fn private_dir(_name: &str) -> Result<PathBuf, String> {
    Err(UNSUPPORTED.into())
}

pub const ENTRIES_SECTION: &str = "linkme_ENTRIES";
pub const STATES_SECTION: &str = "linkme_STATES";

pub fn open_library(_path: &Path) -> Result<(libloading::Library, usize), String> {
    Err(UNSUPPORTED.into())
}

/// The image hotswap's runtime is linked into (see the Linux version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnImage {
    pub lowest: usize,
    pub highest: usize,
    pub load_bias: usize,
    pub library: bool,
    pub path: std::path::PathBuf,
}

pub fn own_image() -> Option<OwnImage> {
    None
}

pub fn mapped_inode(_address: usize) -> Option<u64> {
    None
}

pub fn page_size() -> usize {
    4096
}

pub fn reserve_range(_start: usize, _len: usize) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}

/// # Safety
/// As on Linux: the range must be an unreleased part of a range [`reserve_range`] mapped.
pub unsafe fn release_range(_start: usize, _len: usize) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}

const UNSUPPORTED: &str = "hotswap supports Linux only so far; on this system the compiled-in \
                           code keeps running";

pub fn check_peer_is_same_user(_stream: &std::os::unix::net::UnixStream) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}

pub fn check_owned_file(_file: &Path) -> Result<(), String> {
    Err(UNSUPPORTED.into())
}
