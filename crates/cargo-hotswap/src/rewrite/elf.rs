//! A typed view over one relocatable ELF64 (x86-64) object, and the edits the rewriter makes to
//! it, applied in one pass.
//!
//! `object`'s ELF writer rejects rustc's objects (section groups), so the object is edited in
//! place: bytes of a section, relocation entries (type, symbol, addend), and new symbols. New
//! symbols go after all existing ones: every existing symbol index (used by relocations, by
//! section groups' signatures, by `.llvm_addrsig`) stays valid, and since they are global, the
//! rule that local symbols come first (`sh_info` of `.symtab`) still holds. The grown `.symtab`
//! and its string table are written at the end of the file and their section headers point
//! there; the old bytes stay, unreferenced. Everything else keeps its offset.

use object::elf as E;
use object::read::elf::{FileHeader, SectionHeader, SectionTable, Sym, SymbolTable};
use object::Endianness;

type Header = E::FileHeader64<Endianness>;
pub type Rela = E::Rela64<Endianness>;
pub type Symbol = E::Sym64<Endianness>;

const RELA_SIZE: usize = std::mem::size_of::<Rela>();
const SYM_SIZE: usize = std::mem::size_of::<Symbol>();

pub struct Object<'a> {
    pub bytes: &'a [u8],
    pub endian: Endianness,
    header: &'a Header,
    pub sections: SectionTable<'a, Header>,
    pub symbols: SymbolTable<'a, Header>,
}

/// One relocation section: its index, what it applies to, and its entries.
pub struct Relocations<'a> {
    /// The index of the `SHT_RELA` section.
    pub index: usize,
    /// The index of the section the relocations apply to.
    pub target: usize,
    pub entries: &'a [Rela],
}

