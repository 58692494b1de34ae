//! Thread-locals: point the patch's references at the program's thread-locals.
//!
//! The executable's TLS block lies `block_offset` bytes below the thread pointer (`%fs:0`) in
//! every thread, started before or after the patch: a variable at offset `v` in that block is
//! at `tp - block_offset + v`, a displacement the rewriter can write into the code.
//!
//! - A binary crate (`local_exec`) is compiled as an executable: `mov %fs:0,%rax; lea
//!   FIELD(%rax)` with `FIELD` an `R_X86_64_TPOFF32`. The field gets the program's displacement
//!   and the relocation becomes `R_X86_64_NONE`.
//! - A library (`local_dynamic`) asks `__tls_get_addr` for its module's block: `lea
//!   x@tlsld(%rip),%rdi; call __tls_get_addr@PLT` (12 bytes), then `R_X86_64_DTPOFF32` offsets
//!   into the block. The 12 bytes become `mov %fs:0,%rax` (with the three `data16` prefixes
//!   that make it 12 bytes too: the static linker's own local-dynamic → local-exec relaxation),
//!   both relocations `R_X86_64_NONE`, and every `DTPOFF32` of that section the program's
//!   displacement. This is valid inside a shared object because the variables are the
//!   executable's, whose block offset is fixed; it needs every thread-local the section refers
//!   to to be the program's, or the section would mix two blocks: a new one is a [`Refusal`].

use object::elf as E;
use object::read::elf::{Rela, SectionHeader, Sym};

use super::elf::{Edits, Object, Relocations};
use super::{shown, Program, Refusal, Shared};

/// `lea x@tlsld(%rip),%rdi` (the `R_X86_64_TLSLD` field is its last 4 bytes).
const LEA_TLSLD: [u8; 3] = [0x48, 0x8d, 0x3d];
/// `call rel32` (the `__tls_get_addr` call; its field is an `R_X86_64_PLT32` or `PC32`).
const CALL: u8 = 0xe8;
/// `data16 data16 data16 mov %fs:0,%rax`: as long as the two instructions it replaces.
const MOV_FS0_RAX: [u8; 12] = [
    0x66, 0x66, 0x66, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00,
];

/// The thread-local symbol a relocation refers to, and the offset into it.
fn target(
    object: &Object,
    symbol: &object::elf::Sym64<object::Endianness>,
    addend: i64,
) -> Result<(String, u64), Refusal> {
    let endian = object.endian;
    let shndx = symbol.st_shndx(endian);
    // A variable of another codegen unit is an undefined symbol here: the addend is the
    // offset into it. Relative to a section symbol (`.tbss.x`), the addend is the offset into
    // the section; to a named one, into the variable.
    if shndx == E::SHN_UNDEF {
        return Ok((object.symbol_name(symbol), addend as u64));
    }
    let in_section = if symbol.st_type() == E::STT_SECTION {
        addend as u64
    } else {
        symbol.st_value(endian).wrapping_add(addend as u64)
    };
    let holder = object
        .symbols_in(shndx.0 as usize, E::STT_TLS)
        .into_iter()
        .find(|s| {
            let start = s.st_value(endian);
            in_section >= start && in_section < start + s.st_size(endian).max(1)
        })
        .ok_or_else(|| Refusal::Other("a thread-local reference to no thread-local".into()))?;
    Ok((
        object.symbol_name(holder),
        in_section - holder.st_value(endian),
    ))
}

/// The program's displacement from the thread pointer of byte `into` of thread-local `name`.
fn displacement(program: &Program, name: &str, into: u64) -> Result<[u8; 4], Refusal> {
    let (value, _) = program.thread_local(name)?;
    let offset = value.wrapping_add(into).wrapping_sub(program.block_offset) as i64;
    i32::try_from(offset)
        .map(i32::to_le_bytes)
        .map_err(|_| Refusal::Other(format!("{} is out of reach", shown(name, true))))
}

/// Writes into the field of relocation `index` of `relocations` (a `TPOFF32` or `DTPOFF32`
/// against one of the program's thread-locals) the program's displacement of that variable from
/// the thread pointer, and disables the relocation.
fn write_displacement(
    object: &Object,
    program: &Program,
    relocations: &Relocations,
    index: usize,
    edits: &mut Edits,
    shared: &mut Shared,
) -> Result<(), Refusal> {
    let endian = object.endian;
    let rela = &relocations.entries[index];
    let symbol = object
        .symbol(rela.r_sym(endian, false))
        .ok_or_else(|| Refusal::Other("a relocation to no symbol".into()))?;
    let (name, into) = target(object, symbol, rela.r_addend(endian))?;
    let value = displacement(program, &name, into)?;
    let field = object
        .file_offset(relocations.target, rela.r_offset(endian))
        .ok_or_else(|| Refusal::Other("a relocation outside its section".into()))?;
    edits.write(field, &value);
    edits.disable(object.entry_offset(relocations.index, index));
    shared.note(&name);
    Ok(())
}

