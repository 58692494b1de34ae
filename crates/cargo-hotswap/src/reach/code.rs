//! A typed reading of one set of relocatable objects (an rlib's `*.rcgu.o` members, or loose
//! `.o` files): every function and data symbol they define, its bytes, and what it refers to.
//!
//! A reference is resolved to what it means, not to where it happens to sit: rustc compiles with
//! one section per function and per constant, and refers to its own local functions and to
//! anonymous data (strings, constants, vtables, panic locations) through *section symbols* plus
//! an addend. Such a reference resolves to the named symbol defined at that place, or, for
//! anonymous data, to a node described by its content (bytes and references), which is how two
//! builds can be compared when anonymous data is numbered differently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::archive::ArchiveFile;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::Endianness;

/// Index of a [`Node`] in its [`Code`].
pub(crate) type NodeId = u32;
/// Index of an interned symbol name in its [`Code`].
pub(crate) type NameId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A named function (`STT_FUNC`).
    Function,
    /// A named data object: a static, a thread-local, a named constant allocation.
    Data,
    /// Anonymous data: a string, a promoted constant, a vtable, a panic location. Compared by
    /// content; its name (if it has one) means nothing across builds.
    Anon,
}

/// One thing an object defines: a symbol's extent, or a piece of anonymous data.
#[derive(Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// The symbol name (mangled), for functions and named data.
    pub name: Option<NameId>,
    pub object: u32,
    /// Index into [`Code::sections`].
    pub section: u32,
    pub start: u64,
    pub end: u64,
    /// Global or weak binding: other objects can refer to it by name.
    pub global: bool,
    /// Global with default visibility: an executable linked with `--export-dynamic` exports it.
    pub exported: bool,
    /// A thread-local (`STT_TLS`).
    pub tls: bool,
    /// Its references: a range of its section's `references`, set once all are read.
    refs: (u32, u32),
}

/// What a reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A named symbol; `local` is its definition in the same object, if there is one (else it
    /// is found by name among the globals, in this set of objects or elsewhere).
    Symbol { name: NameId, local: Option<NodeId> },
    /// Anonymous data, compared by content.
    Anon(NodeId),
}

/// One relocation, resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reference {
    /// Offset of the relocated field in its section.
    pub offset: u64,
    /// The ELF relocation type (`R_X86_64_*`).
    pub r_type: u32,
    pub target: Target,
    /// The addend relative to the start of the target, so that the same reference compares
    /// equal whether it was written against the symbol or against its section.
    pub addend: i64,
}

#[derive(Debug)]
pub(crate) struct Section {
    /// `None` for `SHT_NOBITS` (`.bss`): all zeros.
    pub data: Option<Vec<u8>>,
    pub size: u64,
    pub executable: bool,
    /// Relocations applying to this section, by offset.
    pub references: Vec<Reference>,
}

#[derive(Debug)]
pub(crate) struct ObjectFile {
    /// The crate it was compiled from, as far as its name tells (`app`, `game`).
    pub crate_name: String,
}

/// The functions and data of one set of relocatable objects.
#[derive(Debug, Default)]
pub struct Code {
    pub(crate) objects: Vec<ObjectFile>,
    pub(crate) sections: Vec<Section>,
    pub(crate) nodes: Vec<Node>,
    names: Vec<String>,
    name_ids: HashMap<String, NameId>,
    /// Definitions with global binding, by name.
    globals: HashMap<NameId, Vec<NodeId>>,
    /// Every named definition (local ones too), by name, in reading order.
    defined: HashMap<NameId, Vec<NodeId>>,
    /// Anonymous data with a global name, by name.
    anon_globals: HashMap<NameId, NodeId>,
}

impl Code {
    /// Reads every ELF member of an rlib (`lib.rmeta` and anything else that is not an ELF
    /// object are skipped).
    pub fn read_rlib(path: &Path) -> Result<Code, String> {
        let data =
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let archive = ArchiveFile::parse(&*data)
            .map_err(|err| format!("{}: not an archive: {err}", path.display()))?;
        let mut code = Code::default();
        for member in archive.members() {
            let member = member.map_err(|err| format!("{}: {err}", path.display()))?;
            let bytes = member
                .data(&*data)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            if !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            let name = String::from_utf8_lossy(member.name()).into_owned();
            code.add_object(&name, bytes)
                .map_err(|err| format!("{} ({name}): {err}", path.display()))?;
        }
        code.link_anonymous();
        code.index_references();
        Ok(code)
    }

