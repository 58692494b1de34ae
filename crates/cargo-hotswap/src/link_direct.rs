//! The patch linker started without the driver in front of it.
//!
//! `cc -shared …` with `-fuse-ld=lld` starts `collect2`, which starts the `ld.lld` the `-B`
//! directory holds (for rust-lld, a wrapper that starts `rust-lld -flavor gnu`): three
//! programs before the linker, about 8 ms of CPU per patch on the 2-core bench machine, and
//! more in time when it is loaded. What the driver adds to the linker's command is fixed for
//! a session: the C runtime's start and end files, its library directories and libraries,
//! a few flags. `cc -###` prints that command without running anything. Once per session
//! and linker this asks the driver for the command of a link with a marker where a patch's
//! own arguments go (and a placeholder output), and from then on starts the linker itself
//! with that command, the patch's arguments in place of the marker, translated as the
//! driver translates them (`-Wl,a,b` → `a b`). The same linker with the same arguments
//! writes the same file; the unit tests link both ways and compare them byte for byte.
//!
//! Only the driver's own LTO plugin arguments are left out (`-plugin`, `-plugin-opt=…`, for
//! GCC's LTO, which a patch never uses; they name a temporary file that `-###` does not
//! create) and `-fuse-ld=…`, which is `collect2`'s. Anything this does not recognise
//! (another driver's output, an argument it cannot translate) means no direct command, and
//! the link goes through the driver as before; a direct link that fails is linked again
//! through the driver ([`crate::patch`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::link_with::{Flags, Linker};

/// Where the patch's own arguments go.
const MARKER: &str = "--hotswap-patch-arguments-here";
/// The output the driver is told of, replaced by the patch's.
const OUTPUT: &str = "/hotswap-placeholder/patch.so";

/// The linker's command for a link through `driver` with `flags`, with the marker and the
/// placeholder output in it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Template {
    program: PathBuf,
    args: Vec<String>,
}

/// A driver and the arguments that select its linker.
type Key = (String, Vec<OsString>);

/// Each driver's template, asked for once (`None`: not understood, the driver links).
static TEMPLATES: Mutex<Option<HashMap<Key, Option<Template>>>> = Mutex::new(None);

static GAVE_UP: AtomicBool = AtomicBool::new(false);

/// Whether linkers are started directly (until one fails where its driver did not).
pub fn enabled() -> bool {
    !GAVE_UP.load(Ordering::Relaxed)
}

/// `linker` started directly failed to link a patch that it linked through the driver: go
/// through the driver from now on, and say so once.
pub fn give_up(linker: Linker, failure: &str) {
    if !GAVE_UP.swap(true, Ordering::Relaxed) {
        let first = failure.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        crate::report::warn(&format!(
            "{} started without its driver could not link a patch that it linked through the \
             driver ({first}); patches are linked through the driver from now on",
            linker.name()
        ));
    }
}

/// The command that links as `driver <flags.args> -shared -o output <link_args>` would,
/// without the driver; `None` when this linker is not started directly or the driver's
/// command was not understood. `link_args` are driver arguments: `-Wl,…` and file names.
pub fn command(
    driver: &str,
    flags: &Flags,
    output: &Path,
    link_args: &[OsString],
) -> Option<Command> {
    let template = template(driver, flags)?;
    let mut args: Vec<OsString> = Vec::with_capacity(template.args.len() + link_args.len());
    for arg in &template.args {
        match arg.as_str() {
            MARKER => args.extend(translate(link_args)?),
            OUTPUT => args.push(output.as_os_str().to_owned()),
            _ => args.push(arg.into()),
        }
    }
    let mut command = Command::new(&template.program);
    if flags.linker == Linker::RustLld {
        command.args(["-flavor", "gnu"]);
    }
    command.args(args);
    Some(command)
}

/// The session's template for `driver` and `flags` (asked for at the first link).
fn template(driver: &str, flags: &Flags) -> Option<Template> {
    // Only the linkers whose file we know: `cc`'s own is whatever `collect2` finds.
    let program = match flags.linker {
        Linker::RustLld | Linker::Lld => flags.path.clone()?,
        Linker::Cc | Linker::Mold => return None,
    };
    let key = (driver.to_owned(), flags.args.clone());
    let mut templates = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
    let templates = templates.get_or_insert_with(HashMap::new);
    templates
        .entry(key)
        .or_insert_with(|| ask_driver(driver, flags, program))
        .clone()
}

fn ask_driver(driver: &str, flags: &Flags, program: PathBuf) -> Option<Template> {
    let output = Command::new(driver)
        .args(&flags.args)
        .args(["-shared", "-o", OUTPUT])
        .arg(format!("-Wl,{MARKER}"))
        .arg("-###")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let printed = String::from_utf8_lossy(&output.stderr);
    let args = linker_args(&printed)?;
    Some(Template { program, args })
}

/// The linker's arguments in what `cc -###` printed: the one command with the marker (its
/// program `collect2` or a linker), without the program and the driver's own arguments.
fn linker_args(printed: &str) -> Option<Vec<String>> {
    let mut found = None;
    for line in printed.lines().filter(|l| l.starts_with(' ')) {
        let words = split(line)?;
        if words.iter().any(|w| w == MARKER) {
            if found.is_some() {
                return None;
            }
            found = Some(words);
        }
    }
    let words = found?;
    let (program, rest) = words.split_first()?;
    let name = Path::new(program).file_name()?.to_str()?;
    if name != "collect2" && !name.starts_with("ld") {
        return None;
    }
    let mut args = Vec::with_capacity(rest.len());
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        if word == "-plugin" {
            words.next()?;
        } else if !word.starts_with("-plugin-opt=") && !word.starts_with("-fuse-ld=") {
            args.push(word.clone());
        }
    }
    let once = |text: &str| args.iter().filter(|a| *a == text).count() == 1;
    (once(MARKER) && once(OUTPUT)).then_some(args)
}

