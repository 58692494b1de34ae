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
    if let Some(method) = TraitMethod::of_implementation(name) {
        return readable_demangled(&method.wrapper_as_written());
    }
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
/// `game::__hotswap_impl_step` → `game::step`,
/// `<game::Dog as <game::Dog as game::Speak>::speak::__HotswapImpl>::__hotswap_impl_speak` →
/// `<game::Dog as game::Speak>::speak`; anything else → `None`.
pub(crate) fn wrapper_of(demangled: &str) -> Option<String> {
    if let Some(method) = TraitMethod::of_implementation(demangled) {
        return Some(method.wrapper);
    }
    if demangled.contains("__HotswapImpl") {
        // Inside a trait method's implementation (a closure), not the implementation.
        return None;
    }
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

/// A method of a `#[hot] impl Trait for Type`, read from its implementation's demangled name.
/// The macro puts the implementation in a hidden trait `__HotswapImpl` declared inside the
/// wrapper, so the name holds the wrapper's: rustc writes a trait method as
/// `<game::Dog as game::Speak>::speak`, or as `game::sys::<impl game::Speak for game::Dog>::speak`
/// when the impl sits in neither the type's nor the trait's module.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TraitMethod {
    /// The wrapper's demangled name, as rustc writes it (the trait method itself).
    pub wrapper: String,
    /// The implementing type as written in the name (`game::Dog`).
    pub self_ty: String,
    /// The trait's path (`game::Speak`).
    pub trait_: String,
    /// `speak`.
    pub method: String,
    /// The module of the impl when the name says it (`game::sys`).
    pub module: Option<String>,
}

impl TraitMethod {
    pub(crate) fn of_implementation(demangled: &str) -> Option<TraitMethod> {
        let close = demangled.strip_prefix('<').and_then(matching_close)?;
        let rest = demangled[close + 2..].strip_prefix("::")?;
        let method = rest.strip_prefix("__hotswap_impl_")?;
        if method.is_empty() || method.contains("::") {
            return None;
        }
        let (_, helper) = split_as(&demangled[1..close + 1])?;
        let at = helper.rfind("::__HotswapImpl")?;
        let args = &helper[at + "::__HotswapImpl".len()..];
        if !(args.is_empty() || args.starts_with('<')) {
            return None;
        }
        let helper = &helper[..at];
        let wrapper = helper.to_owned();
        let last = split_top(&wrapper);
        let (owner, name) = match last.split_last() {
            Some((name, owner)) if !owner.is_empty() => (owner.join("::"), name.to_string()),
            _ => return None,
        };
        if name != method {
            return None;
        }
        let bracketed = owner
            .strip_prefix('<')
            .and_then(|r| Some((r, matching_close(r)?)))
            .filter(|&(r, close)| close + 1 == r.len())
            .map(|(r, close)| &r[..close]);
        let (self_ty, trait_, module) = if let Some(inner) = bracketed {
            let (self_ty, trait_) = split_as(inner)?;
            (self_ty.to_owned(), trait_.to_owned(), None)
        } else {
            let at = owner.rfind("::<impl ")?;
            let inner = owner[at + "::<impl ".len()..].strip_suffix('>')?;
            let (trait_, self_ty) = split_word(inner, " for ")?;
            (
                self_ty.to_owned(),
                trait_.to_owned(),
                Some(owner[..at].to_owned()),
            )
        };
        Some(TraitMethod {
            wrapper,
            self_ty,
            trait_,
            method: method.to_owned(),
            module,
        })
    }

    /// `<game::Dog as game::Speak>::speak`, wherever the impl sits.
    pub(crate) fn wrapper_as_written(&self) -> String {
        format!("<{} as {}>::{}", self.self_ty, self.trait_, self.method)
    }

