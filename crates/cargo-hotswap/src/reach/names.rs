//! Symbol names as people read them, and as paths to match against source items.

/// Demangled without the hash (`game::helper`, `<game::Counter as core::ops::drop::Drop>::drop`);
/// a name that is not Rust's (`main`, `memcpy`) as it is.
pub(crate) fn demangled(mangled: &str) -> String {
    match rustc_demangle::try_demangle(mangled) {
        Ok(name) => format!("{name:#}"),
        Err(_) => mangled.to_owned(),
    }
}

/// The name a user knows: a `#[hot]` implementation as its function (`__hotswap_impl_step` →
/// `game::step`, `game::Counter::bump`), inherent methods as `Type::method`, the standard
/// library's traits by their last name (`<game::Counter as Drop>::drop`).
pub(crate) fn readable(mangled: &str) -> String {
    readable_demangled(&demangled(mangled))
}

pub(crate) fn readable_demangled(name: &str) -> String {
    let mut name = name.replacen("::__hotswap_impl_", "::", 1);
    if let Some(close) = name.strip_prefix('<').and_then(matching_close) {
        let inner = &name[1..close + 1];
        let rest = &name[close + 2..];
        name = match split_as(inner) {
            // `<game::Counter>::bump` (v0 mangling) → `game::Counter::bump`
            None => format!("{inner}{rest}"),
            Some((self_ty, trait_)) => {
                let short = match trait_.split_once("::") {
                    Some(("core" | "alloc" | "std", _)) => {
                        let segments = split_top(trait_);
                        segments.last().copied().unwrap_or(trait_).to_owned()
                    }
                    _ => trait_.to_owned(),
                };
                format!("<{self_ty} as {short}>{rest}")
            }
        };
    }
    name
}

/// The item a name belongs to: `game::helper::{{closure}}` → `game::helper`.
pub(crate) fn item_of(readable: &str) -> &str {
    match readable.find("::{") {
        Some(at) => &readable[..at],
        None => readable,
    }
}

/// The wrapper a `#[hot]` implementation belongs to, by demangled name:
/// `game::__hotswap_impl_step` → `game::step`; anything else → `None`.
pub(crate) fn wrapper_of(demangled: &str) -> Option<String> {
    let at = demangled.rfind("::__hotswap_impl_")?;
    let tail = &demangled[at + 2..];
    if tail.contains("::") {
        // A closure inside the implementation, not the implementation.
        return None;
    }
    Some(format!(
        "{}::{}",
        &demangled[..at],
        &tail["__hotswap_impl_".len()..]
    ))
}

/// The `#[hot]` function a generated item's code is part of: the implementation and what is
/// inside it (the future of a `#[hot] async fn` is the implementation's `{{closure}}`, which is
/// where its body's code is) → the wrapper (`game::__hotswap_impl_fetch::{{closure}}` →
/// `game::fetch`); other generated items (slot, boot, entry…) → `None`.
pub(crate) fn hot_function_of(demangled: &str) -> Option<String> {
    wrapper_of(item_of(demangled))
}

/// Items `#[hot]` generates (slot, boot, guarded shim, types, entry, registration, the
/// implementation and anything inside them), and the functions a `State<T>` keeps for the
/// version of `T` that made its value (`hotswap::__private::{serialize,deserialize,drop}_state`,
/// reached from `#[derive(Migrate)]`'s entry): the runtime calls the old ones on purpose, to
/// serialise and drop a value of the old layout while migrating it.
pub(crate) fn is_generated(demangled: &str) -> bool {
    demangled.contains("__hotswap_")
        || ["serialize_state", "deserialize_state", "drop_state"]
            .iter()
            .any(|f| demangled.starts_with(&format!("hotswap::__private::{f}")))
}

/// A demangled name taken apart: `<Self as Trait>::segments` or plain `segments`, with generic
/// arguments, closures and shims left out (`game::scale::<u32>::{closure#0}` → `game::scale`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Path {
    /// The implementing type's path, for `<T>::f` and `<T as Trait>::f`.
    pub self_ty: Option<Vec<String>>,
    pub trait_: Option<Vec<String>>,
    pub segments: Vec<String>,
}

impl Path {
    pub(crate) fn parse(demangled: &str) -> Path {
        if let Some(close) = demangled.strip_prefix('<').and_then(matching_close) {
            let inner = &demangled[1..close + 1];
            let rest = demangled[close + 2..].trim_start_matches("::");
            let (self_ty, trait_) = match split_as(inner) {
                Some((self_ty, trait_)) => (self_ty, Some(type_path(trait_))),
                None => (inner, None),
            };
            return Path {
                self_ty: Some(type_path(self_ty)),
                trait_,
                segments: clean(split_top(rest)),
            };
        }
        Path {
            self_ty: None,
            trait_: None,
            segments: clean(split_top(demangled)),
        }
    }

    /// Whether this is code of crate `name`: its path, its implementing type's or its trait's
    /// starts there.
    pub(crate) fn belongs_to(&self, name: &str) -> bool {
        let root = |path: &Option<Vec<String>>| {
            path.as_ref()
                .and_then(|p| p.first())
                .is_some_and(|r| r == name)
        };
        match (&self.self_ty, &self.trait_) {
            (None, None) => self.segments.first().is_some_and(|r| r == name),
            _ => root(&self.self_ty) || root(&self.trait_),
        }
    }
}

