//! The comparison of two snapshots, and the sentences that say what changed.

use std::collections::{HashMap, HashSet};

use super::dwarf::{Field, Kind, Type, TypeId, TypeTable};
use super::traits::{self, join_phrases};
use super::{LayoutChange, Snapshot};

/// What reaches types: a hot function or a shared static, with its types in each build.
struct Root {
    label: String,
    old: Vec<TypeId>,
    new: Vec<TypeId>,
}

pub(super) fn compare(
    old: &Snapshot,
    new: &Snapshot,
    shared_statics: &[String],
) -> Vec<LayoutChange> {
    let hot_prefix = format!("{}::", old.crate_name);
    let is_hot = |name: &str| name.starts_with(&hot_prefix);
    let mut changes = Vec::new();

    let mut roots: Vec<Root> = old
        .types
        .functions
        .iter()
        .map(|(name, types)| Root {
            label: name.clone(),
            old: types.clone(),
            new: new.types.functions.get(name).cloned().unwrap_or_default(),
        })
        .collect();
    let mut statics: Vec<(&str, &super::dwarf::Static)> = shared_statics
        .iter()
        .filter_map(|linkage| Some((linkage.as_str(), old.types.statics.get(linkage)?)))
        .collect();
    statics.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    statics.dedup_by(|a, b| a.1.name == b.1.name);
    for (linkage, before) in statics {
        // The symbol hash covers the static's type, so a retyped static has a new linkage
        // name: find it by its path then.
        let after = new.types.statics.get(linkage).or_else(|| {
            let mut found: Vec<_> = new
                .types
                .statics
                .values()
                .filter(|s| s.name == before.name)
                .collect();
            found.sort_by_key(|s| new.types.name_of(s.ty));
            found.into_iter().next()
        });
        let label = format!("static {}", before.name);
        if let Some(after) = after {
            let (was, is) = (old.types.name_of(before.ty), new.types.name_of(after.ty));
            if was != is {
                changes.push(LayoutChange {
                    root: label.clone(),
                    type_name: is.to_owned(),
                    change: format!(
                        "its type changed from `{}` to `{}`",
                        short_name(was),
                        short_name(is)
                    ),
                });
            }
        }
        roots.push(Root {
            label,
            old: before.ty.into_iter().collect(),
            new: after.and_then(|s| s.ty).into_iter().collect(),
        });
    }

    // Types the program stores where no signature shows them (after the others, which name a
    // function).
    for (name, &before) in &old.types.stored {
        let said = old
            .types
            .stored_names
            .get(name)
            .copied()
            .unwrap_or("stored");
        roots.push(Root {
            label: format!("stored `{}` ({said})", short_name(name)),
            old: vec![before],
            new: new
                .types
                .stored
                .get(name)
                .or_else(|| new.types.by_name.get(name))
                .copied()
                .into_iter()
                .collect(),
        });
    }

    // Every type reached, in the order reached, with the first root that reaches it.
    let mut reached: Vec<(usize, &str)> = Vec::new();
    let mut names_seen: HashSet<&str> = HashSet::new();
    let mut old_seen = vec![false; old.types.types.len()];
    let mut new_seen = vec![false; new.types.types.len()];
    for (index, root) in roots.iter().enumerate() {
        for (table, start, seen) in [
            (&old.types, &root.old, &mut old_seen),
            (&new.types, &root.new, &mut new_seen),
        ] {
            walk(table, start, seen, |ty| {
                if names_seen.insert(ty.name.as_str()) {
                    reached.push((index, ty.name.as_str()));
                }
            });
        }
    }

    let mut traits_reported: HashSet<String> = HashSet::new();
    let mut states_seen: HashSet<&str> = HashSet::new();
    for &(root, name) in &reached {
        // `State<T>` itself, or a reference to one (named like it, with `&mut ` before).
        let state = name
            .trim_start_matches(['&', '*'])
            .trim_start_matches("mut ")
            .trim_start_matches("const ");
        if is_migrated(state) && states_seen.insert(state) {
            let label = &roots[root].label;
            changes.extend(unmigrated_change(old, new, state, label, &is_hot));
        }
    }
    for (root, name) in reached {
        let root = &roots[root].label;
        if is_hot(name) {
            if let (Some(before), Some(after)) = (old.types.get(name), new.types.get(name)) {
                if let Some(change) = describe(before, after, &old.types, &new.types) {
                    changes.push(LayoutChange {
                        root: root.clone(),
                        type_name: name.to_owned(),
                        change,
                    });
                }
            }
        }
        // A value behind `dyn Trait` carries a vtable made by the code that created it. A thin
        // pointer's name repeats its pointee's: report the pointee (`Box<dyn Speak>`).
        let kind = new.types.get(name).or(old.types.get(name)).map(|t| t.kind);
        if kind == Some(Kind::Pointer) {
            continue;
        }
        for path in dyn_traits(name) {
            if !is_hot(path) {
                continue;
            }
            let trait_name = last_segment(path);
            if traits_reported.contains(trait_name) {
                continue;
            }
            if let Some(change) = traits::describe_change(trait_name, &old.traits, &new.traits) {
                traits_reported.insert(trait_name.to_owned());
                changes.push(LayoutChange {
                    root: root.clone(),
                    type_name: name.to_owned(),
                    change: format!(
                        "`{}`: the trait `{trait_name}` {change}, so the vtables the running \
                         code made no longer match",
                        short_name(name)
                    ),
                });
            }
        }
    }
    changes
}