    /// Reads loose object files.
    pub fn read_objects(paths: &[PathBuf]) -> Result<Code, String> {
        let mut code = Code::default();
        for path in paths {
            let bytes = std::fs::read(path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            if !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            code.add_object(&name, &bytes)
                .map_err(|err| format!("{}: {err}", path.display()))?;
        }
        code.link_anonymous();
        code.index_references();
        Ok(code)
    }

    pub(crate) fn name(&self, id: NameId) -> &str {
        &self.names[id as usize]
    }

    pub(crate) fn name_id(&self, name: &str) -> Option<NameId> {
        self.name_ids.get(name).copied()
    }

    /// The node's symbol name, if it has one.
    pub(crate) fn node_name(&self, node: NodeId) -> Option<&str> {
        self.nodes[node as usize].name.map(|id| self.name(id))
    }

    pub(crate) fn node(&self, node: NodeId) -> &Node {
        &self.nodes[node as usize]
    }

    /// Global definitions of `name` in this set of objects.
    pub(crate) fn globals(&self, name: NameId) -> &[NodeId] {
        self.globals.get(&name).map_or(&[], Vec::as_slice)
    }

    /// Every definition of `name` (local copies in several objects included).
    pub(crate) fn definitions(&self, name: NameId) -> &[NodeId] {
        self.defined.get(&name).map_or(&[], Vec::as_slice)
    }

    /// Every named symbol defined here, in reading order, each once.
    pub(crate) fn defined_names(&self) -> impl Iterator<Item = NameId> + '_ {
        let mut seen = vec![false; self.names.len()];
        self.nodes.iter().filter_map(move |node| {
            let name = node.name?;
            if std::mem::replace(&mut seen[name as usize], true) {
                None
            } else {
                Some(name)
            }
        })
    }

