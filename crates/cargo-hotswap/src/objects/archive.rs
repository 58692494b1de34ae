//! One archive holding every object of a patch's link, linked `--whole-archive`: one file to
//! write and for the linker to open instead of one per codegen unit.
//!
//! The format is the common (GNU) `ar` format, as rustc's rlibs: the global header, a `//`
//! member with the long names, then each member, its 60-byte header and its bytes. No symbol
//! index: `--whole-archive` takes every member without looking anything up. Each member's
//! bytes start 8-byte aligned in the file (the table of names and each object are padded
//! for it; trailing bytes after an object's section headers are never read), so that the
//! linker reads its relocation and symbol tables in place.

use std::io::Write;

const MAGIC: &[u8] = b"!<arch>\n";
const HEADER: usize = 60;

/// An archive being built in memory.
pub struct Archive {
    members: Vec<(String, Vec<u8>)>,
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            members: Vec::new(),
        }
    }

    /// Adds `bytes` as member `name` (a file name, without `/`).
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.members.push((name.replace('/', "_"), bytes));
    }

    /// Writes the archive to `path`.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
        self.write_to(&mut file)?;
        file.into_inner().map_err(|err| err.into_error())?;
        Ok(())
    }

    /// Writes the archive's bytes to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut names = Vec::new();
        let mut offsets = Vec::with_capacity(self.members.len());
        for (name, _) in &self.members {
            offsets.push(names.len());
            names.extend_from_slice(name.as_bytes());
            names.extend_from_slice(b"/\n");
        }
        // The first member's bytes at 8 (magic) + 60 + names + 60: a multiple of 8.
        names.resize(names.len().next_multiple_of(8), b'\n');
        out.write_all(MAGIC)?;
        out.write_all(&header("//", names.len()))?;
        out.write_all(&names)?;
        let zeros = [0u8; 8];
        for ((_, bytes), offset) in self.members.iter().zip(offsets) {
            let size = padded(bytes.len());
            out.write_all(&header(&format!("/{offset}"), size))?;
            out.write_all(bytes)?;
            out.write_all(&zeros[..size - bytes.len()])?;
        }
        Ok(())
    }
}

/// A member's size padded so that the next member's bytes are 8-byte aligned too (the next
/// header starts 4 bytes past a multiple of 8, as the first one does; the size is even, so no
/// padding byte follows it).
fn padded(len: usize) -> usize {
    (len + HEADER).next_multiple_of(8) - HEADER
}

/// A member header: name, mtime, uid, gid, mode, size, terminator; fields space-padded.
fn header(name: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    for (text, width) in [
        (name, 16),
        ("0", 12),
        ("0", 6),
        ("0", 6),
        ("644", 8),
        (&size.to_string(), 10),
    ] {
        out.extend_from_slice(text.as_bytes());
        out.resize(out.len() + width - text.len(), b' ');
    }
    out.extend_from_slice(b"`\n");
    debug_assert_eq!(out.len(), HEADER);
    out
}
