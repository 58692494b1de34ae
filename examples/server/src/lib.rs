//! The hot part of the server: its handlers. Edit them while the server runs and clients stay
//! connected; the next request runs the new code.
//!
//! The handlers are `#[hot] async fn`s that axum routes directly, extractors and `State`
//! included. Each request calls its handler anew, so each request after a patch runs the new
//! body; a response already being produced keeps the code it started with. That is why the
//! slow `/stream` response asks the (also hot) `chunk` for the text of each chunk: the next
//! chunk of a stream already open comes from the new code.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};

/// What `main` keeps for the handlers (passed to them as axum `State`).
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
}

/// The requests answered so far, counted by the hot code itself: a private static, which
/// every patch shares with the running server (under `cargo hotswap run`), so it keeps
/// counting across edits.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

#[derive(serde::Deserialize)]
pub struct StreamParams {
    /// How many chunks to send (default 30).
    pub chunks: Option<u32>,
    /// The pause before each chunk after the first (default 100 ms).
    pub interval_ms: Option<u64>,
}

/// `GET /`: counts the requests the server has answered so far (in `ANSWERED`, and in
/// `main`'s `Counters`).
#[hotswap::hot]
pub async fn index(State(counters): State<Arc<Counters>>) -> String {
    let request = ANSWERED.fetch_add(1, Ordering::Relaxed) + 1;
    let in_main = counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    format!("Hello from the compiled-in handler! (request {request}, main counted {in_main})\n")
}

/// `GET /stream`: a slow response, one chunk every `interval_ms`, each one written by the hot
/// code running at the time it is sent.
#[hotswap::hot]
pub async fn stream(Query(params): Query<StreamParams>) -> Body {
    let total = params.chunks.unwrap_or(30).min(100_000);
    let interval = Duration::from_millis(params.interval_ms.unwrap_or(100).min(10_000));
    let chunks = futures_util::stream::unfold(0, move |sent| async move {
        if sent == total {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(interval).await;
        }
        Some((Ok::<_, Infallible>(chunk(sent + 1, total)), sent + 1))
    });
    Body::from_stream(chunks)
}

/// Chunk `index` (from 1) of the `total` that `GET /stream` sends.
#[hotswap::hot]
pub fn chunk(index: u32, total: u32) -> String {
    format!("chunk {index}/{total} from the compiled-in handler\n")
}
