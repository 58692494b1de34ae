//! Check (CLI side, between link and deliver): the layouts of the hot crate's types that the
//! running program may hold, read from DWARF, compared between the running build and a patch.
//!
//! A patch that changes the layout of a type the program owns (`pub struct Counter { n: u64 }`
//! gains `speed: u32`, and `#[hot] fn step(c: &mut Counter)` is patched) would read and write
//! past the program's value. The runtime checks fields only of types that derive `hotswap::Layout` (and sizes behind
//! references); this module checks every type from the compiler's own type information.
//!
//! - A [`Snapshot`] is what one build says: the types reachable from its hot functions'
//!   implementations (`__hotswap_impl_*`: parameters and return type) and its statics, from the
//!   DWARF of the `.rcgu.o` members of the crate's rlib (`-C debuginfo=2`, the dev profile's
//!   default; with less there is no type information, see [`Snapshot::has_type_info`]), plus
//!   the shapes of the crate's traits from its sources (for `dyn Trait` values, whose vtables
//!   DWARF does not describe).
//! - Types the running program stores type-erased, found by their trait impls in the build
//!   ([`STORAGE_TRAITS`]: a Bevy `Component`, a type turned into `dyn Any`), are roots too: a
//!   `World` holds components that a system may reach only inside its body
//!   (`world.query::<&Pos>()` in an exclusive system), never through a hot signature.
//! - [`compare`] walks from the roots (each hot function, each static shared with the program)
//!   through pointers, fields, variants, arrays, tuples, template parameters and function types,
//!   in both builds, and compares every type of the hot crate it reaches by qualified name: size,
//!   alignment, fields (name, offset, type name), variants (name, discriminant, fields) and the
//!   tag's encoding. A type used only inside hot code is not reached and may change freely.
//!
//! A [`Snapshot`] owns everything it holds; `crate::check` keeps the running build's (from a
//! link to its rlib that no later build overwrites), reads the patch's and calls [`compare`]
//! (shared statics: those the program exports); any change means a restart, with
//! [`LayoutChange::describe`] as the reason. Without type information on either side the check
//! says so and restarts: hot crates are always built with it (see `capture`).

mod compare;
mod dwarf;
mod traits;
mod units;

#[cfg(test)]
mod reuse_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;

use object::read::archive::ArchiveFile;

/// What one build of a hot crate says about the types the running program may hold.
pub struct Snapshot {
    crate_name: String,
    types: dwarf::TypeTable,
    traits: HashMap<String, Vec<traits::TraitShape>>,
    /// The units read, with their bytes, for a later build's snapshot to take readings from.
    units: units::Units,
}

/// A codegen unit of a build: its name (for messages) and where its bytes are.
struct Member {
    name: String,
    file: units::Mapped,
    range: std::ops::Range<usize>,
}

impl Member {
    fn bytes(&self) -> &[u8] {
        &self.file[self.range.clone()]
    }
}

impl Snapshot {
    /// `rlib`: the hot crate's rlib; `crate_name`: its rustc crate name (`game`);
    /// `sources`: the crate's parsed source files (for trait shapes); `shared_statics`: as for
    /// [`compare`] (the codegen units that define them are read, with those of the hot
    /// functions). `earlier`: snapshots of other builds whose units' readings are taken for
    /// units with the same bytes (see [`units`]); the result is the same without them.
    pub fn read(
        rlib: &Path,
        crate_name: &str,
        sources: &[syn::File],
        shared_statics: &[String],
        earlier: &[&Snapshot],
    ) -> Result<Snapshot, String> {
        let file = std::fs::File::open(rlib)
            .map_err(|err| format!("cannot read {}: {err}", rlib.display()))?;
        // Mapped rather than read (a third of the time for a large crate's rlib, most of which
        // is code this never looks at). SAFETY: the rlib the hot crate's build just wrote, or
        // the CLI's link to it (`check::Build::keep`); rustc writes an archive to a temporary
        // file and renames it into place, so a later build replaces the file instead of writing
        // into this mapping, and nothing else writes to the CLI's target directory. The map is
        // kept as long as the snapshot is (the bytes of the units it read, to be compared with
        // a later build's); removing the link does not end a mapping.
        let data: units::Mapped = std::rc::Rc::new(
            unsafe { memmap2::Mmap::map(&file) }
                .map_err(|err| format!("cannot map {}: {err}", rlib.display()))?,
        );
        let archive = ArchiveFile::parse(&**data)
            .map_err(|err| format!("{} is not an rlib: {err}", rlib.display()))?;
        let mut objects = Vec::new();
        for member in archive.members() {
            let member = member.map_err(|err| format!("{}: {err}", rlib.display()))?;
            let name = String::from_utf8_lossy(member.name()).into_owned();
            // The codegen units (`<crate>-<hash>.<crate>.<hash>-cgu.N.rcgu.o`); `lib.rmeta`
            // is metadata, not an object.
            if !name.ends_with(".o") {
                continue;
            }
            let bytes = member
                .data(&**data)
                .map_err(|err| format!("{} ({name}): {err}", rlib.display()))?;
            // Where `data` found them (a thin member has none: empty, as `data` gives it).
            let start = if bytes.is_empty() {
                0
            } else {
                member.file_range().0 as usize
            };
            let range = start..start + bytes.len();
            objects.push(Member {
                name,
                file: data.clone(),
                range,
            });
        }
        Snapshot::from_units(&objects, rlib, crate_name, sources, shared_statics, earlier)
    }

