//! The hot crate's generic and `#[inline]` functions, compared token by token.
//!
//! Their machine code is compiled into every crate that uses them, and the hot crate itself may
//! have no copy to compare (a generic it never instantiates). So the comparison is of the
//! source: an item whose tokens (spans ignored, so moving it changes nothing) differ, or that
//! uses a `const` whose tokens differ, has changed.

use std::collections::{BTreeMap, HashSet};

use quote::ToTokens;
use syn::{Attribute, ImplItem, Item, TraitItem};

use super::names::Path;

/// Where a function item sits, as far as a symbol name can tell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pattern {
    /// Inline modules (`mod m { … }`) around it within its file. Which file is which module is
    /// not known here, so a symbol path only has to end with these.
    pub modules: Vec<String>,
    /// The implementing type's last identifier, for methods.
    pub self_ty: Option<String>,
    /// The trait's last identifier, for trait impl methods and provided trait methods.
    pub trait_: Option<String>,
    /// A provided method of a trait (its body is the trait's default).
    pub provided: bool,
    pub name: String,
}

/// Why a function's code is compiled into the crates that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Generic,
    Inline,
}

impl Why {
    pub(crate) fn text(self) -> &'static str {
        match self {
            Why::Generic => "it is generic",
            Why::Inline => "it is `#[inline]`",
        }
    }
}

struct Function {
    pattern: Pattern,
    why: Option<Why>,
    tokens: String,
    /// Identifiers the item uses (to find uses of changed constants).
    idents: HashSet<String>,
}

/// Generic and `#[inline]` functions (not `#[hot]` ones) that differ between the two versions.
pub(crate) fn changed(old: &[syn::File], new: &[syn::File]) -> Vec<(Pattern, Why)> {
    let (old_fns, old_consts) = collect(old);
    let (new_fns, new_consts) = collect(new);
    let changed_consts: HashSet<&String> = old_consts
        .keys()
        .chain(new_consts.keys())
        .filter(|name| old_consts.get(*name) != new_consts.get(*name))
        .collect();
    let mut by_pattern: BTreeMap<&Pattern, (Vec<&Function>, Vec<&Function>)> = BTreeMap::new();
    for function in &old_fns {
        by_pattern
            .entry(&function.pattern)
            .or_default()
            .0
            .push(function);
    }
    for function in &new_fns {
        by_pattern
            .entry(&function.pattern)
            .or_default()
            .1
            .push(function);
    }
    let mut out = Vec::new();
    for (pattern, (olds, news)) in by_pattern {
        // Only functions copied into other crates matter; a function that became generic or
        // `#[inline]` has no old copies anywhere.
        let Some(why) = olds.iter().find_map(|f| f.why) else {
            continue;
        };
        let mut old_tokens: Vec<&str> = olds.iter().map(|f| f.tokens.as_str()).collect();
        let mut new_tokens: Vec<&str> = news.iter().map(|f| f.tokens.as_str()).collect();
        old_tokens.sort_unstable();
        new_tokens.sort_unstable();
        let uses_changed_const = olds
            .iter()
            .any(|f| f.idents.iter().any(|i| changed_consts.contains(i)));
        if old_tokens != new_tokens || uses_changed_const {
            out.push((pattern.clone(), why));
        }
    }
    out
}

/// Whether the item `pattern` describes is the one `path` (a demangled symbol of crate
/// `crate_name`) was compiled from.
pub(crate) fn matches(pattern: &Pattern, path: &Path, crate_name: &str) -> bool {
    let last = |p: &Option<Vec<String>>| p.as_ref().and_then(|p| p.last().cloned());
    let segments = &path.segments;
    let ends_with = |tail: &[&str]| {
        segments.len() >= tail.len()
            && segments[segments.len() - tail.len()..]
                .iter()
                .zip(tail)
                .all(|(a, b)| a == b)
    };
    let name = pattern.name.as_str();
    match (&pattern.self_ty, &pattern.trait_) {
        // A provided trait method, for any implementing type.
        (_, Some(trait_)) if pattern.provided => {
            (last(&path.trait_).as_deref() == Some(trait_) && segments == &[name])
                || (path.self_ty.is_none() && ends_with(&[trait_, name]))
        }
        (Some(self_ty), Some(trait_)) => {
            last(&path.trait_).as_deref() == Some(trait_)
                && last(&path.self_ty).as_deref() == Some(self_ty)
                && segments == &[name]
        }
        (Some(self_ty), None) => {
            (path.trait_.is_none()
                && last(&path.self_ty).as_deref() == Some(self_ty)
                && segments == &[name])
                || (path.self_ty.is_none() && ends_with(&[self_ty, name]))
        }
        (None, _) => {
            path.self_ty.is_none()
                && segments.len() >= 2
                && segments[0] == crate_name
                && segments.last().is_some_and(|s| s == name)
                && {
                    let between = &segments[1..segments.len() - 1];
                    between.len() >= pattern.modules.len()
                        && between[between.len() - pattern.modules.len()..] == pattern.modules[..]
                }
        }
    }
}

