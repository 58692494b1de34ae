//! The boot function, the guarded shim and the fingerprint of a `#[hot]` function, written once
//! per arity here and instantiated by the compiler for each function, instead of written out by
//! `#[hot]` for each function.
//!
//! Why: whatever `#[hot]` writes out is expanded, resolved, lowered, hashed and encoded again
//! on every build of its crate, since a procedural macro's output is never cached. A generic
//! instance costs none of that: it exists only from monomorphisation on, and the compiler
//! caches its code with the rest. In a crate of 500 `#[hot]` functions, the boot function and
//! the guarded shim written out cost about 3.4 M rustc instructions per function and edit; as
//! instances of these, 0.4 M (hand-written variants of the expansion under callgrind; the
//! template's own figures are in BENCHMARKS.md, `crates/hotswap-bench/scripts/compile-cost.sh`).
//!
//! Each shim is generic over `F`, the type of the function item `__hotswap_impl_f`: a
//! zero-sized type that names one function, so the shim calls it without being handed a
//! pointer, and each hot function gets a shim of its own (its address is its identity: the
//! guarded shim's address is how the runtime finds the function's name when it panics).
//! `boot{N}` and `guarded{N}` return the address of the instance for the function item they
//! are given, and `fingerprint{N}` the fingerprint from its parameter and return types, in a
//! `const` context (the slot's and the entry's initialisers). An `async fn`'s guarded shim also
//! guards each poll of its future, so it is written out (`__hot_items!`'s `@guarded_async`).

/// A value of the zero-sized function item type `F`.
///
/// # Safety
/// `F` must be the type of a function item (or of a closure that captures nothing): such a type
/// has exactly one value and no invariant beyond it, so conjuring that value is sound. The size
/// is checked at compile time; callers are the shims below, whose `F` comes from the macro.
#[inline(always)]
unsafe fn conjure<F: Copy>() -> F {
    const { assert!(std::mem::size_of::<F>() == 0) };
    // SAFETY: `F` is zero-sized (checked above) and, by the caller's promise, a function item
    // type: all its values are the same value, which needs no bytes.
    unsafe { std::mem::zeroed() }
}

