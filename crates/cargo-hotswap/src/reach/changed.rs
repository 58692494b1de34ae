//! Which functions' code differs between two builds of the hot crate.
//!
//! A function is compared by its bytes and its references: the place a relocation patches is
//! left out of the bytes, and the relocation itself compares by what it points at (a symbol by
//! name; anonymous data by content, recursively, each pair compared once). So a function is
//! unchanged when it is the same code calling the same functions with the same constants,
//! whichever sections or `.Lanon` numbers the constants landed in.

use std::collections::{HashMap, HashSet};

use super::code::{is_absolute_64, Code, NodeId, NodeKind, Target};
use super::names;

/// The outcome for one hot crate.
pub(crate) struct Changes {
    /// Old functions (mangled names) whose code differs in the new build, or that the new build
    /// no longer has (a signature change gives a function a new legacy-mangled hash).
    pub changed: HashSet<String>,
    /// Readable names of the hot crate's changed, removed and added functions, for the report.
    pub report: Vec<String>,
}

pub(crate) fn compare(crate_name: &str, old: &Code, new: &Code) -> Changes {
    let mut comparer = Comparer {
        old,
        new,
        memo: HashMap::new(),
        log: Vec::new(),
    };
    let mut changed = HashSet::new();
    let mut report = Vec::new();
    let note = |mangled: &str, report: &mut Vec<String>| {
        let demangled = names::demangled(mangled);
        if !names::Path::parse(&demangled).belongs_to(crate_name) {
            return;
        }
        // Of the generated items only the implementation (and what is inside it: the future of
        // an `async fn`) means something to the user.
        if names::is_generated(&demangled) && names::hot_function_of(&demangled).is_none() {
            return;
        }
        let shown = names::readable_demangled(&demangled);
        let shown = names::item_of(&shown);
        if !report.iter().any(|r| r == shown) {
            report.push(shown.to_owned());
        }
    };
    for name in old.defined_names() {
        let olds: Vec<NodeId> = functions(old, old.definitions(name));
        if olds.is_empty() {
            continue;
        }
        let mangled = old.name(name);
        let news: Vec<NodeId> = new
            .name_id(mangled)
            .map(|id| functions(new, new.definitions(id)))
            .unwrap_or_default();
        // Functions are compared once each (references compare them by name), so only the
        // anonymous data below them needs the memo.
        let same = !news.is_empty()
            && olds
                .iter()
                .all(|&a| news.iter().any(|&b| comparer.compare(a, b)));
        if same {
            continue;
        }
        // A function of another crate that this build no longer instantiates (a generic of the
        // standard library) is the same code wherever it still runs.
        if news.is_empty() && !names::Path::parse(&names::demangled(mangled)).belongs_to(crate_name)
        {
            continue;
        }
        changed.insert(mangled.to_owned());
        note(mangled, &mut report);
    }
    for name in new.defined_names() {
        let mangled = new.name(name);
        let added = old
            .name_id(mangled)
            .is_none_or(|id| functions(old, old.definitions(id)).is_empty());
        if added && !functions(new, new.definitions(name)).is_empty() {
            note(mangled, &mut report);
        }
    }
    report.sort();
    Changes { changed, report }
}

fn functions(code: &Code, nodes: &[NodeId]) -> Vec<NodeId> {
    nodes
        .iter()
        .copied()
        .filter(|&n| code.node(n).kind == NodeKind::Function)
        .collect()
}

struct Comparer<'a> {
    old: &'a Code,
    new: &'a Code,
    /// Pairs already compared (old node, new node).
    memo: HashMap<(NodeId, NodeId), bool>,
    /// Pairs found equal, in the order they were first assumed so.
    log: Vec<(NodeId, NodeId)>,
}

