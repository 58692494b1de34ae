//! Hot reloading for Rust that keeps state and refuses what it cannot swap safely.
//!
//! Mark entry points with [`#[hot]`](hot). In a normal build (`cargo build`, `cargo build
//! --release`) the attribute does nothing: the binary has no slot, no loader and no `dlopen`.
//! In **hot mode** each `#[hot]` function is called through an atomic slot that a patch can
//! repoint while the program runs, so edited code takes effect without a restart and without
//! losing state.
//!
//! Hot mode is switched on explicitly, in one of two ways:
//! - `RUSTFLAGS="--cfg hotswap"`, which is what `cargo hotswap run` does in its own target
//!   directory (thin patches, delivered over a private control channel);
//! - the `hot` feature of this crate, for the *full library* workflow: the hot crate also builds
//!   as a `cdylib` and the running program watches that file (see [`library`] below).
//!
//! # Full library mode
//!
//! Give the hot crate `crate-type = ["rlib", "cdylib"]`, build the app with hot mode on, run it,
//! and rebuild with plain `cargo build` after an edit. On the first call of a `#[hot]` function
//! the runtime starts watching `lib<crate>.so` next to the executable (or in the directory named
//! by `HOTSWAP_LIB_DIR`). A new, complete library is copied to a private per-process directory,
//! checked, loaded, its copy deleted, and all of its functions swapped in at once, or none.
//! The library carries its own copy of `std`: a panic in patched code is caught inside the
//! library and raised again in the host with the same message, and the host's `log` logger and
//! `tracing` dispatcher are handed to the library so its logging still appears.
//!
//! # Observing reloads
//!
//! [`version`], [`is_hot`], [`wait_for_reload`] and [`subscribe`] work in every build; outside
//! hot mode they report version 0 and never see a reload. The runtime's own messages go through
//! `tracing` (target `hotswap`) and are silent unless the app installs a subscriber; set
//! `HOTSWAP_LOG=1` to have them printed to stderr as well.
//!
//! [`library`]: #full-library-mode

#![warn(missing_docs)]

use std::time::Duration;

/// Marks a function, or every method of an inherent `impl` block, as hot-swappable.
///
/// ```ignore
/// #[hotswap::hot]
/// pub fn step(state: &mut State) -> String { format!("tick {}", state.ticks) }
/// ```
///
/// Refused at compile time, with an error pointing at the offending token: generic functions,
/// `impl Trait` arguments and return types, `const fn`, `unsafe fn`, ABIs other than Rust and C,
/// variadic functions, and generic impl blocks. An `extern "C"` function (with `#[no_mangle]`
/// for a C host) keeps its symbol and ABI; its body is what is swapped.
///
/// # `async fn`
///
/// An `async fn` can be hot (free, or in a `#[hot] impl` block). Callers see the same function:
/// it returns `impl Future<Output = R> + Send` borrowing its arguments, so axum, for one, routes
/// a `#[hot] async fn` handler directly, extractors and `State` included. In hot mode the slot
/// returns the body's future boxed (one allocation per call).
///
/// **Each call made after a swap runs the new body; a future already running keeps the code it
/// started with** until it completes. Call hot async code per request, per frame, per message,
/// rather than as one long-running loop.
///
/// The future must be `Send`; a body that is not (an `Rc` held across an `.await`) fails to
/// compile in hot mode with an error pointing at the function's name. For a single-threaded
/// runtime, opt out with `#[hot(?Send)]` (on a function, or on an `impl` block for all its
/// `async` methods):
///
/// ```ignore
/// #[hotswap::hot(?Send)]
/// pub async fn frame(world: std::rc::Rc<World>, input: &Input) -> Status { /* ... */ }
/// ```
///
/// Outside hot mode the function is the plain `async fn`, unchecked for `Send`. Write the
/// lifetimes of types with lifetime parameters (`View<'_>`, not `View`): an elided one hidden
/// in a path is not seen, and the future could not name it.
pub use hotswap_macros::hot;

/// Describes a type's fields (names, types, offsets) so that a patch changing them is refused with
/// a message naming the change, e.g. "`update`: parameter 1 `State` grew from 48 to 56 bytes
/// (field `speed: f32` added)". Does nothing outside hot mode.
pub use hotswap_macros::Layout;