type Consts = BTreeMap<String, Vec<String>>;

fn collect(files: &[syn::File]) -> (Vec<Function>, Consts) {
    let mut functions = Vec::new();
    let mut consts = Consts::new();
    for file in files {
        items(&file.items, &mut Vec::new(), &mut functions, &mut consts);
    }
    for tokens in consts.values_mut() {
        tokens.sort_unstable();
    }
    (functions, consts)
}

fn items(items: &[Item], modules: &mut Vec<String>, out: &mut Vec<Function>, consts: &mut Consts) {
    for item in items {
        match item {
            Item::Fn(f) if !is_hot(&f.attrs) => {
                let generic = has_type_params(&f.sig.generics) || has_impl_trait(&f.sig);
                out.push(function(
                    Pattern {
                        modules: modules.clone(),
                        self_ty: None,
                        trait_: None,
                        provided: false,
                        name: f.sig.ident.to_string(),
                    },
                    why(generic, &f.attrs),
                    {
                        let mut f = f.clone();
                        strip_docs(&mut f.attrs);
                        f.to_token_stream()
                    },
                ));
            }
            Item::Impl(block) if !is_hot(&block.attrs) => {
                let self_ty = last_ident(&block.self_ty.to_token_stream());
                let trait_ = block
                    .trait_
                    .as_ref()
                    .and_then(|(_, path, _)| path.segments.last())
                    .map(|s| s.ident.to_string());
                // The header (generics, trait, type, bounds) belongs to every method.
                let mut header = block.clone();
                header.items.clear();
                strip_docs(&mut header.attrs);
                let header = header.to_token_stream().to_string();
                let generic_block = has_type_params(&block.generics);
                for member in &block.items {
                    let ImplItem::Fn(method) = member else {
                        continue;
                    };
                    if is_hot(&method.attrs) {
                        continue;
                    }
                    let generic = generic_block
                        || has_type_params(&method.sig.generics)
                        || has_impl_trait(&method.sig);
                    let mut method = method.clone();
                    strip_docs(&mut method.attrs);
                    let mut tokens = method.to_token_stream();
                    tokens.extend(header.parse::<proc_macro2::TokenStream>());
                    out.push(function(
                        Pattern {
                            modules: modules.clone(),
                            self_ty: self_ty.clone(),
                            trait_: trait_.clone(),
                            provided: false,
                            name: method.sig.ident.to_string(),
                        },
                        why(generic, &method.attrs),
                        tokens,
                    ));
                }
            }
            Item::Trait(t) => {
                for member in &t.items {
                    let TraitItem::Fn(method) = member else {
                        continue;
                    };
                    if method.default.is_none() {
                        continue;
                    }
                    // A provided method is compiled for each implementing type, wherever the
                    // type's impl is used.
                    out.push(function(
                        Pattern {
                            modules: modules.clone(),
                            self_ty: None,
                            trait_: Some(t.ident.to_string()),
                            provided: true,
                            name: method.sig.ident.to_string(),
                        },
                        Some(Why::Generic),
                        {
                            let mut method = method.clone();
                            strip_docs(&mut method.attrs);
                            method.to_token_stream()
                        },
                    ));
                }
            }
            Item::Const(c) => {
                let mut c = c.clone();
                strip_docs(&mut c.attrs);
                consts
                    .entry(c.ident.to_string())
                    .or_default()
                    .push(c.to_token_stream().to_string());
            }
            Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    modules.push(m.ident.to_string());
                    self::items(inner, modules, out, consts);
                    modules.pop();
                }
            }
            _ => {}
        }
    }
}

fn function(pattern: Pattern, why: Option<Why>, tokens: proc_macro2::TokenStream) -> Function {
    let mut idents = HashSet::new();
    collect_idents(tokens.clone(), &mut idents);
    Function {
        pattern,
        why,
        tokens: tokens.to_string(),
        idents,
    }
}

