//! Which linker links thin patches.
//!
//! A patch is linked by the program's linker driver (`cc`, from the captured rustc command)
//! with the same flags whichever linker does the work; the choice only adds the driver flags
//! that select the linker (`-fuse-ld=…`, and `-B<dir>` for the toolchain's own lld) and says
//! how to place the patch at a fixed address:
//!
//! | linker | selected by | fixed address |
//! | --- | --- | --- |
//! | `rust-lld` (ships with the toolchain) | `-B<sysroot>/lib/rustlib/<host>/bin/gcc-ld -fuse-ld=lld` | `--image-base=` |
//! | `lld` (the system's `ld.lld`, only when asked for) | `-fuse-ld=lld` | `--image-base=` |
//! | `mold` (only when asked for) | `-fuse-ld=mold` | cannot: such patches go to `cc` |
//! | `cc` (the driver's default, GNU ld) | nothing | `-Ttext-segment=` |
//!
//! lld refuses `-Ttext-segment` ("use --image-base"); with `--image-base` its first `PT_LOAD`
//! starts at the base, as ld's does with `-Ttext-segment`. mold reads neither the base nor the
//! `HIDDEN(…)` assignments of the patch's linker script.
//!
//! The choice is made once per session ([`chosen`]): `HOTSWAP_PATCH_LINKER`
//! (`cc`, `lld`, `rust-lld` or `mold`) if set, else `rust-lld` if the toolchain has it, else
//! `cc`. Measured on a 2-core machine, the linker alone, under `cargo hotswap run` (median of
//! 5 patches): a Bevy crate's patch (6.4 MB of objects) 31 ms with rust-lld 22 against 57 ms
//! with GNU ld 2.40; a small crate's (0.2 MB) about 22 ms with either. Debian's lld 14 was
//! slower than GNU ld at every size (it loads `libLLVM`), so a system `ld.lld` is not taken
//! unasked; nor is mold (1.10: slower than both on a small crate's patch), which cannot place
//! a patch at a fixed address anyway.
//!
//! The choice is made from availability and a flag set known to work, not from a self-test
//! link at start: the flag sets are what the unit tests link and check with every
//! linker present (a patch at its base, the script's hidden symbols at their addresses, no text
//! relocations), `cargo hotswap doctor` runs the same probe, and every link at run time is
//! checked anyway: a fast linker's patch must start at its base, or the link fails, and a failed
//! link is linked again with `cc` (see [`attempts`]). When `cc` succeeds where the fast linker
//! failed, the fast linker is dropped for the rest of the session ([`demote`]). A self-test
//! would add a probe link (and a C compile) to the first patch's time without catching anything
//! those checks miss.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Overrides the choice of the patch linker.
pub const ENV: &str = "HOTSWAP_PATCH_LINKER";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linker {
    Cc,
    RustLld,
    Lld,
    Mold,
}

/// The linkers tried, in order, when none is asked for.
const AUTOMATIC: [Linker; 1] = [Linker::RustLld];