    /// The node's bytes (zeros for `.bss`).
    pub(crate) fn bytes(&self, node: NodeId) -> std::borrow::Cow<'_, [u8]> {
        let node = &self.nodes[node as usize];
        let section = &self.sections[node.section as usize];
        match &section.data {
            Some(data) => {
                let end = (node.end as usize).min(data.len());
                let start = (node.start as usize).min(end);
                std::borrow::Cow::Borrowed(&data[start..end])
            }
            None => std::borrow::Cow::Owned(vec![0; (node.end - node.start) as usize]),
        }
    }

    /// The node's references, in offset order.
    pub(crate) fn references(&self, node: NodeId) -> &[Reference] {
        let node = &self.nodes[node as usize];
        let (from, to) = node.refs;
        &self.sections[node.section as usize].references[from as usize..to as usize]
    }

    /// Finds each node's references in its section (once every section's are read).
    fn index_references(&mut self) {
        for node in &mut self.nodes {
            let all = &self.sections[node.section as usize].references;
            let from = all.partition_point(|r| r.offset < node.start);
            let to = all.partition_point(|r| r.offset < node.end);
            node.refs = (from as u32, to as u32);
        }
    }

    /// What a name refers to when the code of `object` uses it: its definition in that object,
    /// else this set's global definitions.
    pub(crate) fn resolve(&self, target: Target) -> Vec<NodeId> {
        match target {
            Target::Anon(node) => vec![node],
            Target::Symbol {
                local: Some(node), ..
            } => vec![node],
            Target::Symbol { name, local: None } => self.globals(name).to_vec(),
        }
    }

    fn intern(&mut self, name: &str) -> NameId {
        // ThinLTO renames the local functions it promotes `<name>.llvm.<number>`, with a number
        // that differs from build to build (only optimised builds have them).
        let name = match name.find(".llvm.") {
            Some(at) if name[at + 6..].bytes().all(|b| b.is_ascii_digit()) => &name[..at],
            _ => name,
        };
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.len() as NameId;
        self.names.push(name.to_owned());
        self.name_ids.insert(name.to_owned(), id);
        id
    }

    fn add_object(&mut self, file: &str, data: &[u8]) -> Result<(), String> {
        let header = elf::FileHeader64::<Endianness>::parse(data)
            .map_err(|err| format!("not a 64-bit ELF object: {err}"))?;
        let endian = header.endian().map_err(|err| err.to_string())?;
        if header.e_type(endian) != elf::ET_REL {
            return Err("not a relocatable object".into());
        }
        let x86_64 = header.e_machine(endian) == elf::EM_X86_64;
        let sections = header
            .sections(endian, data)
            .map_err(|err| err.to_string())?;
        let symbols = sections
            .symbols(endian, data, elf::SHT_SYMTAB)
            .map_err(|err| err.to_string())?;
        let object = self.objects.len() as u32;
        self.objects.push(ObjectFile {
            crate_name: crate_of_object(file),
        });

        // Sections whose contents can be code or data the program runs or reads.
        let mut kept: HashMap<usize, u32> = HashMap::new();
        let mut merge: HashMap<u32, (bool, u64)> = HashMap::new();
        for (index, section) in sections.enumerate() {
            let flags = section.sh_flags(endian);
            let kind = section.sh_type(endian);
            if !flags.contains(elf::SHF_ALLOC)
                || !(kind == elf::SHT_PROGBITS
                    || kind == elf::SHT_NOBITS
                    || kind == elf::SHT_INIT_ARRAY
                    || kind == elf::SHT_FINI_ARRAY)
            {
                continue;
            }
            let name = String::from_utf8_lossy(
                sections
                    .section_name(endian, section)
                    .map_err(|err| err.to_string())?,
            )
            .into_owned();
            // Unwinding tables refer to code, not the other way round.
            if name == ".eh_frame" || name.starts_with(".gcc_except_table") {
                continue;
            }
            let size = section.sh_size(endian);
            let data = if kind == elf::SHT_NOBITS {
                None
            } else {
                Some(
                    section
                        .data(endian, data)
                        .map_err(|err| format!("section {name}: {err}"))?
                        .to_vec(),
                )
            };
            let id = self.sections.len() as u32;
            if flags.contains(elf::SHF_MERGE) {
                merge.insert(
                    id,
                    (flags.contains(elf::SHF_STRINGS), section.sh_entsize(endian)),
                );
            }
            self.sections.push(Section {
                data,
                size,
                executable: flags.contains(elf::SHF_EXECINSTR),
                references: Vec::new(),
            });
            kept.insert(index.0, id);
        }

        // Symbols: named definitions become nodes; anonymous ones mark regions of their section.
        enum Resolved {
            Named { name: NameId, node: Option<NodeId> },
            Region { section: u32, value: u64, size: u64 },
            Nothing,
        }
        let mut resolved: Vec<Resolved> = Vec::with_capacity(symbols.len());
        // Per kept section: (start, end, node) of named nodes, and (start, end) of anonymous
        // symbols, for resolving `section + addend`.
        let mut named_in: HashMap<u32, Vec<(u64, u64, NodeId)>> = HashMap::new();
        let mut anon_in: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
        let mut anon_nodes: HashMap<(u32, u64, u64), NodeId> = HashMap::new();
        for (index, symbol) in symbols.enumerate() {
            let kind = symbol.st_type();
            let section = symbols
                .symbol_section(endian, symbol, index)
                .map_err(|err| err.to_string())?;
            let name = symbol
                .name(endian, symbols.strings())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default();
            let value = symbol.st_value(endian);
            let size = symbol.st_size(endian);
            let entry = match section {
                None if index.0 == 0 || kind == elf::STT_FILE || name.is_empty() => {
                    Resolved::Nothing
                }
                // Undefined: whoever defines it.
                None => Resolved::Named {
                    name: self.intern(&name),
                    node: None,
                },
                Some(section) => match kept.get(&section.0) {
                    None => Resolved::Nothing,
                    Some(&section) if kind == elf::STT_SECTION => Resolved::Region {
                        section,
                        value: 0,
                        size: 0,
                    },
                    Some(&section)
                        if is_anonymous_name(&name)
                            || !(kind == elf::STT_FUNC
                                || kind == elf::STT_OBJECT
                                || kind == elf::STT_TLS) =>
                    {
                        if size > 0 {
                            anon_in
                                .entry(section)
                                .or_default()
                                .push((value, value + size));
                            if symbol.st_bind() != elf::STB_LOCAL {
                                let node = self.anon_node(
                                    &mut anon_nodes,
                                    object,
                                    section,
                                    value,
                                    value + size,
                                );
                                let name = self.intern(&name);
                                self.anon_globals.insert(name, node);
                            }
                        }
                        Resolved::Region {
                            section,
                            value,
                            size,
                        }
                    }
                    Some(&section) => {
                        let name_id = self.intern(&name);
                        let global = symbol.st_bind() != elf::STB_LOCAL;
                        let node = self.nodes.len() as NodeId;
                        self.nodes.push(Node {
                            kind: if kind == elf::STT_FUNC {
                                NodeKind::Function
                            } else {
                                NodeKind::Data
                            },
                            name: Some(name_id),
                            object,
                            section,
                            start: value,
                            end: value + size,
                            global,
                            exported: global && symbol.st_visibility() == elf::STV_DEFAULT,
                            tls: kind == elf::STT_TLS,
                            refs: (0, 0),
                        });
                        named_in
                            .entry(section)
                            .or_default()
                            .push((value, value + size, node));
                        self.defined.entry(name_id).or_default().push(node);
                        if global {
                            self.globals.entry(name_id).or_default().push(node);
                        }
                        Resolved::Named {
                            name: name_id,
                            node: Some(node),
                        }
                    }
                },
            };
            resolved.push(entry);
        }
        for list in named_in.values_mut() {
            list.sort_unstable();
        }
        for list in anon_in.values_mut() {
            list.sort_unstable();
        }

        // Relocations, resolved against the symbols above.
        for section in sections.iter() {
            let Some((relas, _)) = section.rela(endian, data).map_err(|err| err.to_string())?
            else {
                continue;
            };
            let Some(&applies_to) = kept.get(&section.info_link(endian).0) else {
                continue;
            };
            let executable = self.sections[applies_to as usize].executable;
            let mut references = Vec::with_capacity(relas.len());
            for rela in relas {
                let r_type = rela.r_type(endian, false).0;
                let Some(entry) = resolved.get(rela.r_sym(endian, false) as usize) else {
                    continue;
                };
                let addend = rela.r_addend(endian);
                let (target, addend) = match *entry {
                    Resolved::Nothing => continue,
                    Resolved::Named { name, node } => {
                        (Target::Symbol { name, local: node }, addend)
                    }
                    Resolved::Region {
                        section,
                        value,
                        size,
                    } => {
                        let place = value as i64 + addend;
                        // Where the reference points: for a PC-relative field in code, the
                        // addend also carries the distance from the field to the end of the
                        // instruction (4 for a 32-bit displacement at the end of it).
                        let bias = if x86_64 && executable && is_pc_relative_32(r_type) {
                            4
                        } else {
                            0
                        };
                        let at = (place + bias).max(0) as u64;
                        if let Some(&(start, _, node)) = covering(named_in.get(&section), at) {
                            let name = self.nodes[node as usize].name.expect("named");
                            (
                                Target::Symbol {
                                    name,
                                    local: Some(node),
                                },
                                place - start as i64,
                            )
                        } else {
                            let (start, end) = if size > 0 {
                                (value, value + size)
                            } else {
                                self.region(section, at, anon_in.get(&section), &merge)
                            };
                            let node = self.anon_node(&mut anon_nodes, object, section, start, end);
                            (Target::Anon(node), place - start as i64)
                        }
                    }
                };
                references.push(Reference {
                    offset: rela.r_offset(endian),
                    r_type,
                    target,
                    addend,
                });
            }
            let list = &mut self.sections[applies_to as usize].references;
            list.extend(references);
            list.sort_by_key(|r| r.offset);
        }
        Ok(())
    }

    /// The node of an anonymous region, made once.
    fn anon_node(
        &mut self,
        made: &mut HashMap<(u32, u64, u64), NodeId>,
        object: u32,
        section: u32,
        start: u64,
        end: u64,
    ) -> NodeId {
        let next = self.nodes.len() as NodeId;
        let node = *made.entry((section, start, end)).or_insert(next);
        if node == next {
            self.nodes.push(Node {
                kind: NodeKind::Anon,
                name: None,
                object,
                section,
                start,
                end,
                global: false,
                exported: false,
                tls: false,
                refs: (0, 0),
            });
        }
        node
    }

    /// The anonymous region of `section` that a reference to offset `at` means.
    fn region(
        &self,
        section: u32,
        at: u64,
        anonymous: Option<&Vec<(u64, u64)>>,
        merge: &HashMap<u32, (bool, u64)>,
    ) -> (u64, u64) {
        let size = self.sections[section as usize].size;
        if let Some(&(start, end)) = anonymous.and_then(|list| {
            let i = list.partition_point(|&(start, _)| start <= at);
            list[..i].last().filter(|&&(_, end)| at < end)
        }) {
            return (start, end);
        }
        if at < size {
            match merge.get(&section) {
                // A string of a mergeable string section: up to and including its NUL.
                Some(&(true, _)) => {
                    if let Some(data) = &self.sections[section as usize].data {
                        let end = data[at as usize..]
                            .iter()
                            .position(|&b| b == 0)
                            .map_or(size, |nul| at + nul as u64 + 1);
                        return (at, end);
                    }
                }
                // One entry of a mergeable constant section (`.rodata.cst16`).
                Some(&(false, entsize)) if entsize > 0 => {
                    let start = at - at % entsize;
                    return (start, (start + entsize).min(size));
                }
                _ => {}
            }
        }
        // rustc gives each anonymous allocation a section of its own.
        (0, size)
    }

    /// Anonymous data shared between codegen units has a global name (`alloc_<hash>`): make
    /// references to it from the other objects of the set point at its content.
    fn link_anonymous(&mut self) {
        if self.anon_globals.is_empty() {
            return;
        }
        for section in &mut self.sections {
            for reference in &mut section.references {
                if let Target::Symbol { name, local: None } = reference.target {
                    if let Some(&node) = self.anon_globals.get(&name) {
                        reference.target = Target::Anon(node);
                    }
                }
            }
        }
    }
}

