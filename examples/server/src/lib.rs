//! The hot part of the server: the text of every response. Edit it while the server runs and
//! clients stay connected; the next response (or the next chunk of a response already
//! streaming) comes from the new code.
//!
//! `async fn`s cannot be `#[hot]`: the handlers in `main.rs` are async and call these plain
//! functions.

/// The body of `GET /`; `request` counts the requests the server has answered so far.
#[hotswap::hot]
pub fn index(request: u64) -> String {
    format!("Hello from the compiled-in handler! (request {request})\n")
}

/// Chunk `index` (from 1) of the `total` that `GET /stream` sends.
#[hotswap::hot]
pub fn chunk(index: u32, total: u32) -> String {
    format!("chunk {index}/{total} from the compiled-in handler\n")
}