/// A binary crate's `R_X86_64_TPOFF32` fields.
pub fn local_exec(
    object: &Object,
    program: &Program,
    edits: &mut Edits,
    shared: &mut Shared,
) -> Result<(), Refusal> {
    let endian = object.endian;
    for relocations in object.relocations() {
        for (index, rela) in relocations.entries.iter().enumerate() {
            if rela.r_type(endian, false) != E::R_X86_64_TPOFF32 {
                continue;
            }
            write_displacement(object, program, &relocations, index, edits, shared)?;
        }
    }
    Ok(())
}

/// A library's local-dynamic sequences and their `R_X86_64_DTPOFF32` fields.
pub fn local_dynamic(
    object: &Object,
    program: &Program,
    edits: &mut Edits,
    shared: &mut Shared,
) -> Result<(), Refusal> {
    let endian = object.endian;
    for relocations in object.relocations() {
        let entries = relocations.entries;
        if !entries
            .iter()
            .any(|r| r.r_type(endian, false) == E::R_X86_64_TLSLD)
        {
            continue;
        }
        let section = object
            .section(relocations.target)
            .ok_or_else(|| Refusal::Other("a relocation section without its section".into()))?;
        let code = section
            .data(endian, object.bytes)
            .map_err(|_| Refusal::Other("cannot read a code section".into()))?;
        let bad = |what: &str| {
            Refusal::Other(format!(
                "unexpected thread-local code in `{}`: {what}",
                object.section_name(relocations.target)
            ))
        };
        for (index, rela) in entries.iter().enumerate() {
            let offset = rela.r_offset(endian) as usize;
            match rela.r_type(endian, false) {
                E::R_X86_64_TLSLD => {
                    // The field is bytes 3..7 of the `lea`; the call follows it.
                    let start = offset.checked_sub(3).ok_or_else(|| bad("a short lea"))?;
                    let sequence = code
                        .get(start..start + 12)
                        .ok_or_else(|| bad("cut short"))?;
                    if sequence[..3] != LEA_TLSLD || sequence[7] != CALL {
                        return Err(bad("not `lea …@tlsld(%rip),%rdi; call __tls_get_addr`"));
                    }
                    // The call's relocation: the entry for the field at `offset + 5`.
                    let call = entries
                        .iter()
                        .position(|r| r.r_offset(endian) as usize == offset + 5)
                        .ok_or_else(|| bad("a call without its relocation"))?;
                    let callee = object
                        .symbol(entries[call].r_sym(endian, false))
                        .map(|s| object.symbol_name(s))
                        .unwrap_or_default();
                    if callee != "__tls_get_addr" {
                        return Err(bad("the call is not to `__tls_get_addr`"));
                    }
                    let at = object
                        .file_offset(relocations.target, start as u64)
                        .ok_or_else(|| bad("outside its section"))?;
                    edits.write(at, &MOV_FS0_RAX);
                    edits.disable(object.entry_offset(relocations.index, index));
                    edits.disable(object.entry_offset(relocations.index, call));
                }
                E::R_X86_64_DTPOFF32 => {
                    write_displacement(object, program, &relocations, index, edits, shared)?;
                }
                E::R_X86_64_TLSGD | E::R_X86_64_GOTTPOFF | E::R_X86_64_TPOFF32 => {
                    // General-dynamic or initial-exec in a section that also uses local-dynamic:
                    // another crate's thread-local, reached through the dynamic linker; fine.
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every thread-local the object defines that the program also has must be the same size
/// (references may sit in another object than the definition).
pub fn check_sizes(object: &Object, program: &Program) -> Result<(), Refusal> {
    let endian = object.endian;
    for symbol in object.symbols.iter() {
        if symbol.st_type() != E::STT_TLS || symbol.st_shndx(endian) == E::SHN_UNDEF {
            continue;
        }
        let name = object.symbol_name(symbol);
        if let Some(Some((_, old))) = program.tls.get(&name) {
            let new = symbol.st_size(endian);
            if *old != new {
                return Err(Refusal::Resized {
                    name: shown(&name, true),
                    old: *old,
                    new,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) const MOV_FS0_RAX_FOR_TESTS: [u8; 12] = MOV_FS0_RAX;
