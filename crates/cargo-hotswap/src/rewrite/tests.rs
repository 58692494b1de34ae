//! The rewriter on objects rustc compiled (opt-level 0, position-independent, as cargo builds
//! a dev rlib), checked by reading the result back and by linking it.

use std::collections::HashMap;
use std::path::Path;

use object::read::elf::{Rela, SectionHeader};
use object::{Object as _, ObjectSection, ObjectSymbol};

use super::elf::Object;
use super::*;

const LIB: &str = r#"
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
static COUNT: AtomicU64 = AtomicU64::new(0);
thread_local! { static TL: Cell<u64> = const { Cell::new(0) }; }
pub fn bump() -> u64 {
    TL.with(|t| t.set(t.get() + 1));
    COUNT.fetch_add(1, Ordering::Relaxed) + TL.with(|t| t.get())
}
"#;

/// Compiles `source` as a one-unit library object.
fn compile(dir: &Path, source: &str) -> Vec<u8> {
    let out = crate::test_rustc::compile(
        dir,
        source,
        &["--emit", "obj", "-C", "codegen-units=1"],
        "lib.o",
    );
    std::fs::read(out).unwrap()
}

/// The name of the object's defined symbol of `kind` whose name contains `part` (the mangled
/// names have hashes).
fn find(bytes: &[u8], part: &str, kind: object::SymbolKind) -> String {
    let file = object::File::parse(bytes).unwrap();
    file.symbols()
        .filter(|s| s.kind() == kind && !s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .find(|n| n.contains(part))
        .unwrap_or_else(|| panic!("no {kind:?} symbol with {part}"))
}

/// A program that has `game::COUNT` at 0x5000 and `game::TL` at offset 0x10 of a TLS block
/// 0x40 below the thread pointer.
fn program(bytes: &[u8], with_tl: bool) -> Program {
    let mut tls = HashMap::new();
    if with_tl {
        tls.insert(find(bytes, "2TL", object::SymbolKind::Tls), Some((0x10, 8)));
    }
    let mut data = HashMap::new();
    data.insert(
        find(bytes, "5COUNT", object::SymbolKind::Data),
        Some((0x5000, 8)),
    );
    Program {
        library: false,
        block_offset: 0x40,
        tls,
        paths: data.keys().filter_map(|n| path_of(n)).collect(),
        data,
        init: HashMap::new(),
    }
}

#[test]
fn a_librarys_thread_local_and_static_become_the_programs() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = compile(dir.path(), LIB);
    let program = program(&bytes, true);
    let mut shared = Shared::default();
    let rewritten = rewrite_object(
        &bytes,
        &program,
        Placement::Fixed { load_bias: 0x1000 },
        false,
        &mut shared,
    )
    .unwrap()
    .expect("something was rewritten");
    assert_eq!(shared.names.len(), 2, "{:?}", shared.names);
    assert_eq!(shared.symbols, [("__hs_d0".to_owned(), 0x6000)]);
    assert_eq!(shared.script(), "HIDDEN(__hs_d0 = 0x6000);\n");

    let object = Object::parse(&rewritten).unwrap();
    let endian = object.endian;
    let mut local_dynamic = 0;
    let mut displacements = 0;
    let mut to_count = 0;
    for relocations in object.relocations() {
        let section = object.section(relocations.target).unwrap();
        let code = section.data(endian, object.bytes).unwrap();
        for rela in relocations.entries {
            let offset = rela.r_offset(endian) as usize;
            let kind = rela.r_type(endian, false);
            // No relocation asks for the module's block any more.
            assert_ne!(kind, object::elf::R_X86_64_TLSLD);
            assert_ne!(kind, object::elf::R_X86_64_DTPOFF32);
            if kind == object::elf::R_X86_64_NONE
                && code.get(offset - 3..offset + 9) == Some(&tls::MOV_FS0_RAX_FOR_TESTS[..])
            {
                local_dynamic += 1;
            }
            let symbol = object.symbol(rela.r_sym(endian, false));
            if symbol.is_some_and(|s| object.symbol_name(s) == "__hs_d0") {
                assert_eq!(kind, object::elf::R_X86_64_PC32);
                to_count += 1;
            }
        }
        // The program's displacement of TL (0x10 - 0x40) is written somewhere in the code.
        displacements += code
            .windows(4)
            .filter(|w| *w == (-0x30i32).to_le_bytes())
            .count();
    }
    assert!(local_dynamic >= 1, "no relaxed __tls_get_addr sequence");
    assert!(displacements >= 1, "TL's displacement was not written");
    assert!(to_count >= 1, "no reference to COUNT points at __hs_d0");

    // What the linker makes of it: a shared object at the fixed address, with COUNT's address
    // computed from the script.
    let rewritten_path = dir.path().join("rewritten.o");
    std::fs::write(&rewritten_path, &rewritten).unwrap();
    let script = dir.path().join("syms.ld");
    std::fs::write(&script, shared.script()).unwrap();
    let so = dir.path().join("patch.so");
    let output = std::process::Command::new("cc")
        .args([
            "-shared",
            "-Wl,-Bsymbolic-functions",
            "-Wl,-Ttext-segment=0x4000000",
        ])
        .arg("-o")
        .arg(&so)
        .arg(&rewritten_path)
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let linked = std::fs::read(&so).unwrap();
    let file = object::File::parse(&*linked).unwrap();
    // No dynamic relocation asks the loader for a TLS module or offset: the code uses the
    // program's block directly.
    let tls_requests: Vec<_> = file
        .dynamic_relocations()
        .into_iter()
        .flatten()
        .filter(|(_, r)| {
            matches!(
                r.flags(),
                object::RelocationFlags::Elf { r_type }
                    if [
                        object::elf::R_X86_64_DTPMOD64,
                        object::elf::R_X86_64_DTPOFF64,
                        object::elf::R_X86_64_TPOFF64
                    ]
                    .contains(&r_type)
            )
        })
        .collect();
    assert!(tls_requests.is_empty(), "{tls_requests:?}");
    assert!(file.sections().any(|s| s.address() >= 0x4000000));
}

