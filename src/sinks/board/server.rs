//! The board's HTTP server: pages for people, a JSON API for scripts, and `/events`, the live
//! stream of changes as server-sent events (`event: alert` or `event: patient`, the JSON as
//! `data:`, the change's number as `id:`). A client that reconnects with `Last-Event-ID` (a
//! browser's `EventSource` does) gets every change it missed, in order; one that was away for
//! longer than the log keeps gets `event: reset` and reloads.
//!
//! With a users file ([`super::access`]) every route but the sign-in, the script and the style
//! needs a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over HTTPS), every form and
//! state-changing call carries the session's CSRF token, and every answer is filtered to the
//! viewer's scope; the views and acknowledgements of signed-in users go to the audit trail.
//!
//! It runs on its own thread, one current-thread tokio runtime: a slow or stuck client holds
//! up nothing but itself.

// A handler's refusal is a response, as axum's own handlers return it; boxing it would only
// move the allocation.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};

use super::access::{Access, Refused, Scope, SignInRefused, Viewer, sessions};
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

/// The board, and who may see it.
#[derive(Debug)]
pub struct Server {
    pub board: Arc<Board>,
    /// The sign-in, when the board has a users file.
    pub access: Option<Access>,
    /// Password hashes at once (each takes tens of milliseconds and 19 MiB): a flood of
    /// sign-ins cannot take the machine.
    hashing: tokio::sync::Semaphore,
    tls: bool,
}

impl Server {
    pub fn new(board: Arc<Board>, access: Option<Access>, tls: bool) -> Server {
        Server {
            board,
            access,
            hashing: tokio::sync::Semaphore::new(2),
            tls,
        }
    }
}

/// Binds `addr` now (so that a port in use is an error at once) and serves on a thread of its
/// own: HTTPS with `tls`, plain HTTP without.
pub fn serve(
    addr: SocketAddr,
    server: Server,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let app = router(Arc::new(server));
    std::thread::Builder::new()
        .name("vigil-board".into())
        .spawn(move || {
            runtime.block_on(async move {
                let served = match (tokio::net::TcpListener::from_std(listener), tls) {
                    (Ok(listener), None) => axum::serve(listener, app).await,
                    (Ok(listener), Some(tls)) => {
                        match super::tls::TlsListener::new(listener, tls) {
                            Ok(listener) => axum::serve(listener, app).await,
                            Err(e) => Err(e),
                        }
                    }
                    (Err(e), _) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("the board stopped serving: {e}");
                }
            });
        })?;
    Ok(Running { addr })
}

/// The board's routes.
pub fn router(server: Arc<Server>) -> Router {
    let tls = server.tls;
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
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
        .layer(axum::middleware::map_response(
            move |r: Response| async move { secure_headers(r, tls) },
        ))
        .with_state(server)
}

type Shared = State<Arc<Server>>;
type Answer = Result<Response, Response>;

const SESSION_COOKIE: &str = "vigil_session";
/// How often a quiet live stream looks at its session again.
const SESSION_CHECK: Duration = Duration::from_secs(2);
const LOGIN_COOKIE: &str = "vigil_login";

/// What every answer carries: no framing, no sniffing, no caching of patients' data, scripts
/// and styles from the board only, and with TLS, HTTPS from now on.
fn secure_headers(mut response: Response, tls: bool) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    if tls {
        set(headers, "strict-transport-security", "max-age=31536000");
    }
    response
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

impl FromRequestParts<Arc<Server>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        server: &Arc<Server>,
    ) -> Result<Viewer, Response> {
        let Some(access) = &server.access else {
            return Ok(Viewer::Anyone);
        };
        match cookie(&parts.headers, SESSION_COOKIE).and_then(|t| access.session(t)) {
            Some((user, session)) => Ok(Viewer::User {
                user,
                csrf: session.csrf,
            }),
            None => Err(sign_in_first(parts)),
        }
    }
}

