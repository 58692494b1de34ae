//! Code generation for `#[hot]`.
//!
//! For `#[hot] pub fn step(state: &mut State) -> u32 { BODY }` hot mode generates:
//!
//! - `__hotswap_impl_step`: the original body under a hidden name;
//! - `__hotswap_slot_step`: a `Slot` (an atomic pointer) holding the current implementation,
//!   initialised to a one-time boot function that starts the runtime and then points the slot at
//!   the compiled-in implementation;
//! - `__hotswap_guarded_step`: the implementation wrapped so a panic is caught inside a
//!   self-contained patch library and raised again in the host (full library mode);
//! - an exported, unmangled `Entry` (the manifest line: name, signature fingerprint, slot and
//!   implementation pointers) registered in `hotswap`'s distributed slice;
//! - `step` itself with the original signature: one atomic load and one indirect call.
//!
//! Methods of a `#[hot] impl` block get the same items; for a trait impl see
//! [`trait_impl_block`].

use std::sync::atomic::{AtomicUsize, Ordering};

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{FnArg, ImplItem, Item, ItemFn, ReturnType, Signature, Type};

use crate::validate;

/// Makes entry symbols unique within one crate: rustc expands every macro of a crate in one
/// process, so a counter suffices. Symbol names need not be stable across builds: the loader
/// finds entries by prefix and matches them by their `name` field.
static ENTRY_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = Options::parse(attr)?;
    let parsed: Item = syn::parse2(item.clone())?;
    let hot = match parsed {
        Item::Fn(func) => free_fn(func, &options)?,
        Item::Impl(block) => impl_block(block, &options)?,
        Item::Mod(module) => {
            let hot = module_block(module.clone(), &options)?;
            // The cold branch is the module as written, but for the `#[hot(skip)]` marks on
            // its functions: `hot` may not be in scope inside the module.
            let cold = without_skip_marks(module);
            return Ok(crate::select(hot, cold));
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`#[hot]` goes on a function, an `impl` block or an inline `mod`",
            ))
        }
    };
    Ok(crate::select(hot, item))
}

/// Whether an attribute is `#[hot(skip)]` (or `#[hotswap::hot(skip)]`).
fn is_skip_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "hot")
        && matches!(&attr.meta, syn::Meta::List(list) if is_skip(&list.tokens))
}

/// Whether an attribute is `#[hot]` with any other argument (`#[hot]`, `#[hot(?Send)]`).
fn is_hot_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "hot")
        && !is_skip_attr(attr)
}

/// `#[hot] mod systems { … }`: every function of the module with a `pub` visibility (any:
/// `pub`, `pub(crate)`, `pub(super)`) becomes hot as `#[hot] fn` would; everything else stays
/// as written: private functions (helpers), functions marked `#[hot(skip)]` (the mark is
/// removed), functions and impl blocks carrying their own `#[hot]`, impl blocks, nested modules
/// (not made hot: put `#[hot]` on them too). A `pub fn` that cannot be hot (generic,
/// `impl Trait`, `const`, `unsafe`, an ABI other than Rust and C) is refused, naming it and the two ways out.
fn module_block(mut module: syn::ItemMod, options: &Options) -> syn::Result<TokenStream> {
    let Some((_, items)) = module.content.take() else {
        return Err(syn::Error::new_spanned(
            &module,
            "`#[hot]` on a module needs its body inline (`mod name { … }`): an attribute \
             cannot see the items of a module in another file; put `#[hot]` on the functions \
             of that file, or write the module inline",
        ));
    };
    let any_async = items.iter().any(
        |item| matches!(item, Item::Fn(func) if made_hot(func) && func.sig.asyncness.is_some()),
    );
    if !any_async {
        unused_local(options)?;
    }
    let cold = Options { local: None };
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Fn(mut func) if func.attrs.iter().any(is_skip_attr) => {
                func.attrs.retain(|attr| !is_skip_attr(attr));
                out.push(func.into_token_stream());
            }
            Item::Fn(func) if made_hot(&func) => {
                if let Err(err) = validate::signature(&func.sig, false) {
                    let name = &func.sig.ident;
                    let mut combined: Option<syn::Error> = None;
                    for e in err {
                        let e = syn::Error::new(
                            e.span(),
                            format!(
                                "`{name}` in a `#[hot] mod` cannot be hot: {e}; move it out of \
                                 the module or mark it `#[hot(skip)]` to keep it as written"
                            ),
                        );
                        match &mut combined {
                            Some(c) => c.combine(e),
                            None => combined = Some(e),
                        }
                    }
                    return Err(combined.unwrap());
                }
                let options = if func.sig.asyncness.is_some() {
                    options
                } else {
                    &cold
                };
                out.push(free_fn(func, options)?);
            }
            other => out.push(other.into_token_stream()),
        }
    }
    let (outer, inner): (Vec<_>, Vec<_>) = module
        .attrs
        .iter()
        .partition(|attr| matches!(attr.style, syn::AttrStyle::Outer));
    let vis = &module.vis;
    let unsafety = &module.unsafety;
    let ident = &module.ident;
    Ok(quote! {
        #(#outer)*
        #vis #unsafety mod #ident {
            #(#inner)*
            #(#out)*
        }
    })
}

/// A function of a `#[hot] mod` that becomes hot: `pub` (of any reach), and not already
/// carrying its own `#[hot]` or `#[hot(skip)]`.
fn made_hot(func: &ItemFn) -> bool {
    !matches!(func.vis, syn::Visibility::Inherited)
        && !func
            .attrs
            .iter()
            .any(|attr| is_hot_attr(attr) || is_skip_attr(attr))
}

/// The module as written, without the `#[hot(skip)]` marks of its functions.
fn without_skip_marks(mut module: syn::ItemMod) -> TokenStream {
    if let Some((_, items)) = &mut module.content {
        for item in items {
            if let Item::Fn(func) = item {
                func.attrs.retain(|attr| !is_skip_attr(attr));
            }
        }
    }
    module.into_token_stream()
}

/// `skip`: the argument of `#[hot(skip)]`.
pub fn is_skip(attr: &TokenStream) -> bool {
    let mut trees = attr.clone().into_iter();
    matches!((trees.next(), trees.next()), (Some(TokenTree::Ident(ident)), None) if ident == "skip")
}

/// Whether a method of a `#[hot]` impl block is marked `#[hot(skip)]` (or `#[hotswap::hot(skip)]`):
/// it stays as written.
fn skipped(method: &syn::ImplItemFn) -> bool {
    method.attrs.iter().any(is_skip_attr)
}

/// What `#[hot]` was given: nothing, or `?Send` (the futures of its `async fn`s need not be
/// `Send`). (`#[hot(skip)]` never gets here: see [`is_skip`] and the attribute in `lib.rs`.)
pub struct Options {
    /// `?Send`, as written (an error when nothing is async).
    local: Option<TokenStream>,
}

