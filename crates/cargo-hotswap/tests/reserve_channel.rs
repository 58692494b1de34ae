//! The address range a hot-mode program reserves for thin patches linked at a fixed address
//! (issue 11), against a real program. As in `safety_channel`, the test plays `cargo hotswap
//! run`: it listens on a socket, starts the program with `HOTSWAP_CONTROL`, reads its hello, and
//! sends patches (the hot crate rebuilt and linked with `cc -shared`, here at an address inside
//! the program's reservation with `-Wl,-Ttext-segment=`), checking the answers and what the
//! program's `/proc/<pid>/maps` shows.
//!
//! The program calls the hot `step(n)` every 20 ms and prints what it returns, `vN step=n`.

mod safety_support;

use std::path::Path;

use hotswap::protocol::{Fixed, Reservation, ToCli};
use safety_support::{
    fixed_range, link_patch_with, mappings, token, Channel, Control, HotWorkspace, Running,
};

const MAIN_RS: &str = r#"use GAME as game;

fn main() {
    let mut n = 0u64;
    loop {
        n += 1;
        println!("{}", game::step(n));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
"#;

fn game_source(version: &str) -> String {
    format!(
        "#[hotswap::hot]\npub fn step(n: u64) -> String {{\n    format!(\"{version} step={{n}}\")\n}}\n"
    )
}

const MIB: u64 = 1 << 20;

/// Whether `[start, end)` is entirely mapped inaccessible anonymous memory (`---p`, no file) in
/// process `pid`: still reserved.
fn reserved_in_maps(pid: u32, start: u64, end: u64) -> bool {
    let mut at = start;
    for mapping in mappings(pid) {
        if mapping.end <= at || mapping.start >= end {
            continue;
        }
        if mapping.start > at || mapping.perms != "---p" || !mapping.path.is_empty() {
            return false;
        }
        at = mapping.end;
        if at >= end {
            return true;
        }
    }
    false
}

/// The rlib the last build of the hot crate made, copied to `to` (the next build replaces it).
fn keep_rlib(ws: &HotWorkspace, source: &str, token: &str, files: &Path, name: &str) -> Built {
    let plain = files.join(format!("{name}-plain.so"));
    let rlib = ws.build_patch(source, token, &plain);
    let kept = files.join(format!("{name}.rlib"));
    std::fs::copy(&rlib, &kept).unwrap();
    Built { rlib: kept, plain }
}

struct Built {
    rlib: std::path::PathBuf,
    /// The same code linked as an ordinary thin patch (no fixed address).
    plain: std::path::PathBuf,
}

/// Links `rlib` at `base` (with `extra` linker arguments) into `out`; returns the range it
/// occupies, as the CLI would describe it.
fn link_at(rlib: &Path, out: &Path, base: u64, extra: &[&str]) -> Fixed {
    let text_segment = format!("-Wl,-Ttext-segment=0x{base:x}");
    let mut args = vec![text_segment.as_str()];
    args.extend_from_slice(extra);
    link_patch_with(rlib, out, &args);
    let fixed = fixed_range(out);
    assert_eq!(
        fixed.base,
        base,
        "{} was not linked at 0x{base:x}",
        out.display()
    );
    fixed
}

/// Waits until the program prints `prefix` lines (after `since`), then checks that its next
/// steps still come from `prefix`: the code it runs did not change.
fn assert_runs(host: &mut Running, prefix: &str, since: usize) {
    let first = host.wait_out(prefix, since);
    let mut next = first.seq + 1;
    for _ in 0..2 {
        let line = host.wait_for("two more steps", next, safety_support::OUTPUT, |l| {
            l.is_out() && l.text.contains(" step=")
        });
        assert!(
            line.text.starts_with(prefix),
            "the program stopped running `{prefix}`: {:?}\n{}",
            line.text,
            host.transcript()
        );
        next = line.seq + 1;
    }
    assert!(host.is_running(), "the program died\n{}", host.transcript());
}

fn assert_refused(
    host: &mut Running,
    channel: &mut Channel,
    id: u64,
    path: &Path,
    fixed: Fixed,
    running: &str,
    expected: &[&str],
) {
    let mark = host.mark();
    match channel.patch_fixed(id, path, Some(fixed)) {
        ToCli::Refused {
            id: answered,
            reason,
        } => {
            assert_eq!(answered, id);
            for text in expected {
                assert!(
                    reason.contains(text),
                    "patch {id} ({fixed:x?}): the reason does not say `{text}`: {reason}"
                );
            }
            eprintln!("patch {id}: refused: {reason}");
        }
        other => panic!(
            "patch {id} ({fixed:x?}): expected a refusal, got {other:?}\n{}",
            host.transcript()
        ),
    }
    assert_runs(host, running, mark);
}

fn assert_applied(
    host: &mut Running,
    channel: &mut Channel,
    id: u64,
    path: &Path,
    fixed: Option<Fixed>,
    version: u64,
    prints: &str,
) {
    let mark = host.mark();
    match channel.patch_fixed(id, path, fixed) {
        ToCli::Applied {
            id: answered,
            version: now,
            functions,
            ..
        } => assert_eq!((answered, now, functions), (id, version, 1)),
        other => panic!(
            "patch {id} ({fixed:x?}): expected it applied, got {other:?}\n{}",
            host.transcript()
        ),
    }
    assert_runs(host, prints, mark);
}

/// The mapping of a patch file at `base` in process `pid`: the loader put it there.
fn assert_mapped_at(pid: u32, base: u64, file: &Path) {
    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
    let maps = mappings(pid);
    let at = maps.iter().find(|m| m.start == base);
    assert!(
        at.is_some_and(|m| m.path.contains(&name)),
        "{} is not mapped at 0x{base:x}: {at:x?}",
        file.display()
    );
}

/// The hello reports a 1 GiB range below the executable, mapped `---p`; a patch linked inside it
/// is loaded exactly there and runs; ranges outside it, overlapping an earlier patch's, not
/// page-aligned, or not matching the patch's own addresses are refused before the patch is
/// loaded; a patch the loader could not put at its address (it needs more room than its range:
/// segments aligned to 2 MiB, which glibc maps with that much slack) is refused after the load,
/// before any of it runs; after each refusal the program runs the code it had, and a later
/// fixed patch and an ordinary one are still applied.
///
/// Fails if: the hello has no reservation, or one that is not below the executable, not 2 MiB
/// aligned, not 1 GiB, not mapped `---p`, or whose load bias is not the executable's; a fixed
/// patch is loaded elsewhere than its base, or the rest of the reservation is no longer
/// reserved; a bad range is applied, crashes the program (an unchecked `munmap` of the first
/// patch's range would), or is refused for another reason than its own.
#[test]
fn patches_linked_inside_the_reservation_load_there_and_bad_ranges_are_refused() {
    let _serial = safety_support::serial();
    let ws = HotWorkspace::new("hs_reserve", MAIN_RS, &game_source("v1"), false);
    let token = token("reserve");
    let executable = ws.build_host(&token);
    let files = tempfile::Builder::new()
        .prefix("hs_reserve-files-")
        .tempdir()
        .unwrap();
    let v2 = keep_rlib(&ws, &game_source("v2"), &token, files.path(), "v2");
    let v3 = keep_rlib(&ws, &game_source("v3"), &token, files.path(), "v3");
    let v4 = keep_rlib(&ws, &game_source("v4"), &token, files.path(), "v4");

    let control = Control::new("hs_reserve");
    let mut host = Running::host(&executable, Some(&control.socket), &[]);
    host.wait_out("v1 step=", 0);
    let (mut channel, reserved) = control.accept_hello(&mut host);
    let pid = host.pid();
    let Some(Reservation {
        start,
        len,
        load_bias,
    }) = reserved
    else {
        panic!("the hello has no reservation\n{}", host.transcript());
    };
    let end = start + len;
    eprintln!("reserved 0x{start:x}..0x{end:x}, load bias 0x{load_bias:x}");

    // (a) Where the range is.
    assert_eq!(len, 1 << 30, "the reservation is not 1 GiB");
    assert_eq!(start % (2 * MIB), 0, "the reservation is not 2 MiB aligned");
    let exe = std::fs::canonicalize(&executable).unwrap();
    let lowest = mappings(pid)
        .iter()
        .filter(|m| Path::new(&m.path) == exe)
        .map(|m| m.start)
        .min()
        .expect("the executable is not in the program's maps");
    assert!(
        end + 2 * MIB <= lowest,
        "the reservation 0x{start:x}..0x{end:x} does not end 2 MiB below the executable \
         (0x{lowest:x})"
    );
    // A position-independent executable is linked at 0: its load bias is where it starts.
    let exe_image = fixed_range(&exe);
    assert_eq!(
        load_bias,
        lowest - exe_image.base,
        "the load bias is not the executable's"
    );
    assert!(
        reserved_in_maps(pid, start, end),
        "0x{start:x}..0x{end:x} is not mapped ---p: {:x?}",
        mappings(pid)
            .iter()
            .filter(|m| m.end > start && m.start < end)
            .collect::<Vec<_>>()
    );

    // (b) A patch linked in the middle of the range is loaded there and runs.
    let base2 = start + len / 2;
    let v2_fixed = files.path().join("v2-fixed.so");
    let fixed2 = link_at(&v2.rlib, &v2_fixed, base2, &[]);
    assert_applied(
        &mut host,
        &mut channel,
        1,
        &v2_fixed,
        Some(fixed2),
        1,
        "v2 step=",
    );
    assert_mapped_at(pid, base2, &v2_fixed);
    let end2 = base2 + fixed2.span;
    assert!(
        reserved_in_maps(pid, start, base2) && reserved_in_maps(pid, end2, end),
        "the rest of the reservation is no longer reserved: {:x?}",
        mappings(pid)
            .iter()
            .filter(|m| m.end > start && m.start < end)
            .collect::<Vec<_>>()
    );

    // (c) Bad ranges, each refused before anything is released: the program keeps running v2.
    // v3 is linked above the first patch, with a free page between them.
    let base3 = (end2 + 2 * MIB).next_multiple_of(2 * MIB);
    let v3_fixed = files.path().join("v3-fixed.so");
    let fixed3 = link_at(&v3.rlib, &v3_fixed, base3, &[]);
    let page = 4096;
    let cases: Vec<(&str, Fixed, Vec<String>)> = vec![
        (
            "a range past the end of the reservation",
            Fixed {
                base: end,
                span: fixed3.span,
            },
            vec![
                "is outside the range this program reserved".into(),
                format!("0x{start:x}..0x{end:x}"),
            ],
        ),
        (
            "a range below the reservation that runs into it",
            Fixed {
                base: start - page,
                span: fixed3.span,
            },
            vec!["is outside the range this program reserved".into()],
        ),
        (
            "a range inside the first patch's",
            Fixed {
                base: base2 + page,
                span: page,
            },
            vec![
                "overlaps the range".into(),
                format!("0x{base2:x}..0x{end2:x} released for an earlier patch"),
            ],
        ),
        (
            "a range that ends inside the first patch's",
            Fixed {
                base: base2 - page,
                span: 2 * page,
            },
            vec![format!(
                "0x{base2:x}..0x{end2:x} released for an earlier patch"
            )],
        ),
        (
            "a base that is not page-aligned",
            Fixed {
                base: base3 + 16,
                span: fixed3.span,
            },
            vec!["is not page-aligned".into()],
        ),
        (
            "a free range the patch was not linked for",
            Fixed {
                base: base3 + 4 * MIB,
                span: fixed3.span,
            },
            vec![
                "its loadable segments".into(),
                "are not inside its fixed range".into(),
            ],
        ),
    ];
    let mut id = 1;
    for (what, fixed, expected) in &cases {
        id += 1;
        eprintln!("{what}:");
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_refused(
            &mut host,
            &mut channel,
            id,
            &v3_fixed,
            *fixed,
            "v2 step=",
            &expected,
        );
    }
    assert!(
        reserved_in_maps(pid, start, base2) && reserved_in_maps(pid, end2, end),
        "a refused range was released"
    );

    // A patch whose segments are aligned to 2 MiB: glibc maps it with 2 MiB of slack beyond its
    // span, which is not free, so the loader puts it elsewhere. Refused after the load, before
    // anything of it runs. Its range counts as used from then on.
    let base4 = (base3 + fixed3.span + 4 * MIB).next_multiple_of(2 * MIB);
    let v4_fixed = files.path().join("v4-fixed.so");
    let fixed4 = link_at(
        &v4.rlib,
        &v4_fixed,
        base4,
        &["-Wl,-z,max-page-size=0x200000"],
    );
    id += 1;
    assert_refused(
        &mut host,
        &mut channel,
        id,
        &v4_fixed,
        fixed4,
        "v2 step=",
        &[&format!(
            "the patch was not loaded at its fixed address 0x{base4:x} (the range was taken); \
             nothing of it ran; the program keeps its code"
        )],
    );
    id += 1;
    assert_refused(
        &mut host,
        &mut channel,
        id,
        &v3_fixed,
        Fixed {
            base: base4,
            span: page,
        },
        "v2 step=",
        &["released for an earlier patch"],
    );

    // Still: the fixed v3 is applied at its base, then an ordinary patch (no fixed address).
    id += 1;
    assert_applied(
        &mut host,
        &mut channel,
        id,
        &v3_fixed,
        Some(fixed3),
        2,
        "v3 step=",
    );
    assert_mapped_at(pid, base3, &v3_fixed);
    assert!(
        reserved_in_maps(pid, start, base2) && reserved_in_maps(pid, end2, base3),
        "the rest of the reservation is no longer reserved"
    );
    id += 1;
    assert_applied(&mut host, &mut channel, id, &v2.plain, None, 3, "v2 step=");
}

/// With `HOTSWAP_NO_RESERVE=1` the hello says `reserved: None` and nothing is mapped below the
/// executable; a patch linked for a fixed address is refused saying so, and an ordinary patch
/// is still applied.
///
/// Fails if: the hello reports a reservation, a fixed patch is loaded anyway, or the refusal
/// does not say that the program reserved nothing.
#[test]
fn without_a_reservation_fixed_patches_are_refused() {
    let _serial = safety_support::serial();
    let ws = HotWorkspace::new("hs_noreserve", MAIN_RS, &game_source("v1"), false);
    let token = token("noreserve");
    let executable = ws.build_host(&token);
    let files = tempfile::Builder::new()
        .prefix("hs_noreserve-files-")
        .tempdir()
        .unwrap();
    let v2 = keep_rlib(&ws, &game_source("v2"), &token, files.path(), "v2");

    let control = Control::new("hs_noreserve");
    let mut host = Running::host(
        &executable,
        Some(&control.socket),
        &[("HOTSWAP_NO_RESERVE", "1")],
    );
    host.wait_out("v1 step=", 0);
    let (mut channel, reserved) = control.accept_hello(&mut host);
    assert_eq!(
        reserved, None,
        "HOTSWAP_NO_RESERVE=1, yet the hello reports a reservation"
    );
    let big_none: Vec<_> = mappings(host.pid())
        .into_iter()
        .filter(|m| m.perms == "---p" && m.path.is_empty() && m.end - m.start >= 1 << 30)
        .collect();
    assert!(big_none.is_empty(), "something is reserved: {big_none:x?}");

    // Any address will do: there is no reservation for it to be inside.
    let base = 0x4000_0000_0000;
    let fixed_file = files.path().join("v2-fixed.so");
    let fixed = link_at(&v2.rlib, &fixed_file, base, &[]);
    assert_refused(
        &mut host,
        &mut channel,
        1,
        &fixed_file,
        fixed,
        "v1 step=",
        &["this program reserved no address range"],
    );
    assert_applied(&mut host, &mut channel, 2, &v2.plain, None, 1, "v2 step=");
}