impl Comparer<'_> {
    fn same(&mut self, a: NodeId, b: NodeId) -> bool {
        if let Some(&known) = self.memo.get(&(a, b)) {
            return known;
        }
        // Assumed equal while being compared, so that data referring to itself (through a
        // cycle) ends. If the pair turns out to differ, whatever was concluded meanwhile may
        // rest on that assumption: forget it (it is compared again when asked).
        let mark = self.log.len();
        self.memo.insert((a, b), true);
        self.log.push((a, b));
        let same = self.compare(a, b);
        if !same {
            for pair in self.log.drain(mark..) {
                self.memo.remove(&pair);
            }
            self.memo.insert((a, b), false);
        }
        same
    }

    fn compare(&mut self, a: NodeId, b: NodeId) -> bool {
        let (old, new) = (self.old, self.new);
        let (node_a, node_b) = (old.node(a), new.node(b));
        if node_a.end - node_a.start != node_b.end - node_b.start {
            return false;
        }
        let (refs_a, refs_b) = (old.references(a), new.references(b));
        if refs_a.len() != refs_b.len() {
            return false;
        }
        let (bytes_a, bytes_b) = (old.bytes(a), new.bytes(b));
        let location = node_a.kind == NodeKind::Anon
            && is_location(old, a).is_some()
            && is_location(new, b).is_some();
        // Bytes other than relocated fields (and, in a panic location, line and column).
        let mut skip: Vec<(usize, usize)> = refs_a
            .iter()
            .map(|r| {
                let at = (r.offset - node_a.start) as usize;
                (at, at + field_width(r.r_type))
            })
            .collect();
        if location {
            skip.push((LOCATION_LINE_COL.0, LOCATION_LINE_COL.1));
        }
        if !same_bytes(&bytes_a, &bytes_b, &mut skip) {
            return false;
        }
        for (x, y) in refs_a.iter().zip(refs_b) {
            if x.offset - node_a.start != y.offset - node_b.start
                || x.r_type != y.r_type
                || x.addend != y.addend
            {
                return false;
            }
            let same = match (x.target, y.target) {
                (Target::Symbol { name: p, .. }, Target::Symbol { name: q, .. }) => {
                    old.name(p) == new.name(q)
                }
                (Target::Anon(p), Target::Anon(q)) => self.same(p, q),
                _ => false,
            };
            if !same {
                return false;
            }
        }
        true
    }
}

fn same_bytes(a: &[u8], b: &[u8], skip: &mut [(usize, usize)]) -> bool {
    if a == b {
        return true;
    }
    if a.len() != b.len() {
        return false;
    }
    skip.sort_unstable();
    let mut at = 0;
    for &(from, to) in skip.iter() {
        let from = from.min(a.len());
        if at < from && a[at..from] != b[at..from] {
            return false;
        }
        at = at.max(to.min(a.len()));
    }
    a[at..] == b[at..]
}

/// Bytes a relocation of this type patches.
fn field_width(r_type: u32) -> usize {
    match r_type {
        // R_X86_64_64, R_X86_64_PC64, R_X86_64_GOTOFF64, R_X86_64_GOTPC64
        1 | 24 | 25 | 29 => 8,
        _ => 4,
    }
}

/// Line and column of a `core::panic::Location`: `{ file: &str, line: u32, col: u32 }` is laid
/// out as pointer, length, line, column (24 bytes).
const LOCATION_LINE_COL: (usize, usize) = (16, 24);

/// Whether anonymous data `node` is a panic location (what `panic!`, `unwrap`, indexing and
/// every `#[track_caller]` call site embed), returning its file name.
///
/// The typed check: 24 bytes; exactly one relocation, an absolute 64-bit pointer at offset 0,
/// to anonymous data holding at least `len` bytes (`len` is the u64 at offset 8) that are a
/// UTF-8 path ending in `.rs`. Ignoring line and column of such data is sound for this
/// comparison because the only thing that reads them is the panic message (and
/// `Location::caller`'s report of where the call was written): adding a line above a function
/// changes them and nothing the function computes. A user's own constant of exactly this shape
/// (a `&'static str` naming a `.rs` file followed by two `u32`s, promoted to anonymous data)
/// would also match; a change to only its numbers is the one change this could miss.
pub(crate) fn is_location(code: &Code, node: NodeId) -> Option<String> {
    let n = code.node(node);
    if n.kind != NodeKind::Anon || n.end - n.start != 24 {
        return None;
    }
    let refs = code.references(node);
    let [pointer] = refs else { return None };
    if pointer.offset != n.start || !is_absolute_64(pointer.r_type) {
        return None;
    }
    let Target::Anon(file) = pointer.target else {
        return None;
    };
    let bytes = code.bytes(node);
    let len = u64::from_le_bytes(bytes[8..16].try_into().ok()?) as usize;
    let text = code.bytes(file);
    let from = usize::try_from(pointer.addend).ok()?;
    let name = std::str::from_utf8(text.get(from..from.checked_add(len)?)?).ok()?;
    name.ends_with(".rs").then(|| name.to_owned())
}