    /// [`Snapshot::read`] for a binary crate's object files (`paths`).
    pub fn read_objects(
        paths: &[std::path::PathBuf],
        crate_name: &str,
        sources: &[syn::File],
        shared_statics: &[String],
        earlier: &[&Snapshot],
    ) -> Result<Snapshot, String> {
        let mut objects = Vec::with_capacity(paths.len());
        for path in paths {
            let map = std::rc::Rc::new(crate::statics::map(path)?);
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            objects.push(Member {
                name: name.unwrap_or_default(),
                range: 0..map.len(),
                file: map,
            });
        }
        let first = paths.first().map_or(Path::new(""), |p| p.as_path());
        Snapshot::from_units(
            &objects,
            first,
            crate_name,
            sources,
            shared_statics,
            earlier,
        )
    }

    /// From the crate's codegen units; `origin` names them in errors.
    fn from_units(
        objects: &[Member],
        origin: &Path,
        crate_name: &str,
        sources: &[syn::File],
        shared_statics: &[String],
        earlier: &[&Snapshot],
    ) -> Result<Snapshot, String> {
        // Only the codegen units that define a root: a unit's DWARF describes every type its
        // own entries refer to, so the types reachable from a root are all in the root's unit,
        // and the other units (a heavy crate's instances of its dependencies' generic code,
        // most of its debug information) need not be read. If no unit defines one, all are
        // read, so that "no type information" still means what it says.
        // Types the program stores type-erased are roots too; the unit defining their trait
        // impl describes them. Each object is parsed once for both.
        let mut stored = HashMap::new();
        let mut with_roots: Vec<&Member> = Vec::new();
        for unit in objects {
            let (roots, unit_stored) = match object::File::parse(unit.bytes()) {
                Ok(file) => (
                    defines_roots_in(&file, shared_statics),
                    stored_types_in(&file, crate_name),
                ),
                // Counted as a root, so that reading it reports the error.
                Err(_) => (true, HashMap::new()),
            };
            if roots || !unit_stored.is_empty() {
                with_roots.push(unit);
            }
            stored.extend(unit_stored);
        }
        let chosen: Vec<&Member> = if with_roots.is_empty() {
            objects.iter().collect()
        } else {
            with_roots
        };
        let earlier: Vec<&units::Units> = earlier.iter().map(|s| &s.units).collect();
        let mut snapshot = Snapshot::new(crate_name, sources);
        snapshot.types.stored_names = stored;
        // In the objects' order, whichever reading each comes from: the table is the same.
        for member in chosen {
            let reading = snapshot
                .units
                .read(&member.file, member.range.clone(), &earlier)
                .map_err(|err| format!("{} ({}): {err}", origin.display(), member.name))?;
            snapshot.types.add(&reading);
        }
        Ok(snapshot)
    }

    /// Same from object file bytes (tests, and later binary crates).
    #[cfg(test)]
    pub fn from_objects(
        objects: &[&[u8]],
        crate_name: &str,
        sources: &[syn::File],
    ) -> Result<Snapshot, String> {
        let mut snapshot = Snapshot::new(crate_name, sources);
        for object in objects {
            if let Ok(file) = object::File::parse(*object) {
                snapshot
                    .types
                    .stored_names
                    .extend(stored_types_in(&file, crate_name));
            }
        }
        for (index, object) in objects.iter().enumerate() {
            snapshot
                .types
                .add_object(object)
                .map_err(|err| format!("object {}: {err}", index + 1))?;
        }
        Ok(snapshot)
    }

    /// How many units were read from their bytes, and how many readings were taken from an
    /// earlier build's units.
    #[cfg(test)]
    pub fn units_read(&self) -> (usize, usize) {
        (self.units.read, self.units.reused)
    }

    /// False when the objects carry no type information (built with debuginfo 0 or 1).
    pub fn has_type_info(&self) -> bool {
        self.types.has_type_info
    }

    /// The hot functions found, as the program names them (`game::step`,
    /// `game::Counter::bump`).
    #[cfg(test)]
    pub fn hot_functions(&self) -> impl Iterator<Item = &str> {
        self.types.functions.keys().map(String::as_str)
    }