/// Names that say nothing about what they name: assembler temporaries (`.L…`), LLVM's and
/// rustc's names for anonymous constants (`anon.<hash>.<n>`, `alloc_<hash>`, `str.<n>`).
pub(crate) fn is_anonymous_name(name: &str) -> bool {
    name.starts_with(".L")
        || name.starts_with("anon.")
        || name.starts_with("str.")
        || name.starts_with("__unnamed_")
        || name.starts_with("GCC_except_table")
        || name
            .strip_prefix("alloc_")
            .is_some_and(|hash| hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `R_X86_64_PC32`, `PLT32`, `GOTPCREL`, `GOTPCRELX`, `REX_GOTPCRELX`: 32-bit displacements
/// relative to the end of the field.
fn is_pc_relative_32(r_type: u32) -> bool {
    matches!(r_type, 2 | 4 | 9 | 41 | 42)
}

/// Whether `r_type` writes an absolute 64-bit address (`R_X86_64_64`).
pub(crate) fn is_absolute_64(r_type: u32) -> bool {
    r_type == 1
}

/// The named node of a section covering offset `at` (a zero-sized one only at its start).
fn covering(list: Option<&Vec<(u64, u64, NodeId)>>, at: u64) -> Option<&(u64, u64, NodeId)> {
    let list = list?;
    let i = list.partition_point(|&(start, _, _)| start <= at);
    list[..i]
        .iter()
        .rev()
        .find(|&&(start, end, _)| at < end || (start == end && at == start))
}

/// The crate an object was compiled from, from the names rustc gives them: incremental
/// `app-<hash>.<cgu>.<session>.rcgu.o`, non-incremental `game-<hash>.game.<hash>-cgu.0.rcgu.o`
/// (`game.<hash>-cgu.0.rcgu.o` inside an rlib), or `--emit obj`'s `app.o`.
fn crate_of_object(file: &str) -> String {
    let stem = file
        .strip_suffix(".rcgu.o")
        .or_else(|| file.strip_suffix(".o"))
        .unwrap_or(file);
    let name = match stem.rfind("-cgu.") {
        // `<…>.<crate>.<hash>-cgu.<n>`
        Some(at) => {
            let parts: Vec<&str> = stem[..at].split('.').collect();
            parts[parts.len().saturating_sub(2)]
        }
        // `<crate>-<hash>.<…>`
        None => stem.split('.').next().unwrap_or(stem),
    };
    name.split('-').next().unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_from_object_names() {
        assert_eq!(
            crate_of_object("game-5b6788f994b58639.game.a1b2c3-cgu.0.rcgu.o"),
            "game"
        );
        assert_eq!(
            crate_of_object("libgame.game.5b6788f994b58639-cgu.0.rcgu.o"),
            "game"
        );
        assert_eq!(
            crate_of_object("app-0f3a.app.7efcdcb9-cgu.12.rcgu.o"),
            "app"
        );
        assert_eq!(crate_of_object("app.o"), "app");
        // rustc 1.95, incremental.
        assert_eq!(
            crate_of_object("hs_app-b1e98727eb09aae6.1laeojowjzcljwrqw9oy9511f.0k9i3lb.rcgu.o"),
            "hs_app"
        );
        assert_eq!(
            crate_of_object("app-18cb5dfe4637177e.0g57522a2oxrs9f99tesa0gl7.089a8m9.rcgu.o"),
            "app"
        );
        assert_eq!(
            crate_of_object("game.5b6788f994b58639-cgu.0.rcgu.o"),
            "game"
        );
    }

    #[test]
    fn anonymous_names() {
        assert!(is_anonymous_name(
            ".Lanon.c16a6a0a240dea7575a63074df0107b0.7"
        ));
        assert!(is_anonymous_name("alloc_5b4c1c6e2d8f7a9b0c1d2e3f4a5b6c7d"));
        assert!(is_anonymous_name("anon.3f2b.12"));
        assert!(!is_anonymous_name("_ZN4game6helper17hb64ca2737b90b3bbE"));
        assert!(!is_anonymous_name("alloc_buffer"));
    }
}
