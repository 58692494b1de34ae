//! Deliver (thin patches): the control channel to `cargo hotswap run`.
//!
//! The program connects to the CLI's socket, says hello, then loads each patch it is sent and
//! answers with the outcome (and, before a restart, saves its states when asked: `carry`). Anything that is not a well-formed message from the same user is
//! ignored; a closed channel leaves the program running the code it has.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::{PatchKind, Runtime};
use crate::platform;
use crate::protocol::{Image, ToApp, ToCli, MAX_MESSAGE};

pub(crate) fn spawn(runtime: &'static Runtime, socket: PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("hotswap-control".into())
        .spawn(move || {
            if let Err(err) = serve(runtime, &socket) {
                runtime.warn(&format!("control channel {}: {err}", socket.display()));
            }
        });
    if let Err(err) = spawned {
        runtime.warn(&format!("cannot start the control channel: {err}"));
    }
}

fn serve(runtime: &'static Runtime, socket: &Path) -> Result<(), String> {
    if let Some(dir) = socket.parent() {
        platform::check_private(dir)?;
    }
    let mut stream = UnixStream::connect(socket).map_err(|err| format!("cannot connect: {err}"))?;
    platform::check_peer_is_same_user(&stream)?;
    // Before the hello, which says where it is.
    let reserved = super::reserve::reserve(runtime);
    send(
        &mut stream,
        &ToCli::Hello {
            pid: std::process::id(),
            version: super::events().version(),
            reserved,
            image: platform::own_image().map(|image| Image {
                path: image.path.display().to_string(),
                inode: platform::mapped_inode(image.lowest),
                library: image.library,
            }),
        },
    )?;
    runtime.info(&format!("connected to {}", socket.display()));
    let mut reader = BufReader::new(stream.try_clone().map_err(|err| err.to_string())?);
    let writer = std::sync::Arc::new(std::sync::Mutex::new(stream));
    forward_roll_backs(std::sync::Arc::clone(&writer));
    // What this process took of the states carried over a restart (now, or as it takes them).
    super::carry::connected(std::sync::Arc::clone(&writer));
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|err| format!("read: {err}"))?;
        if read == 0 {
            runtime.info("control channel closed; keeping the current code");
            return Ok(());
        }
        if line.len() > MAX_MESSAGE {
            runtime.warn("ignored an oversized control message");
            // Skip the rest of that line.
            let mut rest = Vec::new();
            let _ = reader.read_until(b'\n', &mut rest);
            continue;
        }
        let message: ToApp = match serde_json::from_slice(&line) {
            Ok(message) => message,
            Err(err) => {
                runtime.warn(&format!("ignored a malformed control message: {err}"));
                continue;
            }
        };
        let answer = match message {
            ToApp::Patch { id, path, fixed } => {
                match runtime.apply(Path::new(&path), PatchKind::Thin, fixed) {
                    Ok(applied) => ToCli::Applied {
                        id,
                        version: applied.version,
                        functions: applied.functions,
                        states: applied.states,
                        micros: applied.took.as_micros() as u64,
                    },
                    Err(reason) => ToCli::Refused { id, reason },
                }
            }
            ToApp::SaveStates { path } => super::carry::save(runtime, Path::new(&path)),
        };
        let mut stream = writer.lock().unwrap_or_else(|e| e.into_inner());
        send(&mut stream, &answer)?;
    }
}

/// Tells the CLI about every roll-back, from a thread of its own.
fn forward_roll_backs(writer: std::sync::Arc<std::sync::Mutex<UnixStream>>) {
    let events = super::events().subscribe();
    let _ = std::thread::Builder::new()
        .name("hotswap-events".into())
        .spawn(move || loop {
            let Some(event) = events.next_timeout(std::time::Duration::from_secs(3600)) else {
                continue;
            };
            if let crate::Event::RolledBack {
                version,
                from,
                function,
                message,
            } = event
            {
                let message = ToCli::RolledBack {
                    version,
                    from,
                    function,
                    message,
                };
                let mut stream = writer.lock().unwrap_or_else(|e| e.into_inner());
                if send(&mut stream, &message).is_err() {
                    return;
                }
            }
        });
}

pub(crate) fn send(stream: &mut UnixStream, message: &ToCli) -> Result<(), String> {
    let mut line = serde_json::to_vec(message).map_err(|err| err.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|err| format!("write: {err}"))
}