/// Like [`Layout`](derive@Layout), and lets a [`State<T>`](State) carry its value across a patch that
/// changes `T`: the old code serialises it, the new code deserialises it (serde; fields matched
/// by name, new fields take their `#[serde(default)]`). Needs `Serialize` and `Deserialize`.
/// The same carries the value across a restart by `cargo hotswap run` (see [`State`]).
pub use hotswap_macros::Migrate;

mod events;
pub use events::{Event, Subscription};

mod state;
pub use state::{State, StateMut};

#[doc(hidden)]
pub mod protocol;

#[cfg(any(hotswap, feature = "hot"))]
#[doc(hidden)]
pub mod __private;
/// Operating-system specifics, shared with the CLI (private directories, peer checks).
#[doc(hidden)]
pub mod platform;
#[cfg(any(hotswap, feature = "hot"))]
mod runtime;
#[cfg(any(hotswap, feature = "hot"))]
mod shims;

/// Keeps the `hot { .. }` tokens in hot mode and the `cold { .. }` tokens otherwise. The choice
/// is made here, when `hotswap` itself is compiled, so user crates never test a cfg of ours.
#[cfg(any(hotswap, feature = "hot"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    (hot { $($hot:tt)* } cold { $($cold:tt)* }) => { $($hot)* };
}

/// Keeps the `hot { .. }` tokens in hot mode and the `cold { .. }` tokens otherwise.
#[cfg(not(any(hotswap, feature = "hot")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    (hot { $($hot:tt)* } cold { $($cold:tt)* }) => { $($cold)* };
}

/// Loads a `#[hot]` function's slot (`$slot`, a `__private::Slot` static) into `$f`, a local of
/// the slot's exact function pointer type: what every call of a hot function does. A macro
/// expanded in the caller (not a function) because at opt-level 0 every inlined layer still
/// copies its arguments through the stack; this is one `mov` on x86-64, whose every load has
/// acquire ordering.
///
/// # Safety
/// The caller (the generated wrapper) promises the slot holds a function of `$f`'s type.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[doc(hidden)]
#[macro_export]
macro_rules! __load_slot {
    ($slot:path => $f:ident) => {
        // SAFETY: reads one aligned pointer-sized word from the live static `$slot` (a
        // `Slot` is one `AtomicPtr<()>`, laid out as a pointer); x86-64 loads are atomic with
        // acquire ordering, as `Ordering::Acquire` asks. The word is a function of `$f`'s type,
        // as the caller promises. The asm touches no stack and no flags and only reads memory.
        unsafe {
            ::core::arch::asm!(
                "mov {f}, qword ptr [{slot}]",
                f = out(reg) $f,
                slot = in(reg) &raw const $slot,
                options(nostack, preserves_flags, readonly),
            );
        }
    };
}

/// See the x86-64 version (chosen when `hotswap` is compiled, so the caller's expansion holds
/// no `cfg` to evaluate).
#[cfg(not(all(target_arch = "x86_64", not(miri))))]
#[doc(hidden)]
#[macro_export]
macro_rules! __load_slot {
    ($slot:path => $f:ident) => {
        // SAFETY: the slot holds a function of `$f`'s type (the caller's promise).
        $f = unsafe { ::core::mem::transmute::<*const (), _>($slot.get()) };
    };
}

/// Registers `$item` (a `static` holding an element: an `Entry` itself, a `&'static
/// StateEntry`) in the distributed slice `__private::$slice` (`ENTRIES`, `STATES`): what `#[linkme::distributed_slice(..)]` on the
/// element does, written out for ELF, where linkme puts a slice's elements in the section
/// `linkme_<SLICE>` (bounded by the linker's `__start_`/`__stop_` symbols, which the slice reads)
/// and keeps them with `#[used]`. The runtime reads a patch's registrations from the same section
/// (`platform::ENTRIES_SECTION`). Spelled out because linkme's attribute is a procedural macro
/// that also emits a type check per element: every `#[hot]` function would pay for both on each
/// build of its crate. The element's type is right by construction (the macro writes it).
/// Elsewhere linkme's attribute does it.
#[cfg(target_os = "linux")]
#[doc(hidden)]
#[macro_export]
macro_rules! __register {
    (ENTRIES, $item:item) => {
        #[used]
        #[unsafe(link_section = "linkme_ENTRIES")]
        $item
    };
    (STATES, $item:item) => {
        #[used]
        #[unsafe(link_section = "linkme_STATES")]
        $item
    };
}