/// In a library a host loaded, thread-locals live in a block the loader allocates at run time:
/// the rewriter must leave them alone (no offset from the thread pointer would be right), and
/// still share the library's statics.
#[test]
fn a_librarys_thread_locals_are_left_alone_in_a_library_host() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = compile(dir.path(), LIB);
    let mut program = program(&bytes, false);
    program.library = true;
    let mut shared = Shared::default();
    let rewritten = rewrite_object(
        &bytes,
        &program,
        Placement::Fixed { load_bias: 0x1000 },
        false,
        &mut shared,
    )
    .expect("a thread-local the library lacks is not a refusal here")
    .expect("the static is still shared");
    assert_eq!(shared.symbols, [("__hs_d0".to_owned(), 0x6000)]);
    let object = Object::parse(&rewritten).unwrap();
    let endian = object.endian;
    let module_block = object.relocations().any(|relocations| {
        relocations
            .entries
            .iter()
            .any(|rela| rela.r_type(endian, false) == object::elf::R_X86_64_TLSLD)
    });
    assert!(module_block, "the local-dynamic sequence was rewritten");
}

#[test]
fn a_thread_local_the_program_lacks_or_resized_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = compile(dir.path(), LIB);
    let mut shared = Shared::default();
    let missing = program(&bytes, false);
    let refusal = rewrite_object(&bytes, &missing, Placement::Anywhere, false, &mut shared)
        .err()
        .unwrap();
    assert_eq!(refusal, Refusal::New("thread-local `game::TL`".into()));
    assert!(refusal
        .describe("game")
        .contains("adds thread-local `game::TL` to `game`"));

    let mut resized = program(&bytes, true);
    let count = find(&bytes, "5COUNT", object::SymbolKind::Data);
    resized.data.insert(count, Some((0x5000, 4)));
    let refusal = rewrite_object(
        &bytes,
        &resized,
        Placement::Fixed { load_bias: 0 },
        false,
        &mut shared,
    )
    .err()
    .unwrap();
    assert_eq!(
        refusal,
        Refusal::Resized {
            name: "static `game::COUNT`".into(),
            old: 4,
            new: 8
        }
    );
    // Without a fixed address statics are left alone (they start afresh), so only the
    // thread-local counts.
    let mut shared = Shared::default();
    rewrite_object(&bytes, &resized, Placement::Anywhere, false, &mut shared).unwrap();
    assert_eq!(shared.names.len(), 1);
    assert!(shared.symbols.is_empty());
}

#[test]
fn an_edited_initialiser_of_a_shared_static_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = compile(dir.path(), LIB);
    let count = find(&bytes, "5COUNT", object::SymbolKind::Data);
    let placement = Placement::Fixed { load_bias: 0 };
    // The program's COUNT started at 0 too (`.bss`): nothing to say.
    let mut same = program(&bytes, true);
    same.init.insert(count.clone(), None);
    let mut shared = Shared::default();
    rewrite_object(&bytes, &same, placement, false, &mut shared).unwrap();
    assert!(shared.changed_initialisers.is_empty());
    // It started at 5: the patch's `AtomicU64::new(0)` is another initialiser.
    let mut other = program(&bytes, true);
    other.init.insert(count, Some(5u64.to_le_bytes().to_vec()));
    let mut shared = Shared::default();
    rewrite_object(&bytes, &other, placement, false, &mut shared).unwrap();
    assert_eq!(shared.changed_initialisers, ["static `game::COUNT`"]);
}
