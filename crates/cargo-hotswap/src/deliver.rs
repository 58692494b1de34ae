//! Deliver: the CLI's end of the control channel. The program connects to a Unix socket in a
//! private directory; only processes of the same user are accepted.
//!
//! Messages reach the main loop as [`Event`]s; the restart path also asks a program a question
//! and waits for its answer itself ([`Peers::ask`]), outside the main loop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotswap::protocol::{ToApp, ToCli, MAX_MESSAGE};

use crate::run::Event;

/// A connected program.
pub struct Connection {
    pub id: u64,
    stream: UnixStream,
    /// The process id it said hello with.
    pub pid: u32,
    /// The address range the program reserved for patches at a fixed address (its `Hello`).
    pub reserved: Option<hotswap::protocol::Reservation>,
    /// Where the next patch at a fixed address goes in that range.
    pub next_fixed: Option<u64>,
    /// The executable or library the process runs the runtime from (its `Hello`).
    pub image: Option<hotswap::protocol::Image>,
}

impl Connection {
    pub fn send(&mut self, message: &ToApp) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stream.write_all(&line)
    }
}

/// The programs that have said hello and are still connected, by the pid they said it with.
#[derive(Clone, Default)]
pub struct Peers(Arc<Mutex<HashMap<u32, Peer>>>);

struct Peer {
    connection: u64,
    stream: UnixStream,
    /// The question asked ([`Peers::ask`]), if any.
    waiting: Option<Waiting>,
}

/// Which message answers a question, and where it goes.
struct Waiting {
    is_answer: fn(&ToCli) -> bool,
    answer: Sender<ToCli>,
}

/// Why [`Peers::ask`] got no answer.
pub enum AskError {
    /// No program with that pid has said hello (or it has gone).
    NotConnected,
    /// The question could not be sent.
    Write(std::io::Error),
    /// The program closed the channel (it exited, or crashed) before it answered.
    Closed,
    /// No answer within the timeout.
    TimedOut,
}

impl Peers {
    /// Sends `question` to the program with process id `pid` and waits up to `timeout` for its
    /// answer (the next message for which `is_answer` holds; the others go to the main loop as
    /// usual). Ends early when the program closes the channel.
    pub fn ask(
        &self,
        pid: u32,
        question: &ToApp,
        is_answer: fn(&ToCli) -> bool,
        timeout: Duration,
    ) -> Result<ToCli, AskError> {
        let (sender, answers) = mpsc::channel();
        let mut stream = {
            let mut peers = self.lock();
            let peer = peers.get_mut(&pid).ok_or(AskError::NotConnected)?;
            peer.waiting = Some(Waiting {
                is_answer,
                answer: sender,
            });
            peer.stream.try_clone().map_err(AskError::Write)?
        };
        let mut line = serde_json::to_vec(question).map_err(|e| AskError::Write(e.into()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(AskError::Write)?;
        match answers.recv_timeout(timeout) {
            Ok(answer) => Ok(answer),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(peer) = self.lock().get_mut(&pid) {
                    peer.waiting = None;
                }
                Err(AskError::TimedOut)
            }
            Err(RecvTimeoutError::Disconnected) => Err(AskError::Closed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Peer>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Listens on `<dir>/control.sock` and reports connections and messages as [`Event`]s (and
/// keeps `peers` up to date).
pub fn listen(dir: &Path, events: Sender<Event>, peers: Peers) -> Result<PathBuf, String> {
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
                let peers = peers.clone();
                let id = next_id;
                let _ = std::thread::Builder::new()
                    .name("hotswap-connection".into())
                    .spawn(move || read(id, stream, events, peers));
            }
        })
        .map_err(|err| err.to_string())?;
    Ok(socket)
}

fn read(id: u64, stream: UnixStream, events: Sender<Event>, peers: Peers) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = Some(writer);
    let mut said_hello = None;
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
        if let ToCli::Hello {
            pid,
            reserved,
            image,
            ..
        } = &message
        {
            if let Some(stream) = writer.take() {
                if let Ok(clone) = stream.try_clone() {
                    said_hello = Some(*pid);
                    peers.lock().insert(
                        *pid,
                        Peer {
                            connection: id,
                            stream: clone,
                            waiting: None,
                        },
                    );
                }
                let connection = Connection {
                    id,
                    stream,
                    pid: *pid,
                    reserved: *reserved,
                    next_fixed: reserved.map(|r| r.start),
                    image: image.clone(),
                };
                if events.send(Event::Connected(connection)).is_err() {
                    break;
                }
            }
            continue;
        }
        // The answer to a question the restart path waits for goes there.
        let waiting = said_hello.and_then(|pid| {
            let mut peers = peers.lock();
            let waiting = &mut peers.get_mut(&pid)?.waiting;
            match waiting {
                Some(w) if (w.is_answer)(&message) => waiting.take().map(|w| w.answer),
                _ => None,
            }
        });
        let message = match waiting {
            Some(waiting) => match waiting.send(message) {
                Ok(()) => continue,
                Err(mpsc::SendError(message)) => message,
            },
            None => message,
        };
        if events
            .send(Event::FromApp {
                connection: id,
                message,
            })
            .is_err()
        {
            break;
        }
    }
    if let Some(pid) = said_hello {
        let mut peers = peers.lock();
        if peers.get(&pid).is_some_and(|p| p.connection == id) {
            peers.remove(&pid);
        }
    }
    let _ = events.send(Event::Disconnected(id));
}
