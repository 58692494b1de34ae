//! The hot crate's source files, parsed: what the checks before a delivery compare besides the
//! compiled objects (trait definitions, whose shape decides vtables, and generic or `#[inline]`
//! items, whose copies live in other crates' code).
//!
//! The files are found as rustc finds them: from the crate root through every `mod name;`
//! (`name.rs` or `name/mod.rs`, or a `#[path]`), so a file that is not part of the crate is
//! never read.

use std::path::{Path, PathBuf};

/// One parsed source file of a crate.
pub struct SourceFile {
    pub path: PathBuf,
    pub syntax: syn::File,
}

/// Every source file of the crate whose root is `root`, parsed. A file that cannot be read or
/// parsed is an error naming it: the checks must not go on blind.
pub fn read_crate(root: &Path) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    // (file, directory its `mod x;` children live in)
    let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut queue = vec![(root.to_path_buf(), dir)];
    while let Some((path, dir)) = queue.pop() {
        if files.iter().any(|f: &SourceFile| f.path == path) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let syntax = syn::parse_file(&text)
            .map_err(|err| format!("cannot parse {}: {err}", path.display()))?;
        children(&syntax.items, &dir, &mut queue);
        files.push(SourceFile { path, syntax });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The files of the `mod name;` items in `items` (and in inline `mod name { … }` blocks, whose
/// own children live in `dir/name/`).
fn children(items: &[syn::Item], dir: &Path, queue: &mut Vec<(PathBuf, PathBuf)>) {
    for item in items {
        let syn::Item::Mod(module) = item else {
            continue;
        };
        let name = module.ident.to_string();
        let explicit = path_attribute(&module.attrs);
        match &module.content {
            Some((_, inner)) => {
                let inner_dir = match &explicit {
                    Some(path) => dir.join(path),
                    None => dir.join(&name),
                };
                children(inner, &inner_dir, queue);
            }
            None => {
                let file = match &explicit {
                    Some(path) => dir.join(path),
                    None if dir.join(format!("{name}.rs")).is_file() => {
                        dir.join(format!("{name}.rs"))
                    }
                    None => dir.join(&name).join("mod.rs"),
                };
                let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
                let child_dir = if is_mod_rs || explicit.is_some() {
                    file.parent().unwrap_or(dir).to_path_buf()
                } else {
                    dir.join(&name)
                };
                queue.push((file, child_dir));
            }
        }
    }
}

/// The value of a `#[path = "…"]` attribute.
fn path_attribute(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| {
        if !attr.path().is_ident("path") {
            return None;
        }
        let syn::Meta::NameValue(value) = &attr.meta else {
            return None;
        };
        match &value.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        }
    })
}

/// The parsed files alone, as the checks take them.
pub fn syntax(files: &[SourceFile]) -> Vec<syn::File> {
    files.iter().map(|f| f.syntax.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "mod a; mod b; mod inline { mod deep; } #[path = \"other.rs\"] mod c;",
        );
        write("a.rs", "mod child; pub fn a() {}");
        write("a/child.rs", "pub fn child() {}");
        write("b/mod.rs", "pub fn b() {}");
        write("inline/deep.rs", "pub fn deep() {}");
        write("other.rs", "pub fn c() {}");
        write("main.rs", "this is not part of the library {");
        write("unrelated.rs", "neither is this {");
        let files = read_crate(&src.join("lib.rs")).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.path.strip_prefix(&src).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "a/child.rs",
                "a.rs",
                "b/mod.rs",
                "inline/deep.rs",
                "lib.rs",
                "other.rs"
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