impl Options {
    fn parse(attr: TokenStream) -> syn::Result<Options> {
        if attr.is_empty() {
            return Ok(Options { local: None });
        }
        let text = attr.to_string().replace(' ', "");
        if text == "?Send" {
            return Ok(Options { local: Some(attr) });
        }
        Err(syn::Error::new_spanned(
            attr,
            "`#[hot]` takes no arguments but `?Send` or `skip`: `#[hot(?Send)]` for an `async fn` \
             whose future need not be `Send`, `#[hot(skip)]` on a method of a `#[hot]` impl \
             block to keep that method cold",
        ))
    }
}

/// What an `async fn` becomes in hot mode: the slot's functions return its future boxed.
struct Async {
    /// The signature of the implementation (and of the slot, boot and guarded functions): every
    /// elided lifetime of the arguments named, each lifetime outliving the future's, no `async`,
    /// and `-> BoxFuture<'fut, R>`.
    hot_sig: Signature,
    /// `R`, the output of the future as written (`()` when there is none).
    output: Type,
    /// `#[hot(?Send)]`.
    local: bool,
    /// The future's lifetime: `'__hotswap_fut`, or `'static` when the arguments borrow nothing.
    fut: syn::Lifetime,
}

impl Async {
    fn new(sig: &Signature, local: bool) -> Async {
        let mut hot_sig = sig.clone();
        hot_sig.asyncness = None;
        let mut namer = LifetimeNamer { fresh: Vec::new() };
        // `&self`'s lifetime, which elided lifetimes of the output take (as in a method).
        let mut self_lifetime = None;
        for input in hot_sig.inputs.iter_mut() {
            match input {
                FnArg::Receiver(receiver) => {
                    if let Some((_, lifetime)) = &mut receiver.reference {
                        if lifetime.as_ref().is_none_or(|l| l.ident == "_") {
                            let named = namer.next();
                            *lifetime = Some(named.clone());
                            if let Type::Reference(reference) = &mut *receiver.ty {
                                reference.lifetime = Some(named);
                            }
                        }
                        self_lifetime = lifetime.clone();
                    } else if receiver.colon_token.is_some() {
                        namer.visit_type_mut(&mut receiver.ty);
                    }
                }
                FnArg::Typed(typed) => namer.visit_type_mut(&mut typed.ty),
            }
        }
        for lifetime in namer.fresh {
            hot_sig
                .generics
                .params
                .push(syn::GenericParam::Lifetime(syn::LifetimeParam::new(
                    lifetime,
                )));
        }
        let named: Vec<syn::Lifetime> = hot_sig
            .generics
            .lifetimes()
            .map(|param| param.lifetime.clone())
            .collect();
        let fut = if named.is_empty() {
            syn::Lifetime::new("'static", Span::call_site())
        } else {
            let fut = syn::Lifetime::new("'__hotswap_fut", Span::call_site());
            hot_sig
                .generics
                .params
                .push(syn::GenericParam::Lifetime(syn::LifetimeParam::new(
                    fut.clone(),
                )));
            let where_clause = hot_sig.generics.make_where_clause();
            for lifetime in &named {
                where_clause
                    .predicates
                    .push(syn::parse_quote!(#lifetime: #fut));
            }
            fut
        };
        let output: Type = match (&sig.output, &self_lifetime) {
            (ReturnType::Default, _) => syn::parse_quote!(()),
            // The generated free functions take more than the receiver's lifetime when the
            // type has lifetimes or another argument borrows: name the one method elision picks.
            (ReturnType::Type(_, ty), Some(lifetime)) => name_elided_lifetimes_as(ty, lifetime),
            (ReturnType::Type(_, ty), None) => (**ty).clone(),
        };
        let boxed = if local {
            quote!(LocalBoxFuture)
        } else {
            quote!(BoxFuture)
        };
        hot_sig.output = syn::parse_quote!(-> ::hotswap::__private::#boxed<#fut, #output>);
        Async {
            hot_sig,
            output,
            local,
            fut,
        }
    }

    /// What callers see: `impl Future<Output = R> + Send + 'fut`, capturing every lifetime.
    fn wrapper_output(&self) -> ReturnType {
        let output = &self.output;
        let fut = &self.fut;
        let send = if self.local {
            quote!()
        } else {
            quote!(+ ::core::marker::Send)
        };
        let captured: Vec<&syn::Lifetime> = self
            .hot_sig
            .generics
            .lifetimes()
            .map(|param| &param.lifetime)
            .collect();
        syn::parse_quote!(
            -> impl ::core::future::Future<Output = #output> #send + #fut + use<#(#captured),*>
        )
    }
}

/// Names the elided lifetimes of an argument's type (`&T`, `'_`), as `async fn` does implicitly,
/// so that the boxed future can say it outlives none of them. Elided lifetimes of `fn(&T)` and
/// `Fn(&T)` are higher-ranked, and left alone.
struct LifetimeNamer {
    fresh: Vec<syn::Lifetime>,
}

impl LifetimeNamer {
    fn next(&mut self) -> syn::Lifetime {
        let lifetime = syn::Lifetime::new(
            &format!("'__hotswap_life{}", self.fresh.len()),
            Span::call_site(),
        );
        self.fresh.push(lifetime.clone());
        lifetime
    }
}

impl VisitMut for LifetimeNamer {
    fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
        if reference.lifetime.is_none() {
            reference.lifetime = Some(self.next());
        }
        syn::visit_mut::visit_type_reference_mut(self, reference);
    }
    fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.next();
        }
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}

/// One function to make hot, with everything the generated items need to know about it.
struct HotFn<'a> {
    sig: &'a Signature,
    /// The implementing type for methods of a `#[hot] impl` block.
    self_ty: Option<&'a Type>,
    /// The trait, for methods of a `#[hot] impl Trait for Type` block.
    trait_: Option<&'a syn::Path>,
    /// The impl block's generics (lifetimes only), which the generated functions declare too.
    impl_generics: Option<&'a syn::Generics>,
    /// For a trait method: the impl block's associated types and consts as written, part of
    /// the signature (a patch that changes one changes what the program's code assumes).
    assoc: String,
    /// For an `async fn`: the boxed shape of its slot.
    asyncness: Option<Async>,
}

