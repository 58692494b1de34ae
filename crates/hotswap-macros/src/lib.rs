//! Procedural macros of [hotswap](https://docs.rs/hotswap). Do not depend on this crate directly:
//! use `hotswap::hot`, which re-exports it.
//!
//! `#[hot]` turns a function into a hot-swappable entry point. It emits both shapes of the
//! function and lets `hotswap::__select!` keep one: the plain function in a normal build, or the
//! dispatch slot, wrapper and manifest entry in hot mode. The choice is made by a `cfg` inside the
//! `hotswap` crate, so user crates never need to know which flag switched hot mode on. When this
//! crate itself was compiled in hot mode (see [`select`]), it emits the hot shape alone.

use proc_macro::TokenStream;
use quote::quote;

mod expand;
mod layout;
mod validate;

/// Marks a function (or every method of an `impl` block, inherent or `impl Trait for Type`, or
/// every `pub` function of an inline module) as hot-swappable.
///
/// In a normal build this is the identity. In hot mode (`--cfg hotswap` or the `hot` feature of
/// `hotswap`) each call goes through one atomic load and one indirect call, and a patch can
/// replace the implementation while the program runs. For a trait impl the trait method is the
/// wrapper, so calls through `dyn Trait` and generic code reach the new code too; its entry is
/// named `module::<Type as Trait>::method`, and the impl's associated types and consts are part
/// of each method's signature.
///
/// `#[hot(skip)]` on a method of a `#[hot]` impl block keeps that method as written (cold).
///
/// On an inline module (`#[hot] mod systems { … }`) it makes every function of the module with a
/// `pub` visibility (`pub`, `pub(crate)`, `pub(super)`, …) hot, as `#[hot]` on each would; its
/// entries are named after the module (`game::systems::step`). Private functions stay plain
/// (helpers; an edit of one is patched where hot code calls it), and so do impl blocks, nested
/// modules and other items unless they carry their own `#[hot]`: nothing is made hot
/// recursively. A `pub` function that cannot be hot (see below) is refused with an error naming
/// it: move it out of the module, or mark it `#[hot(skip)]` to keep it as written (the mark
/// needs no `hot` in scope inside the module). A `pub async fn` is hot with a `Send` future, or
/// not `Send` under `#[hot(?Send)] mod`. `#[hot]` on `mod name;` (a module in another file) is
/// refused: put `#[hot]` inside that file instead.
///
/// An `async fn` keeps its signature for callers; in hot mode its slot returns the body's future
/// boxed, `Send` unless the attribute says `#[hot(?Send)]`. Each call after a swap runs the new
/// body; a future already running keeps the code it started with. This covers free functions
/// and methods of inherent impls; an `async fn` in a `#[hot]` trait impl is refused (mark it
/// `#[hot(skip)]`).
///
/// A free `extern "C" fn` (with `#[unsafe(no_mangle)]`, `#[no_mangle]` or `#[export_name]`, or
/// none) can be hot: the function foreign code calls by name keeps its ABI and attributes and
/// dispatches through the slot to a Rust-ABI implementation (which a patch replaces); the ABI
/// is part of the signature. As for any `extern "C"` fn, a panic that reaches it aborts.
///
/// Refused with a compile error: generic functions and methods, `impl Trait` arguments or return
/// types, `const fn`, `unsafe fn`, ABIs other than Rust and C, `extern` methods and `async
/// extern` fns, variadic functions, `async fn` in trait impls, and impl blocks with type or
/// const parameters (lifetimes are fine).
#[proc_macro_attribute]
pub fn hot(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = proc_macro2::TokenStream::from(attr);
    if expand::is_skip(&attr) {
        // `#[hot(skip)]` on a method of a `#[hot]` impl block: the block's expansion leaves
        // the method as written; this is what remains of the attribute.
        return item;
    }
    // Any other argument but `?Send` is refused by `expand`, naming both.
    let item = proc_macro2::TokenStream::from(item);
    match expand::expand(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Describes a type's fields (names, types, offsets) so a patch that changes them is refused
/// with a message naming the change. Does nothing outside hot mode.
#[proc_macro_derive(Layout)]
pub fn derive_layout(item: TokenStream) -> TokenStream {
    match layout::derive(item.into(), false) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Like `Layout`, and lets `hotswap::State<T>` carry a value across a patch that changes the
/// type: the old code serialises it, the new code deserialises it (serde; fields matched by
/// name, new fields take their `#[serde(default)]`). Needs `Serialize` and `Deserialize`.
#[proc_macro_derive(Migrate)]
pub fn derive_migrate(item: TokenStream) -> TokenStream {
    match layout::derive(item.into(), true) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// `hot`, or both shapes for `hotswap::__select!`. When this crate was compiled in hot mode
/// (`--cfg hotswap`, which `cargo hotswap run` passes to every crate it compiles, or the `hot`
/// feature, which `hotswap`'s `hot` feature turns on) so was `hotswap`: only the hot shape is
/// written, which saves the compiler the cold copy of every item. (Were `hotswap` not in hot
/// mode after all, the hot shape's `hotswap::__private` paths would not compile: never a silent
/// mix of the two.)
pub(crate) fn select(
    hot: proc_macro2::TokenStream,
    cold: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    if cfg!(any(hotswap, feature = "hot")) {
        hot
    } else {
        quote! {
            ::hotswap::__select! {
                hot { #hot }
                cold { #cold }
            }
        }
    }
}
