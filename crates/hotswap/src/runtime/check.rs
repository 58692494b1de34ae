//! Check: refuse anything that is not a complete shared library for this machine, built in hot
//! mode for this program, with signatures the program's callers can still use.

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment};

use crate::__private::{Entry, Pointee, Slot, TypeLayout, ENTRY_ABI};
use crate::platform;

/// A section of the patch: its address relative to where the patch is loaded, and its size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    pub address: u64,
    pub size: u64,
}

/// What the file says about itself, read before it is loaded: where its registrations are.
/// (Reading a section beats scanning the dynamic symbols: a patch of 10,000 functions exports
/// some 70,000 of them.)
#[derive(Debug)]
pub(crate) struct Manifest {
    /// The patch's `ENTRIES` registrations (one pointer per `#[hot]` function).
    pub entries: Section,
    /// The patch's `STATES` registrations (`#[derive(Migrate)]`), if any.
    pub states: Option<Section>,
    /// The addresses the patch's loadable segments span, relative to where it is loaded.
    pub image: std::ops::Range<u64>,
}

/// Reads the staged copy and checks it is a whole shared library for this machine with a
/// hotswap manifest.
pub(crate) fn file(path: &Path) -> Result<Manifest, String> {
    let file = std::fs::File::open(path).map_err(|err| format!("cannot read the patch: {err}"))?;
    // Mapped rather than read: only the headers and the dynamic symbol table are touched, which
    // matters for libraries of hundreds of megabytes of debug information.
    // SAFETY: the file is the staged copy in this process's private directory (or a patch in
    // the CLI's private directory), which nothing else writes to while it is checked.
    let data = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|err| format!("cannot map the patch: {err}"))?;
    inspect(&data)
}

/// Part of every refusal of a file that may still be being written.
pub(crate) const INCOMPLETE: &str = "it is not a complete shared library (still being written, \
                                     truncated, or not a library at all)";

pub(crate) fn inspect(data: &[u8]) -> Result<Manifest, String> {
    if data.is_empty() {
        return Err(format!("the file is empty: {INCOMPLETE}"));
    }
    let file = object::File::parse(data).map_err(|err| format!("{INCOMPLETE}: {err}"))?;
    if file.format() != platform::BINARY_FORMAT {
        return Err(format!(
            "it is a {:?} file, but this program loads {:?} libraries",
            file.format(),
            platform::BINARY_FORMAT
        ));
    }
    if file.architecture() != platform::architecture() {
        return Err(format!(
            "it was built for {:?}, but this program runs on {:?}",
            file.architecture(),
            platform::architecture()
        ));
    }
    if file.kind() != object::ObjectKind::Dynamic {
        return Err(format!(
            "it is a {:?} object, not a shared library",
            file.kind()
        ));
    }
    if is_executable(&file) {
        return Err(
            "it is an executable program (it names an interpreter), not a shared library".into(),
        );
    }
    let len = data.len() as u64;
    // The lowest start and the highest end of the loadable segments.
    let (mut low, mut high) = (u64::MAX, 0);
    for segment in file.segments() {
        if segment.size() > 0 {
            low = low.min(segment.address());
            high = high.max(segment.address().saturating_add(segment.size()));
        }
        let (offset, size) = segment.file_range();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(format!(
                "a segment lies past the end of the file: {INCOMPLETE}"
            ));
        }
    }
    for section in file.sections() {
        if let Some((offset, size)) = section.file_range() {
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(format!(
                    "section {} lies past the end of the file: {INCOMPLETE}",
                    section.name().unwrap_or("?")
                ));
            }
        }
    }
    let registrations = |name: &str| {
        file.section_by_name(name).map(|section| Section {
            address: section.address(),
            size: section.size(),
        })
    };
    let pointer = std::mem::size_of::<usize>() as u64;
    let entry = std::mem::size_of::<crate::__private::Entry>() as u64;
    let entries = registrations(platform::ENTRIES_SECTION)
        .filter(|section| section.size >= entry && section.size % entry == 0)
        .ok_or_else(|| {
            "it has no hotswap manifest (no `#[hot]` functions registered): build the library \
             in hot mode (`--cfg hotswap` or the `hot` feature of hotswap)"
                .to_owned()
        })?;
    let states = registrations(platform::STATES_SECTION).filter(|s| s.size % pointer == 0);
    Ok(Manifest {
        entries,
        states,
        image: low..high,
    })
}