impl HotFn<'_> {
    /// The signature of the functions behind the slot (implementation, boot, guarded shim).
    fn dispatch_sig(&self) -> &Signature {
        match &self.asyncness {
            Some(asyncness) => &asyncness.hot_sig,
            None => self.sig,
        }
    }

    fn base_name(&self) -> String {
        match self.self_ty {
            Some(ty) => format!("{}_{}", sanitize(&type_ident(ty)), self.sig.ident),
            None => self.sig.ident.to_string(),
        }
    }

    fn item(&self, kind: &str) -> Ident {
        format_ident!("__hotswap_{}_{}", kind, self.base_name())
    }

    fn impl_name(&self) -> Ident {
        format_ident!("__hotswap_impl_{}", self.sig.ident)
    }

    /// Path to the implementation from module scope.
    fn impl_path(&self) -> TokenStream {
        let name = self.impl_name();
        match (self.self_ty, self.trait_) {
            (Some(ty), Some(_)) => {
                let ty = erase_lifetimes(ty);
                let helper = self.helper_trait();
                quote!(<#ty as #helper>::#name)
            }
            (Some(ty), None) => {
                let ty = erase_lifetimes(ty);
                quote!(<#ty>::#name)
            }
            (None, _) => quote!(#name),
        }
    }

    /// The hidden trait that holds a trait method's implementation (see [`trait_impl_block`]),
    /// with `'_` for the impl block's lifetimes.
    fn helper_trait(&self) -> TokenStream {
        let lifetimes: Vec<TokenStream> =
            self.impl_lifetimes().iter().map(|_| quote!('_)).collect();
        if lifetimes.is_empty() {
            quote!(__HotswapImpl)
        } else {
            quote!(__HotswapImpl<#(#lifetimes),*>)
        }
    }

    fn impl_lifetimes(&self) -> Vec<&syn::LifetimeParam> {
        self.impl_generics
            .map(|g| g.lifetimes().collect())
            .unwrap_or_default()
    }

    /// The generics of the generated functions: the impl block's lifetimes, the method's (for an
    /// `async fn`, those of [`Async::hot_sig`]), and `'__hotswap_self` when a `&self` receiver
    /// gets that name (see [`HotFn::self_lifetime`]).
    fn generics(&self) -> (TokenStream, TokenStream) {
        let sig = self.dispatch_sig();
        let mut params: Vec<TokenStream> = Vec::new();
        if self.self_lifetime() {
            params.push(quote!('__hotswap_self));
        }
        for param in self.impl_lifetimes() {
            params.push(quote!(#param));
        }
        for param in &sig.generics.params {
            params.push(quote!(#param));
        }
        let mut predicates: Vec<TokenStream> = Vec::new();
        for clause in [
            self.impl_generics.and_then(|g| g.where_clause.as_ref()),
            sig.generics.where_clause.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            for predicate in &clause.predicates {
                // `Self: Sized` holds of the implementing type, and `Self` has no meaning in
                // the generated free functions.
                if !validate::is_self_sized(predicate) {
                    predicates.push(quote!(#predicate));
                }
            }
        }
        let params = if params.is_empty() {
            quote!()
        } else {
            quote!(<#(#params),*>)
        };
        let clause = if predicates.is_empty() {
            quote!()
        } else {
            quote!(where #(#predicates),*)
        };
        (params, clause)
    }

    /// Whether the receiver is `&self` / `&mut self` without a lifetime while the implementing
    /// type has lifetimes of its own: a free function taking `&View<'a>` and returning `&str`
    /// has no single input lifetime to give the result, so the generated functions name the
    /// receiver's lifetime `'__hotswap_self` and give it to the elided output lifetimes, as
    /// method elision does. (An `async fn`'s receiver already has a name: see [`Async::new`].)
    fn self_lifetime(&self) -> bool {
        self.self_ty.is_some_and(has_lifetime)
            && self.dispatch_sig().inputs.iter().any(|arg| {
                matches!(arg, FnArg::Receiver(r) if r.reference.as_ref().is_some_and(|(_, l)| l.is_none()) && r.colon_token.is_none())
            })
    }

    /// Argument types with `Self` (and receivers) replaced by the implementing type.
    fn arg_types(&self) -> Vec<Type> {
        self.arg_types_of(self.sig)
    }

    fn arg_types_of(&self, sig: &Signature) -> Vec<Type> {
        sig.inputs
            .iter()
            .map(|arg| match arg {
                FnArg::Receiver(receiver) if self.self_lifetime() => {
                    let mut ty = self.concrete(&receiver.ty);
                    if let Type::Reference(reference) = &mut ty {
                        reference.lifetime = Some(syn::parse_quote!('__hotswap_self));
                    }
                    ty
                }
                FnArg::Receiver(receiver) => self.concrete(&receiver.ty),
                FnArg::Typed(typed) => self.concrete(&typed.ty),
            })
            .collect()
    }

    /// The return type as callers see it (for an `async fn`, its future's output).
    fn return_type(&self) -> Option<Type> {
        match (&self.asyncness, &self.sig.output) {
            (Some(asyncness), _) => Some(self.concrete(&asyncness.output)),
            (None, ReturnType::Default) => None,
            (None, ReturnType::Type(_, ty)) => Some(self.concrete(ty)),
        }
    }

    /// The return type of the functions behind the slot.
    fn dispatch_return(&self) -> Option<Type> {
        match &self.dispatch_sig().output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) if self.self_lifetime() => {
                Some(name_elided_lifetimes(&self.concrete(ty)))
            }
            ReturnType::Type(_, ty) => Some(self.concrete(ty)),
        }
    }

    fn concrete(&self, ty: &Type) -> Type {
        match self.self_ty {
            Some(self_ty) => {
                let replaced = replace_self(ty.to_token_stream(), self_ty, self.trait_);
                syn::parse2(replaced).expect("replacing `Self` keeps a type a type")
            }
            None => ty.clone(),
        }
    }

    /// A human-readable signature, also the text the fingerprint is computed from. Parameter
    /// names are left out (renaming one changes nothing at the call) and lifetimes are
    /// normalised to `'_`.
    fn signature_text(&self) -> String {
        let args: Vec<String> = self
            .arg_types()
            .iter()
            .map(|ty| tidy(&erase_lifetimes(ty).to_token_stream().to_string()))
            .collect();
        let ret = match self.return_type() {
            Some(ty) => format!(
                " -> {}",
                tidy(&erase_lifetimes(&ty).to_token_stream().to_string())
            ),
            None => String::new(),
        };
        let prefix = match &self.asyncness {
            None => "",
            Some(asyncness) if asyncness.local => "async(?Send) ",
            Some(_) => "async ",
        };
        // Callers of an `extern "C"` fn call it with the C convention: a change of ABI is a
        // change of signature (`extern` alone is `extern "C"`).
        let abi = if is_c_abi(self.sig) {
            "extern \"C\" "
        } else {
            ""
        };
        format!("{prefix}{abi}fn({}){}{}", args.join(", "), ret, self.assoc)
    }

    /// Module-level items shared by free functions and methods: slot, boot, guarded shim,
    /// `types`/`pointees` and manifest entry, written by `hotswap::__hot_items!` from what this
    /// function works out (see that macro for why it is a template).
    fn support_items(&self) -> TokenStream {
        let names = ["slot", "guarded", "types", "pointees"].map(|kind| self.item(kind));
        let impl_path = self.impl_path();
        let (generics, where_clause) = self.generics();
        let types = self.arg_types_of(self.dispatch_sig());
        let args: Vec<Ident> = (0..types.len())
            .map(|i| format_ident!("__hotswap_arg{}", i))
            .collect();
        // The boot and guarded shims of `hotswap::__private` for this arity (`validate.rs`
        // refuses more parameters than they go to).
        let boot = format_ident!("boot{}", types.len());
        let output = match self.dispatch_return() {
            Some(ty) => quote!(-> #ty),
            None => quote!(),
        };

        let crate_name = std::env::var("CARGO_CRATE_NAME").unwrap_or_else(|_| "crate".into());
        let counter = ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed);
        let entry = format_ident!(
            "__hotswap_entry_v1_{}_{}_{}",
            sanitize(&crate_name),
            self.base_name(),
            counter
        );
        // What the caller hands over and gets back, as written (for an `async fn`: the
        // arguments and the future's output).
        let layout_types: Vec<Type> = self
            .arg_types()
            .iter()
            .chain(self.return_type().iter())
            .map(erase_lifetimes)
            .collect();
        let type_count = layout_types.len();
        // The fingerprint's layouts come from the implementation's own types (`shims.rs`).
        let fingerprint = match &self.asyncness {
            Some(_) => format_ident!("fingerprint_async{}", types.len()),
            None => format_ident!("fingerprint{}", types.len()),
        };
        // For each position: the described type behind any references. A position no
        // description can exist for (`u64`, `&str`, `!`…) is left out: `types` answers null for
        // it, as for any position it does not list, and with none listed there is no `types`.
        let described: Vec<TokenStream> = layout_types
            .iter()
            .enumerate()
            .filter(|(_, ty)| !never_described(ty))
            .map(|(i, ty)| {
                let inner = strip_references(ty);
                quote!(#i: #inner)
            })
            .collect();
        let references: u64 = layout_types
            .iter()
            .enumerate()
            .filter(|(i, ty)| *i < 64 && is_reference(ty))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        // For each position that is a reference (the runtime asks for no other): its name and
        // what it is behind its references.
        let pointed: Vec<TokenStream> = layout_types
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && references & (1 << i) != 0)
            .map(|(i, ty)| {
                let inner = strip_references(ty);
                let name = tidy(&inner.to_token_stream().to_string());
                quote!(#i: #name #inner)
            })
            .collect();
        let display_name = match (self.self_ty, self.trait_) {
            (Some(ty), Some(trait_)) => format!(
                "<{} as {}>::{}",
                last_name(ty),
                last_name(&Type::Path(syn::TypePath {
                    qself: None,
                    path: trait_.clone(),
                })),
                self.sig.ident
            ),
            (Some(ty), None) => format!("{}::{}", type_display(ty), self.sig.ident),
            (None, _) => self.sig.ident.to_string(),
        };
        let signature = self.signature_text();
        let [slot, guarded, describe, pointees] = names;
        // What the entry points at (the functions written for this one, or the shared ones),
        // and the template's arms for those written for this one.
        let mut extra = TokenStream::new();
        let types_ref = if described.is_empty() {
            quote!(::hotswap::__private::no_types)
        } else {
            extra.extend(quote!(
                ::hotswap::__hot_items! { @types #describe { #(#described),* } }
            ));
            quote!(#describe)
        };
        let pointees_ref = if pointed.is_empty() {
            quote!(::hotswap::__private::no_pointees)
        } else {
            extra.extend(quote!(
                ::hotswap::__hot_items! { @pointees #pointees { #(#pointed),* } }
            ));
            quote!(#pointees)
        };
        let guarded_ref = match &self.asyncness {
            Some(_) => {
                extra.extend(quote! {
                    ::hotswap::__hot_items! { @guarded_async #guarded { #impl_path }
                        { #generics } { #where_clause } { #(#args: #types),* } { #output }
                        #display_name }
                });
                quote!(#guarded as *const ())
            }
            None => {
                let of = format_ident!("guarded{}", types.len());
                // SAFETY (in the expansion): the implementation is a function item.
                quote!(unsafe { ::hotswap::__private::#of(#impl_path) })
            }
        };
        quote! {
            ::hotswap::__hot_items! {
                names { #slot #entry }
                implementation { #impl_path } boot #boot
                name #display_name signature #signature
                fingerprint #fingerprint type_count #type_count references #references
                refs { types #types_ref, pointees #pointees_ref, guarded #guarded_ref }
            }
            #extra
        }
    }

    /// The wrapper: the original signature, dispatching through the slot.
    fn wrapper(&self, attrs: &[syn::Attribute], vis: &syn::Visibility) -> TokenStream {
        self.wrapper_with(attrs, vis, quote!())
    }

    /// [`HotFn::wrapper`] with `items` at the start of its body.
    fn wrapper_with(
        &self,
        attrs: &[syn::Attribute],
        vis: &syn::Visibility,
        items: TokenStream,
    ) -> TokenStream {
        let slot = self.item("slot");
        let mut sig = self.dispatch_sig().clone();
        if let Some(asyncness) = &self.asyncness {
            sig.output = asyncness.wrapper_output();
        }
        let mut call_args = Vec::new();
        for (i, arg) in sig.inputs.iter_mut().enumerate() {
            match arg {
                FnArg::Receiver(receiver) => {
                    // Drop the binding `mut` of `mut self` (the wrapper never mutates `self`),
                    // but not the `mut` of `&mut self`, which is part of the receiver's type.
                    if receiver.reference.is_none() {
                        receiver.mutability = None;
                    }
                    call_args.push(quote!(self));
                }
                FnArg::Typed(typed) => {
                    let name = format_ident!("__hotswap_arg{}", i);
                    *typed.pat = syn::parse_quote!(#name);
                    call_args.push(quote!(#name));
                }
            }
        }
        let holes: Vec<TokenStream> = call_args.iter().map(|_| quote!(_)).collect();
        let impl_ref = match (self.self_ty, self.trait_) {
            (Some(_), Some(_)) => self.impl_path(),
            (Some(_), None) => {
                let name = self.impl_name();
                quote!(Self::#name)
            }
            (None, _) => self.impl_path(),
        };
        quote! {
            #(#attrs)*
            // `always`: at opt-level 0 plain `#[inline]` still leaves a call to the wrapper.
            #[inline(always)]
            #vis #sig {
                #items
                // The implementation's exact function pointer type, which the slot holds.
                let mut __hotswap_f: fn(#(#holes),*) -> _ = #impl_ref;
                // The slot only ever holds the boot function, the compiled-in implementation
                // or a patch's implementation whose signature fingerprint matched this one, all
                // of this exact function pointer type (`__load_slot!`'s safety contract).
                ::hotswap::__load_slot!(#slot => __hotswap_f);
                __hotswap_f(#(#call_args),*)
            }
        }
    }

    /// The original function under its hidden name, with the Rust ABI: for an `extern "C"` fn
    /// only the wrapper (which keeps the function's attributes, `no_mangle` included) is what
    /// foreign code calls; the slot, boot function and guarded shim are Rust functions too.
    fn implementation(&self, vis: &syn::Visibility, block: &syn::Block) -> TokenStream {
        if let Some(asyncness) = &self.asyncness {
            return self.async_implementation(asyncness, vis, block);
        }
        let mut sig = self.sig.clone();
        sig.ident = self.impl_name();
        sig.abi = None;
        quote! {
            #[doc(hidden)]
            #[inline(never)]
            #[allow(non_snake_case, clippy::too_many_arguments)]
            #vis #sig #block
        }
    }
}

impl HotFn<'_> {
    /// The body of an `async fn` behind the slot: a plain function taking the same arguments
    /// and returning the body's future boxed. As in an `async fn`, every argument moves into the
    /// future (patterns are bound there, in order) and the body runs at the first poll.
    fn async_implementation(
        &self,
        asyncness: &Async,
        vis: &syn::Visibility,
        block: &syn::Block,
    ) -> TokenStream {
        let mut sig = asyncness.hot_sig.clone();
        sig.ident = self.impl_name();
        let mut bindings = Vec::new();
        for (i, arg) in sig.inputs.iter_mut().enumerate() {
            match arg {
                FnArg::Receiver(_) => bindings.push(quote!(let _ = &self;)),
                FnArg::Typed(typed) => {
                    let name = format_ident!("__hotswap_arg{}", i);
                    let pat = std::mem::replace(&mut *typed.pat, syn::parse_quote!(#name));
                    bindings.push(quote! {
                        let #name = #name;
                        let #pat = #name;
                    });
                }
            }
        }
        let output = &asyncness.output;
        let boxed = if asyncness.local {
            quote!(LocalBoxFuture)
        } else {
            quote!(BoxFuture)
        };
        // A body that is not `Send` fails where it is boxed: give that argument the function's
        // name, so the error points at the function.
        let span = self.sig.ident.span();
        let boxing = quote_spanned!(span=> ::hotswap::__private::#boxed::new(__hotswap_future));
        quote! {
            #[doc(hidden)]
            #[inline(never)]
            #[allow(non_snake_case, clippy::too_many_arguments, clippy::let_and_return)]
            #vis #sig {
                let __hotswap_future = async move {
                    #(#bindings)*
                    let __hotswap_output: #output = #block;
                    __hotswap_output
                };
                #boxing
            }
        }
    }
}

fn free_fn(func: ItemFn, options: &Options) -> syn::Result<TokenStream> {
    validate::signature(&func.sig, false)?;
    if func.sig.asyncness.is_none() {
        unused_local(options)?;
    }
    let asyncness = async_shape(&func.sig, options)?;
    let hot = HotFn {
        sig: &func.sig,
        self_ty: None,
        trait_: None,
        impl_generics: None,
        assoc: String::new(),
        asyncness,
    };
    let implementation = hot.implementation(&func.vis, &func.block);
    let support = hot.support_items();
    let wrapper = hot.wrapper(&func.attrs, &func.vis);
    Ok(quote! {
        #implementation
        #support
        #wrapper
    })
}

/// `extern "C" fn` or `extern fn` (the C ABI): the wrapper keeps it, nothing else does.
fn is_c_abi(sig: &Signature) -> bool {
    sig.abi
        .as_ref()
        .is_some_and(|abi| abi.name.as_ref().is_none_or(|name| name.value() == "C"))
}

/// The boxed shape of an `async fn`; `?Send` on a function that is not async is an error.
fn async_shape(sig: &Signature, options: &Options) -> syn::Result<Option<Async>> {
    match (&sig.asyncness, &options.local) {
        (Some(_), local) => Ok(Some(Async::new(sig, local.is_some()))),
        (None, _) => Ok(None),
    }
}

/// `?Send` given to a function, or an `impl` block, with nothing async in it.
fn unused_local(options: &Options) -> syn::Result<()> {
    match &options.local {
        Some(tokens) => Err(syn::Error::new_spanned(
            tokens,
            "`?Send` applies to the future of an `async fn`; there is none here",
        )),
        None => Ok(()),
    }
}

fn impl_block(block: syn::ItemImpl, options: &Options) -> syn::Result<TokenStream> {
    validate::impl_block(&block)?;
    let any_async = block
        .items
        .iter()
        .any(|item| matches!(item, ImplItem::Fn(method) if method.sig.asyncness.is_some()));
    if !any_async {
        unused_local(options)?;
    }
    if block.trait_.is_some() {
        return trait_impl_block(block);
    }
    let self_ty = &*block.self_ty;
    let mut methods = Vec::new();
    let mut support = Vec::new();
    let mut others = Vec::new();
    for item in &block.items {
        match item {
            ImplItem::Fn(method) if skipped(method) => others.push(item),
            ImplItem::Fn(method) => {
                validate::signature(&method.sig, true)?;
                let asyncness = async_shape(&method.sig, options)?;
                let hot = HotFn {
                    sig: &method.sig,
                    self_ty: Some(self_ty),
                    trait_: None,
                    impl_generics: Some(&block.generics),
                    assoc: String::new(),
                    asyncness,
                };
                methods.push(hot.implementation(&method.vis, &method.block));
                methods.push(hot.wrapper(&method.attrs, &method.vis));
                support.push(hot.support_items());
            }
            other => others.push(other),
        }
    }
    let attrs = &block.attrs;
    let unsafety = &block.unsafety;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    Ok(quote! {
        #(#attrs)*
        #unsafety impl #impl_generics #self_ty #where_clause {
            #(#others)*
            #(#methods)*
        }
        #(#support)*
    })
}

/// `#[hot] impl Trait for Type`: each method stays in the trait impl as the wrapper (so vtables
/// and generic code call the wrapper), and everything else lives inside the wrapper's body:
///
/// ```text
/// impl Speak for Dog {
///     type Out = u64;                       // associated items stay as written
///     fn speak(&self) -> String {           // the wrapper: load the slot, call
///         trait __HotswapImpl: Speak { fn __hotswap_impl_speak(&self) -> String; }
///         impl __HotswapImpl for Dog { fn __hotswap_impl_speak(&self) -> String { BODY } }
///         static __hotswap_slot_…; fn __hotswap_boot_…; …; static __hotswap_entry_…;
///         …
///     }
/// }
/// ```
///
/// The body keeps its meaning (`self`, `Self`, `Self::Out` through the supertrait), and the
/// implementation's symbol names its wrapper: `<game::Dog as game::Speak>::speak` (or
/// `game::sys::<impl game::Speak for game::Dog>::speak` when the impl sits in a third module),
/// then `::__HotswapImpl>::__hotswap_impl_speak` — which the CLI's checks read back. Two traits
/// with a method of the same name on one type get separate items (each in its own wrapper).
fn trait_impl_block(block: syn::ItemImpl) -> syn::Result<TokenStream> {
    let self_ty = &*block.self_ty;
    let trait_path = &block.trait_.as_ref().expect("a trait impl").1;
    let assoc: Vec<String> = block
        .items
        .iter()
        .filter(|item| matches!(item, ImplItem::Type(_) | ImplItem::Const(_)))
        .map(|item| tidy(&item.to_token_stream().to_string()).replace(" : ", ": "))
        .collect();
    let assoc = if assoc.is_empty() {
        String::new()
    } else {
        format!(
            " where <{} as {}>: {{ {} }}",
            tidy(&self_ty.to_token_stream().to_string()),
            tidy(&trait_path.to_token_stream().to_string()),
            assoc.join(" ")
        )
    };
    let lifetimes: Vec<&syn::LifetimeParam> = block.generics.lifetimes().collect();
    let lifetime_names: Vec<&syn::Lifetime> = lifetimes.iter().map(|l| &l.lifetime).collect();
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let helper_params = if lifetimes.is_empty() {
        quote!()
    } else {
        quote!(<#(#lifetimes),*>)
    };
    let helper_args = if lifetimes.is_empty() {
        quote!()
    } else {
        quote!(<#(#lifetime_names),*>)
    };
    let mut items = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(method) = item else {
            items.push(item.to_token_stream());
            continue;
        };
        if skipped(method) {
            items.push(item.to_token_stream());
            continue;
        }
        validate::signature(&method.sig, true)?;
        if let Some(asyncness) = &method.sig.asyncness {
            return Err(syn::Error::new_spanned(
                asyncness,
                "`#[hot]` does not support `async fn` in a trait impl yet: mark this method \
                 `#[hot(skip)]` to keep it cold, or call a `#[hot] async fn` from it",
            ));
        }
        let hot = HotFn {
            sig: &method.sig,
            self_ty: Some(self_ty),
            trait_: Some(trait_path),
            impl_generics: Some(&block.generics),
            assoc: assoc.clone(),
            asyncness: None,
        };
        let mut declaration = method.sig.clone();
        declaration.ident = hot.impl_name();
        for (i, arg) in declaration.inputs.iter_mut().enumerate() {
            match arg {
                FnArg::Receiver(receiver) if receiver.reference.is_none() => {
                    receiver.mutability = None;
                }
                FnArg::Receiver(_) => {}
                FnArg::Typed(typed) => {
                    let name = format_ident!("__hotswap_arg{}", i);
                    *typed.pat = syn::parse_quote!(#name);
                }
            }
        }
        let implementation = hot.implementation(&syn::Visibility::Inherited, &method.block);
        let support = hot.support_items();
        let nested = quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types, clippy::too_many_arguments)]
            trait __HotswapImpl #helper_params: #trait_path {
                #declaration;
            }
            impl #impl_generics __HotswapImpl #helper_args for #self_ty #where_clause {
                #implementation
            }
            #support
        };
        items.push(hot.wrapper_with(&method.attrs, &syn::Visibility::Inherited, nested));
    }
    let attrs = &block.attrs;
    let unsafety = &block.unsafety;
    Ok(quote! {
        #(#attrs)*
        #unsafety impl #impl_generics #trait_path for #self_ty #where_clause {
            #(#items)*
        }
    })
}

/// The type as written without its lifetime arguments (`View<'a>` → `View`, `model::Counter`,
/// `Wrapper<u32>`): how entry names show an inherent impl's type (rustc's debug information
/// names types without lifetimes too).
fn type_display(ty: &Type) -> String {
    tidy(
        &without_lifetime_args(ty, false)
            .to_token_stream()
            .to_string(),
    )
}

/// The type with every path cut to its last segment and without lifetime arguments
/// (`model::View<'a>` → `View`, `Wrapper<crate::Item>` → `Wrapper<Item>`): how entry names show
/// a trait impl's type. The CLI reads the same from the symbols
/// (`<game::model::View as game::Speak>::…`, see `reach::names::TraitMethod::entry_name`).
fn last_name(ty: &Type) -> String {
    tidy(
        &without_lifetime_args(ty, true)
            .to_token_stream()
            .to_string(),
    )
}

/// `ty` without lifetime generic arguments, and with each path cut to its last segment if
/// `short`.
fn without_lifetime_args(ty: &Type, short: bool) -> Type {
    struct Cutter(bool);
    impl VisitMut for Cutter {
        fn visit_path_mut(&mut self, path: &mut syn::Path) {
            if self.0 && path.segments.len() > 1 {
                let last = path.segments.pop().map(syn::punctuated::Pair::into_value);
                path.segments.clear();
                path.segments.extend(last);
                path.leading_colon = None;
            }
            for segment in &mut path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &mut segment.arguments {
                    let kept: syn::punctuated::Punctuated<syn::GenericArgument, syn::Token![,]> =
                        args.args
                            .iter()
                            .filter(|a| !matches!(a, syn::GenericArgument::Lifetime(_)))
                            .cloned()
                            .collect();
                    if kept.is_empty() {
                        segment.arguments = syn::PathArguments::None;
                    } else {
                        args.args = kept;
                    }
                }
            }
            syn::visit_mut::visit_path_mut(self, path);
        }
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            reference.lifetime = None;
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
    }
    let mut ty = ty.clone();
    Cutter(short).visit_type_mut(&mut ty);
    ty
}

/// Whether a type names a lifetime (`View<'a>`, `View<'_>`, `&'a str`).
fn has_lifetime(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'a> syn::visit::Visit<'a> for Finder {
        fn visit_lifetime(&mut self, _: &'a syn::Lifetime) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

/// Gives the elided lifetimes of a return type (`&str`, `Item<'_>`) the name
/// `'__hotswap_self`, outside `fn(..)` types and `Fn(..)` bounds (which elide on their own).
fn name_elided_lifetimes(ty: &Type) -> Type {
    name_elided_lifetimes_as(ty, &syn::parse_quote!('__hotswap_self))
}

/// [`name_elided_lifetimes`] with another name.
fn name_elided_lifetimes_as(ty: &Type, name: &syn::Lifetime) -> Type {
    struct Namer<'n>(&'n syn::Lifetime);
    impl VisitMut for Namer<'_> {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            if reference.lifetime.is_none() {
                reference.lifetime = Some(self.0.clone());
            }
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = self.0.clone();
            }
        }
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut ty = ty.clone();
    Namer(name).visit_type_mut(&mut ty);
    ty
}

/// The last identifier of a type's path, for naming generated items.
/// The type's path as written (`S`, `shapes::S`), so that `impl a::S` and `impl b::S` in one
/// module get different names.
fn type_ident(ty: &Type) -> String {
    tidy(&quote!(#ty).to_string())
}

/// Writes a type as people do (`&mut State`, `Vec<u8>`) rather than as spaced-out tokens.
pub(crate) fn tidy(tokens: &str) -> String {
    let mut text = tokens.to_owned();
    for (from, to) in [
        ("& '", "&'"),
        ("& mut ", "&mut "),
        ("& ", "&"),
        (" :: ", "::"),
        (":: ", "::"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        while text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Replaces the `Self` keyword in a token stream by the implementing type; in a trait impl,
/// `Self::Item` by `<Type as Trait>::Item` (a plain `Type::Item` would be ambiguous).
fn replace_self(tokens: TokenStream, self_ty: &Type, trait_: Option<&syn::Path>) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out: Vec<TokenTree> = Vec::with_capacity(trees.len());
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) if ident == "Self" => {
                let path_follows = matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':')
                    && matches!(trees.get(i + 2), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                match trait_ {
                    Some(trait_) if path_follows => out.extend(quote!(<#self_ty as #trait_>)),
                    _ => out.extend(quote!(#self_ty)),
                }
            }
            TokenTree::Group(group) => {
                let mut new = proc_macro2::Group::new(
                    group.delimiter(),
                    replace_self(group.stream(), self_ty, trait_),
                );
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// `&T`, `&mut T` (in parentheses or not).
fn is_reference(ty: &Type) -> bool {
    match ty {
        Type::Reference(_) => true,
        Type::Paren(paren) => is_reference(&paren.elem),
        Type::Group(group) => is_reference(&group.elem),
        _ => false,
    }
}

/// Whether no description (`#[derive(Layout)]`) can exist for `ty`: a primitive type, `str`,
/// `()` or `!`, or a type built from those by references, raw pointers, slices, arrays and
/// tuples. Named as written: a type of one's own called `u64` would be taken for the
/// primitive, and the runtime would not compare its fields (the fingerprint still has its size
/// and alignment, and the CLI's layout check reads its fields from the debug information).
fn never_described(ty: &Type) -> bool {
    const PRIMITIVES: [&str; 17] = [
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ];
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            let segments: Vec<String> = path
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            let primitive = match segments.as_slice() {
                [name] => Some(name),
                [krate, module, name]
                    if (krate == "core" || krate == "std") && module == "primitive" =>
                {
                    Some(name)
                }
                _ => None,
            };
            path.path.segments.iter().all(|s| s.arguments.is_none())
                && primitive.is_some_and(|name| PRIMITIVES.contains(&name.as_str()))
        }
        Type::Reference(reference) => never_described(&reference.elem),
        Type::Ptr(pointer) => never_described(&pointer.elem),
        Type::Slice(slice) => never_described(&slice.elem),
        Type::Array(array) => never_described(&array.elem),
        Type::Tuple(tuple) => tuple.elems.iter().all(never_described),
        Type::Paren(paren) => never_described(&paren.elem),
        Type::Group(group) => never_described(&group.elem),
        Type::Never(_) => true,
        _ => false,
    }
}

/// `&T`, `&mut T` → `T`: the type whose fields matter.
fn strip_references(ty: &Type) -> &Type {
    match ty {
        Type::Reference(reference) => strip_references(&reference.elem),
        Type::Paren(paren) => strip_references(&paren.elem),
        Type::Group(group) => strip_references(&group.elem),
        other => other,
    }
}

/// Turns every named lifetime except `'static` into `'_`, so a type can be named in a `const`
/// expression and renaming a lifetime leaves the fingerprint alone. Lifetimes bound by a
/// `for<'x>` inside the type (`&dyn for<'x> Fn(&'x str)`, `for<'x> fn(&'x u8)`) are kept:
/// `for<'_>` is not valid Rust.
fn erase_lifetimes(ty: &Type) -> Type {
    struct Eraser {
        /// Lifetimes bound by the `for<..>` binders around the current position.
        bound: Vec<Ident>,
    }
    impl Eraser {
        fn within(&mut self, binder: Option<&syn::BoundLifetimes>, visit: impl FnOnce(&mut Self)) {
            let depth = self.bound.len();
            for param in binder.iter().flat_map(|binder| &binder.lifetimes) {
                if let syn::GenericParam::Lifetime(param) = param {
                    self.bound.push(param.lifetime.ident.clone());
                }
            }
            visit(self);
            self.bound.truncate(depth);
        }
    }
    impl VisitMut for Eraser {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident != "static" && !self.bound.contains(&lifetime.ident) {
                lifetime.ident = Ident::new("_", Span::call_site());
            }
        }
        fn visit_trait_bound_mut(&mut self, bound: &mut syn::TraitBound) {
            let binder = bound.lifetimes.clone();
            self.within(binder.as_ref(), |this| {
                syn::visit_mut::visit_trait_bound_mut(this, bound)
            });
        }
        fn visit_type_bare_fn_mut(&mut self, bare_fn: &mut syn::TypeBareFn) {
            let binder = bare_fn.lifetimes.clone();
            self.within(binder.as_ref(), |this| {
                syn::visit_mut::visit_type_bare_fn_mut(this, bare_fn)
            });
        }
    }
    let mut ty = ty.clone();
    Eraser { bound: Vec::new() }.visit_type_mut(&mut ty);
    ty
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hot shape of the expansion of `item`, parsed as a file: the `hot` branch of
    /// `::hotswap::__select! { hot { … } cold { … } }`, or all of it when this crate was
    /// compiled in hot mode.
    fn hot_items(item: TokenStream) -> syn::File {
        let expanded = expand(TokenStream::new(), item).expect("accepted");
        if cfg!(any(hotswap, feature = "hot")) {
            return syn::parse2(expanded).expect("the hot shape parses");
        }
        let Some(body) = expanded.into_iter().find_map(|tree| match tree {
            TokenTree::Group(group) => Some(group),
            _ => None,
        }) else {
            panic!("not a `__select!`")
        };
        let mut inner = body.stream().into_iter();
        assert!(matches!(inner.next(), Some(TokenTree::Ident(i)) if i == "hot"));
        let Some(TokenTree::Group(hot)) = inner.next() else {
            panic!("no `hot` branch")
        };
        syn::parse2(hot.stream()).expect("the hot branch parses")
    }

    /// The tokens of the `hotswap::__hot_items!` invocation in `file`.
    fn support_invocation(file: &syn::File) -> String {
        file.items
            .iter()
            .find_map(|item| match item {
                Item::Macro(m) if m.mac.path.segments.last().unwrap().ident == "__hot_items" => {
                    Some(m.mac.tokens.to_string())
                }
                _ => None,
            })
            .expect("a `__hot_items!` invocation")
    }

    fn function<'a>(file: &'a syn::File, name: &str) -> &'a ItemFn {
        file.items
            .iter()
            .find_map(|item| match item {
                Item::Fn(func) if func.sig.ident == name => Some(func),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no fn {name}"))
    }

    fn has_attr(func: &ItemFn, name: &str) -> bool {
        func.attrs.iter().any(|attr| {
            let text = attr.to_token_stream().to_string();
            text.contains(name)
        })
    }

    /// The signature text the entry gets (the literal after `signature`).
    fn signature_of(file: &syn::File) -> String {
        let text = support_invocation(file);
        let at = text.find("signature").expect("a signature");
        let rest = text[at + "signature".len()..].trim_start();
        let end = rest
            .find(" fingerprint")
            .expect("the fingerprint after the signature");
        rest[..end].trim().to_owned()
    }

    #[test]
    fn an_extern_c_wrapper_keeps_its_abi_and_symbol_and_the_rest_is_rust() {
        for attr in [
            quote!(#[unsafe(no_mangle)]),
            quote!(#[no_mangle]),
            quote!(#[export_name = "step"]),
        ] {
            let file = hot_items(quote! {
                #attr
                pub extern "C" fn step(n: u64) -> u64 { n * 2 }
            });
            let wrapper = function(&file, "step");
            let abi = wrapper
                .sig
                .abi
                .as_ref()
                .expect("the wrapper keeps `extern \"C\"`");
            assert_eq!(abi.name.as_ref().unwrap().value(), "C");
            assert!(has_attr(wrapper, "mangle") || has_attr(wrapper, "export_name"));
            let implementation = function(&file, "__hotswap_impl_step");
            assert!(
                implementation.sig.abi.is_none(),
                "the implementation has an ABI"
            );
            assert!(
                !has_attr(implementation, "no_mangle") && !has_attr(implementation, "export_name"),
                "the implementation carries a symbol attribute"
            );
            // The boot and guarded shims are the runtime's generic Rust functions for one
            // parameter, instantiated for the implementation: nothing of the wrapper's ABI or
            // symbol attributes reaches them.
            let support = support_invocation(&file);
            assert!(support.contains("implementation { __hotswap_impl_step } boot boot1"));
            assert!(support.contains("guarded1 (__hotswap_impl_step)"));
            let functions = &support[..support.find(" name ").expect("a name")];
            for attr in ["extern", "no_mangle", "export_name"] {
                assert!(
                    !functions.contains(attr),
                    "`{attr}` reaches the template: {support}"
                );
            }
            assert_eq!(signature_of(&file), r#""extern \"C\" fn(u64) -> u64""#);
        }
    }

    #[test]
    fn the_abi_is_part_of_the_signature() {
        let c = hot_items(quote!(
            extern "C" fn f(n: u64) -> u64 {
                n
            }
        ));
        let rust = hot_items(quote!(
            fn f(n: u64) -> u64 {
                n
            }
        ));
        let explicit = hot_items(quote!(
            extern "Rust" fn f(n: u64) -> u64 {
                n
            }
        ));
        assert_eq!(signature_of(&c), r#""extern \"C\" fn(u64) -> u64""#);
        assert_eq!(signature_of(&rust), r#""fn(u64) -> u64""#);
        assert_eq!(signature_of(&explicit), signature_of(&rust));
    }

    #[test]
    fn other_abis_and_extern_methods_are_refused() {
        let system = expand(
            TokenStream::new(),
            quote!(
                extern "system" fn f() {}
            ),
        )
        .unwrap_err();
        assert!(system.to_string().contains("only the Rust and C ABIs"));
        let method = expand(
            TokenStream::new(),
            quote!(impl S { extern "C" fn f(&self) {} }),
        )
        .unwrap_err();
        assert!(method.to_string().contains("methods must use the Rust ABI"));
        let asyncness = expand(
            TokenStream::new(),
            quote!(
                async extern "C" fn f() {}
            ),
        )
        .unwrap_err();
        assert!(asyncness.to_string().contains("async extern"));
    }

    #[test]
    fn positions_no_description_can_exist_for_get_no_types_function() {
        for ty in [
            quote!(u64),
            quote!(&str),
            quote!(&mut [u8]),
            quote!([f32; 4]),
            quote!((bool, char)),
            quote!(()),
            quote!(*const i128),
            quote!(::core::primitive::usize),
            quote!(std::primitive::u8),
        ] {
            assert!(never_described(&syn::parse2(ty.clone()).unwrap()), "{ty}");
        }
        for ty in [
            quote!(Counter),
            quote!(&mut World),
            quote!((u8, Counter)),
            quote!([Counter; 2]),
            quote!(String),
            quote!(Vec<u8>),
            quote!(game::u64),
            quote!(dyn Fn(u8)),
        ] {
            assert!(!never_described(&syn::parse2(ty.clone()).unwrap()), "{ty}");
        }
        // All positions plain: the shared `types`; one that may be described: its own.
        let plain = support_invocation(&hot_items(quote!(
            fn f(n: u64, s: &str) -> (u8, bool) {
                (n as u8, s.is_empty())
            }
        )));
        assert!(
            plain.contains("types :: hotswap :: __private :: no_types"),
            "{plain}"
        );
        let file = hot_items(quote!(
            fn f(n: u64, counter: &mut Counter) {}
        ));
        let described = support_invocation(&file);
        assert!(described.contains("types __hotswap_types_f"), "{described}");
        // Only a function with a position that may be described gets `@types`.
        let all = file.to_token_stream().to_string();
        assert!(
            all.contains("@ types __hotswap_types_f { 1usize : Counter }"),
            "{all}"
        );
        let plain_file = hot_items(quote!(
            fn g(n: u64) -> u64 {
                n
            }
        ));
        assert!(!plain_file.to_token_stream().to_string().contains("@ types"));
    }

    #[test]
    fn more_parameters_than_the_shims_take_are_refused() {
        let args: Vec<TokenStream> = (0..13usize)
            .map(|i| {
                let name = format_ident!("a{}", i);
                quote!(#name: u8)
            })
            .collect();
        let error = expand(TokenStream::new(), quote!(fn f(#(#args),*) {})).unwrap_err();
        assert!(error.to_string().contains("up to 12 parameters"), "{error}");
        let args = &args[..12];
        assert!(expand(TokenStream::new(), quote!(fn f(#(#args),*) {})).is_ok());
    }
}
