//! `cargo hotswap run`: build the program in hot mode, start it, and turn every saved edit
//! into a patch, a restart, or a compile error on screen, while the program keeps running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use hotswap::protocol::{ToApp, ToCli};

use crate::app::{self, App};
use crate::carry::{self, Carry};
use crate::check::{self, Build, Outside};
use crate::deliver::{self, Connection, Peers};
use crate::host::{self, BuildOptions};
use crate::linker::Linked;
use crate::patch::Sharing;
use crate::patch::{self, Failure};
use crate::project::{CrateKind, HotCrate, Program as Target, Project};
use crate::report;
use crate::rewrite::Program;
use crate::watch::{self, Change, Owners};

/// How long the first save after a start waits for the program's hello (see
/// `Session::hello_due`); a program that calls no hot function by then gets the patch when it
/// does, built without the program's reservation.
const HELLO_WAIT: Duration = Duration::from_secs(3);

pub enum Event {
    Changed(Vec<PathBuf>, watch::Save),
    Connected(Connection),
    FromApp { connection: u64, message: ToCli },
    Disconnected(u64),
    AppExited { generation: u64, status: ExitStatus },
    Interrupted,
}

pub struct RunOptions {
    pub manifest_path: Option<PathBuf>,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub example: Option<String>,
    pub build: BuildOptions,
    pub args: Vec<String>,
    /// Roll a patch back when its code panics (`HOTSWAP_ON_PANIC=rollback` for the program).
    pub rollback_on_panic: bool,
    /// `--lib`: build the package's `cdylib` and run `args` as the host that loads it.
    pub library: bool,
}

/// A patch sent to the program and not answered yet.
struct InFlight {
    /// The hot crate's package, as the user names it.
    package: String,
    files: String,
    build: Duration,
    link: Duration,
    check: Duration,
    /// Functions whose code changed (see [`check::Verdict::changed`]).
    changed: Vec<String>,
    file: PathBuf,
    /// Its links for the other processes (a library's hosts), when they have their own.
    copies: Vec<PathBuf>,
    /// Linked at a fixed address: the statics it adds are shared with the next patches.
    fixed: bool,
    /// The connections it was sent to that have not answered yet.
    waiting: Vec<u64>,
    /// How many processes it was sent to.
    sent_to: usize,
    /// How many of them applied it.
    applied: usize,
    /// The processes that refused it so far: connection, pid, reason.
    refused: Vec<(u64, u32, String)>,
    /// The load bias of the process the patch's own file (not a copy) was linked for: where
    /// the statics it adds are, relative to the library (the same in every copy).
    bias: Option<u64>,
    /// The running build it replaced in the checks' view (hot crate key and build): restored
    /// if every process refuses the patch and keeps its code (a library host).
    replaced: Option<(String, Build)>,
}

struct Session {
    project: Project,
    program: Target,
    options: RunOptions,
    dir: PathBuf,
    socket: PathBuf,
    token: String,
    events: mpsc::Sender<Event>,
    executable: Option<PathBuf>,
    app: Option<App>,
    generation: u64,
    /// The connected processes: the program (the last one that said hello), or, for a
    /// library host (`--lib`), every process that loaded the library.
    connections: Vec<Connection>,
    /// A patch has been applied since the program (library) was built: a process that connects
    /// now runs older code than the patches are checked against (library hosts).
    patched: bool,
    /// Patches built before the program connected (its runtime starts at the first hot call).
    queued: Vec<(u64, PathBuf)>,
    /// The program was started and has not said hello yet: the first save waits for it (see
    /// [`HELLO_WAIT`]), once per start.
    hello_due: bool,
    in_flight: HashMap<u64, InFlight>,
    next_patch: u64,
    last_code: Option<i32>,
    /// Symbols the running executable exports (read once per build).
    exports: Option<crate::statics::Exports>,
    /// The running program's statics and thread-locals, which patches share (read once per
    /// build; statics new in a patch at a fixed address are added).
    program_data: Option<Program>,
    /// Which hot crates each source file belongs to (after each build).
    owners: Owners,
    /// Fresh-copy warnings already shown this session.
    warned: Vec<String>,
    /// The build of each hot crate that the program runs (by crate name): what the next patch
    /// is checked against. Kept when the program is built, replaced when a patch is delivered.
    running: HashMap<String, Build>,
    /// The program's code that patches of each hot crate do not replace, for the checks (per
    /// program build, by key).
    outside: HashMap<String, Outside>,
    /// The objects of the binary crate's patches delivered since the program was built (kept
    /// in the builds directory): code outside the hot libraries that may call them directly.
    program_patches: Vec<PathBuf>,
    /// Contents of Cargo.toml / Cargo.lock files as the last build saw them: cargo itself
    /// writes the lock file, and an unchanged manifest needs no restart.
    manifests: HashMap<PathBuf, Vec<u8>>,
    /// The connected programs, for the restart path's questions (`carry`).
    peers: Peers,
    /// `State` values carried over restarts.
    carry: Carry,
}

pub fn run(options: RunOptions) -> i32 {
    match start(options) {
        Ok((mut session, events)) => session.serve(events),
        Err(err) => {
            report::error(&err);
            1
        }
    }
}

