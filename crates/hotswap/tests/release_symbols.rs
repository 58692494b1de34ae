//! A normal release build contains no hot-reload machinery.
//!
//! Builds `examples/minimal` with `cargo build --release -p minimal` (no hot feature) into the
//! shared end-to-end target directory and reads the binary's symbol tables (`.symtab` and
//! `.dynsym`) with the `object` crate: no `dlopen`, no `__hotswap_entry_*` manifest, and no code
//! of `hotswap::runtime`, `hotswap::__private`, `libloading` or `notify`. Then builds the same
//! example with `--features hot` and checks that the same search DOES find every one of them.
//!
//! How it fails if the feature broke: if the cold expansion kept a slot, an entry or a call into
//! the runtime, the release binary would link the loader and its symbols would be found. The hot
//! half proves the search itself works (a search that never matches would pass the cold half).

mod support;

use std::path::Path;

use object::{Object, ObjectSymbol};

/// What must be absent from a normal build and present in a hot one.
const MACHINERY: &[&str] = &[
    "dlopen",
    "*__hotswap_entry_v1_*",
    "hotswap::runtime::",
    "hotswap::__private::",
    "libloading::",
    "notify::",
];

/// Every symbol name of the binary (static and dynamic tables), as stored (mangled).
fn symbols(binary: &Path) -> Vec<String> {
    let data = std::fs::read(binary)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", binary.display()));
    let file = object::File::parse(&*data).expect("the binary is an object file");
    let mut names: Vec<String> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter_map(|symbol| symbol.name().ok().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether the (mangled) `symbol` is one of the `MACHINERY` items: a plain name (matched
/// exactly, versioned names like `dlopen@GLIBC_2.34` included), `*text*` (anywhere in the name),
/// a prefix ending in `*`, or a Rust
/// path ending in `::`, found as a path from a crate root: `notify::` matches
/// `<notify::Foo as Bar>::baz` but not `inotify::...` or `Condvar::notify_one`.
fn is(symbol: &str, item: &str) -> bool {
    if let Some(inner) = item
        .strip_prefix('*')
        .and_then(|rest| rest.strip_suffix('*'))
    {
        // `*text*`: anywhere in the name (manifest entries are private, mangled statics).
        symbol.contains(inner)
    } else if let Some(prefix) = item.strip_suffix('*') {
        symbol.starts_with(prefix)
    } else if let Some(path) = item.strip_suffix("::") {
        let demangled = demangle(symbol);
        let legacy = demangled.match_indices(item).any(|(at, _)| {
            !demangled[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        legacy || v0_mentions(symbol, path)
    } else {
        symbol == item
            || symbol
                .strip_prefix(item)
                .is_some_and(|rest| rest.starts_with('@'))
    }
}

/// Whether a v0-mangled symbol (`_R...`, what the standard library uses and what `-C
/// symbol-mangling-version=v0` gives) contains the path `a::b` from a crate root: `C`, an
/// optional disambiguator `s<base62>_`, then `<len>a<len>b`.
fn v0_mentions(symbol: &str, path: &str) -> bool {
    if !symbol.starts_with("_R") {
        return false;
    }
    let encoded: String = path
        .split("::")
        .map(|segment| {
            // An identifier starting with `_` or a digit gets a `_` separator after its length.
            let separator = if segment.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
                "_"
            } else {
                ""
            };
            format!("{}{separator}{segment}", segment.len())
        })
        .collect();
    symbol.match_indices(&encoded).any(|(at, _)| {
        let before = &symbol[..at];
        if before.ends_with('C') {
            return true;
        }
        // Or `Cs<base62>_` (the crate's disambiguator) right before the path.
        before.strip_suffix('_').is_some_and(|before| {
            before
                .rfind("Cs")
                .is_some_and(|i| before[i + 2..].chars().all(|c| c.is_ascii_alphanumeric()))
        })
    })
}

/// Demangles Rust's legacy symbol mangling (`_ZN7hotswap7runtime5start17h0123456789abcdefE` →
/// `hotswap::runtime::start`), the default of stable Rust. Other names are returned unchanged;
/// for v0 names (`_R...`) the raw text still contains each path segment.
fn demangle(raw: &str) -> String {
    let Some(mut rest) = raw.strip_prefix("_ZN") else {
        return raw.to_owned();
    };
    let mut segments = Vec::new();
    while let Some(len_end) = rest.find(|c: char| !c.is_ascii_digit()) {
        if len_end == 0 {
            break;
        }
        let Ok(len) = rest[..len_end].parse::<usize>() else {
            break;
        };
        let Some(segment) = rest.get(len_end..len_end + len) else {
            break;
        };
        segments.push(segment);
        rest = &rest[len_end + len..];
    }
    if segments
        .last()
        .is_some_and(|last| last.len() == 17 && last.starts_with('h'))
    {
        segments.pop(); // the hash
    }
    let mut text = segments.join("::");
    for (escape, plain) in [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("$C$", ","),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u5b$", "["),
        ("$u5d$", "]"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$u7e$", "~"),
        ("..", "::"),
    ] {
        text = text.replace(escape, plain);
    }
    text
}

/// Builds `minimal` in release mode with `extra` arguments and returns its symbols.
fn build_minimal(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["build", "--release", "-p", "minimal"];
    args.extend_from_slice(extra);
    support::cargo_ok(&support::workspace_root(), &args);
    symbols(&support::e2e_target_dir().join("release").join("minimal"))
}

// Proves the symbol matching used below on known mangled names (legacy and v0), so a matcher
// that never matches, or matches std's `Condvar::notify_one`, fails here.
#[test]
fn demangling_and_matching_work_on_known_names() {
    assert_eq!(
        demangle("_ZN7hotswap7runtime5start17h0123456789abcdefE"),
        "hotswap::runtime::start"
    );
    assert!(is(
        "_RNvNtCsjrHSEGnQ3l9_7hotswap7runtime5start",
        "hotswap::runtime::"
    ));
    assert!(is(
        "_RNvNtCsdeQqpyh3ktE_7hotswap9___private4boot",
        "hotswap::__private::"
    ));
    assert!(!is(
        "_RNvMNtNtNtCsjrHSEGnQ3l9_3std4sync4mpmc5wakerNtB2_5Waker6notify",
        "notify::"
    ));
    let drop_watcher = demangle(
        "_ZN4core3ptr54drop_in_place$LT$notify..inotify..INotifyWatcher$GT$17h0123456789abcdefE",
    );
    assert!(is(&drop_watcher, "notify::"), "{drop_watcher}");
    assert!(is(
        "_ZN4core3ptr54drop_in_place$LT$notify..inotify..INotifyWatcher$GT$17h0123456789abcdefE",
        "notify::"
    ));
    assert!(!is("std::sync::Condvar::notify_one", "notify::"));
    assert!(!is("inotify::Inotify::init", "notify::"));
    assert!(is("dlopen@GLIBC_2.34", "dlopen"));
    assert!(!is("dlopen_helper", "dlopen"));
    assert!(is(
        "_ZN7minimal32__hotswap_entry_v1_minimal_tick_017h0123456789abcdefE",
        "*__hotswap_entry_v1_*"
    ));
    assert!(!is(
        "_ZN7minimal4tick17h0123456789abcdefE",
        "*__hotswap_entry_v1_*"
    ));
}

// Proves: no loader in a normal release build, all of it in a hot one (see the top of the file).
#[test]
fn a_normal_release_build_has_no_loader_and_a_hot_build_has_it() {
    let cold = build_minimal(&[]);
    assert!(
        cold.iter()
            .any(|name| demangle(name).starts_with("minimal::")),
        "the release binary has no symbol table to inspect (stripped?)"
    );
    for item in MACHINERY {
        let found: Vec<&String> = cold.iter().filter(|name| is(name, item)).collect();
        assert!(
            found.is_empty(),
            "the normal release build contains `{item}`: {:?}",
            &found[..found.len().min(10)]
        );
    }

    let hot = build_minimal(&["--features", "hot"]);
    for item in MACHINERY {
        assert!(
            hot.iter().any(|name| is(name, item)),
            "the hot release build has no `{item}`: the search cannot see the machinery"
        );
    }
}
