//! Check (CLI side): does a patch reach everything that runs the code it changes?
//!
//! A thin patch replaces the hot crate's `#[hot]` functions through their slots, and the
//! patch's own functions call each other (`-Bsymbolic-functions`). Everything else the running
//! program has keeps calling the executable's copy of the hot crate:
//! - code outside the hot crate (the binary's objects, crates depending on the hot crate) that
//!   refers to a hot-crate function directly — a call, a function pointer, a vtable it built —
//!   and from there whatever the old code refers to in turn;
//! - copies of the hot crate's generic and `#[inline]` functions compiled into other crates;
//! - a `pub static` of the hot crate, which the patch shares with the program: the program's
//!   copy still holds pointers to the old functions.
//!
//! The `#[hot]` items are the barrier: reaching a wrapper or a slot is fine (it dispatches to
//! the new code), and nothing is followed out of the generated items.
//!
//! [`analyse`] says which functions changed and which of them would keep running old code; the
//! CLI restarts the program for those.

mod changed;
mod code;
pub(crate) mod names;
mod source;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

pub use code::Code;
use code::{NodeId, NodeKind, Target};

/// What [`analyse`] found.
#[derive(Debug)]
pub struct Analysis {
    /// Functions whose code changed (readable names), for the report line
    /// "patched game::step, game::helper". Functions added by the change are listed too.
    pub changed: Vec<String>,
    /// Changed code the program would keep running: needs a restart.
    pub stale: Vec<Stale>,
}

impl Analysis {
    /// The reason to restart, naming the first stale function (and how many others).
    pub fn restart_reason(&self) -> Option<String> {
        let first = self.stale.first()?;
        Some(match self.stale.len() {
            1 => first.describe(),
            n => format!("{} (and {} more)", first.describe(), n - 1),
        })
    }
}

/// A changed function that the running program would keep running in its old version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The changed function (`game::helper`).
    pub function: String,
    /// Who keeps running its old code: the outside function (`app::main`), or for
    /// [`StaleKind::SharedStatic`] the static.
    pub caller: String,
    pub kind: StaleKind,
    /// What lies between `caller` and `function`, in call order: unchanged old functions of
    /// the hot crate, drop glue, "a vtable or constant" (empty: `caller` refers to `function`).
    pub through: Vec<String>,
    /// The crate whose code holds the reference or the copy (`app`).
    pub in_crate: String,
    /// For a copy: why the code was compiled into that crate ("it is generic").
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleKind {
    /// Code outside the hot crate refers to the old function, directly or through old code.
    DirectReference,
    /// A copy of a generic or `#[inline]` function compiled into another crate.
    CopyInAnotherCrate,
    /// A `pub static` of the hot crate, shared by the patch with the program, refers to the
    /// old function: the patch's code reads the program's copy.
    SharedStatic,
    /// The program's `main` itself changed (a binary crate's patch): it is running, and only
    /// a restart runs its new code.
    Running,
}

