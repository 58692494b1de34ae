//! The link inputs on an object rustc compiled with full debug information, as hot crates
//! are: without its debug sections it links into the same file, and the archive gives the
//! linker each object as it was.

use std::path::{Path, PathBuf};

use object::read::elf::{FileHeader, SectionHeader};
use object::{Object as _, ObjectSection as _};

use super::*;
use crate::link_with;

/// Compiles a small library (a static, a thread-local, a generic instance, a panic) into one
/// object with `-C debuginfo=2`, position-independent, as a dev rlib's members are.
pub(crate) fn debug_object(dir: &Path) -> PathBuf {
    crate::test_rustc::object(
        dir,
        "use std::cell::Cell;\n\
         use std::sync::atomic::{AtomicU64, Ordering};\n\
         static COUNT: AtomicU64 = AtomicU64::new(0);\n\
         #[allow(non_upper_case_globals)]\n\
         pub static __hotswap_slot_bump: AtomicU64 = AtomicU64::new(1);\n\
         thread_local! { static TL: Cell<u64> = const { Cell::new(0) }; }\n\
         pub fn bump(names: &[&str]) -> u64 {\n\
             TL.with(|t| t.set(t.get() + 1));\n\
             let joined: Vec<String> = names.iter().map(|n| n.to_uppercase()).collect();\n\
             if joined.len() > 99 { panic!(\"too many: {}\", joined.len()); }\n\
             COUNT.fetch_add(1, Ordering::Relaxed) + TL.with(|t| t.get())\n\
         }\n",
        &["-C", "debuginfo=2"],
    )
}

fn sections(bytes: &[u8]) -> Vec<(String, u64, Vec<u8>)> {
    let file = object::File::parse(bytes).unwrap();
    file.sections()
        .map(|s| {
            let data = s.data().unwrap().to_vec();
            (s.name().unwrap().to_owned(), s.size(), data)
        })
        .collect()
}

#[test]
fn an_object_without_its_debug_sections_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(debug_object(dir.path())).unwrap();
    let stripped = strip::without_debug(&full);
    assert!(
        stripped.len() * 2 < full.len(),
        "{} of {} bytes",
        stripped.len(),
        full.len()
    );
    let (before, after) = (sections(&full), sections(&stripped));
    assert_eq!(before.len(), after.len(), "every section header stays");
    let mut dropped = 0;
    for ((name, size, data), (name_after, size_after, data_after)) in before.iter().zip(&after) {
        assert_eq!(name, name_after);
        let relocates_debug = name.starts_with(".rela.debug");
        if name.starts_with(".debug") || relocates_debug {
            assert_eq!(*size_after, 0, "{name}");
            dropped += 1;
        } else {
            assert_eq!((size, data), (size_after, data_after), "{name}");
        }
    }
    assert!(dropped > 4, "the object had debug sections");
    // Each section's bytes start aligned, and the symbols are read back as before.
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*stripped).unwrap();
    let endian = header.endian().unwrap();
    for section in header.sections(endian, &*stripped).unwrap().iter() {
        if section.sh_size(endian) > 0 {
            assert_eq!(section.sh_offset(endian) % 8, 0);
        }
    }
    let symbols = |bytes: &[u8]| {
        use object::ObjectSymbol as _;
        let file = object::File::parse(bytes).unwrap();
        file.symbols()
            .map(|s| (s.name().unwrap().to_owned(), s.address(), s.section_index()))
            .collect::<Vec<_>>()
    };
    assert_eq!(symbols(&full), symbols(&stripped));
    // Nothing to drop: the same bytes, not a copy.
    let again = strip::without_debug(&stripped);
    assert!(matches!(again, std::borrow::Cow::Borrowed(_)));
}

/// With `-S`, each linker present links the stripped object, alone or from an archive
/// `--whole-archive`, into the very file the full one gives.
#[test]
fn every_linker_links_a_stripped_object_into_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = debug_object(dir.path());
    let stripped = dir.path().join("stripped.o");
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&stripped, strip::without_debug(&bytes)).unwrap();
    let mut archive = archive::Archive::new();
    archive.add("game.rcgu.o", strip::without_debug(&bytes).into_owned());
    let archived = dir.path().join("objects.a");
    archive.write(&archived).unwrap();
    let version = dir.path().join("patch.ver");
    std::fs::write(&version, "{\n  local: *__hotswap_slot_*;\n};\n").unwrap();
    for flags in link_with::present_for_tests() {
        let link = |inputs: &[&std::ffi::OsStr], name: &str| {
            let output = dir
                .path()
                .join(format!("{name}-{}.so", flags.linker.name()));
            let inputs: Vec<_> = inputs.iter().map(|i| i.to_os_string()).collect();
            let mut command =
                link_with::command("cc", &flags, &version, &output, &inputs, None).unwrap();
            let result = command.output().unwrap();
            assert!(
                result.status.success(),
                "{}: {}",
                flags.linker.name(),
                String::from_utf8_lossy(&result.stderr)
            );
            std::fs::read(output).unwrap()
        };
        let from_full = link(&[full.as_os_str()], "full");
        let from_stripped = link(&[stripped.as_os_str()], "stripped");
        let whole = ["-Wl,--whole-archive", "-Wl,--no-whole-archive"].map(std::ffi::OsStr::new);
        let from_archive = link(&[whole[0], archived.as_os_str(), whole[1]], "archived");
        let name = flags.linker.name();
        assert!(
            from_full == from_stripped,
            "{name}: the stripped object's patch differs"
        );
        assert!(
            from_full == from_archive,
            "{name}: the archive's patch differs"
        );
    }
}

#[test]
fn the_archive_gives_each_object_back_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = archive::Archive::new();
    let members: Vec<(String, Vec<u8>)> = (0..5)
        .map(|n| {
            let name = format!("game-{n}.a-long-codegen-unit-name-{}.rcgu.o", "x".repeat(n));
            (name, vec![n as u8 + 1; 37 + 13 * n])
        })
        .collect();
    for (name, bytes) in &members {
        archive.add(name, bytes.clone());
    }
    let path = dir.path().join("objects.a");
    archive.write(&path).unwrap();
    let data = std::fs::read(&path).unwrap();
    let parsed = object::read::archive::ArchiveFile::parse(&*data).unwrap();
    let read: Vec<_> = parsed.members().map(|m| m.unwrap()).collect();
    assert_eq!(read.len(), members.len());
    for (member, (name, bytes)) in read.iter().zip(&members) {
        assert_eq!(member.name(), name.as_bytes());
        let (offset, size) = member.file_range();
        assert_eq!(offset % 8, 0, "{name} starts aligned");
        let held = &data[offset as usize..(offset + size) as usize];
        // The object, then zeros up to the next aligned member.
        assert_eq!(&held[..bytes.len()], &bytes[..]);
        assert!(held[bytes.len()..].iter().all(|b| *b == 0));
        assert!(held.len() - bytes.len() < 8);
    }
}

/// What the version script lists instead of its patterns: the defined global names that
/// contain one, and only those.
#[test]
fn the_names_a_pattern_matches_are_the_defined_globals_containing_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(debug_object(dir.path())).unwrap();
    let names = defined_matching(&bytes, &["__hotswap_slot_"]).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("__hotswap_slot_bump"));
    assert_eq!(
        defined_matching(&bytes, &["no_such_name"]),
        Some(Vec::new())
    );
    // `COUNT` is local, `TL`'s key is local: neither is listed.
    let count = defined_matching(&bytes, &["5COUNT"]).unwrap();
    assert!(count.is_empty(), "{count:?}");
}
