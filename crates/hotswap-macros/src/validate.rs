//! What `#[hot]` refuses, and why. Every error points at the offending token.

use syn::visit::Visit;
use syn::{FnArg, Signature, Type};

/// Checks that a signature can sit behind a plain function pointer that a patch may replace.
/// `in_impl` is true for methods of an inherent `impl` block marked `#[hot]`.
pub fn signature(sig: &Signature, in_impl: bool) -> syn::Result<()> {
    if let Some(token) = &sig.constness {
        return Err(syn::Error::new_spanned(
            token,
            "`#[hot]` cannot be used on a `const fn`: it may be evaluated at compile time, where no \
             patch can reach it; remove `const` or keep this function out of hot code",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new_spanned(
            token,
            "`#[hot]` cannot be used on an `unsafe fn`: calls go through a safe function pointer; \
             make the `#[hot]` fn safe and put the unsafe operations in an `unsafe` block inside it",
        ));
    }
    if let Some(abi) = &sig.abi {
        let is_rust = abi.name.as_ref().is_some_and(|name| name.value() == "Rust");
        if !is_rust {
            return Err(syn::Error::new_spanned(
                abi,
                "`#[hot]` supports only the Rust ABI: a non-Rust ABI function is usually called \
                 from foreign code by its address, which a patch cannot redirect; wrap a plain \
                 `#[hot]` fn in an `extern` shim instead",
            ));
        }
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "`#[hot]` cannot be used on a variadic function",
        ));
    }
    for param in &sig.generics.params {
        match param {
            syn::GenericParam::Lifetime(_) => {}
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`#[hot]` cannot be used on a generic function: each instantiation is \
                     compiled into the crate that calls it, so a patch cannot replace it; make a \
                     non-generic `#[hot]` fn for each concrete type you need",
                ))
            }
        }
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        for predicate in &where_clause.predicates {
            if !matches!(predicate, syn::WherePredicate::Lifetime(_)) {
                return Err(syn::Error::new_spanned(
                    predicate,
                    "`#[hot]` functions may only have lifetime bounds in their `where` clause",
                ));
            }
        }
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) if !in_impl => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "to make methods hot, put `#[hotswap::hot]` on the inherent `impl` block \
                     rather than on a single method: the macro needs the type's name",
                ));
            }
            FnArg::Receiver(_) => {}
            FnArg::Typed(typed) => no_impl_trait(&typed.ty, "an argument")?,
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        no_impl_trait(ty, "a return type")?;
    }
    if !in_impl {
        no_self_type(sig)?;
    }
    Ok(())
}

/// Checks an `impl` block that `#[hot]` was put on.
pub fn impl_block(item: &syn::ItemImpl) -> syn::Result<()> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[hot]` cannot be used on a trait impl: trait methods are called through vtables \
             and generic code the patch cannot see; make the trait method call a `#[hot]` fn",
        ));
    }
    if let Some(param) = item.generics.params.first() {
        if let syn::GenericParam::Lifetime(_) = param {
            return Err(syn::Error::new_spanned(param, LIFETIME_IMPL));
        }
        return Err(syn::Error::new_spanned(
            param,
            "`#[hot]` cannot be used on a generic impl block: its methods are instantiated in \
             the crates that use them, so a patch cannot replace them",
        ));
    }
    struct Finder(Option<proc_macro2::Span>);
    impl<'a> Visit<'a> for Finder {
        fn visit_lifetime(&mut self, lifetime: &'a syn::Lifetime) {
            self.0.get_or_insert(lifetime.apostrophe);
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(&item.self_ty);
    if let Some(span) = finder.0 {
        return Err(syn::Error::new(span, LIFETIME_IMPL));
    }
    Ok(())
}

const LIFETIME_IMPL: &str = "`#[hot]` does not support impl blocks of types with lifetime \
     parameters yet: make the methods free `#[hot]` functions that take the value \
     (`fn text(view: &View<'_>) -> &str`)";

fn no_impl_trait(ty: &Type, what: &str) -> syn::Result<()> {
    struct Finder<'a>(Option<&'a syn::TypeImplTrait>);
    impl<'a> Visit<'a> for Finder<'a> {
        fn visit_type_impl_trait(&mut self, node: &'a syn::TypeImplTrait) {
            self.0.get_or_insert(node);
        }
    }
    let mut finder = Finder(None);
    finder.visit_type(ty);
    match finder.0 {
        Some(found) => Err(syn::Error::new_spanned(
            found,
            format!(
                "`#[hot]` cannot be used with `impl Trait` in {what}: it stands for a type \
                 that each version of the function may choose differently; name a concrete type \
                 or use `&dyn Trait` / `Box<dyn Trait>`"
            ),
        )),
        None => Ok(()),
    }
}

fn no_self_type(sig: &Signature) -> syn::Result<()> {
    struct Finder(Option<proc_macro2::Span>);
    impl<'a> Visit<'a> for Finder {
        fn visit_ident(&mut self, ident: &'a proc_macro2::Ident) {
            if ident == "Self" && self.0.is_none() {
                self.0 = Some(ident.span());
            }
        }
    }
    let mut finder = Finder(None);
    finder.visit_signature(sig);
    match finder.0 {
        Some(span) => Err(syn::Error::new(
            span,
            "to make methods hot, put `#[hotswap::hot]` on the inherent `impl` block rather \
             than on a single method: the macro needs the type's name",
        )),
        None => Ok(()),
    }
}