    /// The statics found: linkage (mangled) name and path (`game::CONFIG`). Those the program
    /// exports are the `shared_statics` of [`compare`].
    #[cfg(test)]
    pub fn statics(&self) -> impl Iterator<Item = (&str, &str)> {
        self.types
            .statics
            .iter()
            .map(|(linkage, s)| (linkage.as_str(), s.name.as_str()))
    }

    fn new(crate_name: &str, sources: &[syn::File]) -> Snapshot {
        Snapshot {
            crate_name: crate_name.to_owned(),
            types: dwarf::TypeTable::default(),
            traits: traits::collect(sources),
            units: units::Units::default(),
        }
    }
}

/// Whether an object defines a root: a `#[hot]` implementation (`__hotswap_impl_*`), or one of
/// the statics the program shares with patches. An object that cannot be parsed counts, so
/// that reading it reports the error.
#[cfg(test)]
fn defines_roots(data: &[u8], shared_statics: &[String]) -> bool {
    match object::File::parse(data) {
        Ok(file) => defines_roots_in(&file, shared_statics),
        Err(_) => true,
    }
}

/// [`defines_roots`] of a parsed object.
fn defines_roots_in(file: &object::File<'_>, shared_statics: &[String]) -> bool {
    use object::{Object, ObjectSymbol};
    file.symbols().any(|symbol| {
        if symbol.is_undefined() {
            return false;
        }
        let Ok(name) = symbol.name() else {
            return false;
        };
        name.contains("__hotswap_impl_") || shared_statics.iter().any(|s| s == name)
    })
}

/// Traits whose implementors the running program may store type-erased, where no hot
/// function's signature shows them: (trait path, how messages say it). Matched on the path's
/// last segments, as rustc's symbol names give them (`<game::Pos as
/// bevy_ecs::component::Component>::register_required_components`).
pub const STORAGE_TRAITS: &[(&str, &str)] = &[
    (
        "bevy_ecs::component::Component",
        "a Bevy `Component`: the running `World` keeps its values",
    ),
    (
        "core::any::Any",
        "made into a `dyn Any` by the running code, which may keep it",
    ),
];

/// The types of crate `crate_name` for which the object defines a [`STORAGE_TRAITS`] trait's
/// method: type path → what the message says.
fn stored_types_in(file: &object::File<'_>, crate_name: &str) -> HashMap<String, &'static str> {
    use object::{Object, ObjectSymbol};
    let prefix = format!("<{crate_name}::");
    let mut found = HashMap::new();
    for symbol in file.symbols() {
        if symbol.is_undefined() {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        // Cheap before demangling: the trait's last segment is in the mangled name.
        if !STORAGE_TRAITS
            .iter()
            .any(|(path, _)| name.contains(path.rsplit("::").next().unwrap_or(path)))
        {
            continue;
        }
        let Ok(demangled) = rustc_demangle::try_demangle(name) else {
            continue;
        };
        let text = format!("{demangled:#}");
        let Some(rest) = text.strip_prefix(&prefix) else {
            continue;
        };
        let Some((ty, rest)) = rest.split_once(" as ") else {
            continue;
        };
        let Some((trait_path, _)) = rest.split_once('>') else {
            continue;
        };
        if let Some((_, said)) = STORAGE_TRAITS
            .iter()
            .find(|(path, _)| trait_path == *path || trait_path.ends_with(&format!("::{path}")))
        {
            found.insert(format!("{crate_name}::{ty}"), *said);
        }
    }
    found
}

/// One type, reachable from what the running program holds, whose layout a patch changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutChange {
    /// What reaches the type: a hot function as the program names it (`game::step`,
    /// `game::Counter::bump` for a method of a `#[hot] impl Counter`), or `static game::CONFIG`.
    pub root: String,
    /// The changed type's full name (`game::Counter`).
    pub type_name: String,
    /// e.g. "`Counter` grew from 8 to 16 bytes (field `speed: u32` added)".
    pub change: String,
}

impl LayoutChange {
    /// "`game::step`: `Counter` grew from 8 to 16 bytes (field `speed: u32` added)";
    /// "static `game::CONFIG`: …" for a static.
    pub fn describe(&self) -> String {
        if let Some(name) = self.root.strip_prefix("static ") {
            return format!("static `{name}`: {}", self.change);
        }
        if let Some(said) = self.root.strip_prefix("stored ") {
            return format!("{said}: {}", self.change);
        }
        format!("`{}`: {}", self.root, self.change)
    }
}

/// Changes, between the running build and the patch, of the types of the hot crate reachable
/// from the roots. `shared_statics`: linkage (mangled) names of the crate's statics that the
/// program shares with patches (their types are roots too).
///
/// Each changed type is reported once, with the first root that reaches it (hot functions in
/// name order, then statics in name order). Empty when either snapshot has no type information.
pub fn compare(old: &Snapshot, new: &Snapshot, shared_statics: &[String]) -> Vec<LayoutChange> {
    compare::compare(old, new, shared_statics)
}
