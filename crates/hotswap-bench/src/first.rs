//! First build: `cargo hotswap run`'s build of a program (hot mode: the CLI's rustc wrapper, the
//! hot crates' closure linked whole, `--export-dynamic`, full debuginfo for the hot crates)
//! against a plain `cargo build` of the same program, in the edit-to-effect workspaces
//! (`edit-small`, `edit-heavy`, `edit-bevy`).
//!
//! "First" is the first build of the workspace's own packages (the hot crate and the program),
//! with every dependency already built for both modes (warm dependencies: recompiling Bevy
//! each time would take most of an hour on the bench's machine). Each repetition:
//!
//! - plain: `cargo clean -p LIB -p HOST` (target `<repo>/target/bench`), then, timed,
//!   `cargo rustc -p HOST --bin HOST -- -C linker=$WORK/first-build/cc`: a `cargo build -p HOST`
//!   whose link of the program goes through a shell script that runs `cc` and notes how long it
//!   took (the link time); the extra flag is the program's own unit's only, so no dependency is
//!   rebuilt for it.
//! - hot: the same `cargo clean` in `<repo>/target/bench/hotswap` (the CLI's target directory),
//!   then, timed, `cargo hotswap run -p HOST` from its start to its `started` line; its own
//!   `built in X s: …, link Y s` line is kept too, and the link time is read from the linker
//!   role's log (`captures/links.log`, the same figure with more digits). The program is stopped
//!   (Ctrl-C) right after.
//!
//! One untimed build of each mode comes first (it builds any dependency that is not built yet),
//! then the repetitions alternate plain and hot, so a slow spell of the machine hits both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{Builder, Tool};
use crate::edit::{Measured, Started};

/// The workspace's own packages: the hot crate and the program.
pub fn packages(tool: Tool) -> (&'static str, &'static str) {
    match tool {
        Tool::EditHeavy => ("hse_heavy", "hse_heavy_host"),
        Tool::EditBevy => ("hse_bevy", "hse_bevy_host"),
        _ => ("hse_small", "hse_small_host"),
    }
}

/// The shell script given as the plain build's linker: runs `cc`, appends its nanoseconds to
/// `log`.
fn timing_linker(dir: &Path, log: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    // Named `cc`, so rustc takes it for the C compiler driver it would run (same flavor, same
    // arguments).
    let script = dir.join("cc");
    let text = format!(
        "#!/bin/sh\nstart=$(date +%s%N)\ncc \"$@\"\nstatus=$?\nend=$(date +%s%N)\n\
         echo $((end - start)) >> '{}'\nexit $status\n",
        log.display()
    );
    std::fs::write(&script, text)
        .and_then(|()| std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)))
        .map_err(|err| format!("cannot write {}: {err}", script.display()))?;
    Ok(script)
}

/// `cargo clean -p LIB -p HOST` in `target`, keeping `target`'s `.rustc_info.json`.
///
/// That file is cargo's cache of what rustc reports (`-vV`, the target's file names and cfgs),
/// valid for one compiler and wrapper. `cargo clean`, which runs without the CLI's wrapper,
/// rewrites it for plain rustc; in the CLI's target directory the next hot build would then
/// ask rustc again through the wrapper (three compiler runs), which a user's session never
/// does: only the CLI builds there. So the file is put back as it was, as for the plain build
/// (whose clean and build agree on the compiler).
fn clean(builder: &mut Builder, tool: Tool, target: &Path) -> Result<(), String> {
    let (lib, host) = packages(tool);
    let info = target.join(".rustc_info.json");
    let kept = std::fs::read(&info).ok();
    let mut command = builder.cargo(tool)?;
    command
        .args(["clean", "-p", lib, "-p", host, "--target-dir"])
        .arg(target);
    let cleaned =
        crate::edit::run_timed(command, &format!("cargo clean -p {lib} -p {host}")).map(|_| ());
    if let Some(bytes) = kept {
        std::fs::write(&info, bytes)
            .map_err(|err| format!("cannot restore {}: {err}", info.display()))?;
    }
    cleaned
}

