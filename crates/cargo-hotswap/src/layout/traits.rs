//! Trait shapes from source: what decides the vtables of `dyn Trait` values.
//!
//! rustc's DWARF does not describe traits (a `dyn game::Speak` is an empty structure and the
//! vtable an array of `usize`), so the shape comes from the parsed sources: the ordered list of
//! the trait's items (signatures only; default bodies and attributes, doc comments included, are
//! left out), its generic parameters and its supertraits, as normalised token text. A vtable
//! holds the supertraits' methods, then the trait's own in declaration order: a change to any of
//! these may move or retype an entry.

use std::collections::HashMap;

use quote::ToTokens;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TraitItem {
    /// "method", "associated type", "associated constant" or "item".
    pub kind: &'static str,
    pub name: String,
    /// Normalised token text of the declaration (`fn speak (& self) -> String`).
    pub signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TraitShape {
    /// Inline modules down to the trait, within its file (`inner::Speak`); a file's own module
    /// path is not known here.
    pub path: String,
    pub generics: String,
    pub supertraits: Vec<String>,
    pub items: Vec<TraitItem>,
}

/// Every trait of the files, by name (last path segment). Several traits may share a name.
pub(super) fn collect(files: &[syn::File]) -> HashMap<String, Vec<TraitShape>> {
    let mut shapes: HashMap<String, Vec<TraitShape>> = HashMap::new();
    for file in files {
        collect_items(&file.items, "", &mut shapes);
    }
    // Independent of the order the files come in.
    for list in shapes.values_mut() {
        list.sort_by_cached_key(|shape| format!("{shape:?}"));
    }
    shapes
}

fn collect_items(items: &[syn::Item], path: &str, shapes: &mut HashMap<String, Vec<TraitShape>>) {
    for item in items {
        match item {
            syn::Item::Trait(item) => {
                let name = item.ident.to_string();
                let shape = TraitShape {
                    path: join(path, &name),
                    generics: format!(
                        "{} {}",
                        tokens(&item.generics),
                        item.generics
                            .where_clause
                            .as_ref()
                            .map(tokens)
                            .unwrap_or_default()
                    )
                    .trim()
                    .to_owned(),
                    supertraits: item.supertraits.iter().map(tokens).collect(),
                    items: item.items.iter().map(trait_item).collect(),
                };
                shapes.entry(name).or_default().push(shape);
            }
            syn::Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    collect_items(items, &join(path, &module.ident.to_string()), shapes);
                }
            }
            _ => {}
        }
    }
}

fn trait_item(item: &syn::TraitItem) -> TraitItem {
    match item {
        syn::TraitItem::Fn(item) => TraitItem {
            kind: "method",
            name: item.sig.ident.to_string(),
            signature: tokens(&item.sig),
        },
        syn::TraitItem::Type(item) => TraitItem {
            kind: "associated type",
            name: item.ident.to_string(),
            signature: format!(
                "type {} {} : {} {}",
                item.ident,
                tokens(&item.generics),
                item.bounds.to_token_stream(),
                item.generics
                    .where_clause
                    .as_ref()
                    .map(tokens)
                    .unwrap_or_default()
            ),
        },
        syn::TraitItem::Const(item) => TraitItem {
            kind: "associated constant",
            name: item.ident.to_string(),
            signature: format!("const {} : {}", item.ident, tokens(&item.ty)),
        },
        other => {
            let signature = tokens(other);
            TraitItem {
                kind: "item",
                name: signature.clone(),
                signature,
            }
        }
    }
}

fn tokens<T: ToTokens>(item: &T) -> String {
    item.to_token_stream().to_string()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}::{name}")
    }
}

