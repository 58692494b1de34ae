//! `#[derive(Layout)]` and `#[derive(Migrate)]`: describe a type's fields so a patch that changes
//! them is refused with a precise message, or, for `Migrate`, carried across by serde.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `migrate` adds the exported migration entry (serialise with the old code, deserialise with
/// the new one) to the layout description.
pub fn derive(input: TokenStream, migrate: bool) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let what = if migrate { "Migrate" } else { "Layout" };
    if let Some(param) = input.generics.params.first() {
        return Err(syn::Error::new_spanned(
            param,
            format!("`#[derive(hotswap::{what})]` does not support generic types: describe a concrete type"),
        ));
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let fields: Vec<TokenStream> = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named
                .named
                .iter()
                .map(|field| {
                    let field_ident = field.ident.as_ref().expect("named");
                    let field_name = field_ident.to_string();
                    let ty = &field.ty;
                    let ty_text = crate::expand::tidy(&quote!(#ty).to_string());
                    quote! {
                        ::hotswap::__private::FieldLayout::new(
                            #field_name, #ty_text,
                            ::core::mem::offset_of!(#ident, #field_ident),
                            ::core::mem::size_of::<#ty>(),
                        )
                    }
                })
                .collect(),
            Fields::Unnamed(unnamed) => unnamed
                .unnamed
                .iter()
                .enumerate()
                .map(|(i, field)| {
                    let index = syn::Index::from(i);
                    let field_name = i.to_string();
                    let ty = &field.ty;
                    let ty_text = crate::expand::tidy(&quote!(#ty).to_string());
                    quote! {
                        ::hotswap::__private::FieldLayout::new(
                            #field_name, #ty_text,
                            ::core::mem::offset_of!(#ident, #index),
                            ::core::mem::size_of::<#ty>(),
                        )
                    }
                })
                .collect(),
            Fields::Unit => Vec::new(),
        },
        Data::Enum(data) => data
            .variants
            .iter()
            .map(|variant| {
                let variant_name = variant.ident.to_string();
                let fields = &variant.fields;
                let shape = crate::expand::tidy(&quote!(#fields).to_string());
                quote! {
                    ::hotswap::__private::FieldLayout::new(#variant_name, #shape, usize::MAX, 0)
                }
            })
            .collect(),
        Data::Union(data) => {
            return Err(syn::Error::new_spanned(
                data.union_token,
                format!("`#[derive(hotswap::{what})]` does not support unions"),
            ))
        }
    };
    // Consts, not statics: rustc copies a const into every image that uses it, as local data.
    // A thin patch binds data references to the program wherever the program exports the
    // symbol, so a static here would make the patch report the program's old layout.
    let migration = if migrate {
        let crate_name = std::env::var("CARGO_CRATE_NAME").unwrap_or_else(|_| "crate".into());
        let symbol = format_ident!(
            "__HOTSWAP_STATE_{}_{}_{}",
            crate_name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            ident,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        quote! {
            impl ::hotswap::__private::Migratable for #ident {
                const ENTRY: &'static ::hotswap::__private::StateEntry =
                    &::hotswap::__private::StateEntry::of::<#ident>();
            }
            // What the runtime finds in a patch (through the registration section, like the
            // entries of `#[hot]` functions; not exported, for the same reason). Its name keeps
            // the crate's and the type's spelling.
            #[allow(non_upper_case_globals)]
            static #symbol: ::hotswap::__private::StateEntry =
                ::hotswap::__private::StateEntry::of::<#ident>();
            ::hotswap::__register! { STATES,
                static __HOTSWAP_STATE_REGISTRATION: &::hotswap::__private::StateEntry = &#symbol;
            }
        }
    } else {
        quote!()
    };
    let hot = quote! {
        const _: () = {
            impl ::hotswap::__private::Described for #ident {
                const LAYOUT: &'static ::hotswap::__private::TypeLayout =
                    &::hotswap::__private::TypeLayout::new(
                        ::core::concat!(::core::module_path!(), "::", #name),
                        ::core::mem::size_of::<#ident>(),
                        ::core::mem::align_of::<#ident>(),
                        &[#(#fields),*],
                    );
            }
            #migration
        };
    };
    Ok(crate::select(hot, quote!()))
}
