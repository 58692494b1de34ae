//! Link (CLI side): the object rewriter that makes a binary crate's objects linkable into a
//! thin patch, and makes the patch use the running program's thread-locals.
//!
//! rustc compiles a binary crate as position-independent *executable* code, so its own
//! thread-locals are reached with the local-exec model: `mov %fs:0,%rax; lea FIELD(%rax)` where
//! `FIELD` is an `R_X86_64_TPOFF32` relocation, the variable's offset from the thread pointer.
//! No linker accepts that relocation in a shared object (a library's TLS block is placed at
//! load time). But the variable the patch means is the *program's*, and the executable's TLS
//! block sits at an offset from the thread pointer fixed when the program was linked, the same
//! in every thread. So each such field can be written here, before the link, with the
//! program's own offset, and its relocation turned into `R_X86_64_NONE`: the patch's code then
//! reads and writes the program's thread-local, with its current value, in every thread.
//!
//! This is sound only if the variable is the same in both builds: same name (the linkage name
//! includes the crate's hash), same size; the layout check compares their types too (the names
//! are returned for it). A thread-local the program does not have (new in the edit), or whose
//! size changed, cannot be shared: the patch is refused and the program restarted.
//! See `shared/STATICS.md`, part B. Linux x86-64 only, like every patch.

use std::collections::HashMap;
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Rela, SectionHeader, Sym};
use object::{Object, ObjectSymbol, SymbolKind};

/// The running program's thread-locals: where its TLS block lies below the thread pointer, and
/// each thread-local symbol of its symbol table.
pub struct ProgramTls {
    /// The TLS block's offset below the thread pointer (`tp - block_offset` is its start).
    block_offset: u64,
    /// Offset within the block and size, by linkage name; `None` for a name defined twice.
    symbols: HashMap<String, Option<(u64, u64)>>,
}

impl ProgramTls {
    pub fn read(executable: &Path) -> Result<ProgramTls, String> {
        let data = crate::statics::map(executable)?;
        let header = elf::FileHeader64::<object::Endianness>::parse(&*data)
            .map_err(|err| format!("{}: {err}", executable.display()))?;
        let endian = header
            .endian()
            .map_err(|err| format!("{}: {err}", executable.display()))?;
        let segments = header
            .program_headers(endian, &*data)
            .map_err(|err| format!("{}: {err}", executable.display()))?;
        let tls = segments.iter().find(|s| s.p_type(endian) == elf::PT_TLS);
        // x86-64 places the executable's block right below the thread pointer (TLS variant II),
        // rounded so that the block's first byte keeps its alignment: glibc's
        // `_dl_determine_tlsoffset` for the first module, which is what the static linker
        // assumed when it resolved the executable's own local-exec references.
        let block_offset = tls.map_or(0, |segment| {
            let align = segment.p_align(endian).max(1);
            let size = segment.p_memsz(endian);
            let first_byte = segment.p_vaddr(endian).wrapping_neg() & (align - 1);
            (size - first_byte).div_ceil(align) * align + first_byte
        });
        let file = object::File::parse(&*data)
            .map_err(|err| format!("{}: {err}", executable.display()))?;
        let mut symbols: HashMap<String, Option<(u64, u64)>> = HashMap::new();
        for symbol in file.symbols() {
            if symbol.kind() != SymbolKind::Tls || symbol.is_undefined() {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            symbols
                .entry(name.to_owned())
                .and_modify(|seen| *seen = None)
                .or_insert(Some((symbol.address(), symbol.size())));
        }
        Ok(ProgramTls {
            block_offset,
            symbols,
        })
    }
}

/// Why an object cannot use the program's thread-locals.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The patch declares a thread-local the program does not have (readable name).
    New(String),
    /// Same name, another size.
    Resized { name: String, old: u64, new: u64 },
    /// Anything else (a malformed object, a name defined twice in the program).
    Other(String),
}

impl Refusal {
    pub fn describe(&self, crate_name: &str) -> String {
        match self {
            Refusal::New(name) => format!(
                "the edit adds {name} to the binary crate `{crate_name}`; a patch can only use \
                 the thread-locals the program was built with"
            ),
            Refusal::Resized { name, old, new } => {
                format!("{name} changed from {old} to {new} bytes")
            }
            Refusal::Other(text) => text.clone(),
        }
    }
}

/// Rewrites every local-exec reference (`R_X86_64_TPOFF32`) of the object in `bytes` to the
/// program's thread-local of the same name; returns the linkage names it now shares.
pub fn share_thread_locals(bytes: &mut [u8], program: &ProgramTls) -> Result<Vec<String>, Refusal> {
    let plan = plan(bytes, program)?;
    for edit in &plan.edits {
        // The field: a signed 32-bit displacement from the thread pointer, little-endian.
        bytes[edit.field..edit.field + 4].copy_from_slice(&edit.value.to_le_bytes());
        // The relocation entry's `r_info` (8 bytes after `r_offset`): the same symbol, type
        // `R_X86_64_NONE`, so the linker leaves the written field as it is.
        bytes[edit.info..edit.info + 8].copy_from_slice(&edit.new_info.to_le_bytes());
    }
    Ok(plan.shared)
}

