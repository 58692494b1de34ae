//! `State<T>`: program state that survives a patch which changes its type.
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

use std::ops::{Deref, DerefMut};

/// A value owned by the program that `#[hot]` functions may change the type of.
///
/// `T` needs `#[derive(hotswap::Migrate)]`, `serde::Serialize` and `serde::Deserialize`.
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
    /// Takes ownership of `value`.
    pub fn new(value: T) -> Self {
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
        value: AtomicPtr<()>,
        entry: AtomicPtr<StateEntry>,
    }

    impl StateCell {
        fn acquire(&self) {
            let mut spins = 0u32;
            while self
                .busy
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
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

        pub(crate) fn entry(&self) -> &'static StateEntry {
            // SAFETY: only ever set from `&'static StateEntry`s.
            unsafe { &*self.entry.load(Ordering::Acquire) }
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

    /// Not generic, so a patch's `State::new` registers with the program's runtime.
    #[inline(never)]
    fn register(cell: &Arc<StateCell>) {
        let mut states = registry().lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|weak| weak.strong_count() > 0);
        states.push(Arc::downgrade(cell));
    }

    /// Every `State` alive now.
    pub(crate) fn live_states() -> Vec<Arc<StateCell>> {
        let states = registry().lock().unwrap_or_else(|e| e.into_inner());
        states.iter().filter_map(Weak::upgrade).collect()
    }

    impl<T: Migratable> State<T> {
        /// Takes ownership of `value`.
        pub fn new(value: T) -> Self {
            let cell = Arc::new(StateCell {
                busy: AtomicBool::new(false),
                value: AtomicPtr::new(Box::into_raw(Box::new(value)).cast()),
                entry: AtomicPtr::new(T::ENTRY as *const _ as *mut _),
            });
            register(&cell);
            State {
                cell,
                _owns: std::marker::PhantomData,
            }
        }
    }

    impl<T> State<T> {
        /// Borrows the value. A patch that migrates this state waits until the borrow ends.
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
            self.cell.acquire();
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