fn start(options: RunOptions) -> Result<(Session, Receiver<Event>), String> {
    let mut project = Project::load(options.manifest_path.as_deref())?;
    let program = if options.library {
        if options.args.is_empty() {
            return Err("--lib needs the host to run after `--`, for example \
                        `cargo hotswap run --lib -- python3 app.py`; the library's path is in \
                        its environment as HOTSWAP_LIBRARY"
                .into());
        }
        project.library(options.package.as_deref())?
    } else {
        project.program(
            options.package.as_deref(),
            options.bin.as_deref(),
            options.example.as_deref(),
        )?
    };
    project.add_program(&program);
    if project.hot.is_empty() {
        report::warn(
            "no crate of this workspace depends on `hotswap`, so nothing can be patched: every \
             change restarts the program. Run `cargo hotswap init` to set it up.",
        );
    }
    let dir = hotswap::platform::private_dir(&format!("cli-{}", std::process::id()))?;
    let (sender, events) = mpsc::channel();
    let peers = Peers::default();
    let socket = deliver::listen(&dir, sender.clone(), peers.clone())?;
    let interrupts = sender.clone();
    ctrlc::set_handler(move || {
        let _ = interrupts.send(Event::Interrupted);
    })
    .map_err(|err| format!("cannot handle Ctrl-C: {err}"))?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let token = format!(
        "{:016x}",
        (seed as u64) ^ ((std::process::id() as u64) << 32)
    );
    let session = Session {
        project,
        program,
        options,
        dir,
        socket,
        token,
        events: sender,
        executable: None,
        app: None,
        generation: 0,
        hello_due: false,
        connections: Vec::new(),
        patched: false,
        queued: Vec::new(),
        in_flight: HashMap::new(),
        next_patch: 0,
        last_code: None,
        manifests: HashMap::new(),
        exports: None,
        program_data: None,
        owners: Owners::default(),
        warned: Vec::new(),
        peers,
        carry: Carry::default(),
        running: HashMap::new(),
        outside: HashMap::new(),
        program_patches: Vec::new(),
    };
    Ok((session, events))
}