/// Visits every type reachable from `start` not seen yet, each once.
fn walk<'t>(
    table: &'t TypeTable,
    start: &[TypeId],
    seen: &mut [bool],
    mut visit: impl FnMut(&'t Type),
) {
    let mut queue: std::collections::VecDeque<TypeId> = start.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if std::mem::replace(&mut seen[id as usize], true) {
            continue;
        }
        let ty = &table.types[id as usize];
        visit(ty);
        if is_migrated(&ty.name) {
            continue;
        }
        queue.extend(ty.edges.iter().filter(|&&next| !seen[next as usize]));
    }
}

/// A change inside the value of `state` (`hotswap::state::State<game::Shelf>`) that the runtime
/// would not migrate: it migrates a `State<T>` when `T`'s own fields change (their names,
/// types, offsets, sizes: what `#[derive(Migrate)]` describes), so a type deeper inside
/// (`Item` of `items: Vec<Item>`) that changed while `T`'s fields kept their names and sizes
/// would be read by the new code with the new layout from memory the old code wrote.
fn unmigrated_change(
    old: &Snapshot,
    new: &Snapshot,
    state: &str,
    root: &str,
    is_hot: &dyn Fn(&str) -> bool,
) -> Option<LayoutChange> {
    let inner = state.split_once('<')?.1.strip_suffix('>')?;
    let (before, after) = (old.types.get(inner)?, new.types.get(inner)?);
    let start = *old.types.by_name.get(inner)?;
    if describe(before, after, &old.types, &new.types).is_some() {
        // `T` itself changed: the runtime migrates the value.
        return None;
    }
    let mut old_seen = vec![false; old.types.types.len()];
    let mut deeper: Vec<&str> = Vec::new();
    walk(&old.types, &[start], &mut old_seen, |ty| {
        if ty.name != inner {
            deeper.push(ty.name.as_str());
        }
    });
    deeper
        .into_iter()
        .filter(|name| is_hot(name))
        .find_map(|name| {
            let (was, is) = (old.types.get(name)?, new.types.get(name)?);
            let change = describe(was, is, &old.types, &new.types)?;
            Some(LayoutChange {
                root: root.to_owned(),
                type_name: name.to_owned(),
                change: format!(
                    "{change}, inside `{}` whose own fields did not change, so the runtime would \
                 not migrate it",
                    short_name(state)
                ),
            })
        })
}

/// `hotswap::State<T>` (and its borrow `StateMut`): the program holds a pointer to a value
/// that the runtime migrates to the new layout when a patch changes `T` (old code serialises,
/// new code deserialises), so `T`'s layout may change; `State<T>` itself never does.
fn is_migrated(name: &str) -> bool {
    let path = name.split('<').next().unwrap_or(name);
    ["hotswap::state::State", "hotswap::state::StateMut"]
        .iter()
        .any(|runtime| path == *runtime || path.ends_with(&format!("::{runtime}")))
}

