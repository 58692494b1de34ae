//! Hostile patches and hostile messages on the control channel, against a real hot-mode program.
//! The test plays `cargo hotswap run`: it listens on a socket in a private directory, starts the
//! program with `HOTSWAP_CONTROL` pointing at it, and sends what a confused or malicious peer
//! might send. After each, the program must answer `refused` with a reason that names the
//! problem (or ignore a message that is not one), keep running its old code, and keep serving
//! the channel; at the end a valid patch must still be applied.
//!
//! The program (`main.rs` below) calls the hot `step(n)` every 20 ms and prints what it returns:
//! `v1 step=N` from the compiled-in code, `v2 step=N` from the valid patch.

mod safety_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hotswap::protocol::ToCli;
use safety_support::{
    build_plain_c_library, files_in, link_patch_with_global_manifest, private_base, token, Channel,
    Control, HotWorkspace, Line, Running,
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

/// A patch that needs a symbol neither it nor the program defines.
const UNRESOLVABLE: &str = r#"extern "C" {
    fn hs_safety_symbol_nobody_defines() -> u64;
}

#[hotswap::hot]
pub fn step(n: u64) -> String {
    // SAFETY: never runs: the patch cannot be loaded.
    format!("v3 step={n} {}", unsafe { hs_safety_symbol_nobody_defines() })
}
"#;

/// After an answer (or an ignored message) at line `since`: the program is alive and goes on
/// printing `v1` lines, at least `count` more, and never anything else; its private (staging)
/// directory holds no file.
fn assert_still_runs_v1(host: &mut Running, since: usize, count: usize) {
    let mut next = since;
    for _ in 0..count {
        let line: Line = host.wait_for("two more steps of v1", next, safety_support::OUTPUT, |l| {
            l.is_out() && l.text.contains(" step=")
        });
        assert!(
            line.text.starts_with("v1 step="),
            "the program stopped running v1: {:?}\n{}",
            line.text,
            host.transcript()
        );
        next = line.seq + 1;
    }
    assert!(host.is_running(), "the program died\n{}", host.transcript());
    let staged = files_in(&private_base().join(host.pid().to_string()));
    assert!(
        staged.is_empty(),
        "files left in the program's private directory: {staged:?}"
    );
}

/// Sends `path` as patch `id` and checks that it is refused with a reason containing each of
/// `expected`; returns the reason.
fn assert_refused(
    host: &mut Running,
    channel: &mut Channel,
    id: u64,
    path: &Path,
    what: &str,
    expected: &[&str],
) -> String {
    let mark = host.mark();
    match channel.patch(id, path) {
        ToCli::Refused {
            id: answered,
            reason,
        } => {
            assert_eq!(answered, id, "{what}: the answer is for another patch");
            for text in expected {
                assert!(
                    reason.contains(text),
                    "{what}: the reason does not say `{text}`: {reason}"
                );
            }
            eprintln!("{what}: refused: {reason}");
            assert_still_runs_v1(host, mark, 2);
            reason
        }
        other => panic!(
            "{what}: expected a refusal, got {other:?}\n{}",
            host.transcript()
        ),
    }
}