impl Session {
    fn serve(&mut self, events: Receiver<Event>) -> i32 {
        let _watcher = match watch::start(&self.project, self.events.clone()) {
            Ok(watcher) => watcher,
            Err(err) => {
                report::error(&err);
                return 1;
            }
        };
        let what = if self.program.library {
            format!("the library of `{}`", self.program.package)
        } else {
            format!("`{}`", self.program.name)
        };
        report::info(&format!(
            "building {what} in hot mode (the first build takes longest)…"
        ));
        let started = self.rebuild_and_start();
        // Earlier sessions' kept builds, left by a command that was killed: removed once the
        // program runs (removing large files can take a while, and nothing here needs them).
        self.remove_abandoned_builds();
        if started {
            // The hot crates this program links (not every one of the workspace).
            let linked = self.linked().ok();
            let hot: Vec<String> = self
                .project
                .hot
                .iter()
                .filter(|c| {
                    linked.as_ref().is_some_and(|linked| match c.kind {
                        CrateKind::Library => linked.hot.iter().any(|(n, _)| *n == c.crate_name),
                        CrateKind::Program => linked.program.is_some(),
                    })
                })
                .map(|c| match c.kind {
                    CrateKind::Library => format!("the hot crate {}", c.package),
                    CrateKind::Program => format!("`{}`", display_path(&c.root, &self.project)),
                })
                .collect();
            let running = if self.program.library {
                format!(
                    "`{}` runs with the library of `{}` loaded",
                    self.host_command(),
                    self.program.package
                )
            } else {
                format!("running `{}`", self.program.name)
            };
            if let (true, Some(library)) = (self.program.library, &self.executable) {
                // A host started by hand (another terminal, a notebook) is patched too.
                report::info(&format!(
                    "another process can load the library and be patched too: start it with \
                     {}={} {}={}",
                    hotswap::protocol::CONTROL_ENV,
                    self.socket.display(),
                    app::LIBRARY_ENV,
                    library.display()
                ));
            }
            report::ok(&format!(
                "{running}; {} (Ctrl-C stops both)",
                if hot.is_empty() {
                    "nothing in it is #[hot], so every change restarts it".to_owned()
                } else {
                    format!("edit {} and save to patch it live", hot.join(" or "))
                }
            ));
        }
        loop {
            let event = match events.recv() {
                Ok(event) => event,
                Err(_) => return 1,
            };
            let Event::Changed(paths, save) = event else {
                if let Some(code) = self.handle(event) {
                    return code;
                }
                continue;
            };
            // Gather the rest of this save (`watch::Gather`: at once when the files are whole,
            // after the close of a file still being written); anything else that arrives
            // meanwhile (the program connecting or exiting, Ctrl-C) is handled at once,
            // before the build.
            let mut save_of = watch::Gather::default();
            save_of.add(paths, save);
            loop {
                let quiet = save_of.quiet(self.program.library);
                match self.during_save(&events, quiet, &mut save_of) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(code) => return code,
                }
            }
            // A patch built before the program says hello cannot go where it keeps its
            // statics (its reserved range is in the hello): it would start them afresh. A
            // program just started says hello at its first hot call; wait for that, once.
            if self.hello_due && self.app.is_some() && self.connections.is_empty() {
                self.hello_due = false;
                let until = Instant::now() + HELLO_WAIT;
                while self.connections.is_empty() && self.app.is_some() {
                    let left = until.saturating_duration_since(Instant::now());
                    match self.during_save(&events, left, &mut save_of) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(code) => return code,
                    }
                }
            }
            self.changed(&save_of.finish());
        }
    }

    /// Waits up to `wait` for the next event while a save is gathered: a file change joins
    /// `save`, anything else is handled at once. `Ok(false)`: nothing came; `Err`: the exit
    /// code, `run` should stop.
    fn during_save(
        &mut self,
        events: &Receiver<Event>,
        wait: Duration,
        save: &mut watch::Gather,
    ) -> Result<bool, i32> {
        match events.recv_timeout(wait) {
            Ok(Event::Changed(more, kind)) => save.add(more, kind),
            Ok(other) => {
                if let Some(code) = self.handle(other) {
                    return Err(code);
                }
            }
            Err(RecvTimeoutError::Timeout) => return Ok(false),
            Err(RecvTimeoutError::Disconnected) => return Err(1),
        }
        Ok(true)
    }

    /// Handles every event but a file change; returns the exit code when `run` should stop.
    fn handle(&mut self, event: Event) -> Option<i32> {
        match event {
            Event::Changed(paths, _) => self.changed(&paths),
            Event::Connected(connection) => self.connected(connection),
            Event::FromApp {
                connection,
                message,
            } => {
                if self.connections.iter().any(|c| c.id == connection) {
                    self.answered(connection, message);
                }
            }
            Event::Disconnected(id) => self.disconnected(id),
            Event::AppExited { generation, status } => {
                if generation == self.generation && self.app.is_some() {
                    self.app = None;
                    self.connections.clear();
                    self.carry.exited(status);
                    let (text, code) = app::describe(status);
                    self.last_code = Some(code);
                    let text = format!(
                        "`{}` exited ({text}); it will start again on the next change",
                        self.running_name()
                    );
                    if status.success() {
                        report::info(&text)
                    } else {
                        report::error(&text)
                    }
                }
            }
            Event::Interrupted => return Some(self.interrupted()),
        }
        None
    }

    /// A process said hello. The program's last connection is the one patched; a library host
    /// may have several processes that loaded the library, each patched.
    fn connected(&mut self, mut connection: Connection) {
        if self.program.library {
            if let Err(why) = self.runs_our_library(&connection) {
                return report::warn(&format!(
                    "process {} loaded `{}` but will not be patched: {why}",
                    connection.pid, self.program.package
                ));
            }
        } else {
            self.connections.clear();
        }
        self.hello_due = false;
        for (id, path) in std::mem::take(&mut self.queued) {
            // Built before the program said where patches may go: not at a fixed address.
            let _ = connection.send(&ToApp::Patch {
                id,
                path: path.display().to_string(),
                fixed: None,
            });
            if let Some(patch) = self.in_flight.get_mut(&id) {
                patch.waiting.push(connection.id);
                patch.sent_to += 1;
            }
        }
        self.connections.push(connection);
    }

    /// Whether a process that loaded the library runs the build the patches are made for: the
    /// file it mapped must still be at its path, with the same contents as ours, and no patch
    /// may have been applied since (it would be behind the others).
    fn runs_our_library(&self, connection: &Connection) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let built = self
            .executable
            .as_deref()
            .ok_or("the library is not built")?;
        let Some(image) = connection.image.as_ref().filter(|i| i.library) else {
            return Err("it did not say which library it runs the runtime from".into());
        };
        if self.patched {
            return Err(
                "it loaded the library after patches were applied to the others, so it runs \
                 older code than the next patch is checked against; restart it after \
                 restarting `cargo hotswap run --lib` to patch it too"
                    .into(),
            );
        }
        let path = Path::new(&image.path);
        let loaded = std::fs::metadata(path)
            .ok()
            .filter(|meta| Some(meta.ino()) == image.inode)
            .ok_or_else(|| format!("{} is no longer the file it loaded; restart it", image.path))?;
        // The same build: a copy of ours (same size, same bytes) or ours itself.
        let ours = std::fs::metadata(built).ok();
        let same = ours
            .as_ref()
            .is_some_and(|ours| ours.ino() == loaded.ino() && ours.dev() == loaded.dev())
            || (ours.as_ref().is_some_and(|ours| ours.len() == loaded.len())
                && std::fs::read(path).ok() == std::fs::read(built).ok());
        if !same {
            return Err(format!(
                "it loaded {}, which is not the library this session built ({}); start it with \
                 HOTSWAP_LIBRARY's library",
                image.path,
                built.display()
            ));
        }
        Ok(())
    }

    fn disconnected(&mut self, id: u64) {
        self.connections.retain(|c| c.id != id);
        // A process that went away answers nothing: the patches it held up are done.
        let done: Vec<u64> = self
            .in_flight
            .iter_mut()
            .filter_map(|(patch, flight)| {
                let before = flight.waiting.len();
                flight.waiting.retain(|c| *c != id);
                (before > 0 && flight.waiting.is_empty()).then_some(*patch)
            })
            .collect();
        for patch in done {
            self.finish(patch);
        }
    }

    /// Where the next patch goes in each connected process (in the order of
    /// `self.connections`; one `None` when none is connected): at the next free address of its
    /// reservation, with its image's load bias, or anywhere. A patch at a fixed address adds
    /// statics that later patches share: that takes the same place relative to the library in
    /// every process (the reservation is found the same way in each), else all go anywhere.
    fn placements(&self) -> Vec<Option<(u64, u64)>> {
        let fixed: Vec<Option<(u64, u64)>> = self
            .connections
            .iter()
            .map(|c| Some((c.next_fixed?, c.reserved?.load_bias)))
            .collect();
        let relative: Vec<Option<u64>> = fixed
            .iter()
            .map(|f| f.map(|(next, bias)| next.wrapping_sub(bias)))
            .collect();
        if fixed.is_empty() {
            vec![None]
        } else if relative.iter().all(|r| r.is_some() && *r == relative[0]) {
            fixed
        } else {
            vec![None; fixed.len()]
        }
    }

    fn changed(&mut self, paths: &[PathBuf]) {
        let paths: Vec<PathBuf> = paths
            .iter()
            .filter(|path| match self.manifests.get(*path) {
                Some(seen) => std::fs::read(path).ok().as_ref() != Some(seen),
                None => true,
            })
            .filter(|path| self.project.concerns(&self.program.package, path))
            .cloned()
            .collect();
        if paths.is_empty() {
            return;
        }
        let paths = &paths[..];
        let files = paths
            .iter()
            .map(|p| {
                p.strip_prefix(&self.project.root)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(", ");
        match watch::classify(&self.project, &self.owners, paths) {
            Change::Restart(reason) => self.restart(&reason),
            Change::Patch(crates) if self.app.is_none() => {
                let _ = crates;
                report::info(&format!(
                    "{files} changed; starting `{}` again",
                    self.running_name()
                ));
                self.rebuild_and_start();
            }
            Change::Patch(crates) => {
                for crate_name in crates {
                    self.patch(&crate_name, &files);
                }
            }
        }
    }

    /// What the linker recorded for the running executable.
    fn linked(&self) -> Result<Linked, String> {
        let executable = self.executable.as_ref().ok_or("no executable yet")?;
        let name = executable
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Linked::load(&self.project.capture_dir(), &name)
    }

    fn patch(&mut self, key: &str, files: &str) {
        let Some(executable) = self.executable.clone() else {
            return self.restart("the last build failed");
        };
        let linked = match self.linked() {
            Ok(linked) => linked,
            Err(err) => return report::error(&err),
        };
        let Some(hot) = self.project.hot_crate(key).cloned() else {
            return self.restart(&format!("`{key}` is not a hot crate of this workspace"));
        };
        let package = hot.shown();
        let capture = match hot.kind {
            CrateKind::Library => linked
                .hot
                .iter()
                .find(|(name, _)| *name == hot.crate_name)
                .map(|(_, capture)| capture),
            CrateKind::Program => linked.program.as_ref(),
        };
        let Some(capture) = capture else {
            return self.restart(&format!("`{package}` is not linked into the program yet"));
        };
        self.next_patch += 1;
        let id = self.next_patch;
        report::progress(&format!("{files} changed; building a patch for {package}…"));
        // `HOTSWAP_FRESH_STATICS=1`: patches get fresh statics and thread-locals, as before
        // the rewriter (for the bench's comparison, and as a way out).
        let fresh = std::env::var_os("HOTSWAP_FRESH_STATICS").is_some_and(|v| v == "1");
        let unoptimised = opt_level(capture) == "0";
        if !unoptimised && !fresh {
            self.warn_once(
                "opt-level",
                "private statics of hot crates are shared with patches only at opt-level 0 (the \
                 dev profile): optimised builds rename their internal symbols, so each patch \
                 starts them afresh (a library's thread-locals too; a binary crate's are shared \
                 where their names stay, and a restart names one that did not)",
            );
        }
        let placements = self.placements();
        // A library's build, kept for the checks before its patch is linked.
        let mut early: Option<Build> = None;
        let mut waited = Duration::ZERO;
        let built = match self.program_data().map(|_| ()) {
            Err(err) => Err(Failure::Other(err)),
            Ok(()) => {
                let share = unoptimised && !fresh;
                let fixed = placements.first().copied().flatten().filter(|_| share);
                let sharing = Sharing {
                    program: self.program_data.as_ref().expect("just read"),
                    fixed,
                    library: self.program.library.then_some(executable.as_path()),
                };
                match hot.kind {
                    CrateKind::Library => patch::compile_library(capture).and_then(|compiled| {
                        let (patch, build, past_link) = self.link_library_patch(
                            &hot,
                            capture,
                            &linked.linker,
                            &sharing,
                            share,
                            id,
                            compiled,
                        )?;
                        early = Some(build);
                        waited = past_link;
                        Ok(patch)
                    }),
                    CrateKind::Program => {
                        patch::build_program(capture, &linked.linker, &sharing, &self.dir, id)
                    }
                }
            }
        };
        let built = built.and_then(|patch| self.place(patch, 0));
        match built {
            Err(Failure::Refused(reason)) => {
                self.discard_scratch(id);
                self.restart(&format!("{package}: {reason}"))
            }
            Err(Failure::Compile(diagnostics)) => {
                report::diagnostics(&diagnostics);
                report::warn(&format!(
                    "`{package}` does not compile; `{}` keeps running the last good code. Fix it and save.",
                    self.running_name()
                ));
            }
            Err(Failure::Other(err) | Failure::Link(err)) => report::error(&format!(
                "{err}\n`{}` keeps running the last good code.",
                self.running_name()
            )),
            Ok(patch) => {
                let verdict = self.check_patch(&hot, &patch, early, id);
                let (verdict, replaced) = match verdict {
                    Ok(checked) => checked,
                    Err(problems) => {
                        self.discard_scratch(id);
                        let _ = std::fs::remove_file(&patch.file);
                        return self.restart(&problems.join("; "));
                    }
                };
                self.warn_fresh_copies(&hot, &patch, &patch.shared);
                for name in &patch.changed_initialisers {
                    report::warn(&format!(
                        "{}: {name}'s initialiser changed; the running value was kept — restart \
                         to re-run it",
                        hot.shown()
                    ));
                }
                if std::env::var_os("HOTSWAP_WARNINGS").is_some() {
                    report::diagnostics(&patch.warnings);
                }
                // One link per process when the patch is at a fixed address (a library's
                // hosts); the others take the same file.
                let mut copies = vec![(patch.file.clone(), patch.fixed)];
                for (index, placement) in placements.iter().enumerate().skip(1) {
                    let copy = match (placement, &patch.inputs) {
                        (Some(fixed), Some(inputs)) if patch.fixed.is_some() => {
                            let sharing = Sharing {
                                program: self.program_data.as_ref().expect("read above"),
                                fixed: Some(*fixed),
                                library: Some(executable.as_path()),
                            };
                            patch::link_again(inputs, &sharing, index)
                                .and_then(|copy| self.place(copy, index))
                                .map(|copy| (copy.file, copy.fixed))
                        }
                        _ => Ok((patch.file.clone(), patch.fixed)),
                    };
                    match copy {
                        Ok(copy) => copies.push(copy),
                        Err(failure) => {
                            let err = failure.text();
                            self.discard_scratch(id);
                            for (file, _) in &copies {
                                let _ = std::fs::remove_file(file);
                            }
                            return report::error(&format!(
                                "linking the patch for process {}: {err}; the processes keep \
                                 running the last good code",
                                self.connections[index].pid
                            ));
                        }
                    }
                }
                self.discard_scratch(id);
                let mut waiting = Vec::new();
                let mut index = 0;
                self.connections.retain_mut(|c| {
                    let (file, fixed) = &copies[index.min(copies.len() - 1)];
                    index += 1;
                    let message = ToApp::Patch {
                        id,
                        path: file.display().to_string(),
                        fixed: *fixed,
                    };
                    match c.send(&message) {
                        Ok(()) => {
                            waiting.push(c.id);
                            true
                        }
                        Err(_) => false,
                    }
                });
                let sent_to = waiting.len();
                if waiting.is_empty() {
                    self.queued.push((id, patch.file.clone()));
                    report::info(&format!(
                        "patch for {package} built; it is applied when `{}` first calls a #[hot] function",
                        self.running_name()
                    ));
                }
                self.in_flight.insert(
                    id,
                    InFlight {
                        package: package.clone(),
                        files: files.to_owned(),
                        build: patch.build,
                        link: patch.link,
                        check: verdict.took + waited,
                        changed: verdict.changed,
                        file: patch.file,
                        copies: copies.into_iter().skip(1).map(|(file, _)| file).collect(),
                        fixed: patch.fixed.is_some(),
                        waiting,
                        sent_to,
                        applied: 0,
                        refused: Vec::new(),
                        bias: placements.first().copied().flatten().map(|(_, bias)| bias),
                        replaced: replaced.map(|build| (hot.key(), build)),
                    },
                );
            }
        }
    }

    /// Runs the checks before delivery on the patch just built of `hot`, against the build the
    /// program runs; on success the patch's build becomes the running one (a patch the program
    /// then refuses restarts it, with a new running build). `Err`: why the patch cannot be
    /// applied everywhere its code runs.
    ///
    /// `patched`: the patch's build, if kept already (a library's, see `patch`); else the
    /// binary crate's objects the patch was linked from are kept now.
    fn check_patch(
        &mut self,
        hot: &HotCrate,
        patch: &patch::Patch,
        patched: Option<Build>,
        id: u64,
    ) -> Result<(check::Verdict, Option<Build>), Vec<String>> {
        let key = hot.key();
        let patched = match patched {
            Some(patched) => patched,
            None => {
                let sources = crate::sources::read_crate(&hot.root).map_err(|err| vec![err])?;
                let keep = self.patch_build_dir(hot, id)?;
                Build::keep_objects(&patch.objects, &keep, sources).map_err(|err| vec![err])?
            }
        };
        let mut shared = self.shared_statics(&hot.crate_name);
        shared.extend(patch.shared.iter().cloned());
        let Some(running) = self.running.get(&key) else {
            return Err(vec![format!(
                "the build of `{}` the program runs was not kept, so the patch cannot be checked",
                hot.shown()
            )]);
        };
        let Some(outside) = self.outside.get(&key) else {
            return Err(vec!["the program's own code was not recorded".into()]);
        };
        let verdict = check::check(&hot.crate_name, running, &patched, outside, &shared);
        if !verdict.problems.is_empty() {
            return Err(verdict.problems);
        }
        let replaced = self.running.insert(key, patched);
        if hot.kind == CrateKind::Program {
            self.program_patched(&patch.objects, id);
        }
        Ok((verdict, replaced))
    }

    /// Links patch `id` of library `hot`, just compiled (`compiled`), and keeps its build, with
    /// its sources as they are now, for the checks: the build's machine code (the largest part
    /// of what they read) is read on another thread while the patch links. Also returns how
    /// long that reading outlasted the link, which counts as the checks' time.
    #[allow(clippy::too_many_arguments)]
    fn link_library_patch(
        &self,
        hot: &HotCrate,
        capture: &crate::capture::Invocation,
        linker: &str,
        sharing: &Sharing,
        share: bool,
        id: u64,
        compiled: patch::Compiled,
    ) -> Result<(patch::Patch, Build, Duration), Failure> {
        let sources = crate::sources::read_crate(&hot.root).map_err(Failure::Other)?;
        let keep = self
            .patch_build_dir(hot, id)
            .map_err(|err| Failure::Other(err.join("; ")))?;
        let build = Build::keep(&capture.rlib(), &keep, sources).map_err(Failure::Other)?;
        let rlib = build.kept_rlib().map(Path::to_path_buf);
        std::thread::scope(|scope| {
            let reading =
                rlib.map(|rlib| scope.spawn(move || crate::reach::Code::read_rlib(&rlib)));
            let patch =
                patch::link_library(capture, linker, sharing, share, &self.dir, id, compiled);
            let started = Instant::now();
            let build = match reading {
                Some(reading) => build.with_code(
                    reading
                        .join()
                        .unwrap_or_else(|_| Err("reading the patch's machine code failed".into())),
                ),
                None => build,
            };
            Ok((patch?, build, started.elapsed()))
        })
    }

    /// Where the build of patch `id` of `hot` is kept for the checks.
    fn patch_build_dir(&self, hot: &HotCrate, id: u64) -> Result<PathBuf, Vec<String>> {
        Ok(self.builds_dir()?.join(format!("patch-{}-{id}", hot.key())))
    }

    /// A patch of the binary crate is delivered: its code calls the hot libraries as the
    /// program's own code does, so the next patch of a library is checked against it too.
    fn program_patched(&mut self, objects: &[PathBuf], id: u64) {
        let Ok(dir) = self.builds_dir() else { return };
        let dir = dir.join(format!("outside-{id}"));
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        for (index, object) in objects.iter().enumerate() {
            let kept = dir.join(format!("{id}-{index}.o"));
            if std::fs::hard_link(object, &kept).is_ok() || std::fs::copy(object, &kept).is_ok() {
                self.program_patches.push(kept);
            }
        }
        let Ok(linked) = self.linked() else { return };
        for (crate_name, _) in &linked.hot {
            let mut paths = linked.outside(crate_name);
            paths.extend(self.program_patches.iter().cloned());
            self.outside.insert(crate_name.clone(), Outside::new(paths));
        }
    }

    /// Removes what rustc left for a binary crate's patch `id` (its objects are kept by the
    /// check's build, if it got that far).
    fn discard_scratch(&self, id: u64) {
        let _ = std::fs::remove_dir_all(self.dir.join(format!("bin-{id}")));
    }

    /// The running executable's statics and thread-locals (see [`crate::rewrite`]).
    fn program_data(&mut self) -> Result<&Program, String> {
        if self.program_data.is_none() {
            let executable = self.executable.as_deref().ok_or("no executable yet")?;
            self.program_data = Some(Program::read(executable, self.program.library)?);
        }
        Ok(self.program_data.as_ref().expect("just read"))
    }

    /// A patch linked at a fixed address takes its range of the program's reservation; one
    /// that does not fit is not delivered (the program restarts, with a fresh reservation).
    fn place(&mut self, patch: patch::Patch, connection: usize) -> Result<patch::Patch, Failure> {
        let Some(fixed) = patch.fixed else {
            return Ok(patch);
        };
        let Some(target) = self.connections.get_mut(connection) else {
            return Ok(patch);
        };
        let (Some(reservation), Some(next)) = (target.reserved, target.next_fixed.as_mut()) else {
            return Ok(patch);
        };
        let end = fixed.base + fixed.span;
        if fixed.base != *next || end > reservation.start + reservation.len {
            let _ = std::fs::remove_file(&patch.file);
            return Err(Failure::Refused(
                "the address range the program reserved for patches is used up".into(),
            ));
        }
        // One page between patches.
        *next = end + 4096;
        Ok(patch)
    }

    /// Shows `text` once per session (by `key`).
    fn warn_once(&mut self, key: &str, text: &str) {
        if !self.warned.iter().any(|w| w == key) {
            self.warned.push(key.to_owned());
            report::warn(text);
        }
    }

    /// Where the builds the checks compare are kept: next to the rlibs they link to (a hard
    /// link needs the same file system), one directory per session, removed at exit.
    fn builds_dir(&self) -> Result<PathBuf, Vec<String>> {
        let dir = self.builds_path();
        std::fs::create_dir_all(&dir)
            .map_err(|err| vec![format!("cannot create {}: {err}", dir.display())])?;
        Ok(dir)
    }

    /// Removes the builds directories of sessions that ended without cleaning up (killed).
    fn remove_abandoned_builds(&self) {
        let Ok(entries) = std::fs::read_dir(self.project.target_dir.join("builds")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("cli-"))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    fn builds_path(&self) -> PathBuf {
        self.project
            .target_dir
            .join("builds")
            .join(format!("cli-{}", std::process::id()))
    }

    /// Linkage names of `crate_name`'s statics that the program exports, i.e. shares with
    /// patches.
    fn shared_statics(&mut self, crate_name: &str) -> Vec<String> {
        if self.exports.is_none() {
            self.exports = self
                .executable
                .as_deref()
                .and_then(|exe| crate::statics::Exports::read(exe).ok());
        }
        self.exports
            .as_ref()
            .map(|exports| exports.data_of_crate(crate_name))
            .unwrap_or_default()
    }

    /// After the program was built: keeps the build of each hot crate it links (with the
    /// sources read before the build, by key) and where its own code is, and notes which
    /// source files each hot crate was compiled from.
    fn keep_running_builds(&mut self, mut sources: HashMap<String, Vec<syn::File>>) {
        self.running.clear();
        self.outside.clear();
        for kept in self.program_patches.drain(..) {
            if let Some(dir) = kept.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        let Ok(linked) = self.linked() else { return };
        let dir = match self.builds_dir() {
            Ok(dir) => dir,
            Err(err) => return report::warn(&err.join("; ")),
        };
        let mut files = Vec::new();
        for (crate_name, capture) in &linked.hot {
            files.push((crate_name.clone(), capture.source_files()));
            let Some(sources) = sources.remove(crate_name) else {
                continue;
            };
            match Build::keep(
                &capture.rlib(),
                &dir.join(format!("{crate_name}.rlib")),
                sources,
            ) {
                Ok(build) => {
                    self.running.insert(crate_name.clone(), build);
                }
                Err(err) => report::warn(&err),
            }
            self.outside
                .insert(crate_name.clone(), Outside::new(linked.outside(crate_name)));
        }
        if let (Some(program), Some(capture)) = (self.project.hot_program(), &linked.program) {
            let key = program.key();
            files.push((key.clone(), capture.source_files()));
            let (own, others) = linked.program_objects();
            if let Some(sources) = sources.remove(&key) {
                match Build::keep_objects(&own, &dir.join("program"), sources) {
                    Ok(build) => {
                        self.running.insert(key.clone(), build);
                    }
                    Err(err) => report::warn(&err),
                }
            }
            self.outside.insert(key, Outside::new(others));
        }
        self.owners = Owners::new(files);
    }

    /// Warns, once per name, about statics and thread-locals that restart in this patch.
    fn warn_fresh_copies(&mut self, hot: &HotCrate, patch: &patch::Patch, shared: &[String]) {
        // At a fixed address, what the program has is shared, and what it lacks is new.
        let fixed = patch.fixed.is_some();
        let program = self.program_data.as_ref();
        let known = |name: &str| !fixed || program.is_none_or(|p| p.has(name));
        if self.exports.is_none() {
            self.exports = self
                .executable
                .as_deref()
                .and_then(|exe| crate::statics::Exports::read(exe).ok());
        }
        let Some(exports) = &self.exports else { return };
        let fresh: Vec<String> = crate::statics::fresh_copies(&patch.file, exports, shared, &known)
            .into_iter()
            .filter(|name| !self.warned.contains(name))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let why = match hot.kind {
            _ if !fixed => {
                "private statics are shared with the running program only by a patch loaded at \
                 a fixed address, which needs the dev profile and room the program reserved at \
                 start; a `pub static` reachable from the crate root is always shared). Keep \
                 state in values the program owns, or make the static `pub`."
            }
            CrateKind::Library | CrateKind::Program => {
                "this static could not be shared with the running program's: it is not alone \
                 in its section). Keep state in values the program owns."
            }
        };
        report::warn(&format!(
            "{}: {} start{} from the initial value in each patch ({why}",
            hot.shown(),
            fresh.join(", "),
            if fresh.len() == 1 { "s" } else { "" }
        ));
        self.warned.extend(fresh);
    }

    fn answered(&mut self, connection: u64, message: ToCli) {
        let pid = self
            .connections
            .iter()
            .find(|c| c.id == connection)
            .map_or(0, |c| c.pid);
        match message {
            ToCli::Hello { .. } => {}
            ToCli::Applied {
                id,
                version,
                functions,
                states,
                micros,
            } => {
                let Some(patch) = self.in_flight.get_mut(&id) else {
                    return;
                };
                patch.waiting.retain(|c| *c != connection);
                patch.applied += 1;
                self.patched = true;
                let patch = &self.in_flight[&id];
                if patch.fixed && patch.applied == 1 {
                    // Its new statics are at their final addresses now (the first copy's
                    // addresses, relative to the library, are every copy's).
                    if let (Some(program), Some(bias)) = (self.program_data.as_mut(), patch.bias) {
                        if let Err(err) = program.add_patch_statics(&patch.file, bias) {
                            report::warn(&err);
                        }
                    }
                }
                let changed = if patch.changed.is_empty() {
                    "no function's code changed".to_owned()
                } else {
                    format!(
                        "code changed: {}",
                        patch
                            .changed
                            .iter()
                            .map(|name| format!("`{name}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                // Several processes patched (a library's hosts): which one this is.
                let process = if patch.sent_to > 1 {
                    format!(" in process {pid}")
                } else {
                    String::new()
                };
                report::ok(&format!(
                    "{}: patched {functions} function{}{} ({}){process} — version {version}; build {}, link {}, check {}, swap {}; {changed}",
                    patch.package,
                    if functions == 1 { "" } else { "s" },
                    if states == 0 { String::new() } else { format!(", migrated {states} state value{}", if states == 1 { "" } else { "s" }) },
                    patch.files,
                    report::ms(patch.build),
                    report::ms(patch.link),
                    report::ms(patch.check),
                    report::ms(Duration::from_micros(micros)),
                ));
                if patch.waiting.is_empty() {
                    self.finish(id);
                }
            }
            ToCli::RolledBack {
                version,
                from,
                function,
                message,
            } => {
                report::warn(&format!(
                    "`{function}` panicked in version {from} ({message}); rolled back to the code \
                     before that patch (now version {version}). Fix it and save."
                ));
            }
            ToCli::Refused { id, reason } => {
                let Some(patch) = self.in_flight.get_mut(&id) else {
                    return;
                };
                patch.waiting.retain(|c| *c != connection);
                if self.program.library {
                    // Settled once every process has answered: whether any runs it decides
                    // what the checks go on from.
                    patch.refused.push((connection, pid, reason));
                    if patch.waiting.is_empty() {
                        self.finish(id);
                    }
                } else {
                    let package = patch.package.clone();
                    self.finish(id);
                    report::warn(&format!(
                        "{package}: the program refused the patch: {reason}"
                    ));
                    self.restart("the change cannot be hot-swapped");
                }
            }
            ToCli::Carried {
                carried,
                fresh,
                error,
            } => carry::carried(carried, &fresh, error.as_deref()),
            // Answers the restart path's question itself (`carry::Carry::hand_over`).
            ToCli::StatesSaved { .. } => {}
        }
    }

    /// A patch every process has answered (or left): its files are no longer needed, and the
    /// processes that refused it are dealt with. If none applied it, nothing runs it: the checks
    /// go on from the code the processes run, and they all stay connected. If some did, those
    /// that refused no longer run what the next patch is checked against: they are patched no
    /// more (a host is not ours to restart).
    fn finish(&mut self, id: u64) {
        let Some(mut patch) = self.in_flight.remove(&id) else {
            return;
        };
        let _ = std::fs::remove_file(&patch.file);
        for copy in &patch.copies {
            let _ = std::fs::remove_file(copy);
        }
        let Some((_, _, reason)) = patch.refused.first() else {
            return;
        };
        let package = &patch.package;
        if patch.applied == 0 {
            if let Some((key, build)) = patch.replaced.take() {
                self.running.insert(key, build);
            }
            let who = if patch.sent_to > 1 {
                "every process"
            } else {
                "the host"
            };
            report::warn(&format!(
                "{package}: {who} refused the patch: {reason}. hotswap does not restart a host: \
                 `{}` keeps running the code it has. Undo the change to go on patching, or quit \
                 the host to run it (the next save builds the library and starts it again).",
                self.host_command()
            ));
            return;
        }
        for (connection, pid, reason) in &patch.refused {
            self.connections.retain(|c| c.id != *connection);
            report::warn(&format!(
                "{package}: process {pid} refused the patch: {reason}. It keeps running the code \
                 it had and gets no more patches: restart it (hotswap does not restart a host)."
            ));
        }
    }

    fn restart(&mut self, reason: &str) {
        if self.program.library && self.app.is_some() {
            // The host is not ours to restart: it may hold what cannot be rebuilt (an
            // interpreter session), and other processes may have the library loaded.
            return report::warn(&format!(
                "{reason}: this change needs the library loaded again, and hotswap does not \
                 restart a host. `{}` keeps running the code it has. Quit it to run the change: \
                 the next save builds the library and starts it again (or restart `cargo \
                 hotswap run --lib`).",
                self.host_command()
            ));
        }
        report::warn(&format!("restarting `{}`: {reason}", self.program.name));
        self.rebuild_and_start();
    }

    /// What runs the code, for messages: the program, or the host command of `--lib`.
    fn running_name(&self) -> String {
        if self.program.library {
            self.host_command()
        } else {
            self.program.name.clone()
        }
    }

    /// The host command of `--lib`, as the user wrote it.
    fn host_command(&self) -> String {
        self.options.args.join(" ")
    }

    /// Stops the program if it runs, builds, and starts it. Returns whether it started.
    fn rebuild_and_start(&mut self) -> bool {
        let started = Instant::now();
        // The sources as this build compiles them (read before it starts, so a save during the
        // build is a change the next patch is checked for).
        let sources: HashMap<String, Vec<syn::File>> = self
            .project
            .hot
            .iter()
            .filter_map(|c| Some((c.key(), crate::sources::read_crate(&c.root).ok()?)))
            .collect();
        // Build first: the old program keeps running until the new one is ready.
        let executable = host::build(
            &self.project,
            &self.program,
            &self.options.build,
            &self.token,
        );
        self.snapshot_manifests();
        match executable {
            Err(err) => {
                // The program (if any) keeps running the last good code.
                let still = if self.app.is_some() {
                    format!(
                        "; `{}` keeps running the last good code",
                        self.running_name()
                    )
                } else {
                    String::new()
                };
                report::error(&format!("{err}\nFix it and save to try again{still}."));
                false
            }
            Ok(executable) => {
                self.exports = None;
                self.program_data = None;
                self.patched = false;
                // The old program's states, saved at the last moment (they stay frozen there).
                let handover = self.carry.hand_over(
                    self.app.as_ref(),
                    &self.peers,
                    &self.dir,
                    self.generation + 1,
                );
                self.stop_app();
                self.queued.clear();
                self.in_flight.clear();
                self.generation += 1;
                // A library's host is the command given after `--`; it finds the library in
                // its environment.
                let (command, args, library) = match self.options.args.split_first() {
                    Some((host, args)) if self.program.library => {
                        (PathBuf::from(host), args, Some(executable.as_path()))
                    }
                    _ => (executable.clone(), &self.options.args[..], None),
                };
                let launch = app::Launch {
                    executable: &command,
                    args,
                    library,
                    rollback_on_panic: self.options.rollback_on_panic,
                    socket: &self.socket,
                    carried: handover.file(),
                };
                match app::start(launch, self.generation, self.events.clone()) {
                    Ok(app) => {
                        report::info(&format!(
                            "started `{}` (pid {}) after a {} build",
                            self.running_name(),
                            app.pid,
                            report::ms(started.elapsed())
                        ));
                        handover.report();
                        self.carry.started(&executable);
                        self.app = Some(app);
                        self.hello_due = true;
                        self.executable = Some(executable);
                        self.keep_running_builds(sources);
                        true
                    }
                    Err(err) => {
                        report::error(&err);
                        false
                    }
                }
            }
        }
    }

    fn snapshot_manifests(&mut self) {
        let mut files = vec![
            self.project.root.join("Cargo.lock"),
            self.project.root.join("Cargo.toml"),
        ];
        files.extend(self.project.members.iter().map(|m| m.manifest_path.clone()));
        self.manifests = files
            .into_iter()
            .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
            .collect();
    }

    fn stop_app(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop(Duration::from_secs(2));
        }
        self.connections.clear();
    }

    fn interrupted(&mut self) -> i32 {
        let code = match self.app.take() {
            Some(app) => {
                app.interrupt();
                match app.stop_after(Duration::from_secs(3)) {
                    Some(status) => app::describe(status).1,
                    None => 130,
                }
            }
            None => self.last_code.unwrap_or(130),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        self.running.clear();
        let _ = std::fs::remove_dir_all(self.builds_path());
        code
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_app();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.running.clear();
        let _ = std::fs::remove_dir_all(self.builds_path());
    }
}

/// `path` relative to the workspace root, for messages.
fn display_path(path: &std::path::Path, project: &Project) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The `-C opt-level` of a recorded rustc command (`"0"` when it gives none).
fn opt_level(capture: &crate::capture::Invocation) -> String {
    let mut level = "0".to_owned();
    let mut args = capture.args.iter();
    while let Some(arg) = args.next() {
        let value = if arg == "-C" {
            args.next().map(String::as_str)
        } else {
            arg.strip_prefix("-C")
        };
        if let Some(found) = value.and_then(|v| v.strip_prefix("opt-level=")) {
            level = found.to_owned();
        }
    }
    level
}