impl Linker {
    pub fn name(self) -> &'static str {
        match self {
            Linker::Cc => "cc",
            Linker::RustLld => "rust-lld",
            Linker::Lld => "lld",
            Linker::Mold => "mold",
        }
    }

    fn parse(text: &str) -> Option<Linker> {
        [Linker::Cc, Linker::RustLld, Linker::Lld, Linker::Mold]
            .into_iter()
            .find(|l| l.name() == text.trim())
    }

    /// The driver flags that place a patch at `base`; `None`: this linker cannot.
    pub fn placement(self, base: u64) -> Option<Vec<OsString>> {
        match self {
            Linker::Cc => Some(vec![format!("-Wl,-Ttext-segment={base:#x}").into()]),
            Linker::RustLld | Linker::Lld => {
                Some(vec![format!("-Wl,--image-base={base:#x}").into()])
            }
            Linker::Mold => None,
        }
    }

    /// Where it is installed, and the driver flags that select it; `None`: not here.
    fn locate(self) -> Option<Flags> {
        let flags = |path: PathBuf, args: Vec<OsString>| Flags {
            linker: self,
            path: Some(path),
            args,
        };
        match self {
            Linker::Cc => Some(Flags::cc()),
            Linker::RustLld => {
                let dir = gcc_ld_dir()?;
                let lld = dir.parent()?.join("rust-lld");
                lld.is_file().then(|| {
                    let mut b = OsString::from("-B");
                    b.push(&dir);
                    flags(
                        lld,
                        vec![
                            b,
                            "-fuse-ld=lld".into(),
                            UNDEFINED_VERSION.into(),
                            ONE_THREAD.into(),
                        ],
                    )
                })
            }
            Linker::Lld => Some(flags(
                on_path("ld.lld")?,
                vec![
                    "-fuse-ld=lld".into(),
                    UNDEFINED_VERSION.into(),
                    ONE_THREAD.into(),
                ],
            )),
            Linker::Mold => Some(flags(on_path("ld.mold")?, vec!["-fuse-ld=mold".into()])),
        }
    }
}

/// lld (since 16) refuses a version script naming a symbol the link does not define (`main`,
/// in a binary crate's script); GNU ld, whose behaviour the scripts are written for, does not.
const UNDEFINED_VERSION: &str = "-Wl,--undefined-version";

/// lld starts a thread per core; a patch is linked while the program runs (and the CLI checks
/// the previous patch), and on two busy cores the threads cost more than they bring: a Bevy
/// patch linked in 33.6 ms with them and 28.8 ms without, a small one no slower.
const ONE_THREAD: &str = "-Wl,--threads=1";

/// A linker and the driver flags that select it.
#[derive(Clone, Debug)]
pub struct Flags {
    pub linker: Linker,
    /// The linker's file (`None` for the driver's own).
    pub path: Option<PathBuf>,
    pub args: Vec<OsString>,
}

impl Flags {
    fn cc() -> Flags {
        Flags {
            linker: Linker::Cc,
            path: None,
            args: Vec::new(),
        }
    }
}

/// The session's patch linker, and why.
pub struct Choice {
    pub flags: Flags,
    pub why: String,
}

impl Choice {
    /// One line for `doctor`.
    pub fn describe(&self) -> String {
        let what = match &self.flags.path {
            Some(path) => format!("{} ({})", self.flags.linker.name(), path.display()),
            None => "cc (the program's linker driver, with its default linker)".to_owned(),
        };
        let fixed = match self.flags.linker {
            Linker::Mold => {
                "; patches at a fixed address (shared statics) with cc, mold cannot place them"
            }
            _ => "",
        };
        format!(
            "thin patches are linked with {what}{fixed}: {}; override with {ENV}=cc|lld|rust-lld|mold",
            self.why
        )
    }
}

static CHOSEN: OnceLock<Choice> = OnceLock::new();
static DEMOTED: AtomicBool = AtomicBool::new(false);

/// The patch linker of this session (decided at the first call).
pub fn chosen() -> &'static Choice {
    CHOSEN.get_or_init(|| choose(std::env::var(ENV).ok().as_deref(), Linker::locate))
}

/// Chooses from `asked` (the variable's value) and what `locate` finds.
fn choose(asked: Option<&str>, locate: impl Fn(Linker) -> Option<Flags>) -> Choice {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    let mut why = String::new();
    if let Some(text) = asked {
        match Linker::parse(text) {
            Some(linker) => match locate(linker) {
                Some(flags) => {
                    return Choice {
                        flags,
                        why: format!("{ENV}={text}"),
                    };
                }
                None => why = format!("{ENV}={text}, but it is not installed; "),
            },
            None => why = format!("{ENV}={text} is not one of cc, lld, rust-lld, mold; "),
        }
    }
    for linker in AUTOMATIC {
        if let Some(flags) = locate(linker) {
            why.push_str(match linker {
                Linker::RustLld => {
                    "the toolchain's own lld, faster than GNU ld on large patches, and it can \
                     place a patch at a fixed address"
                }
                _ => "the fastest linker found here that can place a patch at a fixed address",
            });
            return Choice { flags, why };
        }
    }
    why.push_str("the toolchain has no rust-lld");
    Choice {
        flags: Flags::cc(),
        why,
    }
}

