//! For unit tests: a small crate compiled by the real rustc, so the object readers and
//! rewriters are tested on what the compiler writes, not on hand-made bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `source` as the library crate `game` (edition 2021, `-C metadata=t`) in `dir`,
/// with `flags` (e.g. `["--emit", "obj", "-C", "codegen-units=1"]`), into `dir/out`.
pub fn compile(dir: &Path, source: &str, flags: &[&str], out: &str) -> PathBuf {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::fs::create_dir_all(dir).unwrap();
    let src = dir.join("lib.rs");
    std::fs::write(&src, source).unwrap();
    let out = dir.join(out);
    let status = Command::new(rustc)
        .args(["--crate-type", "lib", "--crate-name", "game"])
        .args(["--edition", "2021", "-C", "metadata=t"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "rustc failed on {}", src.display());
    out
}

/// One position-independent object file of `source` (one codegen unit), as a dev rlib's
/// members are, plus `flags`.
pub fn object(dir: &Path, source: &str, flags: &[&str]) -> PathBuf {
    let mut all = vec![
        "--emit",
        "obj",
        "-C",
        "codegen-units=1",
        "-C",
        "relocation-model=pic",
    ];
    all.extend_from_slice(flags);
    compile(dir, source, &all, "lib.o")
}
