//! Private statics: point the patch's references at the program's statics.
//!
//! rustc puts each static in a section of its own (`.data.<name>`, `.bss.<name>`) and reaches a
//! private one with a 32-bit PC-relative relocation (`R_X86_64_PC32`) against that section's
//! symbol, or, from another codegen unit, against the static's own hidden symbol; data that
//! holds its address (a `&'static` in a constant) uses a 64-bit absolute one. Each such
//! relocation whose target is a writable static the program has (same linkage name, same size)
//! is pointed at a new undefined hidden symbol `__hs_dN` with the addend adjusted to keep the
//! same arithmetic (`section + A` = `static - offset_in_section + A`). The link defines
//! `__hs_dN` as the static's run-time address in the program (a linker script line), and since
//! the patch is linked at the address it will be loaded at (the program checks), the linker can
//! compute each displacement; `-shared` output accepts PC-relative references to such a hidden
//! absolute symbol, and a 64-bit one becomes a constant.
//!
//! Left alone: the generated items of `#[hot]` (`__hotswap_*`: slots and manifest entries are
//! the patch's own by design), read-only data, and statics the program does not have (new in
//! the patch: they live in it, at a fixed address the next patch is given).

use object::elf as E;
use object::read::elf::{Rela, SectionHeader, Sym};

use super::elf::{Edits, Object};
use super::{shown, Program, Refusal, Shared};

pub fn statics(
    object: &Object,
    program: &Program,
    load_bias: u64,
    edits: &mut Edits,
    shared: &mut Shared,
) -> Result<(), Refusal> {
    let endian = object.endian;
    for relocations in object.relocations() {
        for (index, rela) in relocations.entries.iter().enumerate() {
            let kind = rela.r_type(endian, false);
            if kind != E::R_X86_64_PC32 && kind != E::R_X86_64_64 {
                continue;
            }
            let sym = rela.r_sym(endian, false);
            let Some(symbol) = object.symbol(sym) else {
                continue;
            };
            let addend = rela.r_addend(endian);
            let Some((name, offset_in_section, size)) = referenced_static(object, symbol) else {
                continue;
            };
            if is_generated(&name) {
                continue;
            }
            let Some((address, program_size)) = program.static_(&name) else {
                // Not the program's under this name; under its path, it is, with another type.
                if size.is_some()
                    && super::path_of(&name).is_some_and(|p| program.paths.contains(&p))
                {
                    return Err(Refusal::Retyped(shown(&name, false)));
                }
                continue;
            };
            if let Some(size) = size {
                if size != program_size {
                    return Err(Refusal::Resized {
                        name: shown(&name, false),
                        old: program_size,
                        new: size,
                    });
                }
            }
            if let Some(init) = program.init.get(&name) {
                let shown = shown(&name, false);
                if !shared.changed_initialisers.contains(&shown)
                    && initialiser_changed(object, symbol, offset_in_section, init.as_deref())
                {
                    shared.changed_initialisers.push(shown);
                }
            }
            let target = shared.symbol_for(&name, address.wrapping_add(load_bias));
            edits.retarget(
                object.entry_offset(relocations.index, index),
                kind.0,
                &target,
                addend - offset_in_section as i64,
            );
        }
    }
    Ok(())
}

/// The static a relocation's symbol stands for: its linkage name, where it starts in the
/// symbol's section (0 for a named symbol), and its size when this object defines it.
fn referenced_static(
    object: &Object,
    symbol: &object::elf::Sym64<object::Endianness>,
) -> Option<(String, u64, Option<u64>)> {
    let endian = object.endian;
    let shndx = symbol.st_shndx(endian);
    match symbol.st_type() {
        // Another codegen unit's static (hidden, so reached directly, not through the GOT).
        E::STT_OBJECT | E::STT_NOTYPE if shndx == E::SHN_UNDEF => {
            let name = object.symbol_name(symbol);
            (!name.is_empty()).then_some((name, 0, None))
        }
        E::STT_OBJECT if writable(object, shndx.0 as usize) => {
            Some((object.symbol_name(symbol), 0, Some(symbol.st_size(endian))))
        }
        // `.data.<name>`: the one static the section holds.
        E::STT_SECTION if writable(object, shndx.0 as usize) => {
            let mut held = object
                .symbols_in(shndx.0 as usize, E::STT_OBJECT)
                .into_iter();
            let only = held.next()?;
            if held.next().is_some() {
                return None;
            }
            Some((
                object.symbol_name(only),
                only.st_value(endian),
                Some(only.st_size(endian)),
            ))
        }
        _ => None,
    }
}

/// Whether the static the relocation's `symbol` stands for (defined here, `start` bytes into
/// its section) has another initial value than the program's `old` (`None`: zeros). Bytes
/// that relocations fill in (addresses) are not compared: the program's hold resolved
/// addresses, the object's zeros. A static of another codegen unit is compared where it is
/// defined.
fn initialiser_changed(
    object: &Object,
    symbol: &object::elf::Sym64<object::Endianness>,
    start: u64,
    old: Option<&[u8]>,
) -> bool {
    let endian = object.endian;
    let shndx = symbol.st_shndx(endian).0 as usize;
    let Some(section) = object.section(shndx) else {
        return false;
    };
    if symbol.st_shndx(endian) == E::SHN_UNDEF {
        return false;
    }
    let size = match symbol.st_type() {
        E::STT_SECTION => section.sh_size(endian) - start,
        _ => symbol.st_size(endian),
    } as usize;
    let new: Vec<u8> = if section.sh_type(endian) == E::SHT_NOBITS {
        vec![0; size]
    } else {
        match section.data(endian, object.bytes) {
            Ok(data) => data
                .get(start as usize..start as usize + size)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            Err(_) => return false,
        }
    };
    let old: Vec<u8> = old.map_or_else(|| vec![0; size], <[u8]>::to_vec);
    if old.len() != new.len() {
        return false;
    }
    let mut relocated = vec![false; size];
    for relocations in object.relocations().filter(|r| r.target == shndx) {
        for rela in relocations.entries {
            let at = rela.r_offset(endian).wrapping_sub(start) as usize;
            for flag in relocated.iter_mut().skip(at).take(8) {
                *flag = true;
            }
        }
    }
    old.iter()
        .zip(&new)
        .zip(&relocated)
        .any(|((a, b), skip)| !skip && a != b)
}

/// Whether `mangled` names an item `#[hot]` generated (a slot, a manifest entry, its
/// registration): the patch's own by design. A static the user wrote inside a hot function
/// (`game::__hotswap_impl_step::SEEN`) is not one.
fn is_generated(mangled: &str) -> bool {
    let Ok(demangled) = rustc_demangle::try_demangle(mangled) else {
        return mangled.contains("__hotswap_") || mangled.contains("__HOTSWAP_");
    };
    let demangled = format!("{demangled:#}");
    let last = demangled.rsplit("::").next().unwrap_or(&demangled);
    last.starts_with("__hotswap_") || last.starts_with("__HOTSWAP_")
}

/// Whether section `index` holds writable, loaded, non-TLS data.
fn writable(object: &Object, index: usize) -> bool {
    let Some(section) = object.section(index) else {
        return false;
    };
    let flags = section.sh_flags(object.endian);
    let want = E::SHF_ALLOC.0 | E::SHF_WRITE.0;
    flags.0 & want == want && flags.0 & E::SHF_TLS.0 == 0
}
