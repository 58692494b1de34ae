//! `cargo hotswap init`: placeholder replaced below.
use std::path::Path;
pub fn run(_manifest: Option<&Path>, _path: Option<&Path>, _dry_run: bool) -> i32 {
    crate::report::error("init is not implemented yet");
    2
}