/// The answer to a request without a session: a person's page goes to the sign-in and back;
/// a script's call, a fragment or the live stream is refused.
fn sign_in_first(parts: &Parts) -> Response {
    let path = parts.uri.path();
    let page = parts.method == axum::http::Method::GET
        && !["/api/", "/fragments/", "/events"]
            .iter()
            .any(|p| path.starts_with(p));
    if !page {
        return error(
            StatusCode::UNAUTHORIZED,
            "sign in first: GET /login for the form's token and cookie, then POST /login \
             (name, password, csrf) and send the session cookie it sets",
        );
    }
    let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/login?next={}", percent(next)))],
    )
        .into_response()
}

/// A viewer and what they may see: a researcher is refused here, for every page.
struct Seer {
    viewer: Viewer,
    scope: Scope,
}

impl FromRequestParts<Arc<Server>> for Seer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, server: &Arc<Server>) -> Result<Seer, Response> {
        let viewer = Viewer::from_request_parts(parts, server).await?;
        match viewer.scope() {
            Ok(scope) => Ok(Seer { viewer, scope }),
            Err(refused) => Err(forbidden(refused)),
        }
    }
}

impl Seer {
    /// Refuses a viewer who sees no patient.
    fn patients(&self) -> Result<(), Response> {
        self.scope.patients().map_err(forbidden)
    }

    /// Whether patient `id` is on the board for them.
    fn sees_patient(&self, board: &Board, id: &str) -> bool {
        board.read(|s| {
            s.patient(id)
                .is_some_and(|(row, _)| self.scope.patient(row.ward.as_deref()))
        })
    }

    fn no_patient(&self, id: &str) -> Response {
        match self.scope {
            Scope::Everything => not_found(&format!("no patient {id} on the board")),
            _ => not_found(&format!("no patient {id} on your wards")),
        }
    }

    /// Renders with the page's view of them.
    fn render<T>(&self, f: impl FnOnce(pages::View<'_>) -> T) -> T {
        match &self.viewer {
            Viewer::Anyone => f(pages::View {
                scope: &self.scope,
                signed: None,
            }),
            Viewer::User { user, csrf } => {
                let describe = user.describe();
                f(pages::View {
                    scope: &self.scope,
                    signed: Some(pages::Signed {
                        name: &user.name,
                        describe: &describe,
                        csrf,
                    }),
                })
            }
        }
    }

    /// Records what a signed-in user viewed; a view the trail cannot record is not shown.
    fn audit(&self, server: &Server, what: &str) -> Result<(), Response> {
        let Some(name) = self.viewer.name() else {
            return Ok(());
        };
        server.board.record(name, "viewed", what).map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("not shown: the audit trail could not record the view: {e}"),
            )
        })
    }
}

fn forbidden(refused: Refused) -> Response {
    error(StatusCode::FORBIDDEN, refused.message())
}

async fn overview(State(server): Shared, seer: Seer) -> Answer {
    seer.audit(&server, "the ward board")?;
    let closed = server.board.closed();
    let html = seer.render(|view| server.board.read(|s| pages::overview(s, closed, view)));
    Ok(Html(html).into_response())
}

async fn patient_page(State(server): Shared, seer: Seer, Path(id): Path<String>) -> Answer {
    seer.patients()?;
    if !seer.sees_patient(&server.board, &id) {
        return Err(seer.no_patient(&id));
    }
    seer.audit(&server, &format!("patient {id}"))?;
    patient_html(&server.board, &seer, &id, pages::patient)
}

async fn patient_fragment(State(server): Shared, seer: Seer, Path(id): Path<String>) -> Answer {
    seer.patients()?;
    patient_html(&server.board, &seer, &id, pages::patient_main)
}

