//! The hot crate's sources, parsed: what the checks before a delivery compare besides the
//! compiled objects (trait definitions, whose shape decides vtables, and generic or `#[inline]`
//! items, whose copies live in other crates' code).
//!
//! The files are found as rustc finds them: from the crate root through every `mod name;`
//! (`name.rs` or `name/mod.rs` next to `lib.rs`/`mod.rs`, in `name/` next to `name.rs`, or a
//! `#[path]`), so a file that is not part of the crate is never read. Each module's file is
//! put in place of its `mod name;`, so every item carries its whole module path.

use std::path::Path;

/// The sources of the crate whose root is `root` (`src/lib.rs`), as one file. A file that
/// cannot be read or parsed is an error naming it: the checks must not go on blind.
pub fn read_crate(root: &Path) -> Result<Vec<syn::File>, String> {
    Ok(vec![read_module(root, true)?])
}

fn read_module(path: &Path, owns_dir: bool) -> Result<syn::File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut file = syn::parse_file(&text).map_err(|err| format!("{}: {err}", path.display()))?;
    let here = path.parent().unwrap_or(Path::new("."));
    // Where `mod m;` looks: next to `lib.rs`/`mod.rs`, in `name/` next to `name.rs`.
    let dir = if owns_dir {
        here.to_path_buf()
    } else {
        here.join(path.file_stem().unwrap_or_default())
    };
    inline_modules(&mut file.items, &dir, here)?;
    Ok(file)
}

fn inline_modules(items: &mut [syn::Item], dir: &Path, here: &Path) -> Result<(), String> {
    for item in items {
        let syn::Item::Mod(module) = item else {
            continue;
        };
        if let Some((_, inner)) = &mut module.content {
            inline_modules(inner, &dir.join(module.ident.to_string()), here)?;
            continue;
        }
        let explicit = module.attrs.iter().find_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        });
        let name = module.ident.to_string();
        let (path, owns_dir) = match explicit {
            Some(explicit) => (here.join(explicit), true),
            None => {
                let flat = dir.join(format!("{name}.rs"));
                if flat.exists() {
                    (flat, false)
                } else {
                    (dir.join(&name).join("mod.rs"), true)
                }
            }
        };
        // A module behind a `cfg` that is off may not exist.
        if !path.exists() {
            continue;
        }
        let file = read_module(&path, owns_dir)?;
        module.content = Some((Default::default(), file.items));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the functions in `items`, with their module paths.
    fn functions(items: &[syn::Item], path: &str, out: &mut Vec<String>) {
        for item in items {
            match item {
                syn::Item::Fn(f) => out.push(format!("{path}{}", f.sig.ident)),
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        functions(inner, &format!("{path}{}::", m.ident), out);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn modules_are_followed_as_rustc_follows_them() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let write = |relative: &str, text: &str| {
            let path = src.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "lib.rs",
            "mod a; mod b; mod inline { mod deep; } #[path = \"other.rs\"] mod c; pub fn root() {}",
        );
        write("a.rs", "mod child; pub fn a() {}");
        write("a/child.rs", "pub fn child() {}");
        write("b/mod.rs", "pub fn b() {}");
        write("inline/deep.rs", "pub fn deep() {}");
        write("other.rs", "pub fn c() {}");
        write("main.rs", "this is not part of the library {");
        write("unrelated.rs", "neither is this {");
        let files = read_crate(&src.join("lib.rs")).unwrap();
        let mut names = Vec::new();
        functions(&files[0].items, "", &mut names);
        names.sort();
        assert_eq!(
            names,
            [
                "a::a",
                "a::child::child",
                "b::b",
                "c::c",
                "inline::deep::deep",
                "root"
            ]
        );
    }

    #[test]
    fn a_file_that_does_not_parse_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.rs"), "mod x;").unwrap();
        std::fs::write(dir.path().join("x.rs"), "fn broken( {").unwrap();
        let err = read_crate(&dir.path().join("lib.rs")).err().unwrap();
        assert!(err.contains("x.rs"), "{err}");
    }
}
