//! Check (CLI side): find the statics and thread-locals of a patch that will start from their
//! initial values instead of keeping the running program's.
//!
//! A thin patch binds data to the program wherever the program exports it, so a `pub static`
//! reachable from the crate root is shared and keeps its value. A private static or a
//! thread-local is local to its crate's code: the patch gets its own copy, initialised afresh.
//! (Sharing those would mean rewriting the patch's PC-relative references to the program's
//! addresses; copying their bytes would duplicate any heap memory they own. Neither is safe.)

use std::collections::HashSet;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Names the program exports, read once per executable.
pub struct Exports {
    names: HashSet<String>,
    /// The exported data symbols (statics), by linkage name.
    data: Vec<String>,
}

impl Exports {
    pub fn read(executable: &Path) -> Result<Exports, String> {
        let data = map(executable)?;
        let file = object::File::parse(&*data).map_err(|err| err.to_string())?;
        let mut names = HashSet::new();
        let mut data = Vec::new();
        for symbol in file.dynamic_symbols().filter(|s| s.is_definition()) {
            let Ok(name) = symbol.name() else { continue };
            if symbol.kind() == SymbolKind::Data {
                data.push(name.to_owned());
            }
            names.insert(name.to_owned());
        }
        Ok(Exports { names, data })
    }

    /// Linkage names of the statics of `crate_name` that the program exports: those a patch
    /// shares with it.
    pub fn data_of_crate(&self, crate_name: &str) -> Vec<String> {
        let prefix = format!("{crate_name}::");
        self.data
            .iter()
            .filter(|name| {
                rustc_demangle::try_demangle(name)
                    .is_ok_and(|d| format!("{d:#}").starts_with(&prefix))
            })
            .filter(|name| !name.contains("__hotswap_"))
            .cloned()
            .collect()
    }
}

/// Human-readable names of the patch's writable statics and thread-locals that the program
/// does not export, i.e. that restart from their initial values.
/// `shared`: linkage names the patch was rewritten to share anyway (a binary crate's
/// thread-locals, see [`crate::rewrite`]).
/// `known`: whether the program has a symbol of that name (others are new in the patch).
pub fn fresh_copies(
    patch: &Path,
    exports: &Exports,
    shared: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let Ok(data) = map(patch) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Vec::new();
    };
    // A thread-local shared by name may have a twin the program's link dropped (an unused
    // instance of its storage, kept only by the debug information): same description, nothing
    // of it runs.
    let shared_shown: Vec<String> = shared.iter().filter_map(|n| describe(n, true)).collect();
    let mut found: Vec<String> = Vec::new();
    for symbol in file.symbols() {
        // `is_definition` is false for TLS symbols in `object`; test for "defined here" instead.
        if symbol.is_undefined() || !matches!(symbol.kind(), SymbolKind::Data | SymbolKind::Tls) {
            continue;
        }
        let Some(section) = symbol
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
        else {
            continue;
        };
        let tls = matches!(
            section.kind(),
            SectionKind::Tls | SectionKind::UninitializedTls
        );
        let writable = tls
            || matches!(
                section.kind(),
                SectionKind::Data | SectionKind::UninitializedData
            );
        let Ok(name) = symbol.name() else { continue };
        if !writable
            || exports.names.contains(name)
            || shared.iter().any(|s| s == name)
            || !known(name)
            || name.starts_with("__hotswap_")
        {
            continue;
        }
        if let Some(shown) = describe(name, tls) {
            if !found.contains(&shown) && !shared_shown.contains(&shown) {
                found.push(shown);
            }
        }
    }
    found
}

/// Maps a file: executables and patches carry large debug sections this never reads.
pub(crate) fn map(path: &Path) -> Result<memmap2::Mmap, String> {
    let file = std::fs::File::open(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    // SAFETY: the executable cargo just built and the patch we just linked; nothing writes to
    // them while they are read (a rebuild writes a new file). (`carry` reads the executable
    // it has just started in the same way.)
    unsafe { memmap2::Mmap::map(&file) }
        .map_err(|err| format!("cannot map {}: {err}", path.display()))
}

/// `game::TL::{{constant}}::{{closure}}::VAL` → "thread-local `game::TL`"; `game::COUNT` →
/// "static `game::COUNT`"; hotswap's own and the standard library's internals → `None`.
pub(crate) fn describe(mangled: &str, tls: bool) -> Option<String> {
    let demangled = format!("{:#}", rustc_demangle::try_demangle(mangled).ok()?);
    if demangled.contains("__hotswap_")
        || demangled.contains("__CALLSITE")
        || demangled.starts_with('<')
    {
        return None;
    }
    if let Some((owner, _)) = demangled.split_once("::{{constant}}") {
        if demangled.contains("__RUST_STD_INTERNAL") || tls {
            return Some(format!("thread-local `{owner}`"));
        }
        return None;
    }
    if demangled.contains("{{") {
        return None;
    }
    Some(if tls {
        format!("thread-local `{demangled}`")
    } else {
        format!("static `{demangled}`")
    })
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn names_are_shown_as_written() {
        // Real legacy-mangled names, taken from a patch.
        let tl = "_ZN4game2TL29_$u7b$$u7b$constant$u7d$$u7d$28_$u7b$$u7b$closure$u7d$$u7d$23__RUST_STD_INTERNAL_VAL17ha066454878f3764fE";
        assert_eq!(
            describe(tl, false).as_deref(),
            Some("thread-local `game::TL`")
        );
        let count = "_ZN4game13PRIVATE_COUNT17h267f564dfc92cc07E";
        assert_eq!(
            describe(count, false).as_deref(),
            Some("static `game::PRIVATE_COUNT`")
        );
        let slot = "_ZN4game19__hotswap_slot_step17ha5923c3e4c5c0ebdE";
        assert_eq!(describe(slot, false), None);
    }
}
