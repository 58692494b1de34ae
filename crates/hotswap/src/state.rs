//! `State<T>`: program state that survives a patch which changes its type, and a restart.
//!
//! The program owns the value; `#[hot]` functions borrow it through [`State::get_mut`]. When a
//! patch changes `T` (a field added, removed or retyped), the runtime migrates every live
//! `State<T>` once, at swap time, before any slot is written: the old code serialises the value,
//! the new code deserialises it (fields matched by name; new fields take their
//! `#[serde(default)]`). If any value fails to migrate, the patch is refused and both the old
//! state and the old code stay. Outside hot mode, `State<T>` is `T` and `get_mut` is `&mut`.
//!
//! After a migration the value has the *new* layout, which only the new code knows: read and
//! write it in `#[hot]` functions (as the examples do), not in code that is never patched
//! (such as `main`).
//!
//! When `cargo hotswap run` has to restart the program (a change that cannot be swapped), the
//! values are carried to the new process the same way: the old process serialises every live
//! `State` just before it is stopped, and in the new process each `State::new` of a type that
//! had values takes the next of them, read with the new type's `Deserialize` (see
//! [`State::new`] for how values are matched to `State`s).

use std::ops::{Deref, DerefMut};

/// A value owned by the program that `#[hot]` functions may change the type of, and that
/// `cargo hotswap run` carries over when it restarts the program.
///
/// `T` needs `#[derive(hotswap::Migrate)]`, `serde::Serialize` and `serde::Deserialize`.
///
/// # Across a restart
///
/// When `cargo hotswap run` restarts the program (a change that cannot be hot-swapped), the old
/// process serialises every live `State` just before it is stopped (from then on `get_mut`
/// blocks there, so the values saved are the last ones), and in the new process a value carried
/// over takes the place of the one given to [`State::new`] (which is dropped). Values are
/// matched **by type name** (`module::Type`, as `#[derive(Migrate)]` records it): the k-th
/// `State<T>` created in the new process takes the k-th value of that type the old process had
/// (in the order its `State`s were created). The value is read with the *new* `T`'s
/// `Deserialize`, so fields are matched by name and new fields take their `#[serde(default)]`;
/// a value the new type cannot read is dropped, the `State` keeps the value it was given, and
/// the CLI names it. When two unrelated `State`s share a type and may be created in another
/// order, give them keys with [`State::with_key`]. Outside hot mode, and without the CLI,
/// nothing is carried.
pub struct State<T> {
    #[cfg(any(hotswap, feature = "hot"))]
    cell: std::sync::Arc<hot::StateCell>,
    #[cfg(any(hotswap, feature = "hot"))]
    _owns: std::marker::PhantomData<T>,
    #[cfg(not(any(hotswap, feature = "hot")))]
    value: T,
}

/// Exclusive access to the value of a [`State`]; a patch waits for it to be dropped.
pub struct StateMut<'a, T> {
    #[cfg(any(hotswap, feature = "hot"))]
    cell: &'a hot::StateCell,
    #[cfg(any(hotswap, feature = "hot"))]
    value: *mut T,
    #[cfg(any(hotswap, feature = "hot"))]
    _borrows: std::marker::PhantomData<&'a mut T>,
    #[cfg(not(any(hotswap, feature = "hot")))]
    value: &'a mut T,
}

#[cfg(not(any(hotswap, feature = "hot")))]
impl<T> State<T> {
    /// Takes ownership of `value` (in hot mode, under `cargo hotswap run`, a value carried over
    /// a restart may take its place: see [`State`]).
    pub fn new(value: T) -> Self {
        State { value }
    }

    /// Like [`State::new`]; in hot mode the value carried over a restart is the one saved by
    /// the `State` created with the same `key` (and type).
    pub fn with_key(key: &str, value: T) -> Self {
        let _ = key;
        State { value }
    }

    /// Borrows the value.
    pub fn get_mut(&mut self) -> StateMut<'_, T> {
        StateMut {
            value: &mut self.value,
        }
    }
}

#[cfg(not(any(hotswap, feature = "hot")))]
impl<T> Deref for StateMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

#[cfg(not(any(hotswap, feature = "hot")))]
impl<T> DerefMut for StateMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

#[cfg(any(hotswap, feature = "hot"))]
pub(crate) use hot::{live_states, StateCell};

#[cfg(any(hotswap, feature = "hot"))]
mod hot {
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
    use std::sync::{Arc, Mutex, Weak};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::__private::{Migratable, StateEntry};

    /// The shared part of a `State<T>`: the value (a `Box` of whichever version made it), the
    /// migration entry of that version, and a lock the runtime takes to migrate.
    pub(crate) struct StateCell {
        busy: AtomicBool,
        /// Set (with `busy` held, for good) once the value was saved for a restart: the process
        /// is about to be stopped, and nothing may change the value after the snapshot.
        frozen: AtomicBool,
        value: AtomicPtr<()>,
        entry: AtomicPtr<StateEntry>,
        /// The key of `State::with_key`, if any.
        key: Option<Box<str>>,
    }

    impl StateCell {
        /// Spins, then yields, then sleeps: a frozen cell is never released.
        fn back_off(round: &mut u32) {
            *round = round.saturating_add(1);
            if *round < 64 {
                std::hint::spin_loop();
            } else if *round < 1024 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        fn acquire(&self) {
            let mut round = 0u32;
            while self
                .busy
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                Self::back_off(&mut round);
            }
        }

