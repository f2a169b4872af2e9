//! The `/metrics` endpoint: axum on one current-thread runtime on its own thread (as the board
//! is served), so that a scrape never waits on a worker, nor a worker on a scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;

/// OpenMetrics 1.0, which Prometheus asks for.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Prometheus's classic text format, for a scraper that does not ask for OpenMetrics.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A serving endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Running {
    /// Where it listens (the port chosen, when asked for port 0).
    pub addr: SocketAddr,
}

/// Serves `metrics` at `http://addr/metrics` until the process ends.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/", get(|| async { "Vigil's metrics are at /metrics\n" }))
        .with_state(metrics);
    std::thread::Builder::new()
        .name("vigil-metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => axum::serve(listener, app).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("the metrics endpoint stopped serving: {e}");
                }
            });
        })?;
    Ok(Running { addr })
}

/// The metrics, in OpenMetrics when the scraper accepts it, else in the classic format.
async fn scrape(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = match openmetrics {
        true => (OPENMETRICS, metrics.encode()),
        false => (CLASSIC, metrics.encode_classic()),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
}
