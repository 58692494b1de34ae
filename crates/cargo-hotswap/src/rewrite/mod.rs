//! Link (CLI side): the object rewriter. Before a thin patch is linked, its relocatable objects
//! are edited so that the patch's code uses the running program's own statics and
//! thread-locals instead of fresh copies of them (see `shared/STATICS.md`, parts A and B):
//!
//! - [`tls`]: thread-locals. A binary crate's local-exec references (`R_X86_64_TPOFF32`, which
//!   no linker accepts in a shared object) and a library's local-dynamic sequences
//!   (`__tls_get_addr` for the module's block, then `R_X86_64_DTPOFF32` offsets into it) become
//!   fixed offsets from the thread pointer into the *executable's* TLS block, which lies at the
//!   same offset from the thread pointer in every thread.
//! - [`data`]: private statics. A reference to a writable static the program has (32-bit
//!   PC-relative, or a 64-bit address in data) is pointed at a new undefined hidden symbol
//!   `__hs_dN`, which the link defines as the program's address of that static. That needs the
//!   patch linked at a fixed address (the program reserves the range and checks the load): only
//!   then is the displacement known at link time. Without a fixed address this step is skipped
//!   and the statics start afresh in the patch, as the CLI then says.
//!
//! Both only apply where the object and the program agree: same linkage name (which includes
//! the crate's hash), same size; the layout check compares the types of everything shared (the
//! names are returned for it). A thread-local the program does not have, or a static or
//! thread-local whose size changed, is a [`Refusal`]: the program restarts.
//!
//! [`elf`] holds the byte-level edits, each with why it keeps the object valid. Linux x86-64.

mod data;
mod elf;
mod tls;

use std::collections::HashMap;
use std::path::Path;

use object::elf as E;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

pub use elf::Edits;

/// What the running program has: its thread-locals, its writable statics, and where its TLS
/// block lies below the thread pointer.
pub struct Program {
    /// A shared library a host loaded (`run --lib`): its thread-locals are in a block the
    /// loader allocates per thread at run time, at no offset known when a patch is linked, so
    /// they are not shared (the patch's start afresh, as the CLI says).
    library: bool,
    /// The TLS block's offset below the thread pointer (`tp - block_offset` is its start).
    block_offset: u64,
    /// Thread-locals: offset within the block and size, by linkage name; `None` for a name
    /// defined twice.
    tls: HashMap<String, Option<(u64, u64)>>,
    /// Writable statics: link-time address (`st_value`, add the load bias) and size; `None` for
    /// a name defined twice.
    data: HashMap<String, Option<(u64, u64)>>,
    /// The paths (`game::COUNT`, no hash) of the statics in `data`: a static of the same path
    /// under another linkage name is the same static with another type (the legacy mangling's
    /// hash covers the type).
    paths: std::collections::HashSet<String>,
    /// The executable's initial bytes of its writable statics (up to 4 KiB each; `None`: all
    /// zero, in `.bss`), to tell an edited initialiser.
    init: HashMap<String, Option<Vec<u8>>>,
}

/// `game::COUNT` for a mangled static name (the hash left out).
fn path_of(mangled: &str) -> Option<String> {
    rustc_demangle::try_demangle(mangled)
        .ok()
        .map(|d| format!("{d:#}"))
}