/// Every linker installed here that can place a patch at a fixed address (`cc` first).
#[cfg(test)]
pub fn present_for_tests() -> Vec<Flags> {
    [Linker::Cc, Linker::RustLld, Linker::Lld]
        .into_iter()
        .filter_map(Linker::locate)
        .collect()
}

/// How to try linking one patch, in order: the session's linker (unless it cannot place a
/// patch at a fixed address and one is asked for, or it was demoted), then `cc`.
pub fn attempts(fixed: bool) -> Vec<Flags> {
    let chosen = &chosen().flags;
    let usable = chosen.linker != Linker::Cc
        && !DEMOTED.load(Ordering::Relaxed)
        && !(fixed && chosen.linker.placement(0).is_none());
    let mut attempts = Vec::with_capacity(2);
    if usable {
        attempts.push(chosen.clone());
    }
    attempts.push(Flags::cc());
    attempts
}

/// `linker` failed to link a patch that `cc` then linked: link with `cc` from now on, and say so
/// once.
pub fn demote(linker: Linker, failure: &str) {
    if !DEMOTED.swap(true, Ordering::Relaxed) {
        let first = failure.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        crate::report::warn(&format!(
            "{} could not link a patch that cc could ({first}); patches are linked with cc from \
             now on (set {ENV}=cc to start that way)",
            linker.name()
        ));
    }
}

/// The link of a patch (or of a probe): `driver` with `flags`, the manifest's `version_script`,
/// `inputs`, into `output`; with `fixed`, at that base, with the linker script of hidden
/// symbols. `None` if `flags`' linker cannot place a patch at a fixed address.
pub fn command(
    driver: &str,
    flags: &Flags,
    version_script: &Path,
    output: &Path,
    inputs: &[OsString],
    fixed: Option<(u64, &Path)>,
) -> Option<Command> {
    let args = link_args(flags, version_script, inputs, fixed)?;
    let mut command = Command::new(driver);
    command
        .args(&flags.args)
        .arg("-shared")
        .args(&args.before_output)
        .arg("-o")
        .arg(output)
        .args(&args.after_output);
    Some(command)
}

/// [`command`]'s link with the linker started directly, not through `driver` (see
/// [`crate::link_direct`]); `None` where that is not done.
pub fn direct_command(
    driver: &str,
    flags: &Flags,
    version_script: &Path,
    output: &Path,
    inputs: &[OsString],
    fixed: Option<(u64, &Path)>,
) -> Option<Command> {
    let args = link_args(flags, version_script, inputs, fixed)?;
    let all: Vec<OsString> = args
        .before_output
        .into_iter()
        .chain(args.after_output)
        .collect();
    crate::link_direct::command(driver, flags, output, &all)
}

/// The driver arguments of a patch's link, on either side of `-o`.
struct LinkArgs {
    before_output: Vec<OsString>,
    after_output: Vec<OsString>,
}

fn link_args(
    flags: &Flags,
    version_script: &Path,
    inputs: &[OsString],
    fixed: Option<(u64, &Path)>,
) -> Option<LinkArgs> {
    let mut script = OsString::from("-Wl,--version-script=");
    script.push(version_script);
    let before_output = vec![
        // Calls between the patch's own functions bind inside the patch: the new code calls
        // the new code. Data still binds to the program where the program exports it.
        OsString::from("-Wl,-Bsymbolic-functions"),
        OsString::from("-Wl,-z,noexecstack"),
        // No debug information: nothing can read it once the file is deleted after loading
        // (backtraces and debuggers look for the file), and it is most of a patch's size, held
        // on disk for as long as the patch stays mapped.
        OsString::from("-Wl,-S"),
        script,
    ];
    let mut after_output = inputs.to_vec();
    if let Some((base, symbols)) = fixed {
        after_output.extend(flags.linker.placement(base)?);
        // Segments aligned to one page: glibc maps a larger alignment with extra room past
        // the span the program released.
        after_output.push("-Wl,-z,max-page-size=4096".into());
        // A file of assignments only: the linker reads it as an implicit script that adds
        // to its default one.
        after_output.push(symbols.as_os_str().to_owned());
    }
    Some(LinkArgs {
        before_output,
        after_output,
    })
}

