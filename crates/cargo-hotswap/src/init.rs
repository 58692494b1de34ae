//! `cargo hotswap init`: set up a package for hotswap with the fewest edits, and say what
//! changed.
//!
//! - adds the `hotswap` dependency;
//! - adds a `hot` feature (`hot = ["hotswap/hot"]`), the opt-in for the full library workflow
//!   (plain `cargo build`); `cargo hotswap run` needs no opt-in;
//! - a package without `src/lib.rs` gets one with a first `#[hotswap::hot]` function, since hot
//!   code lives in a library crate; otherwise it points at a function to mark.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use crate::report;

pub fn run(manifest: Option<&Path>, hotswap_path: Option<&Path>, dry_run: bool) -> i32 {
    match init(manifest, hotswap_path, dry_run) {
        Ok(()) => 0,
        Err(err) => {
            report::error(&err);
            1
        }
    }
}

fn init(manifest: Option<&Path>, hotswap_path: Option<&Path>, dry_run: bool) -> Result<(), String> {
    let manifest = match manifest {
        Some(path) => path.to_path_buf(),
        None => locate_manifest()?,
    };
    let text = std::fs::read_to_string(&manifest)
        .map_err(|err| format!("cannot read {}: {err}", manifest.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|err| format!("{} is not valid TOML: {err}", manifest.display()))?;
    let Some(package) = doc.get("package").and_then(Item::as_table) else {
        return Err(format!(
            "{} is a virtual workspace; run `cargo hotswap init --manifest-path <member>/Cargo.toml` \
             for the member that should hold the hot code",
            manifest.display()
        ));
    };
    let name = package
        .get("name")
        .and_then(Item::as_str)
        .ok_or("the package has no name")?
        .to_owned();
    let dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut changes = Vec::new();

    let dependencies = doc
        .entry("dependencies")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or("[dependencies] is not a table")?;
    if dependencies.contains_key("hotswap") {
        changes.push("kept the existing `hotswap` dependency".to_owned());
    } else {
        let spec = dependency_spec(hotswap_path);
        changes.push(format!(
            "Cargo.toml: added `hotswap = {spec}` to [dependencies]"
        ));
        dependencies.insert("hotswap", spec);
    }

    let features = doc
        .entry("features")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or("[features] is not a table")?;
    if features.contains_key("hot") {
        changes.push("kept the existing `hot` feature".to_owned());
    } else {
        let mut list = Array::new();
        list.push("hotswap/hot");
        features.insert("hot", value(list));
        changes.push(
            "Cargo.toml: added feature `hot = [\"hotswap/hot\"]` (opt-in for plain `cargo build`; \
             `cargo hotswap run` does not need it)"
                .to_owned(),
        );
    }

    let lib = dir.join("src").join("lib.rs");
    let main = dir.join("src").join("main.rs");
    let mut new_lib = None;
    let hint = if lib.exists() {
        let source = std::fs::read_to_string(&lib).unwrap_or_default();
        if source.contains("hotswap::hot") || source.contains("#[hot]") {
            "src/lib.rs already has #[hot] functions".to_owned()
        } else {
            match first_pub_fn(&source) {
                Some((line, fn_name)) => format!(
                    "next: put `#[hotswap::hot]` above `pub fn {fn_name}` (src/lib.rs line {line}), \
                     call it from your main loop, and run `cargo hotswap run`"
                ),
                None => "next: put `#[hotswap::hot]` on a `pub fn` in src/lib.rs that your main \
                         loop calls, and run `cargo hotswap run`"
                    .to_owned(),
            }
        }
    } else {
        new_lib = Some(STARTER_LIB.to_owned());
        changes.push(
            "src/lib.rs: created with a first `#[hotswap::hot]` function, `frame`".to_owned(),
        );
        let crate_name = name.replace('-', "_");
        if main.exists() {
            format!(
                "next: call `{crate_name}::frame(&mut state)` from the loop in src/main.rs (state: \
                 `{crate_name}::State::default()`), run `cargo hotswap run`, and edit `frame`"
            )
        } else {
            "next: call `frame` from your program and run `cargo hotswap run`".to_owned()
        }
    };

    if dry_run {
        report::info("dry run: nothing written");
    } else {
        std::fs::write(&manifest, doc.to_string())
            .map_err(|err| format!("cannot write {}: {err}", manifest.display()))?;
        if let Some(source) = new_lib {
            std::fs::write(&lib, source)
                .map_err(|err| format!("cannot write {}: {err}", lib.display()))?;
        }
    }
    for change in changes {
        report::ok(&change);
    }
    report::info(&hint);
    Ok(())
}

const STARTER_LIB: &str = r#"//! Hot code: edit a `#[hotswap::hot]` function while `cargo hotswap run` runs the program.

/// What the program keeps between frames; it survives every patch.
#[derive(Debug, Default)]
pub struct State {
    pub frames: u64,
}

/// Called once per frame. Edit the body and save: the next call runs the new code.
#[hotswap::hot]
pub fn frame(state: &mut State) {
    state.frames += 1;
    println!("frame {}", state.frames);
}
"#;

fn dependency_spec(path: Option<&Path>) -> Item {
    let path = path.map(Path::to_path_buf).or_else(source_checkout);
    match path {
        Some(path) => {
            let mut table = InlineTable::new();
            table.insert("path", path.display().to_string().into());
            value(table)
        }
        None => value(env!("CARGO_PKG_VERSION")),
    }
}

/// The `hotswap` crate next to this CLI's sources, when the CLI runs from a source checkout.
fn source_checkout() -> Option<PathBuf> {
    let candidate = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("hotswap");
    candidate.join("Cargo.toml").exists().then_some(candidate)
}

fn locate_manifest() -> Result<PathBuf, String> {
    let output = std::process::Command::new(crate::project::cargo())
        .args(["locate-project", "--message-format", "plain"])
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !output.status.success() {
        return Err("no Cargo.toml here or above; run this inside a package".into());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// The first `pub fn` at the start of a line: its line number and name.
fn first_pub_fn(source: &str) -> Option<(usize, String)> {
    source.lines().enumerate().find_map(|(i, line)| {
        let rest = line.trim_start().strip_prefix("pub fn ")?;
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then(|| (i + 1, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_public_function() {
        let source = "use x;\nfn private() {}\npub fn update(s: &mut S) {}\n";
        assert_eq!(first_pub_fn(source), Some((3, "update".into())));
    }

    #[test]
    fn init_adds_dependency_and_feature_and_keeps_formatting() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"demo\"  # mine\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlog = \"0.4\"\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        init(Some(&manifest), Some(Path::new("/opt/hotswap")), false).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains("name = \"demo\"  # mine"), "{text}");
        assert!(
            text.contains("hotswap = { path = \"/opt/hotswap\" }"),
            "{text}"
        );
        assert!(text.contains("hot = [\"hotswap/hot\"]"), "{text}");
        let lib = std::fs::read_to_string(dir.path().join("src/lib.rs")).unwrap();
        assert!(lib.contains("#[hotswap::hot]"));
        // A second run changes nothing.
        init(Some(&manifest), None, false).unwrap();
        assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
    }
}