impl Program {
    /// Reads the executable a program runs, or (`library`) the shared library a host loaded.
    pub fn read(executable: &Path, library: bool) -> Result<Program, String> {
        let data = crate::statics::map(executable)?;
        let fail = |err: object::Error| format!("{}: {err}", executable.display());
        let header = E::FileHeader64::<object::Endianness>::parse(&*data).map_err(fail)?;
        let endian = header.endian().map_err(fail)?;
        let segments = header.program_headers(endian, &*data).map_err(fail)?;
        let tls_segment = segments.iter().find(|s| s.p_type(endian) == E::PT_TLS);
        // x86-64 places the executable's block right below the thread pointer (TLS variant II),
        // rounded so that the block's first byte keeps its alignment: glibc's
        // `_dl_determine_tlsoffset` for the first module, which is what the static linker
        // assumed when it resolved the executable's own local-exec references.
        let block_offset = tls_segment.map_or(0, |segment| {
            let align = segment.p_align(endian).max(1);
            let size = segment.p_memsz(endian);
            let first_byte = segment.p_vaddr(endian).wrapping_neg() & (align - 1);
            (size - first_byte).div_ceil(align) * align + first_byte
        });
        let file = object::File::parse(&*data).map_err(fail)?;
        let mut tls: HashMap<String, Option<(u64, u64)>> = HashMap::new();
        let mut statics: HashMap<String, Option<(u64, u64)>> = HashMap::new();
        let mut init: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        for symbol in file.symbols() {
            if symbol.is_undefined() {
                continue;
            }
            let Ok(name) = symbol.name() else { continue };
            let map = match symbol.kind() {
                SymbolKind::Tls => &mut tls,
                SymbolKind::Data => {
                    let Some(section) = symbol
                        .section_index()
                        .and_then(|i| file.section_by_index(i).ok())
                        .filter(|s| {
                            matches!(s.kind(), SectionKind::Data | SectionKind::UninitializedData)
                        })
                    else {
                        continue;
                    };
                    if symbol.size() <= 4096 {
                        let bytes = match section.kind() {
                            SectionKind::UninitializedData => None,
                            _ => section
                                .data_range(symbol.address(), symbol.size())
                                .ok()
                                .flatten()
                                .map(<[u8]>::to_vec),
                        };
                        init.insert(name.to_owned(), bytes);
                    }
                    &mut statics
                }
                _ => continue,
            };
            map.entry(name.to_owned())
                .and_modify(|seen| *seen = None)
                .or_insert(Some((symbol.address(), symbol.size())));
        }
        let paths = statics.keys().filter_map(|n| path_of(n)).collect();
        Ok(Program {
            library,
            block_offset,
            tls,
            data: statics,
            paths,
            init,
        })
    }

    /// Adds statics a patch linked at a fixed address defined (new in it, at their final
    /// addresses): the next patch shares them too. `load_bias`: the executable's, which
    /// [`data`] adds to every address it is given.
    pub fn add_patch_statics(&mut self, patch: &Path, load_bias: u64) -> Result<(), String> {
        let data = crate::statics::map(patch)?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", patch.display()))?;
        for symbol in file.symbols() {
            if symbol.is_undefined() || symbol.kind() != SymbolKind::Data {
                continue;
            }
            let writable = symbol
                .section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .is_some_and(|s| {
                    matches!(s.kind(), SectionKind::Data | SectionKind::UninitializedData)
                });
            let Ok(name) = symbol.name() else { continue };
            if writable && !name.starts_with("__hotswap") && !self.data.contains_key(name) {
                let address = symbol.address().wrapping_sub(load_bias);
                self.data
                    .insert(name.to_owned(), Some((address, symbol.size())));
                self.paths.extend(path_of(name));
            }
        }
        Ok(())
    }

    fn thread_local(&self, name: &str) -> Result<(u64, u64), Refusal> {
        match self.tls.get(name) {
            Some(Some(found)) => Ok(*found),
            Some(None) => Err(Refusal::Other(format!(
                "the program defines {} twice",
                shown(name, true)
            ))),
            None => Err(Refusal::New(shown(name, true))),
        }
    }

    fn static_(&self, name: &str) -> Option<(u64, u64)> {
        self.data.get(name).copied().flatten()
    }

    /// Whether the program (or a patch before) has a static or thread-local named `name`:
    /// one the patch does not share would start afresh. (A static only the patch has is new.)
    pub fn has(&self, name: &str) -> bool {
        self.data.contains_key(name) || self.tls.contains_key(name)
    }
}

#[cfg(test)]
impl Program {
    /// A program (not a library host) with these thread-locals and statics (linkage name,
    /// then value and size), its TLS block `block_offset` below the thread pointer.
    pub(crate) fn for_tests(
        block_offset: u64,
        tls: &[(&str, (u64, u64))],
        statics: &[(&str, (u64, u64))],
    ) -> Program {
        let map = |entries: &[(&str, (u64, u64))]| {
            entries
                .iter()
                .map(|(name, found)| (name.to_string(), Some(*found)))
                .collect::<HashMap<_, _>>()
        };
        let data = map(statics);
        Program {
            library: false,
            block_offset,
            tls: map(tls),
            paths: data.keys().filter_map(|n| path_of(n)).collect(),
            data,
            init: HashMap::new(),
        }
    }
}

