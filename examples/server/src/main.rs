//! An HTTP server on 127.0.0.1 whose response texts come from `#[hot]` functions (`src/lib.rs`).
//!
//! ```text
//! server [PORT]          (or PORT=...; default 3000; 0 picks a free port)
//! curl http://127.0.0.1:3000/
//! curl -N 'http://127.0.0.1:3000/stream?chunks=50&interval_ms=100'
//! ```
//!
//! It prints `listening on http://127.0.0.1:PORT` once it accepts connections.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;

/// What the server keeps between requests: owned here, not by the hot code.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
}

#[derive(serde::Deserialize)]
struct StreamParams {
    /// How many chunks to send (default 30).
    chunks: Option<u32>,
    /// The pause before each chunk after the first (default 100 ms).
    interval_ms: Option<u64>,
}

async fn index(State(counters): State<Arc<Counters>>) -> String {
    let request = counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    server::index(request)
}

/// A slow response: one chunk every `interval_ms`, each one written by the hot code running at
/// the time it is sent.
async fn stream(Query(params): Query<StreamParams>) -> Body {
    let total = params.chunks.unwrap_or(30).min(100_000);
    let interval = Duration::from_millis(params.interval_ms.unwrap_or(100).min(10_000));
    let chunks = futures_util::stream::unfold(0, move |sent| async move {
        if sent == total {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(interval).await;
        }
        Some((
            Ok::<_, Infallible>(server::chunk(sent + 1, total)),
            sent + 1,
        ))
    });
    Body::from_stream(chunks)
}

#[tokio::main]
async fn main() {
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|port| {
            port.parse::<u16>().unwrap_or_else(|_| {
                eprintln!("server: `{port}` is not a port number");
                std::process::exit(2);
            })
        })
        .unwrap_or(3000);
    let app = Router::new()
        .route("/", get(index))
        .route("/stream", get(stream))
        .with_state(Arc::new(Counters::default()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .unwrap_or_else(|err| {
            eprintln!("server: cannot listen on 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        });
    let address = listener
        .local_addr()
        .expect("a bound socket has an address");
    println!("listening on http://{address}");
    axum::serve(listener, app).await.expect("the server failed");
}
