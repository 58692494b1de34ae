//! Deliver (thin patches): the control channel to `cargo hotswap run`.

use std::path::PathBuf;

use super::Runtime;

pub(crate) fn spawn(runtime: &'static Runtime, socket: PathBuf) {
    runtime.warn(&format!(
        "control channel {} is not supported by this build",
        socket.display()
    ));
}
