//! What `#[hot]` refuses, and why. Every error points at the offending token.

use syn::visit::Visit;
use syn::{FnArg, Signature, Type};

/// `hotswap::__private::MAX_ARITY`: the most parameters a `#[hot]` function may have.
const MAX_PARAMETERS: usize = 12;

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
        match abi.name.as_ref().map(syn::LitStr::value).as_deref() {
            Some("Rust") => {}
            // `extern "C"` (or plain `extern`): the wrapper keeps the ABI and the
            // `no_mangle`/`export_name` attributes, so foreign code calls it by name; what it
            // calls through the slot is a Rust-ABI implementation.
            None | Some("C") if in_impl => {
                return Err(syn::Error::new_spanned(
                    abi,
                    "`#[hot]` methods must use the Rust ABI: foreign code calls a free function \
                     by its name, not a method; make a free `#[hot] extern \"C\" fn` that calls \
                     the method, or mark this method `#[hot(skip)]`",
                ));
            }
            None | Some("C") => {
                if let Some(token) = &sig.asyncness {
                    return Err(syn::Error::new_spanned(
                        token,
                        "`#[hot]` cannot be used on an `async extern` fn: foreign code cannot \
                         poll its future; make it a plain `async fn`",
                    ));
                }
            }
            Some(_) => {
                return Err(syn::Error::new_spanned(
                    abi,
                    "`#[hot]` supports only the Rust and C ABIs (`extern \"C\"`): for another \
                     ABI, make a plain `#[hot]` fn and call it from an `extern` shim written by \
                     hand",
                ));
            }
        }
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "`#[hot]` cannot be used on a variadic function",
        ));
    }
    // The boot and guarded shims of `hotswap::__private` (`shims.rs`) go up to this arity.
    if sig.inputs.len() > MAX_PARAMETERS {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "`#[hot]` supports functions of up to {MAX_PARAMETERS} parameters (`self` counts): \
                 pass some of these {} together in a struct or a tuple",
                sig.inputs.len()
            ),
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
            let allowed = match predicate {
                syn::WherePredicate::Lifetime(_) => true,
                // `where Self: Sized` (as trait methods have it): always true of the
                // implementing type of a non-generic impl.
                predicate => in_impl && is_self_sized(predicate),
            };
            if !allowed {
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
                return Err(syn::Error::new_spanned(receiver, METHOD_ALONE));
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

/// `Self: Sized`.
pub fn is_self_sized(predicate: &syn::WherePredicate) -> bool {
    let syn::WherePredicate::Type(predicate) = predicate else {
        return false;
    };
    let is_self = matches!(&predicate.bounded_ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"));
    is_self
        && predicate.lifetimes.is_none()
        && predicate.bounds.len() == 1
        && matches!(&predicate.bounds[0], syn::TypeParamBound::Trait(t)
            if t.path.is_ident("Sized") && matches!(t.modifier, syn::TraitBoundModifier::None))
}

/// Checks an `impl` block that `#[hot]` was put on: inherent or of a trait, with lifetimes as
/// its only generics.
pub fn impl_block(item: &syn::ItemImpl) -> syn::Result<()> {
    for param in &item.generics.params {
        if let syn::GenericParam::Lifetime(_) = param {
            continue;
        }
        let message = if item.trait_.is_some() {
            "`#[hot]` cannot be used on a generic trait impl: its methods are instantiated in \
             the crates that use them, so a patch cannot replace them; implement the trait for \
             each concrete type you need (`impl Speak for Wrapper<u32>`), or make the trait \
             method call a non-generic `#[hot]` fn"
        } else {
            "`#[hot]` cannot be used on a generic impl block: its methods are instantiated in \
             the crates that use them, so a patch cannot replace them"
        };
        return Err(syn::Error::new_spanned(param, message));
    }
    if let Some(where_clause) = &item.generics.where_clause {
        for predicate in &where_clause.predicates {
            if !matches!(predicate, syn::WherePredicate::Lifetime(_)) {
                return Err(syn::Error::new_spanned(
                    predicate,
                    "`#[hot]` impl blocks may only have lifetime bounds in their `where` clause",
                ));
            }
        }
    }
    if item.defaultness.is_some() {
        return Err(syn::Error::new_spanned(
            item.defaultness,
            "`#[hot]` cannot be used on a `default impl`",
        ));
    }
    Ok(())
}

const METHOD_ALONE: &str = "to make methods hot, put `#[hotswap::hot]` on the `impl` block \
     (inherent or `impl Trait for Type`) rather than on a single method: the macro needs the \
     type's name and the trait's; all the block's methods become hot";

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
        Some(span) => Err(syn::Error::new(span, METHOD_ALONE)),
        None => Ok(()),
    }
}