/// The toolchain's sysroot: the one of the `cargo` that runs us (`$CARGO` is
/// `<sysroot>/bin/cargo`), without starting a process, unless `RUSTC` names another compiler;
/// else what `rustc --print sysroot` says.
fn sysroot() -> Option<PathBuf> {
    if std::env::var_os("RUSTC").is_none() {
        let cargo = std::env::var_os("CARGO").map(PathBuf::from);
        let sysroot = cargo
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::parent);
        if let Some(sysroot) = sysroot.filter(|s| s.join("lib").join("rustlib").is_dir()) {
            return Some(sysroot.to_owned());
        }
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// The directory of the toolchain's `ld.lld` wrapper (which runs `../rust-lld`).
fn gcc_ld_dir() -> Option<PathBuf> {
    let rustlib = sysroot()?.join("lib").join("rustlib");
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let wrapper = |dir: &Path| dir.join("bin").join("gcc-ld").join("ld.lld").is_file();
    if wrapper(&rustlib.join(&host)) {
        return Some(rustlib.join(host).join("bin").join("gcc-ld"));
    }
    // Another host triple (musl, …): the one directory with the wrapper.
    std::fs::read_dir(&rustlib)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|dir| dir.file_name().is_some_and(|n| n != "etc" && n != "src") && wrapper(dir))
        .map(|dir| dir.join("bin").join("gcc-ld"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Links a tiny patch with `flags` (at `base` when given, else anywhere), plus `extra` objects,
/// and checks it: its first `PT_LOAD` at the base, the hidden symbol the script defines
/// resolved at link time to its address (the code's displacement reaches it), no text
/// relocations, no dynamic symbol or relocation for it. What it found, or what is wrong.
pub fn probe(
    driver: &str,
    flags: &Flags,
    dir: &Path,
    base: Option<u64>,
    extra: &[PathBuf],
) -> Result<String, String> {
    const TARGET: u64 = 0x7e00_0012_3450;
    let run = |mut command: Command, what: &str| -> Result<(), String> {
        let output = command
            .output()
            .map_err(|err| format!("cannot run {what}: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let source = dir.join("probe.c");
    let text = match base {
        // What the rewriter leaves: a PC-relative reference to an undefined hidden symbol.
        Some(_) => {
            "__attribute__((visibility(\"hidden\"))) extern long __hs_d0;\n\
                    long hotswap_probe(void) { return __hs_d0; }\n"
        }
        // A reference to the program's data, through the GOT, bound by the loader.
        None => {
            "extern long hotswap_program_value;\n\
                 long hotswap_probe(void) { return hotswap_program_value; }\n"
        }
    };
    std::fs::write(&source, text).map_err(|e| e.to_string())?;
    let object = dir.join("probe.o");
    let mut compile = Command::new(driver);
    compile
        .args(["-fPIC", "-O1", "-c", "-o"])
        .arg(&object)
        .arg(&source);
    run(compile, "compiling the probe")?;
    let version = dir.join("probe.ver");
    std::fs::write(&version, "{\n  local: *__hotswap_slot_*;\n};\n").map_err(|e| e.to_string())?;
    let symbols = dir.join("probe.ld");
    let mut inputs = vec![object.into_os_string()];
    inputs.extend(extra.iter().map(|p| p.clone().into_os_string()));
    let mut fixed = None;
    if base.is_some() {
        std::fs::write(&symbols, format!("HIDDEN(__hs_d0 = {TARGET:#x});\n"))
            .map_err(|e| e.to_string())?;
        fixed = base.map(|b| (b, symbols.as_path()));
    }
    let output = dir.join(format!("probe-{}.so", flags.linker.name()));
    let command = command(driver, flags, &version, &output, &inputs, fixed)
        .ok_or_else(|| format!("{} cannot link at a fixed address", flags.linker.name()))?;
    run(command, &format!("linking with {}", flags.linker.name()))?;
    check(&output, base.map(|b| (b, TARGET)))
}

/// The checks of [`probe`] on a linked file.
fn check(file: &Path, fixed: Option<(u64, u64)>) -> Result<String, String> {
    use object::read::elf::{FileHeader, ProgramHeader};
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data)
        .map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let first = header
        .program_headers(endian, &*data)
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|s| s.p_type(endian) == object::elf::PT_LOAD)
        .map(|s| s.p_vaddr(endian))
        .min()
        .ok_or("no PT_LOAD")?;
    let elf = object::File::parse(&*data).map_err(|e| e.to_string())?;
    // Text relocations: DT_TEXTREL (22), or DF_TEXTREL (4) in DT_FLAGS (30).
    if let Some(dynamic) = elf.section_by_name(".dynamic") {
        let bytes = dynamic.data().map_err(|e| e.to_string())?;
        for entry in bytes.chunks_exact(16) {
            let tag = u64::from_le_bytes(entry[..8].try_into().unwrap());
            let value = u64::from_le_bytes(entry[8..].try_into().unwrap());
            if tag == 22 || (tag == 30 && value & 4 != 0) {
                return Err("the patch has text relocations".into());
            }
        }
    }
    if elf.dynamic_symbols().any(|s| s.name() == Ok("__hs_d0")) {
        return Err("__hs_d0 is a dynamic symbol: the loader would look for it".into());
    }
    let Some((base, target)) = fixed else {
        return Ok(format!("linked anywhere (first PT_LOAD at {first:#x})"));
    };
    if first != base {
        return Err(format!("first PT_LOAD at {first:#x}, not at {base:#x}"));
    }
    let symbol = |name: &str| {
        elf.symbols()
            .find(|s| s.name() == Ok(name))
            .ok_or_else(|| format!("no symbol {name}"))
    };
    let value = symbol("__hs_d0")?.address();
    if value != target {
        return Err(format!("__hs_d0 = {value:#x}, not {target:#x}"));
    }
    // `mov disp32(%rip),%rax` at -O1: the displacement reaches the target.
    let function = symbol("hotswap_probe")?.address();
    let text = elf
        .sections()
        .find(|s| (s.address()..s.address() + s.size()).contains(&function))
        .ok_or("hotswap_probe is in no section")?;
    let code = text.data().map_err(|e| e.to_string())?;
    let at = (function - text.address()) as usize;
    if std::env::consts::ARCH == "x86_64" {
        let insn = code.get(at..at + 7).ok_or("hotswap_probe is cut short")?;
        if insn[..3] != [0x48, 0x8b, 0x05] {
            return Err(format!("unexpected code in hotswap_probe: {insn:02x?}"));
        }
        let disp = i32::from_le_bytes(insn[3..7].try_into().unwrap());
        let reached = (function + 7).wrapping_add_signed(i64::from(disp));
        if reached != target {
            return Err(format!("the code reads {reached:#x}, not {target:#x}"));
        }
    }
    Ok(format!(
        "linked at {base:#x}, hidden symbols resolved at link time"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x7e00_0000_0000;

    /// A small rustc object (a static, a thread-local, section groups, `.llvm_addrsig`): what
    /// patches are made of.
    fn rust_object(dir: &Path) -> PathBuf {
        crate::test_rustc::object(
            dir,
            "use std::cell::Cell;\n\
             use std::sync::atomic::{AtomicU64, Ordering};\n\
             static COUNT: AtomicU64 = AtomicU64::new(0);\n\
             thread_local! { static TL: Cell<u64> = const { Cell::new(0) }; }\n\
             pub fn bump() -> u64 {\n\
                 TL.with(|t| t.set(t.get() + 1));\n\
                 COUNT.fetch_add(1, Ordering::Relaxed) + TL.with(|t| t.get())\n\
             }\n",
            &[],
        )
    }

    #[test]
    fn every_linker_present_links_a_patch_at_its_base() {
        let dir = tempfile::tempdir().unwrap();
        let rust = rust_object(dir.path());
        let mut linked = Vec::new();
        for linker in [Linker::Cc, Linker::RustLld, Linker::Lld, Linker::Mold] {
            let Some(flags) = linker.locate() else {
                // Not installed here; `cc` always is.
                assert_ne!(linker, Linker::Cc);
                continue;
            };
            let work = dir.path().join(linker.name());
            let extra = std::slice::from_ref(&rust);
            let anywhere = probe("cc", &flags, &work, None, extra);
            assert!(anywhere.is_ok(), "{}: {anywhere:?}", linker.name());
            let fixed = probe("cc", &flags, &work, Some(BASE), extra);
            if linker == Linker::Mold {
                assert!(fixed.is_err(), "mold is never used at a fixed address");
            } else {
                assert!(fixed.is_ok(), "{}: {fixed:?}", linker.name());
            }
            linked.push(linker);
        }
        assert!(linked.contains(&Linker::Cc));
    }

    #[test]
    fn a_wrong_base_or_address_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        probe("cc", &Flags::cc(), work, Some(BASE), &[]).unwrap();
        let file = work.join("probe-cc.so");
        let wrong_base = check(&file, Some((BASE + 0x1000, 0x7e00_0012_3450)));
        assert!(wrong_base.unwrap_err().contains("first PT_LOAD"));
        let wrong_target = check(&file, Some((BASE, 0x7e00_0012_3460)));
        assert!(wrong_target.unwrap_err().contains("__hs_d0"));
    }

    #[test]
    fn the_choice_follows_the_variable_then_availability() {
        let found = |present: &'static [Linker]| {
            move |linker: Linker| {
                (linker == Linker::Cc || present.contains(&linker)).then(|| Flags {
                    linker,
                    path: (linker != Linker::Cc).then(|| PathBuf::from(linker.name())),
                    args: Vec::new(),
                })
            }
        };
        let all = &[Linker::RustLld, Linker::Lld, Linker::Mold];
        assert_eq!(choose(None, found(all)).flags.linker, Linker::RustLld);
        // Neither is chosen unasked: lld 14 is slower than GNU ld, mold cannot place a patch
        // at a fixed address.
        let none = choose(None, found(&[Linker::Lld, Linker::Mold]));
        assert_eq!(none.flags.linker, Linker::Cc);
        assert!(none.describe().contains(ENV));
        assert_eq!(choose(Some("mold"), found(all)).flags.linker, Linker::Mold);
        assert_eq!(choose(Some(" cc "), found(all)).flags.linker, Linker::Cc);
        let absent = choose(Some("lld"), found(&[Linker::RustLld]));
        assert_eq!(absent.flags.linker, Linker::RustLld);
        assert!(absent.why.contains("not installed"), "{}", absent.why);
        let unknown = choose(Some("gold"), found(&[]));
        assert_eq!(unknown.flags.linker, Linker::Cc);
        assert!(unknown.why.contains("not one of"), "{}", unknown.why);
    }

    #[test]
    fn only_cc_and_lld_place_a_patch() {
        let base = 0x1000;
        assert!(Linker::Mold.placement(base).is_none());
        let text = |l: Linker| format!("{:?}", l.placement(base).unwrap());
        assert!(text(Linker::Cc).contains("-Ttext-segment=0x1000"));
        assert!(text(Linker::RustLld).contains("--image-base=0x1000"));
        assert!(text(Linker::Lld).contains("--image-base=0x1000"));
    }
}