/// The plain build: (wall ms, link ms).
fn plain(
    builder: &mut Builder,
    tool: Tool,
    linker: &Path,
    log: &Path,
) -> Result<(f64, f64), String> {
    let (_, host) = packages(tool);
    let _ = std::fs::remove_file(log);
    let mut command = builder.cargo(tool)?;
    command
        .args(["rustc", "-p", host, "--bin", host, "--", "-C"])
        .arg(format!("linker={}", linker.display()));
    let took = crate::edit::run_timed(command, &format!("cargo rustc -p {host} --bin {host}"))?;
    let link_ns: f64 = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse::<f64>().ok())
        .sum();
    Ok((took.as_secs_f64() * 1e3, link_ns / 1e6))
}

/// What one hot build gave: wall ms to `started`, and the CLI's own figures.
#[derive(Debug, Default, PartialEq)]
pub struct Hot {
    pub wall_ms: f64,
    pub built_ms: Option<f64>,
    pub link_ms: Option<f64>,
    /// Crates compiled, as its `built in` line says.
    pub compiled: Option<f64>,
}

/// `[hotswap] built in 63.2 s: 118 crates compiled, 4 fresh, link 2.1 s` → (63200, Some(2100)).
pub fn built_line(line: &str) -> Option<(f64, Option<f64>)> {
    let rest = line.split_once("built in ")?.1;
    let seconds = |text: &str| -> Option<f64> {
        text.trim()
            .strip_suffix('s')?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|s| s * 1e3)
    };
    let (total, rest) = rest.split_once(':')?;
    let link = rest
        .split(", ")
        .find_map(|part| part.trim().strip_prefix("link "))
        .and_then(seconds);
    Some((seconds(total)?, link))
}