/// A page of patient `id` rendered by `render`, or a 404 that names them.
fn patient_html(
    board: &Board,
    seer: &Seer,
    id: &str,
    render: fn(&super::BoardState, &str, pages::View<'_>) -> Option<String>,
) -> Answer {
    match seer.render(|view| board.read(|s| render(s, id, view))) {
        Some(html) => Ok(Html(html).into_response()),
        None => Err(seer.no_patient(id)),
    }
}

#[derive(Deserialize)]
struct Ids {
    #[serde(default)]
    ids: String,
}

async fn rows_fragment(State(server): Shared, seer: Seer, Query(q): Query<Ids>) -> Answer {
    seer.patients()?;
    let ids: Vec<&str> = q.ids.split(',').filter(|s| !s.is_empty()).collect();
    let html = seer.render(|view| server.board.read(|s| pages::rows(s, &ids, view)));
    Ok(Html(html).into_response())
}

async fn wards_fragment(State(server): Shared, seer: Seer) -> Html<String> {
    Html(seer.render(|view| server.board.read(|s| pages::wards(s, view))))
}

async fn api_patients(State(server): Shared, seer: Seer) -> Answer {
    seer.patients()?;
    let rows = server.board.read(|s| {
        let mut rows = s.patients();
        rows.retain(|r| seer.scope.patient(r.ward.as_deref()));
        rows
    });
    seer.audit(&server, &format!("{} patients (API)", rows.len()))?;
    Ok(json(&rows))
}

/// A patient's row with their page: `GET /api/patients/{id}`.
#[derive(Serialize)]
struct PatientDetail<'a> {
    #[serde(flatten)]
    row: &'a PatientRow,
    #[serde(flatten)]
    page: &'a PatientPage,
}

async fn api_patient(State(server): Shared, seer: Seer, Path(id): Path<String>) -> Answer {
    seer.patients()?;
    if !seer.sees_patient(&server.board, &id) {
        return Err(seer.no_patient(&id));
    }
    seer.audit(&server, &format!("patient {id} (API)"))?;
    let body = server.board.read(|s| {
        s.patient(&id)
            .map(|(row, page)| serde_json::to_vec(&PatientDetail { row, page }))
    });
    match body {
        Some(Ok(body)) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Some(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
        None => Err(seer.no_patient(&id)),
    }
}

async fn api_wards(State(server): Shared, seer: Seer) -> Response {
    let mut wards = server.board.read(|s| s.wards());
    wards.retain(|w| seer.scope.ward(&w.ward));
    json(&wards)
}

/// `POST /api/alerts/{id}/ack`'s body; a signed-in user acknowledges in their own name.
#[derive(Deserialize)]
struct AckBody {
    #[serde(default)]
    by: String,
    #[serde(default)]
    note: String,
}

async fn api_ack(
    State(server): Shared,
    seer: Seer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<axum::Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Answer {
    if let Viewer::User { csrf, .. } = &seer.viewer {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !sent.is_some_and(|t| sessions::same(t, csrf)) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token: send the token the page's form carries",
            ));
        }
    }
    seer.patients()?;
    let axum::Json(body) = body.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("expected JSON {{\"by\": \"your name\", \"note\": \"...\"}}: {e}"),
        )
    })?;
    let by = match seer.viewer.name() {
        Some(name) => name.to_owned(),
        None => body.by.trim().to_owned(),
    };
    let note = body.note.trim().to_owned();
    if by.is_empty() || by.chars().count() > MAX_BY {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("`by` must name who acknowledges, 1 to {MAX_BY} characters"),
        ));
    }
    if note.chars().count() > MAX_NOTE {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("`note` is longer than {MAX_NOTE} characters"),
        ));
    }
    let theirs = server.board.read(|s| {
        s.alert(&id)
            .is_some_and(|a| seer.scope.patient(s.ward_of(&a.patient)))
    });
    if !theirs {
        return Err(not_found(&format!("no alert {id} to acknowledge")));
    }
    match server.board.acknowledge(&id, by, note) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "queued": id,
                "takes_effect": "at the watermark, within a tick; the board shows it then",
            })),
        )
            .into_response()),
        Err(AckRefused::Unknown) => Err(not_found(&format!("no alert {id} to acknowledge"))),
        Err(AckRefused::Closed) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the run is over: nothing would apply the acknowledgement",
        )),
        Err(AckRefused::Unrecorded(why)) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("not acknowledged: the audit trail could not record it: {why}"),
        )),
    }
}

