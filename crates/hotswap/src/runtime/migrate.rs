//! Migrate: carry every live `State<T>` whose type a patch changes to the new layout, before any
//! slot is written. The old code serialises, the new code deserialises; one failure refuses the
//! whole patch and leaves every value as it was.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::__private::{StateEntry, ENTRY_ABI};
use crate::state::{live_states, StateCell};

/// How long a patch waits for the program to stop borrowing a state it must migrate.
const BORROW_WAIT: Duration = Duration::from_secs(5);

/// States to migrate: each one's new entry, its cell, and whether its lock is held.
pub(crate) struct Migration {
    staged: Vec<Staged>,
    committed: bool,
}

struct Staged {
    cell: Arc<StateCell>,
    new_entry: &'static StateEntry,
    new_value: Option<*mut ()>,
}

/// The live states whose type the patch changes, by the patch's entries.
pub(crate) fn plan(patch_states: &[&'static StateEntry]) -> Result<Migration, String> {
    let mut staged = Vec::new();
    let live = live_states();
    for new_entry in patch_states {
        if new_entry.abi != ENTRY_ABI {
            return Err("its state entries were made by an incompatible version of hotswap".into());
        }
        let name = new_entry.layout.name.as_str();
        for cell in &live {
            let old = cell.entry();
            if old.layout.name.as_str() != name
                || super::check::describe_change(old.layout, new_entry.layout).is_none()
            {
                continue;
            }
            staged.push(Staged {
                cell: Arc::clone(cell),
                new_entry,
                new_value: None,
            });
        }
    }
    Ok(Migration {
        staged,
        committed: false,
    })
}

impl Migration {
    /// Names of the types this migration changes.
    pub fn type_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .staged
            .iter()
            .map(|s| s.new_entry.layout.name.as_str())
            .collect();
        names.dedup();
        names
    }

    /// Locks each state and builds its new value. On failure nothing has changed.
    pub fn prepare(&mut self) -> Result<(), String> {
        for index in 0..self.staged.len() {
            let staged = &mut self.staged[index];
            let name = staged.new_entry.layout.name.as_str();
            if !staged.cell.try_acquire_for(BORROW_WAIT) {
                return Err(format!(
                    "migrating `{name}`: the program kept it borrowed for {} s; release \
                     `State::get_mut` between calls",
                    BORROW_WAIT.as_secs()
                ));
            }
            let old = staged.cell.entry();
            let value = staged.cell.value();
            let new_entry = staged.new_entry;
            // Held from here: `Drop` releases it if anything below fails.
            staged.new_value = Some(std::ptr::null_mut());
            let bytes = catch_unwind(AssertUnwindSafe(|| (old.serialize)(value)))
                .map_err(|_| "the old code panicked while serialising it".to_owned())
                .and_then(|r| r.map_err(|e| format!("the old code could not serialise it: {e}")))
                .map_err(|e| format!("migrating `{name}`: {e}"))?;
            let new_value = catch_unwind(AssertUnwindSafe(|| (new_entry.deserialize)(&bytes)))
                .map_err(|_| "the new code panicked while deserialising it".to_owned())
                .and_then(|r| {
                    r.map_err(|e| {
                        format!(
                            "the new code could not read the old value ({e}); give new fields \
                             `#[serde(default)]`"
                        )
                    })
                })
                .map_err(|e| format!("migrating `{name}`: {e}"))?;
            staged.new_value = Some(new_value);
        }
        Ok(())
    }

    /// Installs the new values and releases the states. Call after the slots are swapped.
    pub fn commit(mut self) -> usize {
        for staged in &self.staged {
            if let Some(new_value) = staged.new_value.filter(|v| !v.is_null()) {
                let old_entry = staged.cell.entry();
                let old_value = staged.cell.replace(new_value, staged.new_entry);
                (old_entry.drop)(old_value);
            }
            staged.cell.release();
        }
        self.committed = true;
        self.staged.len()
    }
}

impl Drop for Migration {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for staged in &self.staged {
            if let Some(new_value) = staged.new_value {
                if !new_value.is_null() {
                    (staged.new_entry.drop)(new_value);
                }
                staged.cell.release();
            }
        }
    }
}