/// The path of a type as written in a demangled name (`&mut game::Wrapper<T>` → `game`,
/// `Wrapper`).
fn type_path(ty: &str) -> Vec<String> {
    let mut ty = ty.trim();
    loop {
        let before = ty;
        for prefix in ["&", "mut ", "*const ", "*mut ", "dyn ", "'_ ", "'static "] {
            ty = ty.strip_prefix(prefix).unwrap_or(ty).trim_start();
        }
        if ty == before {
            break;
        }
    }
    clean(split_top(ty))
}

fn clean(segments: Vec<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(segments.len());
    for segment in segments {
        // `{{closure}}`, `{closure#0}`, `{shim:vtable#0}`: inside the item named before it.
        if segment.starts_with('{') {
            break;
        }
        // `::<u32>` (v0 generic arguments).
        if segment.starts_with('<') {
            continue;
        }
        let end = segment.find(['<', '{']).unwrap_or(segment.len());
        out.push(segment[..end].to_owned());
    }
    out
}

/// Splits at `::` outside of `<>`, `()`, `[]` and `{}` (the `>` of `->` does not count).
fn split_top(name: &str) -> Vec<&str> {
    let bytes = name.as_bytes();
    let mut depth = 0i32;
    let mut out = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' | b'{' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' | b'}' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                out.push(&name[from..i]);
                i += 2;
                from = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&name[from..]);
    out.retain(|s| !s.is_empty());
    out
}

/// In `rest` (what follows an opening `<`), the index of the matching `>`.
fn matching_close(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut depth = 1i32;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `Self as Trait` at the top level of `<…>`.
fn split_as(inner: &str) -> Option<(&str, &str)> {
    let bytes = inner.as_bytes();
    let mut depth = 0i32;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth -= 1,
            b' ' if depth == 0 && inner[i..].starts_with(" as ") => {
                return Some((&inner[..i], &inner[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn readable_names() {
        // Real legacy-mangled names from rustc 1.95.
        assert_eq!(
            readable("_ZN4game19__hotswap_impl_step17h95bce34f17ad9d62E"),
            "game::step"
        );
        assert_eq!(
            readable("_ZN55_$LT$game..Counter$u20$as$u20$core..ops..drop..Drop$GT$4drop17hee000e83ef54e2f7E"),
            "<game::Counter as Drop>::drop"
        );
        assert_eq!(readable("main"), "main");
        assert_eq!(
            readable_demangled("<game::Counter>::__hotswap_impl_bump"),
            "game::Counter::bump"
        );
        assert_eq!(
            readable_demangled("<game::Circle as game::Shape>::area"),
            "<game::Circle as game::Shape>::area"
        );
    }

    #[test]
    fn wrappers_and_generated_items() {
        assert_eq!(
            wrapper_of("game::__hotswap_impl_step").as_deref(),
            Some("game::step")
        );
        assert_eq!(
            wrapper_of("game::Counter::__hotswap_impl_bump").as_deref(),
            Some("game::Counter::bump")
        );
        assert_eq!(wrapper_of("game::__hotswap_impl_step::{{closure}}"), None);
        assert!(is_generated("game::__hotswap_boot_step"));
        // The body of a `#[hot] async fn` is its implementation's future, a closure; the async
        // wrapper itself stays `#[inline(always)]`, and the future is a generated item (the
        // barrier), reported as the function.
        assert!(is_generated("game::__hotswap_impl_fetch::{{closure}}"));
        assert_eq!(
            hot_function_of("game::__hotswap_impl_fetch::{{closure}}").as_deref(),
            Some("game::fetch")
        );
        assert_eq!(
            hot_function_of("<game::Client>::__hotswap_impl_get::{closure#0}").as_deref(),
            Some("<game::Client>::get")
        );
        assert_eq!(
            hot_function_of("game::__hotswap_impl_step").as_deref(),
            Some("game::step")
        );
        assert_eq!(hot_function_of("game::__hotswap_boot_fetch"), None);
        assert!(!is_generated("game::step"));
    }

    #[test]
    fn paths() {
        let p = Path::parse("game::scale::<u32>::{closure#0}");
        assert_eq!(p.segments, strings(&["game", "scale"]));
        assert!(p.belongs_to("game"));
        let p = Path::parse("<game::Wrapper<fn() -> u32> as core::fmt::Debug>::fmt");
        assert_eq!(p.self_ty, Some(strings(&["game", "Wrapper"])));
        assert_eq!(p.trait_, Some(strings(&["core", "fmt", "Debug"])));
        assert_eq!(p.segments, strings(&["fmt"]));
        assert!(p.belongs_to("game"));
        let p = Path::parse("core::ptr::drop_in_place<game::Counter>");
        assert_eq!(p.segments, strings(&["core", "ptr", "drop_in_place"]));
        assert!(!p.belongs_to("game"));
        let p = Path::parse("<u32 as game::Shape>::describe");
        assert!(p.belongs_to("game"));
        let p = Path::parse("game::Counter::get");
        assert_eq!(p.segments, strings(&["game", "Counter", "get"]));
    }
}
