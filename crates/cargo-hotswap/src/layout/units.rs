//! The DWARF readings of a build's codegen units, kept with the bytes they were read from, so
//! that a later build reuses them for its units whose bytes are the same.
//!
//! Why: an incremental rebuild after an edit rewrites only the units whose code changed (one of
//! the 215 of the bench's heavy crate for an edit of `tick`), and reading DWARF is most of what
//! the layout check costs. A patch that shares statics with the program has more roots, so more
//! units to read: the heavy crate's patch shares `DW.ref.rust_eh_personality`, which every unit
//! with unwinding defines, and 86 units were read for each patch where 1 is now.
//!
//! The key is the bytes themselves, compared in full. A reading ([`ObjectTypes`]) is a function
//! of the object's bytes alone (not of the roots, nor of the other objects: what is merged into
//! a snapshot is decided afterwards, in `TypeTable::add`), so equal bytes give an equal
//! reading. Names are no key: a member's name carries a per-build suffix, and a unit of the same
//! name can change. Comparing costs a fraction of a millisecond per megabyte; the lengths narrow
//! the candidates first.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use super::dwarf::ObjectTypes;

/// A mapped file holding units' bytes: an rlib, or a binary crate's object file. Kept mapped as
/// long as the readings it backs are kept (each build's files are links no later build writes
/// to, see `check::Build::keep`).
pub(super) type Mapped = Rc<memmap2::Mmap>;

/// One unit read: where its bytes are, and what was read from them.
struct Unit {
    file: Mapped,
    range: Range<usize>,
    reading: Rc<ObjectTypes>,
}

impl Unit {
    fn bytes(&self) -> &[u8] {
        &self.file[self.range.clone()]
    }
}

/// The units one snapshot read, with their bytes.
#[derive(Default)]
pub(super) struct Units {
    units: Vec<Unit>,
    /// Indices into `units`, by length in bytes.
    by_len: HashMap<usize, Vec<usize>>,
    /// How many readings were taken from an earlier build's units (identical bytes), and how
    /// many were read from the bytes (for the tests).
    pub reused: usize,
    pub read: usize,
}

impl Units {
    /// The reading of the unit at `range` in `file`: that of a unit of `earlier` with exactly
    /// these bytes, else read now. Either way this set keeps it (for the next build).
    pub(super) fn read(
        &mut self,
        file: &Mapped,
        range: Range<usize>,
        earlier: &[&Units],
    ) -> Result<Rc<ObjectTypes>, String> {
        let bytes = &file[range.clone()];
        let reading = match earlier.iter().find_map(|units| units.find(bytes)) {
            Some(reading) => {
                self.reused += 1;
                reading
            }
            None => {
                self.read += 1;
                Rc::new(ObjectTypes::read(bytes)?)
            }
        };
        self.by_len
            .entry(range.len())
            .or_default()
            .push(self.units.len());
        self.units.push(Unit {
            file: file.clone(),
            range,
            reading: reading.clone(),
        });
        Ok(reading)
    }

    /// The reading of a unit with exactly `bytes`, if this set has one.
    fn find(&self, bytes: &[u8]) -> Option<Rc<ObjectTypes>> {
        self.by_len
            .get(&bytes.len())?
            .iter()
            .map(|&index| &self.units[index])
            .find(|unit| unit.bytes() == bytes)
            .map(|unit| unit.reading.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Mapped {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Rc::new(crate::statics::map(&path).unwrap())
    }

    /// The same bytes under another name and at another place are found; bytes of the same
    /// length that differ in one byte are not (so they are read, not taken).
    #[test]
    fn a_reading_is_found_by_its_bytes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let object = std::fs::read(crate::test_rustc::object(
            &dir.path().join("src"),
            "pub struct Counter { pub n: u64 }\n\
             pub fn __hotswap_impl_step(c: &mut Counter) -> u64 { c.n }\n",
            &["-C", "debuginfo=2"],
        ))
        .unwrap();
        let old = mapped(dir.path(), "old", &object);
        let mut earlier = Units::default();
        let first = earlier.read(&old, 0..object.len(), &[]).unwrap();
        assert_eq!((earlier.reused, earlier.read), (0, 1));

        // The same bytes after 8 others, in another file.
        let mut moved = vec![0u8; 8];
        moved.extend_from_slice(&object);
        let new = mapped(dir.path(), "new", &moved);
        let mut later = Units::default();
        let again = later.read(&new, 8..moved.len(), &[&earlier]).unwrap();
        assert!(
            Rc::ptr_eq(&first, &again),
            "identical bytes were read again"
        );
        assert_eq!((later.reused, later.read), (1, 0));

        // Same length, the last byte different (whether it still parses does not matter).
        let mut changed = object.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        let changed_file = mapped(dir.path(), "changed", &changed);
        assert!(earlier.find(&changed_file[..]).is_none());
        let mut other = Units::default();
        let _ = other.read(&changed_file, 0..changed.len(), &[&earlier]);
        assert_eq!(other.reused, 0, "different bytes took a kept reading");
    }
}
