//! `cargo hotswap doctor`: check what hot reloading needs here and say what will work.

use std::process::Command;

use crate::report;

struct Check {
    name: &'static str,
    result: Result<String, String>,
    /// Thin patches cannot work without this.
    needed_for_thin: bool,
}

pub fn run() -> i32 {
    let checks = [
        Check {
            name: "platform",
            result: platform(),
            needed_for_thin: true,
        },
        Check {
            name: "rustc",
            result: version("rustc"),
            needed_for_thin: true,
        },
        Check {
            name: "cargo",
            result: version(&crate::project::cargo().display().to_string()),
            needed_for_thin: true,
        },
        Check {
            name: "C compiler driver (cc)",
            result: version("cc"),
            needed_for_thin: true,
        },
        Check {
            name: "linker features",
            result: linker(),
            needed_for_thin: true,
        },
        Check {
            name: "patch linker",
            result: patch_linker(),
            // `cc` links a patch the chosen linker cannot.
            needed_for_thin: false,
        },
        Check {
            name: "private patch directory",
            result: private_dir(),
            needed_for_thin: true,
        },
        Check {
            name: "file watching (inotify)",
            result: inotify(),
            needed_for_thin: false,
        },
    ];
    let mut thin = true;
    for check in &checks {
        match &check.result {
            Ok(text) => report::ok(&format!("{}: {text}", check.name)),
            Err(text) => {
                thin &= !check.needed_for_thin;
                report::error(&format!("{}: {text}", check.name));
            }
        }
    }
    match crate::project::Project::load(None) {
        Ok(project) => {
            let libraries: Vec<&str> = project
                .hot_libraries()
                .map(|c| c.package.as_str())
                .collect();
            let programs = project.hot_capable_programs();
            if libraries.is_empty() && programs.is_empty() {
                report::warn(
                    "this workspace has no crate that depends on hotswap: run `cargo hotswap init`",
                );
            }
            if !libraries.is_empty() {
                report::ok(&format!(
                    "hot library crates here: {}",
                    libraries.join(", ")
                ));
            }
            if !programs.is_empty() {
                report::ok(&format!(
                    "programs whose own #[hot] code can be patched (main.rs, src/bin, examples): {}",
                    programs.join(", ")
                ));
            }
            let hosted: Vec<&str> = project
                .members
                .iter()
                .filter(|p| {
                    p.targets
                        .iter()
                        .any(|t| t.kind.iter().any(|k| k == "cdylib"))
                        && project.hot_libraries().any(|c| c.package == p.name)
                })
                .map(|p| p.name.as_str())
                .collect();
            if !hosted.is_empty() {
                report::ok(&format!(
                    "libraries a host can load and have patched (`cargo hotswap run --lib -p PKG -- \
                     HOST`): {}",
                    hosted.join(", ")
                ));
            }
        }
        Err(_) => report::info("not inside a cargo workspace (that is fine for this check)"),
    }
    if thin {
        report::ok("thin patches (`cargo hotswap run`): will work");
        report::ok("full library mode (`hot` feature + cdylib): will work");
        0
    } else {
        report::error("thin patches (`cargo hotswap run`): will not work here, see above");
        1
    }
}

fn platform() -> Result<String, String> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    match (os, arch) {
        ("linux", "x86_64") => Ok("linux x86_64 (built and tested)".into()),
        ("linux", "aarch64") => Ok("linux aarch64 (supported, less tested)".into()),
        _ => Err(format!(
            "{os} {arch}: not supported yet (Linux only); the program runs, patches are refused"
        )),
    }
}

fn version(program: &str) -> Result<String, String> {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|err| format!("`{program}` not found ({err})"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Links a tiny executable and shared object with exactly the flags hotswap uses.
fn linker() -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("hotswap-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let source = dir.join("probe.c");
    std::fs::write(
        &source,
        "int probe(void) { return 42; }\nint main(void) { return 0; }\n",
    )
    .map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("cc")
            .args(args)
            .current_dir(&dir)
            .output()
            .map_err(|err| format!("cannot run cc: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    };
    let result = run(&[
        "-o",
        "probe",
        "probe.c",
        "-Wl,--export-dynamic",
        "-Wl,--whole-archive",
        "-Wl,--no-whole-archive",
        "-Wl,-z,noexecstack",
    ])
    .and_then(|()| {
        run(&[
            "-shared",
            "-fPIC",
            "-Wl,-Bsymbolic-functions",
            "-Wl,-z,noexecstack",
            "-o",
            "probe.so",
            "probe.c",
        ])
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
        .map(|()| "--export-dynamic, --whole-archive, -shared, -Bsymbolic-functions: ok".into())
        .map_err(|err| format!("the linker rejected a flag hotswap needs: {err}"))
}

/// Which linker thin patches use and why, after linking a probe with it at a fixed address (as
/// a patch that shares the program's statics is linked).
fn patch_linker() -> Result<String, String> {
    let choice = crate::link_with::chosen();
    let flags = &choice.flags;
    let dir = std::env::temp_dir().join(format!("hotswap-doctor-link-{}", std::process::id()));
    let base = flags.linker.placement(0).map(|_| 0x7e00_0000_0000);
    let probe = crate::link_with::probe("cc", flags, &dir, base, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    match probe {
        Ok(found) => Ok(format!("{} (probe: {found})", choice.describe())),
        Err(err) => Err(format!(
            "{}; but its probe link failed ({err}): patches fall back to cc",
            choice.describe()
        )),
    }
}

fn private_dir() -> Result<String, String> {
    let dir = hotswap::platform::private_dir(&format!("doctor-{}", std::process::id()))?;
    let shown = dir
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!("{shown} (owned by you, mode 700)"))
}

fn inotify() -> Result<String, String> {
    match std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches") {
        Ok(text) => {
            let watches: u64 = text.trim().parse().unwrap_or(0);
            if watches < 1024 {
                Err(format!(
                    "only {watches} watches allowed; raise fs.inotify.max_user_watches"
                ))
            } else {
                Ok(format!("{watches} watches allowed"))
            }
        }
        Err(_) => Ok("not Linux inotify; polling fallback of notify".into()),
    }
}
