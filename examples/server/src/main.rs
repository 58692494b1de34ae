//! An HTTP server on 127.0.0.1 whose handlers are `#[hot] async fn`s (`src/lib.rs`), routed
//! directly.
//!
//! ```text
//! server [PORT]          (or PORT=...; default 3000; 0 picks a free port)
//! curl http://127.0.0.1:3000/
//! curl -N 'http://127.0.0.1:3000/stream?chunks=50&interval_ms=100'
//! ```
//!
//! It prints `listening on http://127.0.0.1:PORT` once it accepts connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use server::Counters;

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
        .route("/", get(server::index))
        .route("/stream", get(server::stream))
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