#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// `GET /events`: every change after `Last-Event-ID` (or `?since=`, or from now) that the
/// viewer may see.
async fn events(
    State(server): Shared,
    seer: Seer,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let board = Arc::clone(&server.board);
    let scope = seer.scope;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.since)
        .unwrap_or_else(|| board.read(|s| s.last_id()));
    // A stream is one long request: it ends when its session does (signed out, removed, over).
    let token = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    let watch = Arc::clone(&server);
    let alive = Arc::new(move || match (&watch.access, &token) {
        (None, _) => true,
        (Some(access), Some(token)) => access.session(token).is_some(),
        (Some(_), None) => false,
    });
    let rx = board.subscribe();
    let stream = futures_util::stream::unfold(
        (board, rx, last, std::collections::VecDeque::new()),
        move |(board, mut rx, mut last, mut pending)| {
            let scope = scope.clone();
            let alive = Arc::clone(&alive);
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        return Some((Ok(event), (board, rx, last, pending)));
                    }
                    if !alive() {
                        return None;
                    }
                    match board.since(last) {
                        None => {
                            last = board.read(|s| s.last_id());
                            let reset = Event::default().event("reset").data("reload");
                            return Some((Ok(reset), (board, rx, last, pending)));
                        }
                        Some(events) if !events.is_empty() => {
                            last = events.last().map_or(last, |p| p.id);
                            pending.extend(
                                events
                                    .iter()
                                    .filter_map(|p| p.seen(&scope).map(|json| sse(p, &json))),
                            );
                            continue;
                        }
                        Some(_) => {}
                    }
                    // Woken by a change, or after a while to look at the session again.
                    if let Ok(changed) = tokio::time::timeout(SESSION_CHECK, rx.changed()).await {
                        changed.ok()?;
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One change as an SSE event, its data as the viewer sees it; the comment says when the board
/// applied it (ms since the epoch), for a client to measure its latency.
fn sse(p: &Published, json: &str) -> Event {
    Event::default()
        .event(p.name)
        .id(p.id.to_string())
        .comment(format!("applied {}", p.applied_ms))
        .data(json)
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    next: String,
}

/// Where to go once signed in: a path of this board, or its overview.
fn next_path(next: &str) -> &str {
    let ours = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/login")
        && !next.contains('\\')
        && next.chars().all(|c| c.is_ascii_graphic());
    if ours { next } else { "/" }
}

/// A cookie of `name`, or its removal (`value` empty).
fn set_cookie(server: &Server, name: &str, value: &str, path: &str, seconds: u64) -> HeaderValue {
    let secure = if server.tls { "; Secure" } else { "" };
    let age = if value.is_empty() { 0 } else { seconds };
    let text =
        format!("{name}={value}; Path={path}; Max-Age={age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The sign-in form, with a fresh token in it and in its cookie.
fn login_form(server: &Server, status: StatusCode, next: &str, message: Option<&str>) -> Response {
    let token = sessions::token();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        set_cookie(server, LOGIN_COOKIE, &token, "/login", 3600),
    );
    let html = pages::login(&token, next_path(next), message);
    (status, headers, Html(html)).into_response()
}

async fn login_page(State(server): Shared, Query(q): Query<Next>) -> Answer {
    if server.access.is_none() {
        return Err(not_found(
            "this board has no sign-in: without a users file it serves its loopback address only",
        ));
    }
    Ok(login_form(&server, StatusCode::OK, &q.next, None))
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: a session for the right password; the form's token must match its cookie
/// (a page of another site cannot sign a browser in as someone else).
async fn login(
    State(server): Shared,
    headers: HeaderMap,
    body: Result<Form<LoginBody>, axum::extract::rejection::FormRejection>,
) -> Answer {
    let Some(access) = &server.access else {
        return Err(not_found("this board has no sign-in"));
    };
    let Form(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let token_ok = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| sessions::same(c, &body.csrf));
    if cross_site || !token_ok {
        let why = "The sign-in form had expired or came from elsewhere: sign in again.";
        return Err(login_form(
            &server,
            StatusCode::FORBIDDEN,
            &body.next,
            Some(why),
        ));
    }
    let name = body.name.trim().to_owned();
    let who = if access.users().get(&name).is_some() {
        name.clone()
    } else {
        "an unknown name".to_owned()
    };
    let refused = |server: &Server, status, why: &str, message: &str| {
        let _ = server.board.record(&who, "refused sign-in", why);
        login_form(server, status, &body.next, Some(message))
    };
    if let Some(wait) = access.locked(&name) {
        return Err(locked(
            refused(
                &server,
                StatusCode::TOO_MANY_REQUESTS,
                "locked",
                &locked_text(wait),
            ),
            wait,
        ));
    }
    let permit = server
        .hashing
        .acquire()
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))?;
    let checking = Arc::clone(&server);
    let (n, p) = (name.clone(), body.password.clone());
    let outcome =
        tokio::task::spawn_blocking(move || checking.access.as_ref().map(|a| a.sign_in(&n, &p)))
            .await;
    drop(permit);
    match outcome {
        Ok(Some(Ok((user, token, _)))) => {
            signed_in(&server, access, &user.name, &token, &body.next)
        }
        Ok(Some(Err(SignInRefused::Wrong))) => Err(refused(
            &server,
            StatusCode::UNAUTHORIZED,
            "wrong name or password",
            "Wrong name or password.",
        )),
        Ok(Some(Err(SignInRefused::Locked(wait)))) => Err(locked(
            refused(
                &server,
                StatusCode::TOO_MANY_REQUESTS,
                "wrong password, now locked",
                &locked_text(wait),
            ),
            wait,
        )),
        Ok(Some(Err(SignInRefused::Full))) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the board holds as many sessions as it keeps: try again later",
        )),
        Ok(None) | Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the password could not be checked",
        )),
    }
}

