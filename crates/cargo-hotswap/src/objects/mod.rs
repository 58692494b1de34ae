//! Link (CLI side): a patch's objects as the linker takes them. Each codegen unit of the hot
//! crate (a member of its rlib, read where the rlib is mapped, or a binary crate's object
//! file) loses its debug sections' bytes, which the link drops anyway ([`strip`]), is
//! rewritten to share the running program's data ([`crate::rewrite`]), and goes into one
//! archive, which the patch is linked from `--whole-archive` ([`archive`]). Nothing is
//! written but that archive: about a quarter of the objects' size, in one file.

mod archive;
mod strip;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

use object::elf as E;
use object::read::elf::{FileHeader, Sym};

use crate::rewrite::{self, Placement, Program, Refusal, Shared};

/// Where a patch's objects are.
#[derive(Clone, Debug)]
pub enum Source {
    /// The `.o` members of a library crate's rlib.
    Rlib(PathBuf),
    /// A binary crate's object files.
    Files(Vec<PathBuf>),
}

/// The archive a patch is linked from, and what its objects share with the program.
pub struct Prepared {
    pub archive: PathBuf,
    pub shared: Shared,
    /// The global symbols the objects define whose names contain one of the patterns asked
    /// for: the names a version script's `*pattern*` would match. `None` when one of them is
    /// not a plain symbol name (`[A-Za-z0-9_.$]`), which a script could not list as it is.
    pub matching: Option<Vec<String>>,
}

pub enum Problem {
    /// The objects cannot share the program's data: the program must restart.
    Refused(Refusal),
    /// A file could not be read or written, or is not what it should be.
    Other(String),
}

/// Writes the archive of `source`'s objects, rewritten for `program` and `placement` (a
/// binary crate's objects: `binary`), to `archive`; collects the defined names containing
/// one of `patterns`.
pub fn prepare(
    source: &Source,
    archive: &Path,
    program: &Program,
    placement: Placement,
    binary: bool,
    patterns: &[&str],
) -> Result<Prepared, Problem> {
    let mut shared = Shared::default();
    let mut matching = Some(Vec::new());
    let mut out = archive::Archive::new();
    let mut take = |name: &str, bytes: &[u8]| -> Result<(), Problem> {
        let stripped = strip::without_debug(bytes);
        match (defined_matching(&stripped, patterns), &mut matching) {
            (Some(names), Some(all)) => all.extend(names),
            _ => matching = None,
        }
        let rewritten = rewrite::rewrite_object(&stripped, program, placement, binary, &mut shared)
            .map_err(Problem::Refused)?;
        out.add(name, rewritten.unwrap_or_else(|| stripped.into_owned()));
        Ok(())
    };
    match source {
        Source::Rlib(rlib) => {
            let fail = |err: String| Problem::Other(format!("{}: {err}", rlib.display()));
            let data = crate::statics::map(rlib).map_err(fail)?;
            let members = object::read::archive::ArchiveFile::parse(&*data)
                .map_err(|e| fail(e.to_string()))?;
            for member in members.members() {
                let member = member.map_err(|e| fail(e.to_string()))?;
                let name = String::from_utf8_lossy(member.name()).into_owned();
                if !name.ends_with(".o") {
                    continue;
                }
                take(&name, member.data(&*data).map_err(|e| fail(e.to_string()))?)?;
            }
        }
        Source::Files(files) => {
            for file in files {
                let data = crate::statics::map(file).map_err(Problem::Other)?;
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                take(&name, &data)?;
            }
        }
    }
    out.write(archive)
        .map_err(|err| Problem::Other(format!("cannot write {}: {err}", archive.display())))?;
    Ok(Prepared {
        archive: archive.to_owned(),
        shared,
        matching,
    })
}

/// The names of the global (or weak) symbols `bytes` defines that contain one of `patterns`
/// (none for a file that is not an object this reads; the rewriter then says what it is);
/// `None` if one of them is not a plain name.
fn defined_matching(bytes: &[u8], patterns: &[&str]) -> Option<Vec<String>> {
    let mut found = Vec::new();
    let Ok(header) = E::FileHeader64::<object::Endianness>::parse(bytes) else {
        return Some(found);
    };
    let Ok(endian) = header.endian() else {
        return Some(found);
    };
    let Ok(symbols) = header
        .sections(endian, bytes)
        .and_then(|s| s.symbols(endian, bytes, E::SHT_SYMTAB))
    else {
        return Some(found);
    };
    for symbol in symbols.iter() {
        if symbol.st_shndx(endian) == E::SHN_UNDEF || symbol.st_bind() == E::STB_LOCAL {
            continue;
        }
        let Ok(name) = symbols.symbol_name(endian, symbol) else {
            continue;
        };
        // The patterns are ASCII: a lossy reading keeps every run of ASCII as it is.
        let name = String::from_utf8_lossy(name);
        if patterns.iter().any(|p| name.contains(p)) {
            let plain = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'$'));
            if !plain {
                return None;
            }
            found.push(name.into_owned());
        }
    }
    Some(found)
}
