//! The program under `run`: start it with the control channel's address, notice when it exits,
//! stop it for a restart.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::run::Event;

pub struct App {
    pub pid: u32,
    child: Arc<Mutex<Child>>,
}

/// Environment variable holding the path of the library `run --lib` built, for its host.
pub const LIBRARY_ENV: &str = "HOTSWAP_LIBRARY";

/// What to start, and what it is told.
pub struct Launch<'a> {
    /// The program, or a library's host (the command after `--`).
    pub executable: &'a Path,
    pub args: &'a [String],
    /// The library `run --lib` built, for its host ([`LIBRARY_ENV`]).
    pub library: Option<&'a Path>,
    pub rollback_on_panic: bool,
    /// The control channel's address.
    pub socket: &'a Path,
    /// The file of `State` values carried over a restart.
    pub carried: Option<&'a Path>,
}

/// Starts the program (or a library's host); its exit is reported as an [`Event`] of
/// `generation`.
pub fn start(launch: Launch, generation: u64, events: Sender<Event>) -> Result<App, String> {
    let Launch {
        executable,
        args,
        library,
        rollback_on_panic,
        socket,
        carried,
    } = launch;
    let mut command = Command::new(executable);
    command
        .args(args)
        .env(hotswap::protocol::CONTROL_ENV, socket);
    if let Some(library) = library {
        command.env(LIBRARY_ENV, library);
    }
    match carried {
        Some(file) => command.env(hotswap::protocol::CARRY_ENV, file),
        None => command.env_remove(hotswap::protocol::CARRY_ENV),
    };
    if rollback_on_panic {
        command.env("HOTSWAP_ON_PANIC", "rollback");
    }
    // If we die without stopping it (SIGTERM, SIGKILL, a crash), the program gets SIGTERM
    // instead of running on orphaned. The signal follows the thread that spawned the child:
    // that is the main loop's thread, which lives as long as we do.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    let child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", executable.display()))?;
    let pid = child.id();
    let child = Arc::new(Mutex::new(child));
    let watched = Arc::clone(&child);
    std::thread::Builder::new()
        .name("hotswap-app".into())
        .spawn(move || loop {
            // Poll rather than block in wait(), so `stop` can still reach the child.
            let status = watched.lock().map(|mut c| c.try_wait());
            match status {
                Ok(Ok(Some(status))) => {
                    let _ = events.send(Event::AppExited { generation, status });
                    return;
                }
                Ok(Ok(None)) => std::thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        })
        .map_err(|err| err.to_string())?;
    Ok(App { pid, child })
}

impl App {
    /// Asks the program to stop (SIGTERM), then kills it if it has not stopped within `grace`.
    pub fn stop(&self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(mut child) = self.child.lock() {
            // Under the lock, so the pid cannot be reaped (and reused) before the signal.
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            signal(self.pid, libc::SIGTERM);
        }
        self.stop_after(grace)
    }

    /// Waits up to `grace` for the program to exit on its own, then kills it.
    pub fn stop_after(&self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(mut child) = self.child.lock() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(status);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    return child.wait().ok();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How the program ended, if it has (without waiting).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().ok()?.try_wait().ok().flatten()
    }

    pub fn interrupt(&self) {
        signal(self.pid, libc::SIGINT);
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: sending a signal has no memory-safety preconditions; the pid is our own child,
    // which we have not reaped yet (reaping happens under the same lock in `stop`).
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// `status` as a shell would report it, and the exit code `run` returns for it.
pub fn describe(status: ExitStatus) -> (String, i32) {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        (format!("exit code {code}"), code)
    } else if let Some(signal) = status.signal() {
        let name = match signal {
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            libc::SIGKILL => "SIGKILL",
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            libc::SIGBUS => "SIGBUS",
            _ => "signal",
        };
        (format!("killed by {name} ({signal})"), 128 + signal)
    } else {
        (format!("{status}"), 1)
    }
}