/// The paths of the traits named after `dyn ` in a type name:
/// `alloc::boxed::Box<(dyn game::Gen<u32, Out=u8> + core::marker::Sync), …>` → `game::Gen`.
fn dyn_traits(name: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = name;
    while let Some(at) = rest.find("dyn ") {
        let boundary = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        rest = &rest[at + 4..];
        if !boundary {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if end > 0 {
            found.push(&rest[..end]);
        }
    }
    found
}

fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// A type name as a developer writes it: every path shortened to its last segment, default
/// allocator and hasher arguments left out.
/// `core::option::Option<alloc::boxed::Box<game::Counter, alloc::alloc::Global>>` →
/// `Option<Box<Counter>>`.
pub(super) fn short_name(name: &str) -> String {
    let name = name
        .replace(", alloc::alloc::Global", "")
        .replace(", std::hash::random::RandomState", "");
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    // The current path: where it started, and where its last segment starts.
    let mut path: Option<usize> = None;
    let mut segment = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            if path.is_none() {
                path = Some(i);
                segment = i;
            }
            i += 1;
        } else if c == b':' && path.is_some() && bytes.get(i + 1) == Some(&b':') {
            i += 2;
            segment = i;
        } else {
            if path.take().is_some() {
                out.push_str(&name[segment..i]);
            }
            // ASCII here: every byte of a multi-byte character is >= 0x80.
            out.push(c as char);
            i += 1;
        }
    }
    if path.is_some() {
        out.push_str(&name[segment..]);
    }
    out
}

/// A field's name as written: tuple fields are `__0`, `__1`… in DWARF.
fn field_name(name: &str) -> &str {
    match name.strip_prefix("__") {
        Some(index) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => index,
        _ => name,
    }
}

/// "`Counter` grew from 8 to 16 bytes (field `speed: u32` added)", or `None` if the two are the
/// same. Worded as the runtime's `describe_change` for `#[derive(Layout)]` types.
fn describe(
    old: &Type,
    new: &Type,
    old_table: &TypeTable,
    new_table: &TypeTable,
) -> Option<String> {
    let mut details = Vec::new();
    if old.kind != new.kind {
        details.push(format!(
            "changed from {} to {}",
            old.kind.noun(),
            new.kind.noun()
        ));
    } else {
        field_details(
            &old.fields,
            &new.fields,
            old_table,
            new_table,
            "",
            &mut details,
        );
        if old.kind == Kind::Enum {
            enum_details(old, new, old_table, new_table, &mut details);
        }
    }
    if details.is_empty() && old.size == new.size && old.align == new.align {
        return None;
    }
    let bytes = |size: Option<u64>| size.map_or("?".to_owned(), |s| s.to_string());
    let size = match (old.size, new.size) {
        (Some(before), Some(after)) if after > before => {
            format!("grew from {before} to {after} bytes")
        }
        (Some(before), Some(after)) if after < before => {
            format!("shrank from {before} to {after} bytes")
        }
        _ if old.size != new.size => format!(
            "changed size from {} to {} bytes",
            bytes(old.size),
            bytes(new.size)
        ),
        _ if old.align != new.align => format!(
            "changed alignment from {} to {}",
            bytes(old.align),
            bytes(new.align)
        ),
        _ if new.size == Some(1) => "kept its size (1 byte) but changed".to_owned(),
        _ => format!("kept its size ({} bytes) but changed", bytes(new.size)),
    };
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    Some(format!("`{}` {size}{details}", short_name(&new.name)))
}