/// A position-independent executable has the shared-object type too; it differs by naming a
/// program interpreter (`PT_INTERP`), which a shared library never does.
fn is_executable(file: &object::File<'_>) -> bool {
    use object::read::elf::ProgramHeader;
    match file {
        object::File::Elf64(elf) => elf
            .elf_program_headers()
            .iter()
            .any(|header| header.p_type(elf.endian()) == object::elf::PT_INTERP),
        object::File::Elf32(elf) => elf
            .elf_program_headers()
            .iter()
            .any(|header| header.p_type(elf.endian()) == object::elf::PT_INTERP),
        _ => false,
    }
}

/// One slot to write.
pub(crate) struct Swap {
    pub name: &'static str,
    pub slot: &'static Slot,
    pub implementation: *const (),
    pub guarded: *const (),
}

/// The slots a patch will write, once every check passed.
pub(crate) struct Plan {
    pub swaps: Vec<Swap>,
}

/// Compares the patch's manifest with the host's: every function the host knows must keep its
/// fingerprint and build token. Functions new in the patch are only reachable from patch code
/// and are left alone; functions the patch dropped keep their current code.
pub(crate) fn compatible(
    registry: &HashMap<&'static str, &'static Entry>,
    entries: &[&'static Entry],
    migrated: &[&str],
) -> Result<Plan, String> {
    let mut problems = Vec::new();
    let mut swaps = Vec::new();
    for entry in entries {
        if entry.abi != ENTRY_ABI {
            return Err(format!(
                "it was built with an incompatible version of hotswap (manifest format {}, this \
                 program reads {ENTRY_ABI}); rebuild both with the same hotswap",
                entry.abi
            ));
        }
        let name = entry.name.as_str();
        let Some(host) = registry.get(name) else {
            continue;
        };
        let host_token = host.token.as_str();
        if !host_token.is_empty() && host_token != entry.token.as_str() {
            return Err(format!(
                "it was built for another build of this program (`{name}` carries build token \
                 `{}`, this program has `{host_token}`); rebuild the patch from this program's \
                 build, or restart the program",
                entry.token.as_str()
            ));
        }
        let changes = layout_changes(host, entry, migrated);
        if !changes.is_empty() {
            problems.push(format!("`{name}`: {}", changes.join("; ")));
            continue;
        }
        if host.fingerprint != entry.fingerprint {
            let (old, new) = (host.signature.as_str(), entry.signature.as_str());
            if old == new {
                problems.push(format!(
                    "`{name}`: a parameter or return type changed size or alignment \
                     (signature `{old}`)"
                ));
            } else {
                problems.push(format!(
                    "`{name}`: signature changed from `{old}` to `{new}`"
                ));
            }
            continue;
        }
        swaps.push(Swap {
            name: host.name.as_str(),
            slot: host.slot,
            implementation: entry.implementation,
            guarded: entry.guarded,
        });
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}. The running code was kept: this change cannot be hot-swapped, it needs the \
             code loaded again",
            problems.join("; ")
        ));
    }
    if swaps.is_empty() {
        return Err(
            "none of its `#[hot]` functions is one this program has: it was built for \
                    another program"
                .into(),
        );
    }
    Ok(Plan { swaps })
}

/// What changed in the described types of `host`'s parameters and return type, skipping types
/// that a `State` migration carries across.
fn layout_changes(host: &Entry, patch: &Entry, migrated: &[&str]) -> Vec<String> {
    let mut changes = Vec::new();
    let has_return = host.signature.as_str().contains(" -> ");
    let count = host.type_count.min(patch.type_count);
    for index in 0..count {
        let position = if has_return && index + 1 == host.type_count {
            "the return type".to_owned()
        } else {
            format!("parameter {}", index + 1)
        };
        let (old, new) = ((host.types)(index), (patch.types)(index));
        // SAFETY: `types` returns null or a pointer to a `'static TypeLayout` of its image.
        let (Some(old), Some(new)) = (unsafe { old.as_ref() }, unsafe { new.as_ref() }) else {
            // Not described (no `#[derive(Layout)]`): at least the size and alignment of what
            // the parameter is behind its references (a changed signature says more).
            let is_reference = index < 64 && host.references & (1 << index) != 0;
            if !is_reference || host.signature.as_str() != patch.signature.as_str() {
                continue;
            }
            let (old, new) = ((host.pointees)(index), (patch.pointees)(index));
            if let Some(change) = describe_pointee_change(&old, &new) {
                changes.push(format!("{position} {change}"));
            }
            continue;
        };
        if migrated.contains(&old.name.as_str()) {
            continue;
        }
        if let Some(change) = describe_change(old, new) {
            changes.push(format!("{position} {change}"));
        }
    }
    changes
}