        /// Takes the lock, or returns false if the value has been frozen for a restart.
        fn acquire_unless_frozen(&self) -> bool {
            let mut round = 0u32;
            loop {
                if self.frozen.load(Ordering::Acquire) {
                    return false;
                }
                if self
                    .busy
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                Self::back_off(&mut round);
            }
        }

        /// Takes the lock unless someone holds it for longer than `timeout`.
        pub(crate) fn try_acquire_for(&self, timeout: Duration) -> bool {
            let deadline = Instant::now() + timeout;
            loop {
                if self
                    .busy
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }

        pub(crate) fn release(&self) {
            self.busy.store(false, Ordering::Release);
        }

        /// Keeps the lock the caller holds for the rest of the process (see `frozen`).
        pub(crate) fn freeze(&self) {
            self.frozen.store(true, Ordering::Release);
        }

        pub(crate) fn is_frozen(&self) -> bool {
            self.frozen.load(Ordering::Acquire)
        }

        pub(crate) fn entry(&self) -> &'static StateEntry {
            // SAFETY: only ever set from `&'static StateEntry`s.
            unsafe { &*self.entry.load(Ordering::Acquire) }
        }

        pub(crate) fn key(&self) -> Option<&str> {
            self.key.as_deref()
        }

        pub(crate) fn value(&self) -> *mut () {
            self.value.load(Ordering::Acquire)
        }

        /// Replaces the value; the caller holds the lock. Returns the old value.
        pub(crate) fn replace(&self, value: *mut (), entry: &'static StateEntry) -> *mut () {
            self.entry
                .store(entry as *const _ as *mut _, Ordering::Release);
            self.value.swap(value, Ordering::AcqRel)
        }
    }

    fn registry() -> &'static Mutex<Vec<Weak<StateCell>>> {
        static REGISTRY: Mutex<Vec<Weak<StateCell>>> = Mutex::new(Vec::new());
        &REGISTRY
    }

    /// Makes the cell of a new `State`: `value` is a `Box` of `entry`'s version, replaced by the
    /// value carried over a restart if there is one. Not generic, so a patch's `State::new`
    /// registers with (and takes carried values from) the program's runtime.
    #[inline(never)]
    fn create(value: *mut (), entry: &'static StateEntry, key: Option<&str>) -> Arc<StateCell> {
        let value = crate::runtime::carry::take(entry, key, value);
        let cell = Arc::new(StateCell {
            busy: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            value: AtomicPtr::new(value),
            entry: AtomicPtr::new(entry as *const _ as *mut _),
            key: key.map(Into::into),
        });
        let mut states = registry().lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|weak| weak.strong_count() > 0);
        states.push(Arc::downgrade(&cell));
        cell
    }

    /// Every `State` alive now, oldest first.
    pub(crate) fn live_states() -> Vec<Arc<StateCell>> {
        let states = registry().lock().unwrap_or_else(|e| e.into_inner());
        states.iter().filter_map(Weak::upgrade).collect()
    }

    impl<T: Migratable> State<T> {
        /// Takes ownership of `value`, unless a value of type `T` carried over a restart takes
        /// its place (the next one of its type name: see [`State`]).
        pub fn new(value: T) -> Self {
            Self::from_cell(create(
                Box::into_raw(Box::new(value)).cast(),
                T::ENTRY,
                None,
            ))
        }

        /// Like [`State::new`], but a value carried over a restart is the one saved by the
        /// `State<T>` created with the same `key` (not the next one of its type); states with
        /// a key and states without never take each other's values.
        pub fn with_key(key: &str, value: T) -> Self {
            Self::from_cell(create(
                Box::into_raw(Box::new(value)).cast(),
                T::ENTRY,
                Some(key),
            ))
        }

        fn from_cell(cell: Arc<StateCell>) -> Self {
            State {
                cell,
                _owns: std::marker::PhantomData,
            }
        }
    }

    impl<T> State<T> {
        /// Borrows the value. A patch that migrates this state waits until the borrow ends.
        ///
        /// Once the value has been saved for a restart (the process is about to be stopped),
        /// this blocks until the process ends, so nothing changes after the snapshot.
        pub fn get_mut(&mut self) -> StateMut<'_, T> {
            self.cell.acquire();
            StateMut {
                cell: &self.cell,
                value: self.cell.value().cast(),
                _borrows: std::marker::PhantomData,
            }
        }
    }

    impl<T> Drop for State<T> {
        fn drop(&mut self) {
            if !self.cell.acquire_unless_frozen() {
                // Saved for a restart: the process is ending, and the lock is never released.
                return;
            }
            let entry = self.cell.entry();
            (entry.drop)(self.cell.value());
            self.cell.release();
        }
    }

    impl<T> Drop for StateMut<'_, T> {
        fn drop(&mut self) {
            self.cell.release();
        }
    }

    impl<T> Deref for StateMut<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the cell's lock is held for the life of `self`; the value is a live
            // `Box<T>` (of the version that the code now running was compiled with, since the
            // runtime migrates values and code together).
            unsafe { &*self.value }
        }
    }

    impl<T> DerefMut for StateMut<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `deref`, and `self` is the only borrow (we hold the lock).
            unsafe { &mut *self.value }
        }
    }

    // SAFETY: a `State<T>` owns a `T`; every access goes through `&mut self` and the cell's lock.
    unsafe impl<T: Send> Send for State<T> {}
    // SAFETY: `&State<T>` gives no access to the value.
    unsafe impl<T: Send> Sync for State<T> {}
}
