//! Issue 11 end to end: the private statics and thread-locals of a hot crate are the program's
//! in every patch. A real program under the real `cargo hotswap run`, edited live.
//!
//! Waits never depend on the order of lines between the command's stderr and the program's
//! stdout, nor between the program's two threads: every check is on values the program prints.

mod support;

use support::{Scratch, Stream, OUTPUT, PATCH, RESTART};

/// The program: a worker thread started before any patch calls `worker` every 20 ms; the main
/// thread calls `step(n)` for n = 1, 2, … every 50 ms. Each prints one line.
const MAIN_RS: &str = r#"use GAME as game;

fn main() {
    println!("host pid={}", std::process::id());
    std::thread::spawn(|| loop {
        println!("{}", game::worker());
        std::thread::sleep(std::time::Duration::from_millis(20));
    });
    for n in 1u64.. {
        println!("{}", game::step(n));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
"#;

/// The hot crate: a private request counter, a `OnceLock<HashMap>` cache (with a count of its
/// initialisations), a `Mutex<Vec<String>>` registry, a `thread_local!` call counter, a static
/// inside a function. `TAG` names the version; `EXTRA` is spliced in at the top level and
/// `EXTRA_OUT` (a `String` expression) is appended to `step`'s line.
const LIB_RS: &str = r#"use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

static REQUESTS: AtomicU32 = AtomicU32::new(0);
static INITS: AtomicU64 = AtomicU64::new(0);
static CACHE: OnceLock<HashMap<&'static str, u64>> = OnceLock::new();
static REGISTRY: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

EXTRA

fn cache() -> &'static HashMap<&'static str, u64> {
    CACHE.get_or_init(|| {
        INITS.fetch_add(1, Ordering::Relaxed);
        HashMap::from([("answer", 42)])
    })
}

fn calls() -> u64 {
    CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

#[hotswap::hot]
pub fn step(n: u64) -> String {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let requests = u64::from(REQUESTS.fetch_add(1, Ordering::Relaxed)) + 1;
    let seen = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
    let registered = {
        let mut registry = REGISTRY.lock().unwrap();
        registry.push(format!("TAG-{n}"));
        registry.len()
    };
    let answer = cache()["answer"];
    let inits = INITS.load(Ordering::Relaxed);
    let extra: String = EXTRA_OUT;
    format!(
        "step tag=TAG n={n} requests={requests} seen={seen} registered={registered} \
         answer={answer} inits={inits} calls={}{extra}",
        calls()
    )
}

#[hotswap::hot]
pub fn worker() -> String {
    format!("worker tag=TAG calls={}", calls())
}
"#;

fn lib(tag: &str, extra: &str, extra_out: &str) -> String {
    let extra_out = if extra_out.is_empty() {
        "String::new()"
    } else {
        extra_out
    };
    LIB_RS
        .replace("TAG", tag)
        .replace("EXTRA_OUT", extra_out)
        .replace("EXTRA", extra)
}

/// Waits for two of the program's lines starting with `prefix` after its line `since`.
fn two_lines(cli: &support::Cli, since: usize, prefix: &str) {
    let first = cli.wait_out(&format!("`{prefix}...`"), since, OUTPUT, |t| {
        t.starts_with(prefix)
    });
    cli.wait_out(
        &format!("a second `{prefix}...`"),
        first.seq + 1,
        OUTPUT,
        |t| t.starts_with(prefix),
    );
}

fn number(text: &str, key: &str) -> u64 {
    support::field(text, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}=N in {text:?}"))
}

/// Three patches, then a static added by a patch and kept by the next one (while an
/// initialiser changes: reported, the value kept), then a static whose type changes (`u32` →
/// `u64`).
///
/// Fails if: any counter starts again in a patch (a fresh copy: `requests`, `seen`,
/// `registered` fall behind `n`, `inits` becomes 2, a thread's `calls` falls back), the
/// fresh-copy warning appears, the added static restarts in the next patch, or the type change
/// is patched instead of restarting with the static's name.
#[test]
fn private_statics_and_thread_locals_keep_their_values_across_patches() {
    let _serial = support::serial();
    let scratch = Scratch::new("hs_statics");
    let game = scratch.game.clone();
    scratch.save("app/src/main.rs", &MAIN_RS.replace("GAME", &game));
    scratch.save_game(&lib("v1", "", ""));
    let cli = scratch.start(&["run"]);
    let started = cli.wait_started(0, support::FIRST_BUILD);
    let host = cli.wait_out("the program's first line", 0, OUTPUT, |t| {
        t == format!("host pid={}", started.pid)
    });
    cli.wait_out("a v1 step", host.seq, OUTPUT, |t| {
        t.starts_with("step tag=v1 n=3 ")
    });
    let patched = format!("[hotswap] {game}: patched ");
    let save = |source: &str| {
        let before = cli.mark();
        scratch.save_game(source);
        let outcome = cli.wait_for("the outcome of the save", before, PATCH, |line| {
            support::is_save_outcome(line, &patched)
        });
        (before, outcome)
    };
    for version in 2..=4 {
        let tag = format!("v{version}");
        let (_, outcome) = save(&lib(&tag, "", ""));
        assert!(
            outcome.text.starts_with(&patched),
            "expected a patch, got {:?}\n{}",
            outcome.text,
            cli.transcript()
        );
        // Two lines of each thread from the new code.
        let step = format!("step tag={tag} ");
        two_lines(&cli, host.seq, &step);
        let worker = format!("worker tag={tag} ");
        two_lines(&cli, host.seq, &worker);
    }
    let out: Vec<String> = cli
        .texts(Stream::Out, host.seq)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    for line in out.iter().filter(|t| t.starts_with("step ")) {
        let n = number(line, "n");
        for key in ["requests", "seen", "registered", "calls"] {
            assert_eq!(
                number(line, key),
                n,
                "`{key}` did not keep counting: {line:?}"
            );
        }
        assert_eq!(number(line, "answer"), 42, "{line:?}");
        assert_eq!(
            number(line, "inits"),
            1,
            "the cache was built again: {line:?}"
        );
    }
    let worker: Vec<u64> = out
        .iter()
        .filter(|t| t.starts_with("worker "))
        .map(|t| number(t, "calls"))
        .collect();
    assert_eq!(
        worker,
        (1..=worker.len() as u64).collect::<Vec<_>>(),
        "the worker thread's thread-local did not keep counting"
    );
    assert!(
        !cli.texts(Stream::Err, 0)
            .iter()
            .any(|(_, t)| t.contains("from the initial value")),
        "a fresh-copy warning appeared\n{}",
        cli.transcript()
    );

    // A static new in a patch keeps its value in the next one.
    let extra = "static ADDED: AtomicU64 = AtomicU64::new(0);\n";
    let extra_out = "format!(\" added={}\", ADDED.fetch_add(1, Ordering::Relaxed) + 1)";
    for tag in ["v5", "v6"] {
        // v6 also gives `REQUESTS` another initial value: the running value is kept, and said.
        let source = lib(tag, extra, extra_out);
        let source = if tag == "v6" {
            source.replace(
                "static REQUESTS: AtomicU32 = AtomicU32::new(0);",
                "static REQUESTS: AtomicU32 = AtomicU32::new(1000);",
            )
        } else {
            source
        };
        let (before, outcome) = save(&source);
        if tag == "v6" {
            let initialiser = format!(
                "[hotswap] {game}: static `{game}::REQUESTS`'s initialiser changed; the running \
                 value was kept — restart to re-run it"
            );
            assert!(
                cli.texts(Stream::Err, before)
                    .iter()
                    .any(|(seq, t)| *seq < outcome.seq && *t == initialiser),
                "no `{initialiser}` before the patch line\n{}",
                cli.transcript()
            );
        }
        assert!(
            outcome.text.starts_with(&patched),
            "{:?}\n{}",
            outcome.text,
            cli.transcript()
        );
        let step = format!("step tag={tag} ");
        two_lines(&cli, host.seq, &step);
    }
    for line in cli
        .texts(Stream::Out, host.seq)
        .iter()
        .filter(|(_, t)| t.starts_with("step "))
    {
        assert_eq!(
            number(&line.1, "requests"),
            number(&line.1, "n"),
            "{line:?}"
        );
    }
    let added: Vec<u64> = cli
        .texts(Stream::Out, host.seq)
        .into_iter()
        .filter(|(_, t)| t.contains(" added="))
        .map(|(_, t)| number(&t, "added"))
        .collect();
    assert_eq!(
        added,
        (1..=added.len() as u64).collect::<Vec<_>>(),
        "the static added by a patch started again in the next one"
    );

    // A static whose type changes cannot be reused: a restart that names it.
    let retyped = lib("v7", extra, extra_out)
        .replace(
            "static REQUESTS: AtomicU32 = AtomicU32::new(0);",
            "static REQUESTS: AtomicU64 = AtomicU64::new(0);",
        )
        .replace(
            "let requests = u64::from(REQUESTS.fetch_add(1, Ordering::Relaxed)) + 1;",
            "let requests = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;",
        );
    assert!(retyped.contains("static REQUESTS: AtomicU64"));
    let (_, outcome) = save(&retyped);
    assert!(
        outcome
            .text
            .starts_with(&format!("[hotswap] restarting `{}`: ", scratch.app))
            && outcome.text.contains("REQUESTS"),
        "expected a restart naming `REQUESTS`, got {:?}\n{}",
        outcome.text,
        cli.transcript()
    );
    cli.wait_started(outcome.seq, RESTART);
}
