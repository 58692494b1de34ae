//! The hot crate's generic and `#[inline]` functions, compared token by token.
//!
//! Their machine code is compiled into every crate that uses them, and the hot crate itself may
//! have no copy to compare (a generic it never instantiates). So the comparison is of the
//! source: an item whose syntax (spans ignored, so moving it changes nothing; doc comments
//! ignored) differs, or that uses a `const` whose syntax differs, has changed.

use std::collections::{BTreeMap, HashSet};

use quote::ToTokens;
use syn::visit::Visit;
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

/// A function item as written, with what it inherits from around it.
#[derive(Clone, Copy)]
enum Def<'a> {
    Free(&'a syn::ItemFn),
    Method(&'a syn::ItemImpl, &'a syn::ImplItemFn),
    Provided(&'a syn::ItemTrait, &'a syn::TraitItemFn),
}

impl Def<'_> {
    /// The same tokens (syn's equality ignores spans), doc comments left out.
    fn same(self, other: Def<'_>) -> bool {
        match (self, other) {
            (Def::Free(a), Def::Free(b)) => {
                same_attrs(&a.attrs, &b.attrs)
                    && a.vis == b.vis
                    && a.sig == b.sig
                    && a.block == b.block
            }
            (Def::Method(ia, a), Def::Method(ib, b)) => {
                // The header (generics, trait, type, bounds) belongs to every method.
                same_attrs(&ia.attrs, &ib.attrs)
                    && ia.unsafety == ib.unsafety
                    && ia.generics == ib.generics
                    && ia.trait_ == ib.trait_
                    && ia.self_ty == ib.self_ty
                    && same_attrs(&a.attrs, &b.attrs)
                    && a.vis == b.vis
                    && a.defaultness == b.defaultness
                    && a.sig == b.sig
                    && a.block == b.block
            }
            (Def::Provided(ta, a), Def::Provided(tb, b)) => {
                ta.generics == tb.generics
                    && ta.supertraits == tb.supertraits
                    && same_attrs(&a.attrs, &b.attrs)
                    && a.sig == b.sig
                    && a.default == b.default
            }
            _ => false,
        }
    }

    /// Whether it names any of `names` (a changed constant).
    fn uses(self, names: &HashSet<String>) -> bool {
        struct Uses<'n> {
            names: &'n HashSet<String>,
            found: bool,
        }
        impl<'ast> Visit<'ast> for Uses<'_> {
            fn visit_ident(&mut self, ident: &'ast proc_macro2::Ident) {
                if !self.found && self.names.contains(&ident.to_string()) {
                    self.found = true;
                }
            }
        }
        let mut uses = Uses {
            names,
            found: false,
        };
        match self {
            Def::Free(f) => uses.visit_item_fn(f),
            Def::Method(_, f) => uses.visit_impl_item_fn(f),
            Def::Provided(_, f) => uses.visit_trait_item_fn(f),
        }
        uses.found
    }
}

fn same_attrs(a: &[Attribute], b: &[Attribute]) -> bool {
    let code = |attrs: &[Attribute]| -> Vec<Attribute> {
        attrs
            .iter()
            .filter(|a| !a.path().is_ident("doc"))
            .cloned()
            .collect()
    };
    a == b || code(a) == code(b)
}

struct Function<'a> {
    pattern: Pattern,
    why: Option<Why>,
    def: Def<'a>,
}

/// Generic and `#[inline]` functions (not `#[hot]` ones) that differ between the two versions.
pub(crate) fn changed(old: &[syn::File], new: &[syn::File]) -> Vec<(Pattern, Why)> {
    let (old_fns, old_consts) = collect(old, None);
    // Only functions copied into other crates matter; a function that became generic or
    // `#[inline]` has no old copies anywhere.
    let mut by_pattern: BTreeMap<&Pattern, (Vec<&Function>, Vec<&Function>)> = BTreeMap::new();
    for function in old_fns.iter().filter(|f| f.why.is_some()) {
        by_pattern
            .entry(&function.pattern)
            .or_default()
            .0
            .push(function);
    }
    if by_pattern.is_empty() {
        return Vec::new();
    }
    let wanted: HashSet<&str> = by_pattern.keys().map(|p| p.name.as_str()).collect();
    let (new_fns, new_consts) = collect(new, Some(&wanted));
    for function in &new_fns {
        if let Some((_, news)) = by_pattern.get_mut(&function.pattern) {
            news.push(function);
        }
    }
    let changed_consts: HashSet<String> = old_consts
        .keys()
        .chain(new_consts.keys())
        .filter(|name| {
            let (a, b) = (old_consts.get(*name), new_consts.get(*name));
            !matches!((a, b), (Some(a), Some(b)) if same_multiset(a, b, |x, y| same_const(x, y)))
        })
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (pattern, (olds, news)) in by_pattern {
        let why = olds.iter().find_map(|f| f.why).expect("kept for its why");
        let olds: Vec<Def> = olds.iter().map(|f| f.def).collect();
        let news: Vec<Def> = news.iter().map(|f| f.def).collect();
        let same = same_multiset(&olds, &news, |a, b| a.same(*b));
        let uses_changed_const =
            !changed_consts.is_empty() && olds.iter().any(|f| f.uses(&changed_consts));
        if !same || uses_changed_const {
            out.push((pattern.clone(), why));
        }
    }
    out
}

