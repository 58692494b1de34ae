//! Deliver: the CLI's end of the control channel. The program connects to a Unix socket in a
//! private directory; only processes of the same user are accepted.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use hotswap::protocol::{ToApp, ToCli, MAX_MESSAGE};

use crate::run::Event;

/// A connected program.
pub struct Connection {
    pub id: u64,
    stream: UnixStream,
}

impl Connection {
    pub fn send(&mut self, message: &ToApp) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stream.write_all(&line)
    }
}

/// Listens on `<dir>/control.sock` and reports connections and messages as [`Event`]s.
pub fn listen(dir: &Path, events: Sender<Event>) -> Result<PathBuf, String> {
    let socket = dir.join("control.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .map_err(|err| format!("cannot listen on {}: {err}", socket.display()))?;
    std::thread::Builder::new()
        .name("hotswap-accept".into())
        .spawn(move || {
            let mut next_id = 0;
            for stream in listener.incoming().flatten() {
                if hotswap::platform::check_peer_is_same_user(&stream).is_err() {
                    continue;
                }
                next_id += 1;
                let events = events.clone();
                let id = next_id;
                let _ = std::thread::Builder::new()
                    .name("hotswap-connection".into())
                    .spawn(move || read(id, stream, events));
            }
        })
        .map_err(|err| err.to_string())?;
    Ok(socket)
}

fn read(id: u64, stream: UnixStream, events: Sender<Event>) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = Some(writer);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_MESSAGE {
            break;
        }
        let Ok(message) = serde_json::from_slice::<ToCli>(&line) else {
            continue;
        };
        if let ToCli::Hello { .. } = &message {
            if let Some(stream) = writer.take() {
                let connection = Connection { id, stream };
                if events.send(Event::Connected(connection)).is_err() {
                    return;
                }
            }
            continue;
        }
        if events
            .send(Event::FromApp {
                connection: id,
                message,
            })
            .is_err()
        {
            return;
        }
    }
    let _ = events.send(Event::Disconnected(id));
}