/// A sign-in that succeeded: recorded, then the session's cookie and the way on to `next`. A
/// sign-in the trail cannot record does not happen.
fn signed_in(server: &Server, access: &Access, name: &str, token: &str, next: &str) -> Answer {
    if let Err(e) = server.board.record(name, "signed in", "the ward board") {
        access.sign_out(token);
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("not signed in: the audit trail could not record it: {e}"),
        ));
    }
    let mut headers = HeaderMap::new();
    let session = set_cookie(
        server,
        SESSION_COOKIE,
        token,
        "/",
        sessions::SESSION.as_secs(),
    );
    headers.append(header::SET_COOKIE, session);
    let form = set_cookie(server, LOGIN_COOKIE, "", "/login", 0);
    headers.append(header::SET_COOKIE, form);
    let to =
        HeaderValue::from_str(next_path(next)).unwrap_or_else(|_| HeaderValue::from_static("/"));
    headers.insert(header::LOCATION, to);
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

fn locked_text(wait: Duration) -> String {
    format!(
        "Too many wrong passwords: this name is locked for {} s. Ask your administrator if you \
         have forgotten your password.",
        wait.as_secs().max(1)
    )
}

/// `response` with the `Retry-After` of a lock.
fn locked(mut response: Response, wait: Duration) -> Response {
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[derive(Deserialize)]
struct LogoutBody {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (its form carries the session's token).
async fn logout(
    State(server): Shared,
    viewer: Viewer,
    headers: HeaderMap,
    body: Result<Form<LogoutBody>, axum::extract::rejection::FormRejection>,
) -> Answer {
    let (Some(access), Viewer::User { user, csrf }) = (&server.access, &viewer) else {
        return Err(not_found("this board has no sign-in"));
    };
    let Form(body) = body.map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    if !sessions::same(&body.csrf, csrf) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "missing or wrong csrf: sign out from the board's own form",
        ));
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        access.sign_out(token);
    }
    let _ = server
        .board
        .record(&user.name, "signed out", "the ward board");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        set_cookie(&server, SESSION_COOKIE, "", "/", 0),
    );
    headers.insert(header::LOCATION, HeaderValue::from_static("/login"));
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

/// `text` percent-encoded for a query string.
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