/// How a patch is linked, which decides what can be shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// At a fixed address, where the program's run-time address of a static is its link-time
    /// address plus `load_bias`: statics and thread-locals are shared.
    Fixed { load_bias: u64 },
    /// Wherever the loader puts it: only thread-locals can be shared.
    Anywhere,
}

/// Why an object cannot use the program's thread-locals or statics.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The patch declares a thread-local the program does not have (readable name).
    New(String),
    /// Same name, another size.
    Resized { name: String, old: u64, new: u64 },
    /// A static the program has under another linkage name: its type changed.
    Retyped(String),
    /// Anything else (a malformed object, a name defined twice in the program).
    Other(String),
}

impl Refusal {
    pub fn describe(&self, crate_name: &str) -> String {
        match self {
            Refusal::New(name) => format!(
                "the edit adds {name} to `{crate_name}`; a patch can only use the thread-locals \
                 the program was built with"
            ),
            Refusal::Resized { name, old, new } => {
                format!("{name} changed from {old} to {new} bytes")
            }
            Refusal::Retyped(name) => format!(
                "{name} changed its type; the program's value cannot be carried into the new \
                 one"
            ),
            Refusal::Other(text) => text.clone(),
        }
    }
}

/// What the rewrites of one patch's objects share with the program.
#[derive(Default)]
pub struct Shared {
    /// Linkage names of the program's thread-locals and statics the patch now uses.
    pub names: Vec<String>,
    /// The `__hs_dN` symbols and the absolute address each stands for, for the link.
    pub symbols: Vec<(String, u64)>,
    /// `__hs_dN` by linkage name.
    by_name: HashMap<String, usize>,
    /// Shared statics whose initial value in the patch differs from the program's (readable
    /// names): the running value is kept, and the new initialiser never runs.
    pub changed_initialisers: Vec<String>,
}

impl Shared {
    fn note(&mut self, name: &str) {
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_owned());
        }
    }

    /// The symbol standing for the static `name` at run-time address `address`.
    fn symbol_for(&mut self, name: &str, address: u64) -> String {
        self.note(name);
        let index = *self.by_name.entry(name.to_owned()).or_insert_with(|| {
            self.symbols
                .push((format!("__hs_d{}", self.symbols.len()), address));
            self.symbols.len() - 1
        });
        self.symbols[index].0.clone()
    }

    /// The linker script lines defining the symbols (`HIDDEN(__hs_d0 = 0x…);`).
    pub fn script(&self) -> String {
        self.symbols
            .iter()
            .map(|(name, address)| format!("HIDDEN({name} = {address:#x});\n"))
            .collect()
    }
}

/// Rewrites one object (`bytes`) of a patch so that it uses the program's thread-locals, and,
/// with a fixed placement, its statics. `binary`: the object is a binary crate's (local-exec
/// thread-locals). Returns the new bytes, or `None` when nothing changed.
pub fn rewrite_object(
    bytes: &[u8],
    program: &Program,
    placement: Placement,
    binary: bool,
    shared: &mut Shared,
) -> Result<Option<Vec<u8>>, Refusal> {
    let object = elf::Object::parse(bytes).map_err(Refusal::Other)?;
    let mut edits = Edits::default();
    if program.library {
        // Left as compiled: the patch's own thread-locals (see `Program::library`).
    } else if binary {
        tls::local_exec(&object, program, &mut edits, shared)?;
        tls::check_sizes(&object, program)?;
    } else {
        tls::local_dynamic(&object, program, &mut edits, shared)?;
        tls::check_sizes(&object, program)?;
    }
    if let Placement::Fixed { load_bias } = placement {
        data::statics(&object, program, load_bias, &mut edits, shared)?;
    }
    if edits.is_empty() {
        return Ok(None);
    }
    object.apply(edits).map(Some).map_err(Refusal::Other)
}

/// A static or thread-local as messages name it.
fn shown(name: &str, tls: bool) -> String {
    crate::statics::describe(name, tls).unwrap_or_else(|| format!("`{name}`"))
}

#[cfg(test)]
mod tests;
