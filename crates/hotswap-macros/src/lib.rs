//! Procedural macros of [hotswap](https://docs.rs/hotswap). Do not depend on this crate directly:
//! use `hotswap::hot`, which re-exports it.
//!
//! `#[hot]` turns a function into a hot-swappable entry point. It always emits both shapes of the
//! function and lets `hotswap::__select!` keep one: the plain function in a normal build, or the
//! dispatch slot, wrapper and manifest entry in hot mode. The choice is made by a `cfg` inside the
//! `hotswap` crate, so user crates never need to know which flag switched hot mode on.

use proc_macro::TokenStream;

mod expand;
mod validate;

/// Marks a function (or every method of an inherent `impl` block) as hot-swappable.
///
/// In a normal build this is the identity. In hot mode (`--cfg hotswap` or the `hot` feature of
/// `hotswap`) each call goes through one atomic load and one indirect call, and a patch can
/// replace the implementation while the program runs.
///
/// Refused with a compile error: generic functions, `impl Trait` arguments or return types,
/// `async fn`, `const fn`, `unsafe fn`, non-Rust ABIs, variadic functions, trait impls and generic
/// impls.
#[proc_macro_attribute]
pub fn hot(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = proc_macro2::TokenStream::from(attr);
    if !attr.is_empty() {
        return syn::Error::new_spanned(attr, "`#[hot]` takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = proc_macro2::TokenStream::from(item);
    match expand::expand(item) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}