/// Doc comments are attributes too; they change no code.
fn strip_docs(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !a.path().is_ident("doc"));
}

fn collect_idents(tokens: proc_macro2::TokenStream, out: &mut HashSet<String>) {
    for tree in tokens {
        match tree {
            proc_macro2::TokenTree::Ident(ident) => {
                out.insert(ident.to_string());
            }
            proc_macro2::TokenTree::Group(group) => collect_idents(group.stream(), out),
            _ => {}
        }
    }
}

fn why(generic: bool, attrs: &[Attribute]) -> Option<Why> {
    if generic {
        return Some(Why::Generic);
    }
    let inline = attrs.iter().any(|a| {
        a.path().is_ident("inline")
            && !a
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string().trim() == "never")
    });
    inline.then_some(Why::Inline)
}

/// `#[hot]`, `#[hotswap::hot]`: those dispatch through their slot.
fn is_hot(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "hot"))
}

/// Type or const parameters (lifetimes alone compile to one copy).
fn has_type_params(generics: &syn::Generics) -> bool {
    generics
        .params
        .iter()
        .any(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
}

/// `impl Trait` in argument position is a type parameter.
fn has_impl_trait(sig: &syn::Signature) -> bool {
    sig.inputs.iter().any(|arg| match arg {
        syn::FnArg::Typed(typed) => typed
            .ty
            .to_token_stream()
            .into_iter()
            .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "impl")),
        syn::FnArg::Receiver(_) => false,
    })
}

/// `game::Wrapper<T>` → `Wrapper`; `&'a mut Foo` → `Foo`.
fn last_ident(tokens: &proc_macro2::TokenStream) -> Option<String> {
    let mut depth = 0;
    let mut last = None;
    for tree in tokens.clone() {
        match tree {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '>' => depth -= 1,
            proc_macro2::TokenTree::Ident(i) if depth == 0 && i != "mut" && i != "dyn" => {
                last = Some(i.to_string())
            }
            _ => {}
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<syn::File> {
        vec![syn::parse_file(text).unwrap()]
    }

    #[test]
    fn moved_items_are_unchanged_and_edited_ones_are_found() {
        let old = parse(
            "pub fn scale<T: Copy>(x: T) -> T { x }\n#[inline] pub fn get() -> u32 { 1 }\n\
             pub fn plain() -> u32 { 2 }\n#[hotswap::hot] #[inline] pub fn hot() {}",
        );
        let new = parse(
            "\n\n/// docs\npub fn scale<T: Copy>(x: T) -> T { x }\n#[inline] pub fn get() -> u32 { 2 }\n\
             pub fn plain() -> u32 { 3 }\n#[hotswap::hot] #[inline] pub fn hot() { () }",
        );
        let changed = changed(&old, &new);
        let names: Vec<&str> = changed.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(names, ["get"]);
        assert_eq!(changed[0].1, Why::Inline);
    }

    #[test]
    fn a_changed_const_changes_the_generic_code_using_it() {
        let old = parse("const K: u32 = 1; pub fn f<T>(_: T) -> u32 { K }");
        let new = parse("const K: u32 = 2; pub fn f<T>(_: T) -> u32 { K }");
        assert_eq!(changed(&old, &new).len(), 1);
    }

    #[test]
    fn patterns_match_symbol_paths() {
        let free = Pattern {
            modules: vec![],
            self_ty: None,
            trait_: None,
            provided: false,
            name: "scale".into(),
        };
        assert!(matches(&free, &Path::parse("game::scale"), "game"));
        assert!(matches(
            &free,
            &Path::parse("game::m::scale::<u32>"),
            "game"
        ));
        assert!(!matches(&free, &Path::parse("other::scale"), "game"));
        let method = Pattern {
            self_ty: Some("Counter".into()),
            name: "get".into(),
            ..free.clone()
        };
        assert!(matches(&method, &Path::parse("game::Counter::get"), "game"));
        assert!(matches(
            &method,
            &Path::parse("<game::Counter>::get"),
            "game"
        ));
        let drop = Pattern {
            trait_: Some("Drop".into()),
            name: "drop".into(),
            ..method.clone()
        };
        assert!(matches(
            &drop,
            &Path::parse("<game::Counter as core::ops::drop::Drop>::drop"),
            "game"
        ));
    }
}