/// `… built in 1.0 s: 2 crates compiled, 170 fresh …` → 2.
pub fn compiled_count(line: &str) -> Option<f64> {
    let rest = line.split_once("built in ")?.1.split_once(": ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

fn hot(builder: &mut Builder, cli: &Path, tool: Tool) -> Result<Hot, String> {
    let (_, host) = packages(tool);
    let root = builder.workspace(tool)?;
    let links = builder
        .target()
        .join("hotswap")
        .join("captures")
        .join("links.log");
    let mut command = Command::new(cli);
    command
        .current_dir(&root)
        .args(["hotswap", "run", "-p", host]);
    crate::build::clean_env(&mut command);
    command
        .env("CARGO_TARGET_DIR", builder.target())
        .env("NO_COLOR", "1");
    let spawned = Instant::now();
    let mut program = Started::spawn(command)?;
    let deadline = spawned + Duration::from_secs(3600);
    let mut result = Hot::default();
    let outcome = loop {
        match program.stderr.recv_timeout(Duration::from_millis(200)) {
            Ok((at, line)) => {
                if let Some((built, link)) = built_line(&line) {
                    result.built_ms = Some(built);
                    result.link_ms = link;
                    result.compiled = compiled_count(&line);
                }
                let started = line.contains("] started `");
                // After a failed build the CLI waits for the next save.
                let failed = line.contains("the build failed")
                    || line.contains("Fix it and save to try again");
                program.seen.push(line);
                if started {
                    result.wall_ms = at.duration_since(spawned).as_secs_f64() * 1e3;
                    break Ok(());
                }
                if failed {
                    std::thread::sleep(Duration::from_millis(200));
                    while let Ok((_, line)) = program.stderr.try_recv() {
                        program.seen.push(line);
                    }
                    break Err(format!("the hot build failed: {}", program.tail()));
                }
            }
            Err(_) if Instant::now() > deadline => {
                break Err(format!("no `started` within an hour: {}", program.tail()))
            }
            Err(_) => {
                if let Ok(Some(status)) = program.child.try_wait() {
                    break Err(format!(
                        "cargo hotswap run exited ({status}) before `started`: {}",
                        program.tail()
                    ));
                }
            }
        }
    };
    // The linker role's log of this build (the CLI removes it before each build).
    if outcome.is_ok() {
        let logged: Vec<f64> = std::fs::read_to_string(&links)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split('\t').next()?.trim().parse::<f64>().ok())
            .collect();
        if !logged.is_empty() {
            result.link_ms = Some(logged.iter().sum::<f64>() * 1e3);
        }
    }
    program.stop();
    outcome.map(|()| result)
}

/// The row's measurement: `reps` repetitions after one untimed build of each mode. `ms` holds
/// the hot builds' wall times; `values` `plain_ms`, `plain_link_ms`, `hot_built_ms` (the CLI's
/// `built in`), `hot_link_ms`.
pub fn measure(
    builder: &mut Builder,
    cli: &Path,
    tool: Tool,
    reps: usize,
    work: &Path,
) -> Result<Measured, String> {
    let (lib, host) = packages(tool);
    let dir = work.join("first-build");
    let log = dir.join(format!("links-{}.log", tool.dir_name()));
    let linker = timing_linker(&dir, &log)?;
    let plain_target = builder.target().to_path_buf();
    let hot_target = plain_target.join("hotswap");
    eprintln!(
        "hotswap-bench: first build, {}: warm-up builds of both modes (dependencies)",
        tool.dir_name()
    );
    plain(builder, tool, &linker, &log)?;
    hot(builder, cli, tool)?;
    let mut measured = Measured {
        run: format!(
            "in `$WORK/ws/{dir}`, after one untimed build of each mode, {reps} repetition(s) of: plain: \
             `cargo clean -p {lib} -p {host}`, then timed `CARGO_TARGET_DIR=<repo>/target/bench \
             cargo rustc -p {host} --bin {host} -- -C linker=$WORK/first-build/cc` (a script that \
             runs `cc` and notes its time); hot: `cargo clean -p {lib} -p {host} --target-dir \
             <repo>/target/bench/hotswap`, then `CARGO_TARGET_DIR=<repo>/target/bench \
             cargo-hotswap hotswap run -p {host}` timed to its `started` line, then Ctrl-C",
            dir = tool.dir_name()
        ),
        ..Measured::default()
    };
    for rep in 1..=reps {
        eprintln!(
            "hotswap-bench: first build, {}: repetition {rep}/{reps}",
            tool.dir_name()
        );
        clean(builder, tool, &plain_target)?;
        let (plain_ms, plain_link_ms) = plain(builder, tool, &linker, &log)?;
        clean(builder, tool, &hot_target)?;
        let hot = hot(builder, cli, tool)?;
        let mut keep =
            |key: &str, value: f64| measured.values.entry(key.into()).or_default().push(value);
        keep("plain_ms", plain_ms);
        keep("plain_link_ms", plain_link_ms);
        if let Some(built) = hot.built_ms {
            keep("hot_built_ms", built);
        }
        if let Some(link) = hot.link_ms {
            keep("hot_link_ms", link);
        }
        if let Some(compiled) = hot.compiled {
            keep("hot_compiled", compiled);
        }
        measured.ms.push(hot.wall_ms);
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::built_line;

    #[test]
    fn the_cli_summary_line_is_read() {
        assert_eq!(
            built_line("[hotswap] built in 63.2 s: 118 crates compiled, 4 fresh, link 2.1 s"),
            Some((63_200.0, Some(2_100.0)))
        );
        assert_eq!(
            built_line("[hotswap] built in 0.4 s: 1 crate compiled"),
            Some((400.0, None))
        );
        assert_eq!(built_line("[hotswap] started `x` (pid 1)"), None);
        assert_eq!(
            super::compiled_count("[hotswap] built in 1.0 s: 2 crates compiled, 170 fresh"),
            Some(2.0)
        );
    }
}