/// The words of one printed command: separated by spaces; a word in double quotes has `\`
/// before each `"`, `\` and `$` in it (gcc quotes a word with anything but letters, digits
/// and `_/-.`; clang quotes every word, the same way).
fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(first) = chars.next() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => word.push(chars.next()?),
                    c => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| *c != ' ') {
                return None;
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                if c == '"' || c == '\\' {
                    return None;
                }
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// Driver arguments as the linker's: `-Wl,a,b` → `a`, `b`; a file name as it is; `None` for
/// anything else.
fn translate(link_args: &[OsString]) -> Option<Vec<OsString>> {
    let mut out = Vec::with_capacity(link_args.len());
    for arg in link_args {
        let text = arg.to_str();
        match text.and_then(|t| t.strip_prefix("-Wl,")) {
            Some(options) => out.extend(options.split(',').map(OsString::from)),
            None if text.is_some_and(|t| t.starts_with('-')) => return None,
            None => out.push(arg.clone()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linker_command_is_read_from_what_gcc_and_clang_print() {
        let gcc = format!(
            "Using built-in specs.\nCOLLECT_GCC_OPTIONS='-shared' '-o' '{OUTPUT}'\n \
             /usr/lib/gcc/x86_64-linux-gnu/12/collect2 -plugin /usr/lib/gcc/liblto_plugin.so \
             \"-plugin-opt=-fresolution=/tmp/cc.res\" --build-id \"--hash-style=gnu\" -shared \
             \"-fuse-ld=lld\" -o {OUTPUT} /usr/lib/crti.o -L/usr/lib \"--threads=1\" {MARKER} \
             -lc \"a\\\"b\\\\c\\$d\" /usr/lib/crtn.o\n"
        );
        let args = linker_args(&gcc).unwrap();
        let expected = [
            "--build-id",
            "--hash-style=gnu",
            "-shared",
            "-o",
            OUTPUT,
            "/usr/lib/crti.o",
            "-L/usr/lib",
            "--threads=1",
            MARKER,
            "-lc",
            "a\"b\\c$d",
            "/usr/lib/crtn.o",
        ];
        assert_eq!(args, expected);
        let clang = format!(" \"/usr/bin/ld.lld\" \"-shared\" \"-o\" \"{OUTPUT}\" \"{MARKER}\"\n");
        assert_eq!(
            linker_args(&clang).unwrap(),
            ["-shared", "-o", OUTPUT, MARKER]
        );
        // Not a linker, the marker twice, or a quote left open: not understood.
        assert_eq!(
            linker_args(&format!(" /bin/as -o {OUTPUT} {MARKER}\n")),
            None
        );
        let twice = format!(" /usr/bin/ld -o {OUTPUT} {MARKER} {MARKER}\n");
        assert_eq!(linker_args(&twice), None);
        assert_eq!(
            linker_args(&format!(" /usr/bin/ld -o {OUTPUT} \"{MARKER}\n")),
            None
        );
    }

    #[test]
    fn driver_arguments_are_translated_as_the_driver_does() {
        let args: Vec<OsString> = ["-Wl,-z,noexecstack", "/tmp/a.a", "-Wl,--image-base=0x1000"]
            .map(OsString::from)
            .to_vec();
        let translated = translate(&args).unwrap();
        assert_eq!(
            translated,
            ["-z", "noexecstack", "/tmp/a.a", "--image-base=0x1000"].map(OsString::from)
        );
        assert_eq!(translate(&[OsString::from("-shared")]), None);
    }

    /// Each linker started directly writes the very file its link through the driver writes.
    #[test]
    fn a_direct_link_is_the_drivers() {
        let dir = tempfile::tempdir().unwrap();
        let object = crate::objects::tests::debug_object(dir.path());
        let version = dir.path().join("patch.ver");
        std::fs::write(&version, "{\n  local: *__hotswap_slot_*;\n};\n").unwrap();
        let symbols = dir.path().join("patch.ld");
        std::fs::write(&symbols, "HIDDEN(__hs_d0 = 0x7e0000123450);\n").unwrap();
        let base = 0x7e00_0000_0000;
        let mut direct = 0;
        for flags in crate::link_with::present_for_tests() {
            let inputs = [object.clone().into_os_string()];
            let link = |how: &str| {
                let output = dir.path().join(format!("{how}-{}.so", flags.linker.name()));
                let fixed = Some((base, symbols.as_path()));
                let command = match how {
                    "driver" => {
                        crate::link_with::command("cc", &flags, &version, &output, &inputs, fixed)
                    }
                    _ => crate::link_with::direct_command(
                        "cc", &flags, &version, &output, &inputs, fixed,
                    ),
                };
                let result = command.unwrap().output().unwrap();
                assert!(
                    result.status.success(),
                    "{how} {}: {}",
                    flags.linker.name(),
                    String::from_utf8_lossy(&result.stderr)
                );
                std::fs::read(output).unwrap()
            };
            let through_driver = link("driver");
            if template("cc", &flags).is_some() {
                direct += 1;
                assert!(
                    link("direct") == through_driver,
                    "{}: the files differ",
                    flags.linker.name()
                );
            }
        }
        let rust_lld = crate::link_with::present_for_tests()
            .iter()
            .any(|f| f.linker == Linker::RustLld);
        assert!(direct > 0 || !rust_lld, "rust-lld is started directly");
    }
}