/// Whether `a` and `b` hold the same items, each matched once.
fn same_multiset<T>(a: &[T], b: &[T], same: impl Fn(&T, &T) -> bool) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = (0..b.len()).find(|&i| !used[i] && same(x, &b[i]));
        found.map(|i| used[i] = true).is_some()
    })
}

fn same_const(a: &syn::ItemConst, b: &syn::ItemConst) -> bool {
    same_attrs(&a.attrs, &b.attrs)
        && a.vis == b.vis
        && a.generics == b.generics
        && a.ty == b.ty
        && a.expr == b.expr
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

type Consts<'a> = BTreeMap<String, Vec<&'a syn::ItemConst>>;

/// The functions (generic and `#[inline]` ones only, unless `wanted` names which others to
/// keep) and the constants of `files`.
fn collect<'a>(
    files: &'a [syn::File],
    wanted: Option<&HashSet<&str>>,
) -> (Vec<Function<'a>>, Consts<'a>) {
    let mut collector = Collector {
        wanted,
        modules: Vec::new(),
        functions: Vec::new(),
        consts: Consts::new(),
    };
    for file in files {
        collector.items(&file.items);
    }
    (collector.functions, collector.consts)
}

struct Collector<'a, 'w> {
    wanted: Option<&'w HashSet<&'w str>>,
    modules: Vec<String>,
    functions: Vec<Function<'a>>,
    consts: Consts<'a>,
}

impl<'a> Collector<'a, '_> {
    /// Whether a function named `ident` that compiles to `why` is needed.
    fn keep(&self, ident: &syn::Ident, why: Option<Why>) -> bool {
        match self.wanted {
            None => why.is_some(),
            Some(wanted) => wanted.contains(ident.to_string().as_str()),
        }
    }

    fn items(&mut self, items: &'a [Item]) {
        for item in items {
            match item {
                Item::Fn(f) if !is_hot(&f.attrs) => {
                    let generic = has_type_params(&f.sig.generics) || has_impl_trait(&f.sig);
                    let why = why(generic, &f.attrs);
                    if !self.keep(&f.sig.ident, why) {
                        continue;
                    }
                    let modules = self.modules.clone();
                    self.functions.push(Function {
                        pattern: Pattern {
                            modules,
                            self_ty: None,
                            trait_: None,
                            provided: false,
                            name: f.sig.ident.to_string(),
                        },
                        why,
                        def: Def::Free(f),
                    });
                }
                Item::Impl(block) if !is_hot(&block.attrs) => {
                    let self_ty = last_ident(&block.self_ty.to_token_stream());
                    let trait_ = block
                        .trait_
                        .as_ref()
                        .and_then(|(_, path, _)| path.segments.last())
                        .map(|s| s.ident.to_string());
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
                        let why = why(generic, &method.attrs);
                        if !self.keep(&method.sig.ident, why) {
                            continue;
                        }
                        let modules = self.modules.clone();
                        self.functions.push(Function {
                            pattern: Pattern {
                                modules,
                                self_ty: self_ty.clone(),
                                trait_: trait_.clone(),
                                provided: false,
                                name: method.sig.ident.to_string(),
                            },
                            why,
                            def: Def::Method(block, method),
                        });
                    }
                }
                Item::Trait(t) => {
                    for member in &t.items {
                        let TraitItem::Fn(method) = member else {
                            continue;
                        };
                        // A provided method is compiled for each implementing type, wherever the
                        // type's impl is used.
                        if method.default.is_none()
                            || !self.keep(&method.sig.ident, Some(Why::Generic))
                        {
                            continue;
                        }
                        let modules = self.modules.clone();
                        self.functions.push(Function {
                            pattern: Pattern {
                                modules,
                                self_ty: None,
                                trait_: Some(t.ident.to_string()),
                                provided: true,
                                name: method.sig.ident.to_string(),
                            },
                            why: Some(Why::Generic),
                            def: Def::Provided(t, method),
                        });
                    }
                }
                Item::Const(c) => self.consts.entry(c.ident.to_string()).or_default().push(c),
                Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        self.modules.push(m.ident.to_string());
                        self.items(inner);
                        self.modules.pop();
                    }
                }
                _ => {}
            }
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
    struct Finds(bool);
    impl<'ast> Visit<'ast> for Finds {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finds = Finds(false);
    for arg in &sig.inputs {
        if let syn::FnArg::Typed(typed) = arg {
            finds.visit_type(&typed.ty);
        }
    }
    finds.0
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
    fn impl_trait_arguments_and_generic_impls_are_generic() {
        let old = parse(
            "pub fn show(x: impl std::fmt::Display) -> String { x.to_string() }\n\
             impl<T> Wrap<T> { pub fn get(&self) -> u32 { 1 } }\n\
             pub trait Shape { fn name(&self) -> &str { \"shape\" } }",
        );
        let new = parse(
            "pub fn show(x: impl std::fmt::Display) -> String { format!(\"{x}\") }\n\
             impl<T> Wrap<T> { pub fn get(&self) -> u32 { 2 } }\n\
             pub trait Shape { fn name(&self) -> &str { \"a shape\" } }",
        );
        let changed = changed(&old, &new);
        let mut names: Vec<&str> = changed.iter().map(|(p, _)| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["get", "name", "show"]);
        assert!(changed.iter().all(|(_, why)| *why == Why::Generic));
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
