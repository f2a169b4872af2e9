//! The board's HTTP server: pages for people, a JSON API for scripts, and `/events`, the live
//! stream of changes as server-sent events (`event: alert` or `event: patient`, the JSON as
//! `data:`, the change's number as `id:`). A client that reconnects with `Last-Event-ID` (a
//! browser's `EventSource` does) gets every change it missed, in order; one that was away for
//! longer than the log keeps gets `event: reset` and reloads.
//!
//! It runs on its own thread, one current-thread tokio runtime: a slow or stuck client holds
//! up nothing but itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};

use super::state::{PatientPage, PatientRow};
use super::{AckRefused, Board, Published, pages};

/// Longest name and note an acknowledgement takes.
const MAX_BY: usize = 80;
const MAX_NOTE: usize = 500;

/// A server that runs until the process ends.
#[derive(Debug)]
pub struct Running {
    /// Where it listens (the port chosen when asked for port 0).
    pub addr: SocketAddr,
}

/// Binds `addr` now (so that a port in use is an error at once) and serves `board` on a thread
/// of its own.
pub fn serve(addr: SocketAddr, board: Arc<Board>) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("vigil-board".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, router(board)).await {
                            eprintln!("vigil: the board stopped serving: {e}");
                        }
                    }
                    Err(e) => eprintln!("vigil: the board cannot listen: {e}"),
                }
            });
        })?;
    Ok(Running { addr })
}

/// The board's routes.
pub fn router(board: Arc<Board>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/patients/{id}", get(patient_page))
        .route("/fragments/rows", get(rows_fragment))
        .route("/fragments/wards", get(wards_fragment))
        .route("/fragments/patients/{id}", get(patient_fragment))
        .route("/api/patients", get(api_patients))
        .route("/api/patients/{id}", get(api_patient))
        .route("/api/wards", get(api_wards))
        .route("/api/alerts/{id}/ack", post(api_ack))
        .route("/events", get(events))
        .route("/board.js", get(script))
        .route("/board.css", get(style))
        .with_state(board)
}

type Shared = State<Arc<Board>>;

async fn overview(State(board): Shared) -> Html<String> {
    let closed = board.closed();
    Html(board.read(|s| pages::overview(s, closed)))
}

async fn patient_page(State(board): Shared, Path(id): Path<String>) -> Response {
    patient_html(&board, &id, pages::patient)
}

async fn patient_fragment(State(board): Shared, Path(id): Path<String>) -> Response {
    patient_html(&board, &id, pages::patient_main)
}

/// A page of patient `id` rendered by `render`, or a 404 that names them.
fn patient_html(
    board: &Board,
    id: &str,
    render: fn(&super::BoardState, &str) -> Option<String>,
) -> Response {
    match board.read(|s| render(s, id)) {
        Some(html) => Html(html).into_response(),
        None => not_found(&format!("no patient {id} on the board")),
    }
}

#[derive(Deserialize)]
struct Ids {
    #[serde(default)]
    ids: String,
}

async fn rows_fragment(State(board): Shared, Query(q): Query<Ids>) -> Html<String> {
    let ids: Vec<&str> = q.ids.split(',').filter(|s| !s.is_empty()).collect();
    Html(board.read(|s| pages::rows(s, &ids)))
}

async fn wards_fragment(State(board): Shared) -> Html<String> {
    Html(board.read(pages::wards))
}

async fn api_patients(State(board): Shared) -> Response {
    json(&board.read(|s| s.patients()))
}

/// A patient's row with their page: `GET /api/patients/{id}`.
#[derive(Serialize)]
struct PatientDetail<'a> {
    #[serde(flatten)]
    row: &'a PatientRow,
    #[serde(flatten)]
    page: &'a PatientPage,
}

async fn api_patient(State(board): Shared, Path(id): Path<String>) -> Response {
    let body = board.read(|s| {
        s.patient(&id)
            .map(|(row, page)| serde_json::to_vec(&PatientDetail { row, page }))
    });
    match body {
        Some(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Some(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        None => not_found(&format!("no patient {id} on the board")),
    }
}

async fn api_wards(State(board): Shared) -> Response {
    json(&board.read(|s| s.wards()))
}

/// `POST /api/alerts/{id}/ack`'s body.
#[derive(Deserialize)]
struct AckBody {
    by: String,
    #[serde(default)]
    note: String,
}

async fn api_ack(
    State(board): Shared,
    Path(id): Path<String>,
    body: Result<axum::Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let axum::Json(body) = match body {
        Ok(body) => body,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected JSON {{\"by\": \"your name\", \"note\": \"...\"}}: {e}"),
            );
        }
    };
    let by = body.by.trim().to_owned();
    let note = body.note.trim().to_owned();
    if by.is_empty() || by.chars().count() > MAX_BY {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("`by` must name who acknowledges, 1 to {MAX_BY} characters"),
        );
    }
    if note.chars().count() > MAX_NOTE {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("`note` is longer than {MAX_NOTE} characters"),
        );
    }
    match board.acknowledge(&id, by, note) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "queued": id,
                "takes_effect": "at the watermark, within a tick; the board shows it then",
            })),
        )
            .into_response(),
        Err(AckRefused::Unknown) => not_found(&format!("no alert {id} to acknowledge")),
        Err(AckRefused::Closed) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the run is over: nothing would apply the acknowledgement",
        ),
        Err(AckRefused::Unrecorded(why)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("not acknowledged: the audit trail could not record it: {why}"),
        ),
    }
}

#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// `GET /events`: every change after `Last-Event-ID` (or `?since=`, or from now).
async fn events(
    State(board): Shared,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.since)
        .unwrap_or_else(|| board.read(|s| s.last_id()));
    let rx = board.subscribe();
    let stream = futures_util::stream::unfold(
        (board, rx, last, std::collections::VecDeque::new()),
        |(board, mut rx, mut last, mut pending)| async move {
            loop {
                if let Some(published) = pending.pop_front() {
                    return Some((Ok(sse(&published)), (board, rx, last, pending)));
                }
                match board.since(last) {
                    None => {
                        last = board.read(|s| s.last_id());
                        let reset = Event::default().event("reset").data("reload");
                        return Some((Ok(reset), (board, rx, last, pending)));
                    }
                    Some(events) if !events.is_empty() => {
                        last = events.last().map_or(last, |p| p.id);
                        pending.extend(events);
                        continue;
                    }
                    Some(_) => {}
                }
                rx.changed().await.ok()?;
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One change as an SSE event; the comment says when the board applied it (ms since the
/// epoch), for a client to measure its latency.
fn sse(p: &Published) -> Event {
    Event::default()
        .event(p.name)
        .id(p.id.to_string())
        .comment(format!("applied {}", p.applied_ms))
        .data(&*p.json)
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, message)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