impl Stale {
    /// "`game::helper` changed; `app::main` calls it directly"
    pub fn describe(&self) -> String {
        let through = || {
            self.through
                .iter()
                .map(|step| match step.as_str() {
                    ANONYMOUS => step.clone(),
                    _ => format!("`{step}`"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.kind {
            StaleKind::DirectReference if self.through.is_empty() => format!(
                "`{}` changed; `{}` calls it directly",
                self.function, self.caller
            ),
            StaleKind::DirectReference => format!(
                "`{}` changed; `{}` calls it through {}",
                self.function,
                self.caller,
                through()
            ),
            StaleKind::CopyInAnotherCrate => format!(
                "`{}` changed; {} and a copy compiled into `{}` keeps the old code (called by `{}`)",
                self.function, self.why, self.in_crate, self.caller
            ),
            StaleKind::Running => format!(
                "`{}` changed, and the running program keeps the code it started with (only \
                 `#[hot]` functions are patched)",
                self.function
            ),
            StaleKind::SharedStatic if self.through.is_empty() => format!(
                "`{}` changed; the running program's `{}` (a static the patch shares) still points to the old code",
                self.function, self.caller
            ),
            StaleKind::SharedStatic => format!(
                "`{}` changed; the running program's `{}` (a static the patch shares) still reaches the old code through {}",
                self.function,
                self.caller,
                through()
            ),
        }
    }
}

/// The outside code of an executable: each rlib read whole, the loose objects together (where
/// the first of them is: the program's own objects come first in `Linked::outside`, and the
/// first code found referring to a stale function is the one named).
pub fn read_outside(paths: &[PathBuf]) -> Result<Vec<Code>, String> {
    let objects: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.extension().is_none_or(|ext| ext != "rlib"))
        .cloned()
        .collect();
    let mut codes = Vec::new();
    let mut objects_read = objects.is_empty();
    for path in paths {
        if path.extension().is_some_and(|ext| ext == "rlib") {
            codes.push(Code::read_rlib(path)?);
        } else if !objects_read {
            codes.push(Code::read_objects(&objects)?);
            objects_read = true;
        }
    }
    Ok(codes)
}

/// Whether any of `outside` holds a copy of a function of `crate_name` (a generic or `#[inline]`
/// function compiled there; `#[hot]` wrappers do not count). Without one, [`analyse`] needs no
/// sources: the caller may skip parsing them and pass none.
pub fn outside_has_copies(crate_name: &str, old_hot: &Code, outside: &[Code]) -> bool {
    let barrier = Barrier::new(old_hot);
    outside.iter().any(|code| {
        code.nodes.iter().any(|node| {
            node.kind == NodeKind::Function
                && node.name.is_some_and(|name| {
                    let demangled = names::demangled(code.name(name));
                    names::Path::parse(&demangled).belongs_to(crate_name)
                        && !barrier.stops(&demangled)
                })
        })
    })
}

/// `old_hot`/`new_hot`: the hot crate before and after; `outside`: code the executable links
/// that is not the hot crate (the binary's objects, and rlibs of crates depending on the hot
/// crate); `old_sources`/`new_sources`: the hot crate's parsed sources, for generic and
/// `#[inline]` items. `program`: the hot crate is the program's binary crate, whose `main` the
/// program runs (from outside any patch) for as long as it lives. `shared_statics`: linkage
/// names of the crate's private statics the patch uses the program's copies of (see
/// `crate::rewrite`), which hold what the old code put there, as an exported one does.
#[allow(clippy::too_many_arguments)]
pub fn analyse(
    crate_name: &str,
    program: bool,
    shared_statics: &[String],
    old_hot: &Code,
    new_hot: &Code,
    outside: &[Code],
    old_sources: &[syn::File],
    new_sources: &[syn::File],
) -> Analysis {
    let changes = changed::compare(crate_name, old_hot, new_hot);
    let barrier = Barrier::new(old_hot);
    let inputs = Inputs {
        crate_name,
        program,
        shared_statics,
        old: old_hot,
        new: new_hot,
        outside,
        changes: &changes,
        barrier: &barrier,
    };
    let mut found = Found::default();
    let mut callers = Callers::new(outside);
    direct(&inputs, &mut callers, &mut found);
    let changed_items = source::changed(old_sources, new_sources);
    copies(&inputs, &changed_items, &mut callers, &mut found);
    let migrated = migrated_types(crate_name, old_sources.iter().chain(new_sources));
    let mut stale = found.stale;
    stale.retain(|s| {
        let kept_in_state = |step: &str| {
            step.starts_with("hotswap::state::") || migrated.iter().any(|ty| is_method_of(step, ty))
        };
        !(kept_in_state(&s.function) || s.through.iter().any(|step| kept_in_state(step)))
    });
    Analysis {
        changed: changes.report,
        stale,
    }
}

/// What both parts of the analysis read.
struct Inputs<'a> {
    crate_name: &'a str,
    program: bool,
    shared_statics: &'a [String],
    old: &'a Code,
    new: &'a Code,
    outside: &'a [Code],
    changes: &'a changed::Changes,
    barrier: &'a Barrier,
}

#[derive(Default)]
struct Found {
    stale: Vec<Stale>,
    functions: HashSet<String>,
}

impl Found {
    fn add(&mut self, stale: Stale) {
        if self.functions.insert(stale.function.clone()) {
            self.stale.push(stale);
        }
    }
}

/// The `#[hot]` items: generated ones (by name) and the wrappers (the implementation's name
/// without `__hotswap_impl_`).
struct Barrier {
    /// Demangled names of the wrappers.
    wrappers: HashSet<String>,
    /// Their last path segments, to demangle only the names that may be one.
    idents: Vec<String>,
}

impl Barrier {
    fn new(code: &Code) -> Barrier {
        let wrappers: HashSet<String> = code
            .defined_names()
            .map(|name| code.name(name))
            .filter(|mangled| mangled.contains("__hotswap_impl_"))
            .filter_map(|mangled| names::wrapper_of(&names::demangled(mangled)))
            .collect();
        let idents = wrappers
            .iter()
            .filter_map(|w| w.rsplit("::").next().map(str::to_owned))
            .collect();
        Barrier { wrappers, idents }
    }

    fn stops(&self, demangled: &str) -> bool {
        names::is_generated(demangled) || self.wrappers.contains(demangled)
    }

    /// [`Barrier::stops`] for a mangled name (both manglings keep identifiers as written).
    fn stops_mangled(&self, mangled: &str) -> bool {
        if mangled.contains("__hotswap_") {
            return true;
        }
        // A `#[hot] #[no_mangle] extern "C" fn step` wrapper has its identifier as its symbol.
        let unmangled = !(mangled.starts_with("_ZN") || mangled.starts_with("_R"));
        if unmangled && self.idents.iter().any(|ident| ident == mangled) {
            return true;
        }
        self.idents
            .iter()
            .any(|ident| mangled.contains(ident.as_str()))
            && self.wrappers.contains(&names::demangled(mangled))
    }
}

/// Where a walk through the old hot code started.
enum Origin {
    /// An outside node referring to the old code.
    Outside { code: usize, holder: NodeId },
    /// A static of the old code that the patch shares.
    Shared(NodeId),
    /// The binary crate's `main`, which the program runs, or a function a library's host
    /// calls by name.
    Entry(NodeId),
}

enum Step {
    Root(usize),
    From(NodeId),
}

/// (a): outside code referring to old hot code, and from there through the old code; and
/// statics the patch shares with the program.
fn direct(inputs: &Inputs, callers: &mut Callers, found: &mut Found) {
    let Inputs {
        crate_name,
        program,
        shared_statics,
        old,
        new,
        outside,
        changes,
        barrier,
    } = *inputs;
    let outside_globals: HashSet<&str> = outside
        .iter()
        .flat_map(|code| {
            code.nodes
                .iter()
                .filter(|n| n.global)
                .filter_map(|n| n.name.map(|id| code.name(id)))
        })
        .collect();
    let mut origins: Vec<Origin> = Vec::new();
    let mut parent: HashMap<NodeId, Step> = HashMap::new();
    let mut queue: VecDeque<NodeId> = VecDeque::new();

    for (index, code) in outside.iter().enumerate() {
        for holder in 0..code.nodes.len() as NodeId {
            for reference in code.references(holder) {
                let Target::Symbol { name, local: None } = reference.target else {
                    continue;
                };
                let name = code.name(name);
                if outside_globals.contains(name) {
                    continue;
                }
                let Some(id) = old.name_id(name) else {
                    continue;
                };
                for &target in old.globals(id) {
                    if parent.contains_key(&target) {
                        continue;
                    }
                    parent.insert(target, Step::Root(origins.len()));
                    origins.push(Origin::Outside {
                        code: index,
                        holder,
                    });
                    queue.push_back(target);
                }
            }
        }
    }
    // A binary crate's `main` is called from outside (the C `main`, which the patch does not
    // replace either), and runs until the program ends.
    if program {
        let main = format!("{crate_name}::main");
        for node in 0..old.nodes.len() as NodeId {
            let is_main = old.node(node).kind == NodeKind::Function
                && old
                    .node_name(node)
                    .is_some_and(|name| names::readable(name) == main);
            if is_main && !parent.contains_key(&node) {
                parent.insert(node, Step::Root(origins.len()));
                origins.push(Origin::Entry(node));
                queue.push_back(node);
            }
        }
        // What a foreign host calls by name (a library's `#[no_mangle]` functions, such as
        // Python's `PyInit_<module>`): it keeps calling the library's own copy. Unmangled
        // global functions of the crate; the C `main` and the compiler's `__` items aside.
        for node in 0..old.nodes.len() as NodeId {
            let n = old.node(node);
            let is_entry = n.kind == NodeKind::Function
                && n.global
                && old.node_name(node).is_some_and(|name| {
                    !(name.starts_with("_ZN")
                        || name.starts_with("_R")
                        || name.starts_with("__")
                        || name == "main")
                });
            if is_entry && !parent.contains_key(&node) {
                parent.insert(node, Step::Root(origins.len()));
                origins.push(Origin::Entry(node));
                queue.push_back(node);
            }
        }
    }
    // The patch's code reads the program's copy of every exported static it names.
    let mut shared: Vec<NodeId> = Vec::new();
    for node in 0..new.nodes.len() as NodeId {
        if new.node(node).kind != NodeKind::Function {
            continue;
        }
        for reference in new.references(node) {
            let Target::Symbol { name, .. } = reference.target else {
                continue;
            };
            let Some(id) = old.name_id(new.name(name)) else {
                continue;
            };
            for &target in old.globals(id) {
                let n = old.node(target);
                // A thread-local is the patch's own (see `statics.rs`).
                let is_shared = n.exported
                    || old
                        .node_name(target)
                        .is_some_and(|name| shared_statics.iter().any(|s| s == name));
                if n.kind == NodeKind::Data && is_shared && !n.tls && !shared.contains(&target) {
                    shared.push(target);
                }
            }
        }
    }

    let mut walk = |queue: &mut VecDeque<NodeId>,
                    parent: &mut HashMap<NodeId, Step>,
                    origins: &[Origin],
                    found: &mut Found| {
        while let Some(node) = queue.pop_front() {
            if let Some(mangled) = old.node_name(node) {
                if barrier.stops_mangled(mangled) {
                    continue;
                }
                if old.node(node).kind == NodeKind::Function && changes.changed.contains(mangled) {
                    // Back to where the walk started: what lies between.
                    let mut inner = Vec::new();
                    let mut at = node;
                    let origin = loop {
                        match parent[&at] {
                            Step::Root(origin) => break origin,
                            Step::From(previous) => {
                                let root = matches!(parent[&previous], Step::Root(_));
                                let ours = old.node(previous).kind == NodeKind::Anon
                                    || old.node_name(previous).is_some_and(|name| {
                                        names::Path::parse(&names::demangled(name))
                                            .belongs_to(crate_name)
                                    });
                                let step = describe_node(old, previous);
                                inner.push((names::item_of(&step).to_owned(), ours, root));
                                at = previous;
                            }
                        }
                    };
                    inner.reverse();
                    let function = names::item_of(&names::readable(mangled)).to_owned();
                    // Steps worth naming: the hot crate's own items (not the standard library's
                    // generics it instantiated, nor the function's own item) and data.
                    let shared = matches!(origins[origin], Origin::Shared(_) | Origin::Entry(_));
                    // A shared static (or `main`) is named as the caller, not as a step.
                    inner.retain(|(step, ours, root)| {
                        *ours && *step != function && !(shared && *root)
                    });
                    let mut inner: Vec<String> =
                        inner.into_iter().map(|(step, _, _)| step).collect();
                    inner.dedup();
                    let stale = match origins[origin] {
                        Origin::Outside { code, holder } => {
                            let (caller, mut through) = callers.caller(code, holder, true);
                            through.extend(inner);
                            Stale {
                                function,
                                caller,
                                kind: StaleKind::DirectReference,
                                through,
                                in_crate: callers.crate_of(code, holder),
                                why: "",
                            }
                        }
                        Origin::Entry(main) => {
                            let caller = names::item_of(&describe_node(old, main)).to_owned();
                            Stale {
                                kind: if caller == function {
                                    StaleKind::Running
                                } else {
                                    StaleKind::DirectReference
                                },
                                function,
                                caller,
                                through: inner,
                                in_crate: crate_name.to_owned(),
                                why: "",
                            }
                        }
                        Origin::Shared(static_) => Stale {
                            function,
                            caller: describe_node(old, static_),
                            kind: StaleKind::SharedStatic,
                            through: inner,
                            in_crate: String::new(),
                            why: "",
                        },
                    };
                    found.add(stale);
                }
            }
            for reference in old.references(node) {
                for target in old.resolve(reference.target) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = parent.entry(target) {
                        slot.insert(Step::From(node));
                        queue.push_back(target);
                    }
                }
            }
        }
    };
    walk(&mut queue, &mut parent, &origins, found);

    // Then from the shared statics, for what the outside code does not already reach. Each
    // static is the first step of its chains, and so becomes the `caller`.
    let mut parent: HashMap<NodeId, Step> = HashMap::new();
    let mut origins: Vec<Origin> = Vec::new();
    for target in shared {
        parent.insert(target, Step::Root(origins.len()));
        origins.push(Origin::Shared(target));
        queue.push_back(target);
    }
    walk(&mut queue, &mut parent, &origins, found);
}

/// (b): copies of the hot crate's generic and `#[inline]` functions in outside code.
fn copies(
    inputs: &Inputs,
    changed_items: &[(source::Pattern, source::Why)],
    callers: &mut Callers,
    found: &mut Found,
) {
    let Inputs {
        crate_name,
        outside,
        changes,
        barrier,
        ..
    } = *inputs;
    // Old functions whose machine code changed, by demangled name: a copy with the same
    // name elsewhere is the same function compiled there.
    let changed_code: HashSet<String> = changes
        .changed
        .iter()
        .map(|mangled| names::demangled(mangled))
        .collect();
    for (index, code) in outside.iter().enumerate() {
        for node in 0..code.nodes.len() as NodeId {
            let n = code.node(node);
            if n.kind != NodeKind::Function {
                continue;
            }
            let Some(mangled) = code.node_name(node) else {
                continue;
            };
            let demangled = names::demangled(mangled);
            let path = names::Path::parse(&demangled);
            if !path.belongs_to(crate_name) || barrier.stops(&demangled) {
                continue;
            }
            let why = changed_items
                .iter()
                .find(|(pattern, _)| source::matches(pattern, &path, crate_name))
                .map(|(_, why)| why.text())
                .or_else(|| {
                    changed_code
                        .contains(&demangled)
                        .then_some("it is inlined across crates")
                });
            let Some(why) = why else { continue };
            // The item, not the closure inside it.
            let function = names::item_of(&names::readable_demangled(&demangled)).to_owned();
            let (caller, through) = callers.caller(index, node, false);
            found.add(Stale {
                function,
                caller,
                kind: StaleKind::CopyInAnotherCrate,
                through,
                in_crate: callers.crate_of(index, node),
                why,
            });
        }
    }
}

/// The paths of the crate's types that derive `hotswap::Migrate` (`game::Player`). Their
/// values live in `hotswap::State`s, which the runtime migrates when a patch changes the type:
/// old code that made or makes such a value (a `Default` copied into `main` before it calls
/// `State::new`), and what a `State` reaches through the migration entry of the version that
/// made its value (the old serialiser, which the migration calls on purpose, and whatever it
/// calls), is no stale code. (A value must be read in `#[hot]` code only, as `State`'s
/// documentation says.) [`analyse`] drops every finding whose function or path goes through
/// such a method or through `hotswap::state`.
fn migrated_types<'a>(crate_name: &str, files: impl Iterator<Item = &'a syn::File>) -> Vec<String> {
    fn derives_migrate(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|attr| {
            attr.path().is_ident("derive")
                && attr
                    .parse_args_with(
                        syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
                    )
                    .is_ok_and(|paths| {
                        paths
                            .iter()
                            .any(|p| p.segments.last().is_some_and(|s| s.ident == "Migrate"))
                    })
        })
    }
    fn walk(items: &[syn::Item], path: &str, out: &mut Vec<String>) {
        for item in items {
            match item {
                syn::Item::Struct(s) if derives_migrate(&s.attrs) => {
                    out.push(format!("{path}::{}", s.ident))
                }
                syn::Item::Enum(e) if derives_migrate(&e.attrs) => {
                    out.push(format!("{path}::{}", e.ident))
                }
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        walk(inner, &format!("{path}::{}", m.ident), out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for file in files {
        walk(&file.items, crate_name, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `function` (readable, as in [`Stale::function`]) is a method or trait method of the
/// type at `path`: `game::Player::new`, `<game::Player>::new`, `<game::Player as Default>::default`,
/// `game::_::<impl serde::Serialize for game::Player>::serialize`.
fn is_method_of(function: &str, path: &str) -> bool {
    function.starts_with(&format!("{path}::"))
        || function.starts_with(&format!("<{path}>::"))
        || function.starts_with(&format!("<{path} as "))
        || function.contains(&format!(" for {path}>::"))
}

/// How a step through anonymous data is shown.
const ANONYMOUS: &str = "a vtable or constant";

/// "`game::helper`", or for anonymous data "a vtable or constant".
fn describe_node(code: &Code, node: NodeId) -> String {
    match code.node_name(node) {
        Some(name) if code.node(node).kind != NodeKind::Anon => names::readable(name),
        _ => ANONYMOUS.to_owned(),
    }
}

/// Names the outside function responsible for a reference.
struct Callers<'a> {
    outside: &'a [Code],
    /// Per outside code, once needed: who refers to each node.
    referrers: Vec<Option<Vec<Vec<NodeId>>>>,
}

impl<'a> Callers<'a> {
    fn new(outside: &'a [Code]) -> Callers<'a> {
        Callers {
            outside,
            referrers: outside.iter().map(|_| None).collect(),
        }
    }

    fn crate_of(&self, code: usize, node: NodeId) -> String {
        let code = &self.outside[code];
        code.objects[code.node(node).object as usize]
            .crate_name
            .clone()
    }

    /// The function of the outside crate itself that is responsible for `holder`: `holder`
    /// (if `itself`) when it is one, else the nearest function that refers to it (through
    /// drop glue, a vtable, a copy of a hot-crate function); with what lies between.
    fn caller(&mut self, index: usize, holder: NodeId, itself: bool) -> (String, Vec<String>) {
        let code = &self.outside[index];
        let own = |node: NodeId| {
            let n = code.node(node);
            n.kind == NodeKind::Function
                && code.node_name(node).is_some_and(|name| {
                    names::Path::parse(&names::demangled(name))
                        .belongs_to(&code.objects[n.object as usize].crate_name)
                })
        };
        if itself && own(holder) {
            return (describe_node(code, holder), Vec::new());
        }
        let referrers = self.referrers[index].get_or_insert_with(|| referrers(code));
        // Breadth first, a few steps up.
        let mut parent: HashMap<NodeId, NodeId> = HashMap::new();
        let mut queue = VecDeque::from([(holder, 0)]);
        while let Some((node, depth)) = queue.pop_front() {
            if node != holder && own(node) {
                let mut through = Vec::new();
                let mut at = node;
                while at != holder {
                    at = parent[&at];
                    through.push(describe_node(code, at));
                }
                if !itself {
                    // The copy itself is the function the message names.
                    through.pop();
                }
                return (describe_node(code, node), through);
            }
            if depth == 6 {
                continue;
            }
            for &up in &referrers[node as usize] {
                if up != holder && !parent.contains_key(&up) {
                    parent.insert(up, node);
                    queue.push_back((up, depth + 1));
                }
            }
        }
        (describe_node(code, holder), Vec::new())
    }
}

fn referrers(code: &Code) -> Vec<Vec<NodeId>> {
    let mut out = vec![Vec::new(); code.nodes.len()];
    for node in 0..code.nodes.len() as NodeId {
        for reference in code.references(node) {
            for target in code.resolve(reference.target) {
                let list: &mut Vec<NodeId> = &mut out[target as usize];
                if list.last() != Some(&node) {
                    list.push(node);
                }
            }
        }
    }
    out
}