/// Writes token text as people do (`fn speak(&self) -> String`).
pub(super) fn tidy(tokens: &str) -> String {
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
        (" (", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        (" :", ":"),
    ] {
        while text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text.replace("->", " -> ").replace("  ", " ")
}

/// How trait `name` changed between two builds' sources, as a phrase that follows "the trait
/// `Speak`" ("gained method `volume`"), or `None` if its shape is the same. A change of a
/// supertrait of the same crate counts (its methods are in the vtable too).
pub(super) fn describe_change(
    name: &str,
    old: &HashMap<String, Vec<TraitShape>>,
    new: &HashMap<String, Vec<TraitShape>>,
) -> Option<String> {
    describe_within(name, old, new, &mut Vec::new())
}

fn describe_within(
    name: &str,
    old: &HashMap<String, Vec<TraitShape>>,
    new: &HashMap<String, Vec<TraitShape>>,
    seen: &mut Vec<String>,
) -> Option<String> {
    if seen.iter().any(|s| s == name) {
        return None;
    }
    seen.push(name.to_owned());
    let before = old.get(name)?;
    let Some(after) = new.get(name) else {
        return Some("was removed".to_owned());
    };
    if before != after {
        return Some(match (&before[..], &after[..]) {
            ([before], [after]) => describe_shape(before, after),
            _ => format!("changed (one of the {} traits of that name)", after.len()),
        });
    }
    // Unchanged itself: a supertrait of the crate may still have changed.
    for shape in after {
        for supertrait in &shape.supertraits {
            let last = supertrait_name(supertrait);
            if let Some(change) = describe_within(&last, old, new, seen) {
                return Some(format!("has a supertrait `{last}` that {change}"));
            }
        }
    }
    None
}

/// `core :: fmt :: Debug` → `Debug`; `Base < u32 >` → `Base`; `'static` → `'static`.
fn supertrait_name(bound: &str) -> String {
    let path = bound.split('<').next().unwrap_or(bound);
    path.rsplit("::")
        .next()
        .unwrap_or(path)
        .trim()
        .trim_start_matches('?')
        .trim()
        .to_owned()
}

fn describe_shape(before: &TraitShape, after: &TraitShape) -> String {
    let mut details = Vec::new();
    for item in &after.items {
        match before.items.iter().find(|i| i.name == item.name) {
            None => details.push(format!("gained {} `{}`", item.kind, short_item(item))),
            Some(old) if old.signature != item.signature => details.push(format!(
                "changed {} `{}` from `{}` to `{}`",
                item.kind,
                short_item(item),
                tidy(&old.signature),
                tidy(&item.signature)
            )),
            Some(_) => {}
        }
    }
    for item in &before.items {
        if !after.items.iter().any(|i| i.name == item.name) {
            details.push(format!("lost {} `{}`", item.kind, short_item(item)));
        }
    }
    let order = |items: &[TraitItem], other: &[TraitItem]| -> Vec<String> {
        items
            .iter()
            .filter(|i| other.iter().any(|o| o.name == i.name))
            .map(|i| i.name.clone())
            .collect()
    };
    if order(&before.items, &after.items) != order(&after.items, &before.items) {
        details.push("reordered its items".to_owned());
    }
    if before.supertraits != after.supertraits {
        let list = |s: &[String]| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                format!("`{}`", tidy(&s.join(" + ")))
            }
        };
        details.push(format!(
            "changed its supertraits from {} to {}",
            list(&before.supertraits),
            list(&after.supertraits)
        ));
    }
    if before.generics != after.generics {
        details.push(format!(
            "changed its generic parameters from `{}` to `{}`",
            tidy(&before.generics),
            tidy(&after.generics)
        ));
    }
    if details.is_empty() {
        // Equal item by item, yet different: it moved between inline modules.
        details.push(format!("moved from `{}` to `{}`", before.path, after.path));
    }
    join_phrases(&details)
}

fn short_item(item: &TraitItem) -> String {
    if item.kind == "item" {
        tidy(&item.name)
    } else {
        item.name.clone()
    }
}

/// "a", "a and b", "a, b and c".
pub(super) fn join_phrases(phrases: &[String]) -> String {
    match phrases {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