/// See the Linux version.
#[cfg(not(target_os = "linux"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __register {
    ($slice:ident, $item:item) => {
        #[::hotswap::__private::linkme::distributed_slice(::hotswap::__private::$slice)]
        #[linkme(crate = ::hotswap::__private::linkme)]
        $item
    };
}

/// The items behind one `#[hot]` function's slot, from what `#[hot]` worked out: the slot,
/// whose first value is the function's boot shim (`shims.rs`: starts the runtime, which points
/// every slot at its implementation) and the manifest entry, registered in place. With `@types`,
/// `@pointees` and `@guarded_async`, which `#[hot]` invokes only for a function that needs
/// them: the `types` and `pointees` functions the runtime's signature check calls, and the
/// guarded shim of an `async fn`. A synchronous function's guarded shim (the implementation
/// behind a panic guard, for self-contained libraries and the roll-back policy) and every
/// function's boot shim are instances of the generic ones in `shims.rs`, which the compiler
/// caches; whatever is written here is expanded again on every build of the crate.
///
/// A `macro_rules!` template rather than tokens the procedural macro writes out: every token a
/// procedural macro returns crosses the compiler's proc-macro bridge, and this expansion is
/// the same for every hot function, so the macro hands over only what differs. A crate of
/// 10,000 `#[hot]` functions compiles seconds faster per edit that way.
///
/// Inputs: the item names; the implementation's path; the boot shim for its arity; the entry's
/// name (after `module_path!()`) and signature text; the `shims.rs` function that computes the
/// fingerprint for its arity (from the implementation's own parameter and return types); the
/// number of positions (parameters, then the return type) and the bit mask of those that are
/// references; and what the entry points at for `types`, `pointees` and `guarded` (the
/// functions written for this one, or the shared ones).
#[cfg(any(hotswap, feature = "hot"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __hot_items {
    (
        names { $slot:ident $entry:ident }
        implementation { $($implementation:tt)* } boot $boot:ident
        name $display:literal signature $signature:literal
        fingerprint $fingerprint:ident type_count $count:literal references $references:literal
        refs { types $types_ref:path, pointees $pointees_ref:path, guarded $guarded_ref:expr }
    ) => {
        // (No `#[doc(hidden)]` on these private statics: documentation never shows them, and
        // every attribute is lowered and encoded again on each build of the crate.)
        #[allow(non_upper_case_globals)]
        // SAFETY: the implementation is a function item (what `boot` asks).
        static $slot: $crate::__private::Slot =
            $crate::__private::Slot::new(unsafe { $crate::__private::$boot($($implementation)*) });

        // Registered in place (the section holds the entries themselves) and not exported: the
        // runtime finds a patch's entries in its registration section, and a thin patch binds
        // data references to the program wherever the program exports the symbol.
        $crate::__register! { ENTRIES,
        #[allow(non_upper_case_globals)]
        static $entry: $crate::__private::Entry = $crate::__private::Entry {
            abi: $crate::__private::ENTRY_ABI,
            name: $crate::__private::RawStr::new(
                ::core::concat!(::core::module_path!(), "::", $display)
            ),
            signature: $crate::__private::RawStr::new($signature),
            fingerprint: $crate::__private::$fingerprint($($implementation)*, $signature),
            token: $crate::__private::RawStr::token(::core::option_env!("HOTSWAP_BUILD_TOKEN")),
            slot: &$slot,
            types: $types_ref,
            type_count: $count,
            pointees: $pointees_ref,
            references: $references,
            implementation: $($implementation)* as *const (),
            guarded: $guarded_ref,
        };
        }
    };

    // The guarded shim of an `async fn` (a synchronous function's is `shims.rs`'s): the future
    // is made behind the guard, and each poll of it runs behind it.
    (@guarded_async $guarded:ident { $($implementation:tt)* } { $($generics:tt)* }
        { $($where:tt)* } { $($arg:ident: $ty:ty),* } { $($output:tt)* } $display:literal) => {
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        fn $guarded $($generics)* ($($arg: $ty),*) $($output)* $($where)* {
            const NAME: &str = ::core::concat!(::core::module_path!(), "::", $display);
            $crate::__private::guard(NAME, move || $($implementation)*($($arg),*)).guarded(NAME)
        }
    };

    // `types`, for a function with a position that may be described (for the others the entry
    // takes `__private::no_types`).
    (@types $types:ident { $($index:literal: $described:ty),+ }) => {
        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        fn $types(index: usize) -> *const $crate::__private::TypeLayout {
            use $crate::__private::{ProbeDescribed as _, ProbeOpaque as _};
            match index {
                $($index => (&&$crate::__private::Probe::<$described>::new()).describe(),)+
                _ => ::core::ptr::null(),
            }
        }
    };

    // `pointees`, for a function with a position that is a reference (for the others the
    // runtime never asks, and the entry takes `__private::no_pointees`).
    (@pointees $pointees:ident { $($index:literal: $name:literal $pointee:ty),+ }) => {
        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        fn $pointees(index: usize) -> $crate::__private::Pointee {
            use $crate::__private::{ProbeSized as _, ProbeUnsized as _};
            match index {
                $($index => $crate::__private::Pointee {
                    name: $crate::__private::RawStr::new($name),
                    layout: (&&$crate::__private::SizeProbe::<$pointee>::new()).size_align(),
                },)+
                _ => $crate::__private::no_pointees(index),
            }
        }
    };
}