    /// The name `#[hot]` gives the entry, `module::<Dog as Speak>::speak`: the type's and the
    /// trait's last path segments without generic arguments (a type that is not a path as
    /// written: `(u8, u8)`), in `module`, the impl's.
    pub(crate) fn entry_name(&self, module: &str) -> String {
        format!(
            "{module}::<{} as {}>::{}",
            last_segment(&self.self_ty),
            last_segment(&self.trait_),
            self.method
        )
    }
}

/// A type as `#[hot]` shows it in a trait method's entry name: every path cut to its last
/// segment, without lifetimes (`game::model::View<'_>` → `View`,
/// `game::Wrapper<game::Item>` → `Wrapper<Item>`, `&str` as it is).
fn last_segment(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let mut word = String::new();
    let mut chars = ty.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if c == ':' && chars.peek() == Some(&':') {
            // `word::` is a path prefix: drop it.
            chars.next();
            word.clear();
            continue;
        }
        out.push_str(&word);
        word.clear();
        if c == '\'' {
            // A lifetime (`'_`, `'a`) and what separates it from the next argument.
            while chars
                .peek()
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                chars.next();
            }
            while chars.peek().is_some_and(|c| *c == ',' || *c == ' ') {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out.push_str(&word);
    out.replace("<>", "").replace(", >", ">").replace(",>", ">")
}

/// `A word B` at the top level of `inner`.
fn split_word<'a>(inner: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let bytes = inner.as_bytes();
    let mut depth = 0i32;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' => depth -= 1,
            b' ' if depth == 0 && inner[i..].starts_with(word) => {
                return Some((&inner[..i], &inner[i + word.len()..]));
            }
            _ => {}
        }
    }
    None
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
    split_word(inner, " as ")
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
        // Trait methods of a `#[hot] impl Trait for Type` (real legacy-mangled names from rustc
        // 1.95): next to the type, and in a third module.
        let beside = demangled("_ZN94_$LT$game..View$u20$as$u20$$LT$game..View$u20$as$u20$game..Speak$GT$..speak..__HotswapImpl$GT$20__hotswap_impl_speak17h1e2f9b2ef35ecdcaE");
        assert_eq!(
            wrapper_of(&beside).as_deref(),
            Some("<game::View as game::Speak>::speak")
        );
        assert_eq!(
            readable_demangled(&beside),
            "<game::View as game::Speak>::speak"
        );
        let elsewhere = demangled("_ZN113_$LT$game..Dog$u20$as$u20$game..sys..$LT$impl$u20$game..Speak$u20$for$u20$game..Dog$GT$..speak..__HotswapImpl$GT$20__hotswap_impl_speak17h08392151f4277dd9E");
        assert_eq!(
            wrapper_of(&elsewhere).as_deref(),
            Some("game::sys::<impl game::Speak for game::Dog>::speak")
        );
        assert_eq!(
            readable_demangled(&elsewhere),
            "<game::Dog as game::Speak>::speak"
        );
        let method = TraitMethod::of_implementation(&elsewhere).unwrap();
        assert_eq!(method.module.as_deref(), Some("game::sys"));
        assert_eq!(
            method.entry_name("game::sys"),
            "game::sys::<Dog as Speak>::speak"
        );
        assert_eq!(
            wrapper_of("<game::Dog as <game::Dog as game::Speak>::speak::__HotswapImpl>::__hotswap_impl_speak::{{closure}}"),
            None
        );
        assert!(is_generated(&elsewhere));
        assert_eq!(last_segment("game::model::View<'_>"), "View");
        assert_eq!(last_segment("game::Wrapper<game::Item>"), "Wrapper<Item>");
        assert_eq!(last_segment("&str"), "&str");
        assert_eq!(last_segment("game::Pair<'_, u32>"), "Pair<u32>");
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
        // A closure in a trait method's implementation belongs to the trait method.
        assert_eq!(
            hot_function_of("<game::Dog as <game::Dog as game::Speak>::speak::__HotswapImpl>::__hotswap_impl_speak::{{closure}}").as_deref(),
            Some("<game::Dog as game::Speak>::speak")
        );
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
