//! A relocatable object without its debug sections' bytes.
//!
//! A patch is linked with `-S` (`--strip-debug`): ld and lld drop every non-loaded `.debug*`
//! section of their inputs, unread, and the relocation sections that apply to them. Those
//! sections are most of a hot crate's objects (8 of the heavy bench crate's 10 MB), so the
//! copy the linker reads leaves their bytes out: the section headers all stay, with the same
//! indices (symbols, relocations, section groups and `.llvm_addrsig` refer to sections by
//! index), and a dropped section keeps its name, type and flags with a size of zero. The
//! linker then drops an empty section where it dropped a full one, and its output is the same
//! file, byte for byte (`tests.rs` links both and compares).
//!
//! Every other section keeps its bytes, copied in index order, each at an offset aligned to
//! its `sh_addralign` (at least 8, what a relocation or symbol table needs to be read in
//! place); the section header table follows them. A relocatable object has no program
//! headers, so nothing else holds a file offset.

use std::borrow::Cow;

use object::elf as E;
use object::read::elf::{FileHeader, SectionHeader};
use object::Endianness;

type Header = E::FileHeader64<Endianness>;
type Section = E::SectionHeader64<Endianness>;

/// `bytes` without the contents of its debug sections; the bytes as they are when there is
/// nothing to drop or the file is not an x86-64 relocatable ELF64 object this knows.
pub fn without_debug(bytes: &[u8]) -> Cow<'_, [u8]> {
    match stripped(bytes) {
        Some(copy) => Cow::Owned(copy),
        None => Cow::Borrowed(bytes),
    }
}

fn stripped(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = Header::parse(bytes).ok()?;
    let endian = header.endian().ok()?;
    if header.e_type(endian) != E::ET_REL
        || header.e_machine(endian) != E::EM_X86_64
        || header.e_phnum(endian) != 0
        || usize::from(header.e_shentsize(endian)) != std::mem::size_of::<Section>()
    {
        return None;
    }
    let sections = header.sections(endian, bytes).ok()?;
    let headers = sections.iter().as_slice();
    let dropped: Vec<bool> = {
        let debug: Vec<bool> = headers
            .iter()
            .map(|s| {
                s.sh_flags(endian).0 & E::SHF_ALLOC.0 == 0
                    && s.sh_type(endian) != E::SHT_NOBITS
                    && sections
                        .section_name(endian, s)
                        .is_ok_and(|name| name.starts_with(b".debug"))
            })
            .collect();
        headers
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let relocates = matches!(s.sh_type(endian), E::SHT_RELA | E::SHT_REL)
                    && s.sh_flags(endian).0 & E::SHF_ALLOC.0 == 0
                    && debug
                        .get(s.sh_info(endian) as usize)
                        .copied()
                        .unwrap_or(false);
                index != 0 && (debug[index] || relocates)
            })
            .collect()
    };
    let holds_bytes = |(s, dropped): (&Section, &bool)| *dropped && s.sh_size(endian) > 0;
    if !headers.iter().zip(&dropped).any(holds_bytes) {
        return None;
    }
    let kept: usize = headers
        .iter()
        .zip(&dropped)
        .filter(|(s, dropped)| !**dropped && s.sh_type(endian) != E::SHT_NOBITS)
        .map(|(s, _)| s.sh_size(endian) as usize + 8)
        .sum();
    let elf_header = std::mem::size_of::<Header>();
    let mut out = Vec::with_capacity(elf_header + kept + std::mem::size_of_val(headers) + 8);
    out.extend_from_slice(bytes.get(..elf_header)?);
    let mut new_headers: Vec<Section> = headers.to_vec();
    for (index, section) in headers.iter().enumerate() {
        let new = &mut new_headers[index];
        if dropped[index] {
            // Empty, at a valid offset, and no longer compressed (a compressed section starts
            // with a header it would now lack).
            new.sh_offset.set(endian, elf_header as u64);
            new.sh_size.set(endian, 0);
            let flags = section.sh_flags(endian).0 & !E::SHF_COMPRESSED.0;
            new.sh_flags.set(endian, E::SectionFlags(flags));
            continue;
        }
        if index == 0 || section.sh_type(endian) == E::SHT_NOBITS {
            continue;
        }
        let data = section.data(endian, bytes).ok()?;
        let align = section.sh_addralign(endian).clamp(8, 4096) as usize;
        out.resize(out.len().next_multiple_of(align), 0);
        new.sh_offset.set(endian, out.len() as u64);
        out.extend_from_slice(data);
    }
    out.resize(out.len().next_multiple_of(8), 0);
    let table = out.len() as u64;
    for section in &new_headers {
        out.extend_from_slice(object::bytes_of(section));
    }
    // `e_shoff` is at byte 40 of the ELF64 header.
    out[40..48].copy_from_slice(&table.to_le_bytes());
    Some(out)
}