/// Whether this build is in hot mode (its `#[hot]` functions can be swapped).
pub const fn is_hot() -> bool {
    cfg!(any(hotswap, feature = "hot"))
}

/// The number of patches swapped in so far: 0 for the compiled-in code.
pub fn version() -> u64 {
    #[cfg(any(hotswap, feature = "hot"))]
    {
        runtime::events().version()
    }
    #[cfg(not(any(hotswap, feature = "hot")))]
    {
        0
    }
}

/// Starts the runtime now instead of on the first call of a `#[hot]` function. Does nothing
/// outside hot mode, and nothing the second time.
pub fn start() {
    #[cfg(any(hotswap, feature = "hot"))]
    runtime::start();
}

/// Waits until the next patch is swapped in, for at most `timeout`. Returns the new
/// [`version`], or `None` on timeout (at once outside hot mode).
pub fn wait_for_reload(timeout: Duration) -> Option<u64> {
    #[cfg(any(hotswap, feature = "hot"))]
    {
        runtime::start();
        runtime::events().wait_past(runtime::events().version(), timeout)
    }
    #[cfg(not(any(hotswap, feature = "hot")))]
    {
        let _ = timeout;
        None
    }
}

/// What happens when code from a patch panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PanicPolicy {
    /// The panic reaches the caller as an ordinary panic (the default).
    #[default]
    Propagate,
    /// The panic still reaches the caller, and first the patch that panicked is rolled back to
    /// the code that ran before it, and reported ([`Event::RolledBack`]). Patches swapped in
    /// while this policy is on run behind a `catch_unwind` guard (a few nanoseconds per call).
    /// Also set by `HOTSWAP_ON_PANIC=rollback` (`cargo hotswap run --rollback-on-panic`).
    RollBack,
}

/// Chooses the [`PanicPolicy`] for patches swapped in from now on. Does nothing outside hot mode.
pub fn set_panic_policy(policy: PanicPolicy) {
    #[cfg(any(hotswap, feature = "hot"))]
    {
        runtime::start();
        runtime::set_roll_back(policy == PanicPolicy::RollBack);
    }
    #[cfg(not(any(hotswap, feature = "hot")))]
    let _ = policy;
}

/// Subscribes to reload events. A subscription holds a bounded queue: a subscriber that is slow
/// or never reads loses the oldest events (counted in [`Subscription::missed`]) but never delays a
/// reload.
pub fn subscribe() -> Subscription {
    #[cfg(any(hotswap, feature = "hot"))]
    {
        runtime::start();
        runtime::events().subscribe()
    }
    #[cfg(not(any(hotswap, feature = "hot")))]
    {
        Subscription::detached()
    }
}