impl<'a> Object<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Object<'a>, String> {
        let bad = |err: object::Error| format!("cannot read an object file: {err}");
        let header = Header::parse(bytes).map_err(bad)?;
        let endian = header.endian().map_err(bad)?;
        if header.e_machine(endian) != E::EM_X86_64
            || !header.is_little_endian()
            || header.e_type(endian) != E::ET_REL
        {
            return Err("not an x86-64 relocatable object".into());
        }
        let sections = header.sections(endian, bytes).map_err(bad)?;
        let symbols = sections
            .symbols(endian, bytes, E::SHT_SYMTAB)
            .map_err(bad)?;
        Ok(Object {
            bytes,
            endian,
            header,
            sections,
            symbols,
        })
    }

    /// Every `SHT_RELA` section applying to a loaded (`SHF_ALLOC`) section: debug information
    /// is never edited.
    pub fn relocations(&self) -> impl Iterator<Item = Relocations<'a>> + '_ {
        let endian = self.endian;
        self.sections
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.sh_type(endian) == E::SHT_RELA)
            .filter_map(move |(index, section)| {
                let target = section.sh_info(endian) as usize;
                let flags = self
                    .sections
                    .section(object::SectionIndex(target))
                    .ok()?
                    .sh_flags(endian);
                if flags.0 & E::SHF_ALLOC.0 == 0 {
                    return None;
                }
                let entries = section.data_as_array::<Rela, _>(endian, self.bytes).ok()?;
                Some(Relocations {
                    index,
                    target,
                    entries,
                })
            })
    }

    pub fn symbol(&self, index: u32) -> Option<&'a Symbol> {
        self.symbols
            .symbol(object::SymbolIndex(index as usize))
            .ok()
    }

    pub fn symbol_name(&self, symbol: &Symbol) -> String {
        self.symbols
            .symbol_name(self.endian, symbol)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }

    /// The section header of section `index`.
    pub fn section(&self, index: usize) -> Option<&'a E::SectionHeader64<Endianness>> {
        self.sections.section(object::SectionIndex(index)).ok()
    }

    pub fn section_name(&self, index: usize) -> String {
        self.section(index)
            .and_then(|s| self.sections.section_name(self.endian, s).ok())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }

    /// The file offset of byte `offset` of section `index` (a relocatable object's sections
    /// have address 0: a relocation's `r_offset` is an offset into its section).
    pub fn file_offset(&self, index: usize, offset: u64) -> Option<usize> {
        let section = self.section(index)?;
        if section.sh_type(self.endian) == E::SHT_NOBITS || offset >= section.sh_size(self.endian) {
            return None;
        }
        Some((section.sh_offset(self.endian) + offset) as usize)
    }

    /// The file offset of relocation entry `entry` of relocation section `index`.
    pub fn entry_offset(&self, index: usize, entry: usize) -> usize {
        let section = self
            .section(index)
            .expect("a relocation section we iterated");
        section.sh_offset(self.endian) as usize + entry * RELA_SIZE
    }

    /// The symbols defined in section `index` with type `kind` (`STT_OBJECT`, `STT_TLS`).
    pub fn symbols_in(&self, index: usize, kind: E::SymbolType) -> Vec<&'a Symbol> {
        self.symbols
            .iter()
            .filter(|s| s.st_type() == kind && s.st_shndx(self.endian).0 as usize == index)
            .collect()
    }

    /// The object with `edits` applied.
    pub fn apply(&self, edits: Edits) -> Result<Vec<u8>, String> {
        let endian = self.endian;
        let mut out = self.bytes.to_vec();
        for (offset, bytes) in &edits.writes {
            out.get_mut(*offset..*offset + bytes.len())
                .ok_or("an edit outside the file")?
                .copy_from_slice(bytes);
        }
        let first_new = self.symbols.len() as u64;
        for relocation in &edits.relocations {
            let symbol = match relocation.symbol {
                Target::Keep(index) => u64::from(index),
                Target::New(position) => first_new + position as u64,
            };
            // `r_info` is `symbol << 32 | type`; the addend follows it (RELA).
            let info = (symbol << 32) | u64::from(relocation.kind);
            out[relocation.entry + 8..relocation.entry + 16].copy_from_slice(&info.to_le_bytes());
            out[relocation.entry + 16..relocation.entry + 24]
                .copy_from_slice(&relocation.addend.to_le_bytes());
        }
        if edits.new_symbols.is_empty() {
            return Ok(out);
        }
        // The grown string table and symbol table, at the end of the file.
        let symtab_index = self.symbols.section().0;
        let strtab_index = self.symbols.string_section().0;
        let symtab = self.section(symtab_index).ok_or("no .symtab")?;
        let strtab = self.section(strtab_index).ok_or("no string table")?;
        let mut strings = strtab
            .data(endian, self.bytes)
            .map_err(|_| "cannot read the string table")?
            .to_vec();
        let mut table = symtab
            .data(endian, self.bytes)
            .map_err(|_| "cannot read .symtab")?
            .to_vec();
        for name in &edits.new_symbols {
            let st_name = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            let mut entry = [0u8; SYM_SIZE];
            entry[0..4].copy_from_slice(&st_name.to_le_bytes());
            entry[4] = (E::STB_GLOBAL.0 << 4) | E::STT_NOTYPE.0;
            entry[5] = E::STV_HIDDEN.0;
            // st_shndx = SHN_UNDEF (0), st_value = st_size = 0.
            table.extend_from_slice(&entry);
        }
        let place = |out: &mut Vec<u8>, data: &[u8]| -> u64 {
            while out.len() % 8 != 0 {
                out.push(0);
            }
            let at = out.len() as u64;
            out.extend_from_slice(data);
            at
        };
        let strings_at = place(&mut out, &strings);
        let table_at = place(&mut out, &table);
        let shoff = self.header.e_shoff(endian) as usize;
        let shentsize = self.header.e_shentsize(endian) as usize;
        // `sh_offset` is at byte 24 of a section header, `sh_size` at 32.
        for (index, at, size) in [
            (strtab_index, strings_at, strings.len()),
            (symtab_index, table_at, table.len()),
        ] {
            let header = shoff + index * shentsize;
            out[header + 24..header + 32].copy_from_slice(&at.to_le_bytes());
            out[header + 32..header + 40].copy_from_slice(&(size as u64).to_le_bytes());
        }
        Ok(out)
    }
}

/// The edits planned for one object.
#[derive(Default)]
pub struct Edits {
    writes: Vec<(usize, Vec<u8>)>,
    relocations: Vec<Relocation>,
    new_symbols: Vec<String>,
}

struct Relocation {
    /// File offset of the entry.
    entry: usize,
    symbol: Target,
    kind: u32,
    addend: i64,
}

enum Target {
    Keep(u32),
    /// An index into `new_symbols`.
    New(usize),
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.relocations.is_empty()
    }

    /// Writes `bytes` at file offset `offset`.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.writes.push((offset, bytes.to_vec()));
    }

    /// Makes the relocation entry at `entry` an `R_X86_64_NONE` against no symbol: the linker
    /// then leaves its field as written. (Against its old symbol, ld still tries to resolve
    /// that symbol, and refuses a dynamic one such as `__tls_get_addr`.)
    pub fn disable(&mut self, entry: usize) {
        self.relocations.push(Relocation {
            entry,
            symbol: Target::Keep(0),
            kind: E::R_X86_64_NONE.0,
            addend: 0,
        });
    }

    /// Points the relocation entry at `entry` at the new undefined hidden symbol `name` (added
    /// once per object), keeping its type, with `addend`.
    pub fn retarget(&mut self, entry: usize, kind: u32, name: &str, addend: i64) {
        let position = match self.new_symbols.iter().position(|n| n == name) {
            Some(position) => position,
            None => {
                self.new_symbols.push(name.to_owned());
                self.new_symbols.len() - 1
            }
        };
        self.relocations.push(Relocation {
            entry,
            symbol: Target::New(position),
            kind,
            addend,
        });
    }
}