struct Plan {
    edits: Vec<Edit>,
    shared: Vec<String>,
}

/// File offsets and the bytes to write there.
struct Edit {
    field: usize,
    value: i32,
    info: usize,
    new_info: u64,
}

fn plan(bytes: &[u8], program: &ProgramTls) -> Result<Plan, Refusal> {
    let bad = |err: object::Error| Refusal::Other(format!("cannot read an object file: {err}"));
    let header = elf::FileHeader64::<object::Endianness>::parse(bytes).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    if header.e_machine(endian) != elf::EM_X86_64 || !header.is_little_endian() {
        return Err(Refusal::Other("not an x86-64 object".into()));
    }
    let sections = header.sections(endian, bytes).map_err(bad)?;
    let symbols = sections
        .symbols(endian, bytes, elf::SHT_SYMTAB)
        .map_err(bad)?;
    let mut plan = Plan {
        edits: Vec::new(),
        shared: Vec::new(),
    };
    for section in sections.iter() {
        if section.sh_type(endian) != elf::SHT_RELA {
            continue;
        }
        let Some(relas) = section
            .data_as_array::<elf::Rela64<object::Endianness>, _>(endian, bytes)
            .ok()
        else {
            continue;
        };
        let target = sections
            .section(object::SectionIndex(section.sh_info(endian) as usize))
            .map_err(bad)?;
        for (index, rela) in relas.iter().enumerate() {
            if rela.r_type(endian, false) != elf::R_X86_64_TPOFF32 {
                continue;
            }
            let sym_index = rela.r_sym(endian, false);
            let symbol = symbols
                .symbol(object::SymbolIndex(sym_index as usize))
                .map_err(bad)?;
            let addend = rela.r_addend(endian) as u64;
            let shndx = symbol.st_shndx(endian);
            // The variable and the offset into it. A variable of another codegen unit is an
            // undefined symbol here: the addend is the offset into it. Relative to a section
            // symbol (`.tbss.x`), the addend is the offset into the section; to a named one,
            // into the variable.
            let (holder, into) = if shndx == elf::SHN_UNDEF {
                (symbol, addend)
            } else {
                let in_section = if symbol.st_type() == elf::STT_SECTION {
                    addend
                } else {
                    symbol.st_value(endian).wrapping_add(addend)
                };
                let holder = symbols
                    .iter()
                    .filter(|s| s.st_type() == elf::STT_TLS && s.st_shndx(endian) == shndx)
                    .find(|s| {
                        let start = s.st_value(endian);
                        in_section >= start && in_section < start + s.st_size(endian).max(1)
                    })
                    .ok_or_else(|| {
                        Refusal::Other("a thread-local reference to no thread-local".into())
                    })?;
                (holder, in_section - holder.st_value(endian))
            };
            let name = symbols
                .symbol_name(endian, holder)
                .map_err(bad)
                .map(|n| String::from_utf8_lossy(n).into_owned())?;
            let (value, _) = program_symbol(program, &name)?;
            let offset = value.wrapping_add(into).wrapping_sub(program.block_offset) as i64;
            let value = i32::try_from(offset)
                .map_err(|_| Refusal::Other(format!("{} is out of reach", shown(&name))))?;
            let field = target.sh_offset(endian) as usize + rela.r_offset(endian) as usize;
            let entry = section.sh_offset(endian) as usize
                + index * std::mem::size_of::<elf::Rela64<object::Endianness>>();
            if field + 4 > bytes.len() {
                return Err(Refusal::Other("a relocation outside its section".into()));
            }
            plan.edits.push(Edit {
                field,
                value,
                // `r_info` follows the 8-byte `r_offset`.
                info: entry + 8,
                // R_X86_64_NONE is 0.
                new_info: u64::from(sym_index) << 32,
            });
            if !plan.shared.contains(&name) {
                plan.shared.push(name);
            }
        }
    }
    // Every thread-local this object defines that the program also has must be the same size
    // (the references above may be in another object than the definition).
    for symbol in symbols.iter() {
        if symbol.st_type() != elf::STT_TLS || symbol.st_shndx(endian) == elf::SHN_UNDEF {
            continue;
        }
        let name = symbols
            .symbol_name(endian, symbol)
            .map_err(bad)
            .map(|n| String::from_utf8_lossy(n).into_owned())?;
        if let Some(Some((_, old))) = program.symbols.get(&name) {
            let new = symbol.st_size(endian);
            if *old != new {
                return Err(Refusal::Resized {
                    name: shown(&name),
                    old: *old,
                    new,
                });
            }
        }
    }
    Ok(plan)
}

/// A thread-local as messages name it.
fn shown(name: &str) -> String {
    crate::statics::describe(name, true).unwrap_or_else(|| format!("`{name}`"))
}

/// The program's thread-local `name`: offset in its block, size.
fn program_symbol(program: &ProgramTls, name: &str) -> Result<(u64, u64), Refusal> {
    match program.symbols.get(name) {
        Some(Some(found)) => Ok(*found),
        Some(None) => Err(Refusal::Other(format!(
            "the program defines {} twice",
            shown(name)
        ))),
        None => Err(Refusal::New(shown(name))),
    }
}