/// "`Counter` grew from 8 to 16 bytes", or `None` if the size and alignment are equal (or
/// either side has no static size).
fn describe_pointee_change(old: &Pointee, new: &Pointee) -> Option<String> {
    let (before, after) = (old.layout, new.layout);
    if !before.is_sized() || !after.is_sized() {
        return None;
    }
    let change = if after.size() > before.size() {
        format!("grew from {} to {} bytes", before.size(), after.size())
    } else if after.size() < before.size() {
        format!("shrank from {} to {} bytes", before.size(), after.size())
    } else if after.align() != before.align() {
        format!(
            "changed alignment from {} to {}",
            before.align(),
            after.align()
        )
    } else {
        return None;
    };
    let name = new.name.as_str();
    let short = name.rsplit("::").next().unwrap_or(name);
    Some(format!("`{short}` {change}"))
}

/// "`State` grew from 48 to 56 bytes (field `speed: f32` added)", or `None` if equal.
pub(crate) fn describe_change(old: &TypeLayout, new: &TypeLayout) -> Option<String> {
    let short = |layout: &TypeLayout| {
        let name = layout.name.as_str();
        name.rsplit("::").next().unwrap_or(name).to_owned()
    };
    let mut details = Vec::new();
    for field in new.fields() {
        match old
            .fields()
            .iter()
            .find(|f| f.name.as_str() == field.name.as_str())
        {
            None => details.push(format!(
                "field `{}: {}` added",
                field.name.as_str(),
                field.ty.as_str()
            )),
            Some(before) if before.ty.as_str() != field.ty.as_str() => details.push(format!(
                "field `{}` changed from `{}` to `{}`",
                field.name.as_str(),
                before.ty.as_str(),
                field.ty.as_str()
            )),
            Some(before) if before.offset != field.offset || before.size != field.size => details
                .push(format!(
                    "field `{}` moved from offset {} to {}",
                    field.name.as_str(),
                    before.offset,
                    field.offset
                )),
            Some(_) => {}
        }
    }
    for field in old.fields() {
        if !new
            .fields()
            .iter()
            .any(|f| f.name.as_str() == field.name.as_str())
        {
            details.push(format!(
                "field `{}: {}` removed",
                field.name.as_str(),
                field.ty.as_str()
            ));
        }
    }
    if details.is_empty() && old.size == new.size && old.align == new.align {
        return None;
    }
    let size = if new.size > old.size {
        format!("grew from {} to {} bytes", old.size, new.size)
    } else if new.size < old.size {
        format!("shrank from {} to {} bytes", old.size, new.size)
    } else if old.align != new.align {
        format!("changed alignment from {} to {}", old.align, new.align)
    } else {
        format!("kept its size ({} bytes) but changed", new.size)
    };
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    Some(format!("`{}` {size}{details}", short(new)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_added_is_named_with_the_size_change() {
        use crate::__private::FieldLayout;
        static OLD_FIELDS: [FieldLayout; 2] = [
            FieldLayout::new("x", "f32", 0, 4),
            FieldLayout::new("score", "u64", 8, 8),
        ];
        static NEW_FIELDS: [FieldLayout; 3] = [
            FieldLayout::new("x", "f32", 0, 4),
            FieldLayout::new("speed", "f32", 4, 4),
            FieldLayout::new("score", "u64", 8, 8),
        ];
        let old = TypeLayout::new("game::State", 16, 8, &OLD_FIELDS);
        let same_size = TypeLayout::new("game::State", 16, 8, &NEW_FIELDS);
        assert_eq!(
            describe_change(&old, &same_size).unwrap(),
            "`State` kept its size (16 bytes) but changed (field `speed: f32` added)"
        );
        let bigger = TypeLayout::new("game::State", 24, 8, &NEW_FIELDS);
        assert!(describe_change(&old, &bigger)
            .unwrap()
            .starts_with("`State` grew from 16 to 24 bytes"));
        assert!(describe_change(&old, &old).is_none());
    }

    #[test]
    fn empty_and_garbage_files_are_refused_as_incomplete() {
        assert!(inspect(b"").unwrap_err().contains("empty"));
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(inspect(&garbage)
            .unwrap_err()
            .contains("not a complete shared library"));
    }

    #[test]
    fn a_program_is_not_a_library() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = inspect(&exe).unwrap_err();
        assert!(err.contains("executable program"), "{err}");
    }

    #[test]
    fn a_truncated_copy_of_a_real_library_is_refused() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let truncated = &exe[..exe.len() / 2];
        let err = inspect(truncated).unwrap_err();
        assert!(
            err.contains("not a complete shared library") || err.contains("past the end"),
            "{err}"
        );
    }
}