macro_rules! shims {
    ($($boot:ident $boot_shim:ident $guarded:ident $guarded_shim:ident $fingerprint:ident
        $fingerprint_async:ident ($($arg:ident: $ty:ident),*);)*) => {$(
        /// The [`fingerprint`](crate::__private::fingerprint) of the `#[hot]` function whose
        /// implementation is `_implementation`: `signature` and the size and alignment of each
        /// parameter and of the return type, as the compiler sees them (no macro writes the
        /// types out for this).
        pub const fn $fingerprint<F: Fn($($ty),*) -> R + Copy, $($ty,)* R>(
            _implementation: F,
            signature: &str,
        ) -> u64 {
            crate::__private::fingerprint(
                signature,
                &[$(crate::__private::SizeAlign::of::<$ty>(),)* crate::__private::SizeAlign::of::<R>()],
            )
        }

        /// The fingerprint of an `async fn`, whose implementation returns its body's boxed
        /// future: the last layout is the future's output's.
        pub const fn $fingerprint_async<
            F: Fn($($ty),*) -> B + Copy,
            $($ty,)*
            B: std::future::Future,
        >(
            _implementation: F,
            signature: &str,
        ) -> u64 {
            crate::__private::fingerprint(
                signature,
                &[
                    $(crate::__private::SizeAlign::of::<$ty>(),)*
                    crate::__private::SizeAlign::of::<B::Output>(),
                ],
            )
        }

        /// The address of the boot function of the `#[hot]` function whose implementation is
        /// `_implementation`: the slot's first value.
        ///
        /// # Safety
        /// `F` must be a function item type: the shim conjures its value (a zero-sized type
        /// with exactly one value; a closure that captures a zero-sized token is zero-sized
        /// too, and conjuring it would forge the token).
        pub const unsafe fn $boot<F: Fn($($ty),*) -> R + Copy, $($ty,)* R>(
            _implementation: F,
        ) -> *const () {
            $boot_shim::<F, $($ty,)* R> as *const ()
        }

        /// First call of a `#[hot]` function: start the runtime (which points every slot of the
        /// program at its implementation, see `Runtime::new`), then run the implementation.
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn $boot_shim<F: Fn($($ty),*) -> R + Copy, $($ty,)* R>($($arg: $ty),*) -> R {
            crate::runtime::start();
            // SAFETY: `F` comes from `$boot`, whose caller promised a function item type.
            let implementation = unsafe { conjure::<F>() };
            implementation($($arg),*)
        }

        /// The address of the guarded shim of the `#[hot]` function whose implementation is
        /// `_implementation` (see [`crate::__private::Entry::guarded`]).
        ///
        /// # Safety
        /// `F` must be a function item type: the shim conjures its value (a zero-sized type
        /// with exactly one value; a closure that captures a zero-sized token is zero-sized
        /// too, and conjuring it would forge the token).
        pub const unsafe fn $guarded<F: Fn($($ty),*) -> R + Copy, $($ty,)* R>(
            _implementation: F,
        ) -> *const () {
            $guarded_shim::<F, $($ty,)* R> as *const ()
        }

        /// The implementation behind the panic guard: the arguments move into one closure,
        /// which the (not generic) guard runs; the result comes back through `out`.
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn $guarded_shim<F: Fn($($ty),*) -> R + Copy, $($ty,)* R>($($arg: $ty),*) -> R {
            // SAFETY: `F` comes from `$guarded`, whose caller promised a function item type.
            let implementation = unsafe { conjure::<F>() };
            let mut args = Some(($($arg,)*));
            let mut out = None;
            let shim = $guarded_shim::<F, $($ty,)* R> as *const ();
            crate::runtime::guest::guard_shim(shim, &mut || {
                if let Some(($($arg,)*)) = args.take() {
                    out = Some(implementation($($arg),*));
                }
            });
            match out {
                Some(value) => value,
                None => crate::__private::guard_returned_nothing("a `#[hot]` function"),
            }
        }
    )*};
}

/// The most parameters (the receiver included) a synchronous `#[hot]` function may have;
/// `hotswap-macros` refuses more, naming this limit.
pub const MAX_ARITY: usize = 12;

shims! {
    boot0 __hotswap_boot0 guarded0 __hotswap_guarded0 fingerprint0 fingerprint_async0 ();
    boot1 __hotswap_boot1 guarded1 __hotswap_guarded1 fingerprint1 fingerprint_async1 (a0: A0);
    boot2 __hotswap_boot2 guarded2 __hotswap_guarded2 fingerprint2 fingerprint_async2 (a0: A0, a1: A1);
    boot3 __hotswap_boot3 guarded3 __hotswap_guarded3 fingerprint3 fingerprint_async3 (a0: A0, a1: A1, a2: A2);
    boot4 __hotswap_boot4 guarded4 __hotswap_guarded4 fingerprint4 fingerprint_async4 (a0: A0, a1: A1, a2: A2, a3: A3);
    boot5 __hotswap_boot5 guarded5 __hotswap_guarded5 fingerprint5 fingerprint_async5 (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4);
    boot6 __hotswap_boot6 guarded6 __hotswap_guarded6 fingerprint6 fingerprint_async6
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5);
    boot7 __hotswap_boot7 guarded7 __hotswap_guarded7 fingerprint7 fingerprint_async7
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6);
    boot8 __hotswap_boot8 guarded8 __hotswap_guarded8 fingerprint8 fingerprint_async8
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7);
    boot9 __hotswap_boot9 guarded9 __hotswap_guarded9 fingerprint9 fingerprint_async9
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8);
    boot10 __hotswap_boot10 guarded10 __hotswap_guarded10 fingerprint10 fingerprint_async10
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9);
    boot11 __hotswap_boot11 guarded11 __hotswap_guarded11 fingerprint11 fingerprint_async11
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10);
    boot12 __hotswap_boot12 guarded12 __hotswap_guarded12 fingerprint12 fingerprint_async12
        (a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10,
         a11: A11);
}