/// The field differences, each prefixed with `prefix` ("variant `Stopped`: ").
fn field_details(
    old: &[Field],
    new: &[Field],
    old_table: &TypeTable,
    new_table: &TypeTable,
    prefix: &str,
    details: &mut Vec<String>,
) {
    let before: HashMap<&str, &Field> = old.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut moved: Vec<(&str, Option<u64>, Option<u64>)> = Vec::new();
    for field in new {
        let shown = field_name(&field.name);
        let ty = new_table.name_of(field.ty);
        let Some(old_field) = before.get(field.name.as_str()) else {
            details.push(format!("{prefix}field `{shown}: {}` added", short_name(ty)));
            continue;
        };
        let old_ty = old_table.name_of(old_field.ty);
        if old_ty != ty {
            details.push(format!(
                "{prefix}field `{shown}` changed from `{}` to `{}`",
                short_name(old_ty),
                short_name(ty)
            ));
            continue;
        }
        if old_field.offset != field.offset {
            moved.push((shown, old_field.offset, field.offset));
        }
        // Same type name, different layout (a type of the crate that changed itself).
        let sizes = (
            old_field
                .ty
                .map(|t| &old_table.types[t as usize])
                .filter(|t| t.known)
                .and_then(|t| t.size),
            field
                .ty
                .map(|t| &new_table.types[t as usize])
                .filter(|t| t.known)
                .and_then(|t| t.size),
        );
        if let (Some(was), Some(is)) = sizes {
            if was != is {
                details.push(format!(
                    "{prefix}field `{shown}: {}` {} from {was} to {is} bytes",
                    short_name(ty),
                    if is > was { "grew" } else { "shrank" }
                ));
            }
        }
    }
    let offset = |o: Option<u64>| o.map_or("?".to_owned(), |o| o.to_string());
    moved.sort_by_key(|&(_, was, _)| was);
    // Two fields that traded places: say so. Beyond a few other moves, only name the fields.
    let mut done = vec![false; moved.len()];
    let mut alone = Vec::new();
    for i in 0..moved.len() {
        if done[i] {
            continue;
        }
        done[i] = true;
        let (a, a_was, a_is) = moved[i];
        let partner =
            (i + 1..moved.len()).find(|&j| !done[j] && moved[j].1 == a_is && moved[j].2 == a_was);
        let Some(j) = partner else {
            alone.push(moved[i]);
            continue;
        };
        done[j] = true;
        let b = moved[j].0;
        details.push(format!(
            "{prefix}fields `{a}` and `{b}` swapped: `{a}` moved from offset {} to {}, `{b}` \
             from {} to {}",
            offset(a_was),
            offset(a_is),
            offset(a_is),
            offset(a_was)
        ));
    }
    const LISTED: usize = 3;
    if alone.len() > LISTED + 1 {
        let names: Vec<String> = alone[..LISTED]
            .iter()
            .map(|(name, ..)| format!("`{name}`"))
            .collect();
        details.push(format!(
            "{prefix}fields {} and {} more moved",
            names.join(", "),
            alone.len() - LISTED
        ));
    } else {
        for (name, was, is) in alone {
            details.push(format!(
                "{prefix}field `{name}` moved from offset {} to {}",
                offset(was),
                offset(is)
            ));
        }
    }
    let after: HashSet<&str> = new.iter().map(|f| f.name.as_str()).collect();
    for field in old {
        if !after.contains(field.name.as_str()) {
            details.push(format!(
                "{prefix}field `{}: {}` removed",
                field_name(&field.name),
                short_name(old_table.name_of(field.ty))
            ));
        }
    }
}

fn enum_details(
    old: &Type,
    new: &Type,
    old_table: &TypeTable,
    new_table: &TypeTable,
    details: &mut Vec<String>,
) {
    let number = |o: Option<u64>| o.map_or("?".to_owned(), |o| o.to_string());
    match (&old.tag, &new.tag) {
        (Some(before), Some(after)) => {
            if before.offset != after.offset {
                details.push(format!(
                    "the discriminant moved from offset {} to {}",
                    number(before.offset),
                    number(after.offset)
                ));
            }
            if before.size != after.size {
                details.push(format!(
                    "the discriminant changed from {} to {} bytes",
                    number(before.size),
                    number(after.size)
                ));
            }
        }
        (None, Some(_)) => details.push("now has a discriminant".to_owned()),
        (Some(_), None) => details.push("no longer has a discriminant".to_owned()),
        (None, None) => {}
    }
    let discriminant = |d: Option<i128>| d.map_or("untagged".to_owned(), |d| d.to_string());
    let mut added = Vec::new();
    for variant in &new.variants {
        let Some(before) = old.variants.iter().find(|v| v.name == variant.name) else {
            added.push(format!("`{}`", variant.name));
            continue;
        };
        if before.discriminant != variant.discriminant {
            details.push(format!(
                "variant `{}` discriminant changed from {} to {}",
                variant.name,
                discriminant(before.discriminant),
                discriminant(variant.discriminant)
            ));
        }
        field_details(
            &before.fields,
            &variant.fields,
            old_table,
            new_table,
            &format!("variant `{}`: ", variant.name),
            details,
        );
    }
    let removed: Vec<String> = old
        .variants
        .iter()
        .filter(|v| !new.variants.iter().any(|n| n.name == v.name))
        .map(|v| format!("`{}`", v.name))
        .collect();
    for (list, what) in [(added, "added"), (removed, "removed")] {
        match list.len() {
            0 => {}
            1 => details.push(format!("variant {} {what}", list[0])),
            _ => details.push(format!("variants {} {what}", join_phrases(&list))),
        }
    }
}