/// Every kind of bad patch file, then every kind of bad message, then a valid patch.
///
/// Fails if: a bad file is loaded (the answer is `applied`, or `v2`/`v3` output appears) or
/// crashes the program; a refusal's reason does not name the problem (e.g. the check before
/// `dlopen` is skipped, so the reason becomes the loader's, or the build token is not compared);
/// a staged copy is left behind; a malformed, oversized or foreign message is answered, acted on
/// (the oversized line is a well-formed message for the valid patch, padded: acting on it would
/// apply it), or ends the channel (the next patch would get no answer); the valid patch at the
/// end is not applied; a new patch delivered under the path of an earlier one is answered
/// `applied` while the old code keeps running.
#[test]
fn hostile_patches_and_messages_are_refused_and_the_old_code_keeps_running() {
    let _serial = safety_support::serial();
    let ws = HotWorkspace::new("hs_safety_hostile", MAIN_RS, &game_source("v1"), false);
    let token_a = token("a");
    let token_b = token("b");
    let executable = ws.build_host(&token_a);

    let files = tempfile::Builder::new()
        .prefix("hs_safety_hostile-files-")
        .tempdir()
        .unwrap();
    let file = |name: &str| files.path().join(name);
    let valid = file("valid.so");
    let rlib = ws.build_patch(&game_source("v2"), &token_a, &valid);
    // The same code, linked by hand without the command's version script: its manifest
    // symbols are global, so the loader binds its entries' slot references to the program's
    // slots of the same names.
    let global_manifest = file("global-manifest.so");
    link_patch_with_global_manifest(&rlib, &global_manifest);
    let v5 = file("v5.so");
    ws.build_patch(&game_source("v5"), &token_a, &v5);
    let unresolvable = file("unresolvable.so");
    ws.build_patch(UNRESOLVABLE, &token_a, &unresolvable);
    // The same hot crate, built for another build of the program (another session's token).
    let other_build = file("other-build.so");
    ws.build_patch(&game_source("v4"), &token_b, &other_build);
    let other_program = file("other-program.so");
    ws.build_other(&token_a, &other_program);
    let plain = build_plain_c_library(files.path());
    let object_file = file("plain.o");
    let status = std::process::Command::new("cc")
        .args(["-c", "-fPIC", "-o"])
        .arg(&object_file)
        .arg(files.path().join("plain.c"))
        .status()
        .unwrap();
    assert!(status.success());

    let bytes = std::fs::read(&valid).unwrap();
    let write = |name: &str, contents: &[u8]| -> PathBuf {
        let path = file(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let empty = write("empty.so", b"");
    let truncated = write("truncated.so", &bytes[..bytes.len() / 2]);
    let random: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let random = write("random.so", &random);
    // A real patch with its ELF header's machine changed to AArch64 (e_machine, offset 18).
    let mut foreign_arch = bytes.clone();
    foreign_arch[18..20].copy_from_slice(&183u16.to_le_bytes());
    let foreign_arch = write("aarch64.so", &foreign_arch);

    let control = Control::new("hs_safety_hostile");
    let mut host = Running::host(&executable, Some(&control.socket), &[]);
    host.wait_out("v1 step=", 0);
    let mut channel = control.accept(&mut host);
    let mut id = 0;
    let mut next_id = || {
        id += 1;
        id
    };

    // Bad files.
    let missing = file("missing.so");
    let cases: Vec<(&str, &Path, Vec<&str>)> = vec![
        ("a file that does not exist", &missing, vec!["cannot copy"]),
        ("an empty file", &empty, vec!["the file is empty"]),
        (
            "random bytes",
            &random,
            vec!["not a complete shared library"],
        ),
        (
            "a truncated library",
            &truncated,
            vec!["not a complete shared library"],
        ),
        (
            "a library for another architecture",
            &foreign_arch,
            vec!["built for Aarch64", "this program runs on X86_64"],
        ),
        (
            "a relocatable object",
            &object_file,
            vec!["Relocatable object, not a shared library"],
        ),
        // A position-independent executable is an ELF "shared object" with a manifest (the
        // program's own, exported); the loader refuses it (glibc 2.30 and later).
        (
            "the program's own executable",
            &executable,
            vec!["executable"],
        ),
        (
            "a library without a manifest",
            &plain,
            vec!["it has no hotswap manifest"],
        ),
        (
            "a library built for another program",
            &other_program,
            vec!["none of its `#[hot]` functions is one this program has"],
        ),
        (
            "a patch whose manifest symbols are global",
            &global_manifest,
            vec!["its manifest points into the running program"],
        ),
        (
            "a patch with a symbol nobody defines",
            &unresolvable,
            vec![
                "the dynamic loader refused it",
                "hs_safety_symbol_nobody_defines",
            ],
        ),
        (
            "a patch built for another build of the program",
            &other_build,
            vec![
                "built for another build of this program",
                &token_b,
                &token_a,
            ],
        ),
    ];
    for (what, path, expected) in &cases {
        let n = next_id();
        assert_refused(&mut host, &mut channel, n, path, what, expected);
    }

    // Bad messages: none is answered, none ends the channel.
    let mark = host.mark();
    let ignored_id = 900;
    let valid_message = format!(
        "{{\"patch\":{{\"id\":{ignored_id},\"path\":{:?}}}}}",
        valid.display().to_string()
    );
    let oversized = format!("{}{valid_message}\n", " ".repeat(100 * 1024));
    let malformed: Vec<Vec<u8>> = vec![
        b"{\"patch\": {\"id\": 1,".to_vec(),
        b"\xff\xfe{}".to_vec(),
        b"not json at all".to_vec(),
        // Well-formed JSON that is not a message for the program.
        b"{\"hello\":{\"pid\":1,\"version\":0}}".to_vec(),
        b"{\"patch\":{\"id\":\"seven\",\"path\":5}}".to_vec(),
        b"{\"shutdown\":true}".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
    ];
    for message in &malformed {
        channel.send_raw(message);
    }
    channel.send_raw(oversized.as_bytes());
    // The next real message is answered, and it is the first answer since the bad ones.
    let n = next_id();
    let reason = assert_refused(
        &mut host,
        &mut channel,
        n,
        &random,
        "random bytes after the bad messages",
        &["not a complete shared library"],
    );
    assert!(!reason.is_empty());
    let lines = host.lines();
    let count = |text: &str| {
        lines[mark..]
            .iter()
            .filter(|l| l.is_err() && l.text.contains(text))
            .count()
    };
    assert_eq!(
        count("ignored a malformed control message"),
        malformed.len(),
        "each malformed message should be ignored, with a message\n{}",
        host.transcript()
    );
    assert_eq!(
        count("ignored an oversized control message"),
        1,
        "the oversized message should be ignored, with a message\n{}",
        host.transcript()
    );

    // Finally a valid patch: applied, and the new code runs.
    let mark = host.mark();
    let n = next_id();
    match channel.patch(n, &valid) {
        ToCli::Applied {
            id: answered,
            version,
            functions,
            ..
        } => assert_eq!(
            (answered, version, functions),
            (n, 1, 1),
            "the valid patch was not applied as version 1 (was an ignored message acted on?)"
        ),
        other => panic!("the valid patch: {other:?}\n{}", host.transcript()),
    }
    host.wait_out("v2 step=", mark);
    host.wait_err(&format!("reloaded {}", valid.display()), mark);
    let staged = files_in(&private_base().join(host.pid().to_string()));
    assert!(staged.is_empty(), "files left: {staged:?}");

    // A new patch under the name of one loaded before (written aside and renamed over it, as an
    // editor or a linker does): it is the new file that is loaded. (`dlopen` of a path it has
    // loaded returns the old library without reading the file: the program would answer
    // `applied` and go on running v2.)
    let aside = file("valid.so.partial");
    std::fs::copy(&v5, &aside).unwrap();
    std::fs::rename(&aside, &valid).unwrap();
    let mark = host.mark();
    let n = next_id();
    match channel.patch(n, &valid) {
        ToCli::Applied {
            id: answered,
            version,
            ..
        } => assert_eq!((answered, version), (n, 2)),
        other => panic!(
            "the second patch at the same path: {other:?}\n{}",
            host.transcript()
        ),
    }
    let next = host.wait_for("the next step", mark, safety_support::OUTPUT, |l| {
        l.is_out() && l.text.contains(" step=") && !l.text.starts_with("v2 ")
            || l.is_out() && l.seq > mark + 40
    });
    assert!(
        next.text.starts_with("v5 step="),
        "the program answered `applied` but runs the code of the patch loaded before from that \
         path: {:?}\n{}",
        next.text,
        host.transcript()
    );
}

/// Private directories: the program refuses a control socket in a directory others may write
/// to, and refuses every patch when its own staging directory's parent is writable by others.
///
/// Fails if: the program connects through a group-writable directory (the test would accept
/// its connection) or says nothing about it; a patch is loaded although the staging directory
/// is not private (the answer is `applied`), or the refusal does not say why.
#[test]
fn directories_that_others_can_write_to_are_refused() {
    let _serial = safety_support::serial();
    let ws = HotWorkspace::new("hs_safety_dirs", MAIN_RS, &game_source("v1"), false);
    let token = token("dirs");
    let executable = ws.build_host(&token);
    let files = tempfile::Builder::new()
        .prefix("hs_safety_dirs-files-")
        .tempdir()
        .unwrap();
    let valid = files.path().join("valid.so");
    ws.build_patch(&game_source("v2"), &token, &valid);

    // 1. The socket's directory is group-writable: the program does not connect.
    let control = Control::new("hs_safety_dirs");
    std::fs::set_permissions(control.dir(), std::fs::Permissions::from_mode(0o770)).unwrap();
    let mut host = Running::host(&executable, Some(&control.socket), &[]);
    // Whichever comes first: the program's message, or its connection (a failure).
    let mut connected = false;
    let refused = host.wait_for(
        "`...is writable by group or others...` on stderr",
        0,
        safety_support::OUTPUT,
        |line| {
            connected |= control.try_accept().is_some();
            connected || line.is_err() && line.text.contains("is writable by group or others")
        },
    );
    assert!(
        !connected,
        "the program connected through a group-writable directory\n{}",
        host.transcript()
    );
    assert!(
        refused.text.contains("control channel")
            && refused.text.contains(&control.dir().display().to_string()),
        "the message does not name the channel's directory: {}",
        refused.text
    );
    assert_still_runs_v1(&mut host, refused.seq, 3);
    assert!(
        control.try_accept().is_none(),
        "the program connected through a group-writable directory"
    );
    drop(host);

    // 2. The program's staging directory lives under `$TMPDIR/hotswap-<uid>`; if others can
    //    write there, every patch is refused.
    let tmp = tempfile::Builder::new()
        .prefix("hs_safety_dirs-tmp-")
        .tempdir()
        .unwrap();
    let base = tmp
        .path()
        .join(format!("hotswap-{}", safety_support::uid()));
    std::fs::create_dir(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
    let control = Control::new("hs_safety_dirs");
    let tmp_text = tmp.path().display().to_string();
    let mut host = Running::host(&executable, Some(&control.socket), &[("TMPDIR", &tmp_text)]);
    host.wait_out("v1 step=", 0);
    let mut channel = control.accept(&mut host);
    let mark = host.mark();
    match channel.patch(1, &valid) {
        ToCli::Refused { id: 1, reason } => assert!(
            reason.contains(&base.display().to_string())
                && reason.contains("is writable by group or others"),
            "the refusal does not say the staging directory is not private: {reason}"
        ),
        other => panic!("expected a refusal, got {other:?}\n{}", host.transcript()),
    }
    assert_still_runs_v1(&mut host, mark, 3);
    assert!(
        files_in(&base).is_empty(),
        "something was written into the shared directory: {:?}",
        files_in(&base)
    );
}

/// The program that owns a `Plain` (with `#[derive(hotswap::Layout)]`) and a `Bare` (no
/// derive) and lends both to the hot `step`.
const OWNER_MAIN_RS: &str = r#"use GAME as game;

fn main() {
    let mut plain = game::Plain::default();
    let mut bare = game::Bare::default();
    loop {
        println!("{}", game::step(&mut plain, &mut bare));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
"#;

fn owner_source(version: &str, plain_fields: &str, bare_fields: &str) -> String {
    format!(
        "#[derive(Default, hotswap::Layout)]\npub struct Plain {{\n    pub n: u32,\n    {plain_fields}\n}}\n\n\
         #[derive(Default)]\npub struct Bare {{\n    pub m: u64,\n    {bare_fields}\n}}\n\n\
         #[hotswap::hot]\npub fn step(plain: &mut Plain, bare: &mut Bare) -> String {{\n    \
         plain.n += 1;\n    bare.m += 1;\n    format!(\"{version} step={{}}\", plain.n)\n}}\n"
    )
}

/// The program's own layout checks, for a patch that reaches it without the command's checks
/// (a patch built by hand, or the full library workflow): a `Layout` type that gained a field is
/// refused naming the field; a plain type behind `&mut` that grew is refused naming its sizes;
/// a patch that keeps both layouts is applied.
///
/// Fails if: either layout change is applied (the new code would read past the program's values),
/// a refusal names the wrong parameter, type or change, or the good patch is refused.
#[test]
fn the_program_refuses_layout_changes_behind_references_by_itself() {
    let _serial = safety_support::serial();
    let ws = HotWorkspace::new(
        "hs_safety_owner",
        OWNER_MAIN_RS,
        &owner_source("v1", "", ""),
        false,
    );
    let token = token("owner");
    let executable = ws.build_host(&token);
    let files = tempfile::Builder::new()
        .prefix("hs_safety_owner-files-")
        .tempdir()
        .unwrap();
    let plain_grew = files.path().join("plain.so");
    ws.build_patch(
        &owner_source("v2", "pub extra: u8,", ""),
        &token,
        &plain_grew,
    );
    let bare_grew = files.path().join("bare.so");
    ws.build_patch(
        &owner_source("v2", "", "pub extra: u64,"),
        &token,
        &bare_grew,
    );
    let good = files.path().join("good.so");
    ws.build_patch(&owner_source("v3", "", ""), &token, &good);

    let control = Control::new("hs_safety_owner");
    let mut host = Running::host(&executable, Some(&control.socket), &[]);
    host.wait_out("v1 step=", 0);
    let mut channel = control.accept(&mut host);
    let game = &ws.game;
    assert_refused(
        &mut host,
        &mut channel,
        1,
        &plain_grew,
        "a Layout type that gained a field",
        &[&format!(
            "`{game}::step`: parameter 1 `Plain` grew from 4 to 8 bytes (field `extra: u8` added)"
        )],
    );
    assert_refused(
        &mut host,
        &mut channel,
        2,
        &bare_grew,
        "a plain type behind `&mut` that grew",
        &[&format!(
            "`{game}::step`: parameter 2 `Bare` grew from 8 to 16 bytes"
        )],
    );
    let mark = host.mark();
    match channel.patch(3, &good) {
        ToCli::Applied { id: 3, .. } => {}
        other => panic!("the good patch: {other:?}\n{}", host.transcript()),
    }
    host.wait_out("v3 step=", mark);
}
