//! The board behind a sign-in, tried from outside as an intruder and as each role would: the
//! real binary serving the demo ward over HTTPS (rustls, a certificate from a CA openssl makes)
//! on every address, with users `vigil user add` wrote. Every page, fragment, API call and the
//! live stream are refused without a session and with a forged one; a clinician of ward 4A sees
//! and acknowledges 4A only; a data engineer sees counts, a researcher nothing; five wrong
//! passwords lock a name; a cross-site sign-in, an acknowledgement without the CSRF token and a
//! removed user's session are refused; and the audit trail says who viewed and did what.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, scratch, wait_for_port};

/// `vigil ARGS` with `input` on standard input.
fn vigil_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `vigil user add FILE NAME --role ROLE --ward ...` with `password` piped in.
fn add_user(file: &Path, name: &str, role: &str, wards: &[&str], password: &str) -> Output {
    let mut args = vec!["user", "add", file.to_str().unwrap(), name, "--role", role];
    for w in wards {
        args.extend(["--ward", w]);
    }
    vigil_with_input(&args, &format!("{password}\n"))
}

/// The demo served on `listen` over HTTPS to `users` (certificates `dir/board.{crt,key}`), at
/// `speed` times real time.
fn serve(dir: &Path, users: &Path, listen: &str, speed: &str, audit: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            crate::board::pipeline(dir).to_str().unwrap(),
            "--quiet",
        ])
        .args(["--progress", "never", "--speed", speed, "--board", listen])
        .args(["--board-users", users.to_str().unwrap()])
        .args(["--board-cert", dir.join("board.crt").to_str().unwrap()])
        .args(["--board-key", dir.join("board.key").to_str().unwrap()])
        .args(["--audit", audit.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn password(name: &str) -> String {
    format!("correct horse {name}")
}

/// The users file: alice (clinician, 4A), bob (clinician, 4B), dan (data engineer), rita
/// (researcher); and what `vigil user add` refuses.
fn users(dir: &Path) -> PathBuf {
    let file = dir.join("users");
    let add = |name: &str, role: &str, wards: &[&str]| {
        add_user(&file, name, role, wards, &password(name))
    };
    for (name, role, wards) in [
        ("alice", "clinician", &["4A"][..]),
        ("bob", "clinician", &["4B"]),
        ("dan", "data-engineer", &[]),
        ("rita", "researcher", &[]),
    ] {
        let o = add(name, role, wards);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let refused = |o: Output, says: &str| {
        assert!(!o.status.success());
        let said = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(said.contains(says), "{said}");
    };
    refused(add("alice", "clinician", &["4B"]), "exists");
    refused(add("carol", "clinician", &[]), "at least one --ward");
    refused(
        add("dave", "data-engineer", &["4A"]),
        "only a clinician has wards",
    );
    refused(add("bad:name", "clinician", &["4A"]), "user name");
    refused(
        add_user(&file, "eve", "researcher", &[], "short"),
        "at least 8",
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("$argon2id$").count(), 4, "{text}");
    assert!(
        !text.contains("correct horse"),
        "a password is never stored"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    let listed = crate::run_ok(&["user", "list", file.to_str().unwrap()]);
    assert!(listed.contains("alice\tclinician of ward 4A"), "{listed}");
    assert!(!listed.contains("argon2"), "{listed}");
    file
}

/// An HTTPS client that trusts the test's CA only and follows no redirect.
struct Client {
    agent: ureq::Agent,
    base: String,
}

/// An answer: status, `Set-Cookie`s, `Location`, `Retry-After` and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    cookies: Vec<String>,
    location: Option<String>,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{name}="))?;
            Some(value.split(';').next().unwrap_or("").to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// The value of the first `name="csrf" value="…"` in a page.
fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf token")
        + 19;
    html[at..at + 64].to_owned()
}

impl Client {
    fn new(ca: &Path, port: u16) -> Client {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let pem = std::fs::read(ca).unwrap();
        let roots = RootCerts::Specific(std::sync::Arc::new(vec![
            Certificate::from_pem(&pem).unwrap(),
        ]));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Client {
            agent,
            base: format!("https://localhost:{port}"),
        }
    }

    fn answer(mut r: ureq::http::Response<ureq::Body>) -> Answer {
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let cookies = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let (location, retry_after) = (header("location"), header("retry-after"));
        Answer {
            status: r.status().as_u16(),
            cookies,
            location,
            retry_after,
            body: r.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    fn get(&self, path: &str, session: Option<&str>) -> Answer {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(s) = session {
            req = req.header("cookie", format!("vigil_session={s}"));
        }
        Client::answer(req.call().unwrap())
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Client::answer(req.send(body).unwrap())
    }

    /// Signs in through the form, as a browser does: GET /login, then POST it with the token.
    fn sign_in(&self, name: &str, password: &str) -> Answer {
        let form = self.get("/login", None);
        assert_eq!(form.status, 200);
        let cookie = format!("vigil_login={}", form.cookie("vigil_login").unwrap());
        let body = format!(
            "name={name}&password={}&csrf={}&next=%2F",
            password.replace(' ', "+"),
            csrf_in(&form.body)
        );
        self.post(
            "/login",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &body,
        )
    }

    /// A session of `name`: its cookie and the CSRF token its pages carry.
    fn session(&self, name: &str) -> (String, String) {
        let signed = self.sign_in(name, &password(name));
        assert_eq!(signed.status, 303, "{name}: {signed:?}");
        let session = signed.cookie("vigil_session").unwrap();
        let page = self.get("/", Some(&session));
        let csrf = if page.status == 200 {
            csrf_in(&page.body)
        } else {
            String::new()
        };
        (session, csrf)
    }

    /// The first `n` events of `/events` (`Last-Event-ID: 0`): (name, data).
    fn events(&self, session: &str, n: usize) -> Vec<(String, Value)> {
        let response = self
            .agent
            .get(format!("{}/events", self.base))
            .header("cookie", format!("vigil_session={session}"))
            .header("Last-Event-ID", "0")
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut lines = BufReader::new(response.into_body().into_reader()).lines();
        let (mut out, mut name) = (Vec::new(), String::new());
        while out.len() < n {
            let line = lines.next().unwrap().unwrap();
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                out.push((name.clone(), serde_json::from_str(v).unwrap()));
            }
        }
        out
    }
}

/// Patients by ward in the demo's registry.
fn ward_of(patient: &str) -> &'static str {
    let n: u32 = patient.trim_start_matches("sim-").parse().unwrap();
    if n < 25 { "4A" } else { "4B" }
}

#[test]
fn the_board_refuses_everyone_without_a_session_and_shows_each_role_its_own() {
    let dir = scratch("board_access");
    crate::tls::certificates_for(&dir, "board", "DNS:localhost,IP:127.0.0.1");
    let users = users(&dir);
    let port = free_port();
    let audit = dir.join("audit.jsonl");
    // Every address: allowed because it has users and TLS.
    let vigil = serve(&dir, &users, &format!("0.0.0.0:{port}"), "1000", &audit);
    wait_for_port(port, "the board", 30);
    let client = Client::new(&dir.join("board-ca.pem"), port);

    let plain = ureq::get(format!("http://127.0.0.1:{port}/api/wards")).call();
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
    refuses_without_a_session(&client);
    refuses_forged_sign_ins(&client);
    let (alice, alice_csrf) = client.session("alice");
    let (bob, _) = client.session("bob");
    let signed = client.sign_in("alice", &password("alice"));
    let cookie = signed
        .cookies
        .iter()
        .find(|c| c.starts_with("vigil_session="))
        .unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let alerted = a_clinician_sees_their_ward_only(&client, &alice, "4A");
    a_clinician_sees_their_ward_only(&client, &bob, "4B");
    acknowledges_with_the_token_only(&client, &alice, &alice_csrf, &bob, &alerted);
    other_roles(&client);
    five_wrong_passwords_lock_the_name(&client);
    signs_out_and_removed_users_are_out(&client, &users, &alice);
    crate::board::stop(vigil);
    audited(&audit, &alerted);
}

/// Every route but the sign-in, the script and the style, without a session or with a made-up
/// one: pages go to the sign-in, everything else is refused.
fn refuses_without_a_session(client: &Client) {
    let forged = "ab".repeat(32);
    for session in [None, Some(forged.as_str())] {
        for path in ["/", "/patients/sim-00001"] {
            let a = client.get(path, session);
            assert_eq!(a.status, 303, "{path}: {a:?}");
            let to = a.location.unwrap();
            assert_eq!(
                to,
                format!("/login?next={path}"),
                "back to the page once signed in"
            );
            assert!(!a.body.contains("sim-000"), "{path}: {}", a.body);
        }
        for path in [
            "/fragments/rows?ids=sim-00001",
            "/fragments/wards",
            "/fragments/patients/sim-00001",
            "/api/patients",
            "/api/patients/sim-00001",
            "/api/wards",
            "/events",
        ] {
            let a = client.get(path, session);
            assert_eq!(a.status, 401, "{path}: {a:?}");
            assert!(a.body.contains("sign in first"), "{path}: {}", a.body);
            assert!(!a.body.contains("sim-000"), "{path}: {}", a.body);
        }
        let cookie = session.map_or(String::new(), |s| format!("vigil_session={s}"));
        for path in ["/api/alerts/0000000000000000/ack", "/logout"] {
            let a = client.post(path, &[("cookie", &cookie)], "{}");
            assert_eq!(a.status, 401, "{path}: {a:?}");
        }
    }
    assert_eq!(client.get("/board.css", None).status, 200);
    assert_eq!(client.get("/login", None).status, 200);
}

/// A wrong password, an unknown name and a sign-in without the form's token (what a page of
/// another site would send) get no session.
fn refuses_forged_sign_ins(client: &Client) {
    let wrong = client.sign_in("alice", "not her password");
    let unknown = client.sign_in("mallory", "whatever it is");
    for a in [&wrong, &unknown] {
        assert_eq!(a.status, 401, "{a:?}");
        assert!(a.body.contains("Wrong name or password"), "{}", a.body);
        assert!(a.cookie("vigil_session").is_none());
    }
    let body = format!(
        "name=alice&password={}&csrf={}",
        password("alice").replace(' ', "+"),
        "0".repeat(64)
    );
    let forged = client.post(
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged.cookie("vigil_session").is_none());
    // The right token from another browser's form does not go with this browser's cookie.
    let theirs = client.get("/login", None);
    let mine = client.get("/login", None);
    let body = format!(
        "name=alice&password={}&csrf={}",
        password("alice").replace(' ', "+"),
        csrf_in(&theirs.body)
    );
    let mixed = client.post(
        "/login",
        &[
            (
                "cookie",
                &format!("vigil_login={}", mine.cookie("vigil_login").unwrap()),
            ),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    assert_eq!(mixed.status, 403, "{mixed:?}");
}

/// A clinician of `ward`: every row, count, page, fragment and event is of that ward, and the
/// other ward's patients are not found. Returns a patient of theirs with an alert to people.
fn a_clinician_sees_their_ward_only(
    client: &Client,
    session: &str,
    ward: &str,
) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (patient, alert) = loop {
        let rows = client.get("/api/patients", Some(session)).json();
        let rows = rows.as_array().unwrap().clone();
        for row in &rows {
            assert_eq!(row["ward"], ward, "{row}");
            assert_eq!(ward_of(row["patient"].as_str().unwrap()), ward);
        }
        let alerted = rows
            .iter()
            .find(|r| r["alert"].is_object() && r["alert"]["acknowledged"].is_null());
        if let Some(r) = alerted {
            break (
                r["patient"].as_str().unwrap().to_owned(),
                r["alert"]["id"].as_str().unwrap().to_owned(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no alert to people on ward {ward} in a minute"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let other = if ward == "4A" {
        "sim-00030"
    } else {
        "sim-00003"
    };
    for path in [
        format!("/patients/{other}"),
        format!("/api/patients/{other}"),
        format!("/fragments/patients/{other}"),
    ] {
        let a = client.get(&path, Some(session));
        assert_eq!(a.status, 404, "{path}: {a:?}");
        assert!(a.body.contains("on your wards"), "{}", a.body);
    }
    let own = client.get(&format!("/patients/{patient}"), Some(session));
    assert_eq!(own.status, 200);
    assert!(own.body.contains(&format!("ward {ward}")) && own.body.contains("Sign out"));
    let rows = client.get(
        &format!("/fragments/rows?ids={other},{patient}"),
        Some(session),
    );
    assert!(
        rows.body.contains(&patient) && !rows.body.contains(other),
        "{}",
        rows.body
    );
    let overview = client.get("/", Some(session));
    let others = (0..50)
        .map(|n| format!("sim-{n:05}"))
        .filter(|p| ward_of(p) != ward);
    for p in others {
        assert!(
            !overview.body.contains(&p),
            "the overview shows ward {ward} only: {p}"
        );
    }
    let wards = client.get("/api/wards", Some(session)).json();
    let wards: Vec<&str> = wards
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ward"].as_str().unwrap())
        .collect();
    assert_eq!(wards, [ward]);
    for (name, data) in client.events(session, 40) {
        match name.as_str() {
            "wards" => {
                let seen: Vec<&str> = data
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w["ward"].as_str().unwrap())
                    .collect();
                assert_eq!(seen, [ward], "{data}");
            }
            _ => assert_eq!(
                ward_of(data["patient"].as_str().unwrap()),
                ward,
                "{name} {data}"
            ),
        }
    }
    (patient, alert)
}

/// An acknowledgement needs the session's CSRF token, is made in the user's own name, and
/// cannot reach another ward's alert.
fn acknowledges_with_the_token_only(
    client: &Client,
    alice: &str,
    csrf: &str,
    bob: &str,
    (patient, alert): &(String, String),
) {
    let cookie = format!("vigil_session={alice}");
    let ack = |token: Option<&str>, id: &str| {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(t) = token {
            headers.push(("x-csrf-token", t));
        }
        client.post(
            &format!("/api/alerts/{id}/ack"),
            &headers,
            r#"{"by":"Someone Else","note":"seen"}"#,
        )
    };
    assert_eq!(ack(None, alert).status, 403, "no token");
    assert_eq!(
        ack(Some(&"0".repeat(64)), alert).status,
        403,
        "a wrong token"
    );
    let bobs = client.get("/api/patients", Some(bob)).json();
    let theirs = bobs
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["alert"]["id"].as_str().map(str::to_owned));
    if let Some(theirs) = theirs {
        assert_eq!(ack(Some(csrf), &theirs).status, 404, "another ward's alert");
    }
    let made = ack(Some(csrf), alert);
    assert_eq!(made.status, 202, "{made:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = client
            .get(&format!("/api/patients/{patient}"), Some(alice))
            .json();
        let acked = detail["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alert"]["id"] == alert.as_str())
            .map(|a| a["acknowledged"].clone());
        if let Some(Value::Object(k)) = acked {
            assert_eq!(
                k["by"], "alice",
                "signed in, the board names who acknowledged"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledgement did not take effect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A data engineer sees the counts of every ward and no patient; a researcher nothing.
fn other_roles(client: &Client) {
    let (dan, _) = client.session("dan");
    let wards = client.get("/api/wards", Some(&dan)).json();
    assert_eq!(wards.as_array().unwrap().len(), 2, "{wards}");
    let overview = client.get("/", Some(&dan));
    assert_eq!(overview.status, 200);
    assert!(
        !overview.body.contains("sim-000"),
        "no patient on a data engineer's board"
    );
    for path in [
        "/api/patients",
        "/api/patients/sim-00001",
        "/patients/sim-00001",
        "/fragments/rows?ids=sim-00001",
    ] {
        assert_eq!(client.get(path, Some(&dan)).status, 403, "{path}");
    }
    for (name, _) in client.events(&dan, 3) {
        assert_eq!(name, "wards");
    }
    let (rita, _) = client.session("rita");
    for path in [
        "/",
        "/api/wards",
        "/api/patients",
        "/events",
        "/patients/sim-00001",
    ] {
        let a = client.get(path, Some(&rita));
        assert_eq!(a.status, 403, "{path}");
        assert!(a.body.contains("vigil export --research"), "{}", a.body);
    }
}

/// Five wrong passwords lock the name, even against the right one, and say for how long; other
/// names are not slowed.
fn five_wrong_passwords_lock_the_name(client: &Client) {
    for attempt in 1..=5 {
        let a = client.sign_in("bob", "a wrong guess");
        let expected = if attempt < 5 { 401 } else { 429 };
        assert_eq!(a.status, expected, "attempt {attempt}: {a:?}");
    }
    let right = client.sign_in("bob", &password("bob"));
    assert_eq!(right.status, 429, "{right:?}");
    assert!(right.cookie("vigil_session").is_none());
    let wait: u64 = right.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(right.body.contains("locked"), "{}", right.body);
    assert_eq!(client.sign_in("alice", &password("alice")).status, 303);
}

/// Signing out needs the session's token and ends it; a user removed from the file is signed
/// out at their next request.
fn signs_out_and_removed_users_are_out(client: &Client, users: &Path, alice: &str) {
    let (dan, dan_csrf) = client.session("dan");
    let cookie = format!("vigil_session={dan}");
    let form = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(client.post("/logout", &form, "csrf=nope").status, 403);
    let out = client.post("/logout", &form, &format!("csrf={dan_csrf}"));
    assert_eq!(out.status, 303);
    assert_eq!(
        client.get("/api/wards", Some(&dan)).status,
        401,
        "signed out"
    );
    assert_eq!(client.get("/api/wards", Some(alice)).status, 200);
    // Her live stream, open when she is removed, ends with her session.
    let stream = client
        .agent
        .get(format!("{}/events", client.base))
        .header("cookie", format!("vigil_session={alice}"))
        .call()
        .unwrap();
    let (ended_tx, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = stream.into_body().into_reader();
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        let _ = ended_tx.send(());
    });
    crate::run_ok(&["user", "remove", users.to_str().unwrap(), "alice"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.get("/api/wards", Some(alice)).status != 401 {
        assert!(
            Instant::now() < deadline,
            "a removed user keeps their session"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ended.recv_timeout(Duration::from_secs(10)).is_ok(),
        "a removed user's live stream goes on"
    );
}

/// The trail verifies and says who signed in, viewed and acknowledged what, and never holds a
/// password.
fn audited(trail: &Path, (patient, alert): &(String, String)) {
    let verified = crate::vigil(&["audit", "verify", trail.to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let records = crate::read_lines(trail);
    let has = |who: &str, action: &str, what: &str| {
        records.iter().any(|r| {
            r["who"] == who && r["action"] == action && r["what"].as_str().unwrap().contains(what)
        })
    };
    assert!(has("alice", "signed in", "the ward board"));
    assert!(has("alice", "viewed", &format!("patient {patient}")));
    assert!(has("alice", "acknowledged", alert));
    assert!(has("bob", "refused sign-in", "locked"));
    assert!(has(
        "an unknown name",
        "refused sign-in",
        "wrong name or password"
    ));
    assert!(has("dan", "signed out", "the ward board"));
    let text = std::fs::read_to_string(trail).unwrap();
    assert!(
        !text.contains("correct horse") && !text.contains("wrong guess"),
        "no password in the trail"
    );
    assert!(
        !text.contains("mallory"),
        "an unknown name is not recorded (it may be a password typed in the wrong field)"
    );
}

/// Patients' data leaves the machine only behind a sign-in and TLS: every other address is
/// refused by `vigil run` and `vigil validate`, as is a users file that does not parse.
#[test]
fn the_board_refuses_the_network_without_users_and_tls() {
    let dir = scratch("board_refusals");
    crate::tls::certificates_for(&dir, "board", "DNS:localhost");
    let users = dir.join("users");
    let o = add_user(&users, "alice", "clinician", &["4A"], "long enough");
    assert!(o.status.success());
    let pipeline = crate::board::pipeline(&dir);
    let (cert, key) = (dir.join("board.crt"), dir.join("board.key"));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            pipeline.to_str().unwrap(),
            "--quiet",
            "--board",
            "0.0.0.0:0",
        ];
        args.extend(extra);
        let o = crate::vigil(&args);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let said = run(&[]);
    assert!(said.contains("without a sign-in (users) and TLS"), "{said}");
    let said = run(&["--board-users", users.to_str().unwrap()]);
    assert!(said.contains("without TLS"), "{said}");
    let said = run(&[
        "--board-cert",
        cert.to_str().unwrap(),
        "--board-key",
        key.to_str().unwrap(),
    ]);
    assert!(said.contains("without a sign-in (users)"), "{said}");

    let section = |body: &str| {
        let path = dir.join("section.toml");
        let text = std::fs::read_to_string(&pipeline).unwrap();
        std::fs::write(&path, format!("{text}\n[board]\n{body}")).unwrap();
        let o = crate::vigil(&["validate", path.to_str().unwrap()]);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, said) = section(&format!(
        "listen = \"0.0.0.0:8443\"\nusers = {:?}\n",
        users.display().to_string()
    ));
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("without TLS"), "{said}");
    let ok = format!(
        "listen = \"0.0.0.0:8443\"\nusers = {:?}\ntls_cert = {:?}\ntls_key = {:?}\n",
        users.display().to_string(),
        cert.display().to_string(),
        key.display().to_string()
    );
    assert_eq!(section(&ok).0, Some(0));
    std::fs::write(
        &users,
        "alice:surgeon::$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\n",
    )
    .unwrap();
    let (code, said) = section(&ok);
    assert_eq!(code, Some(3));
    assert!(said.contains(":1: role \"surgeon\""), "{said}");
    std::fs::write(&key, "not a key").unwrap();
    let (code, said) = section(&ok);
    assert_eq!(code, Some(3));
    assert!(said.contains("TLS key"), "{said}");
}

/// A clinician in a real browser (Debian's Chromium): sent to the sign-in, signed in with a
/// `Secure`, `HttpOnly`, `SameSite=Strict` cookie, shown their ward only, acknowledging through
/// the page's form in their own name, refused another ward's patient, and signed out.
#[test]
fn a_clinician_signs_in_with_a_browser_and_works_on_their_ward_only() {
    let Some(script) = crate::board::browser_tools() else {
        return;
    };
    let dir = scratch("board_access_browser");
    crate::tls::certificates_for(&dir, "board", "DNS:localhost,IP:127.0.0.1");
    let users = dir.join("users");
    let o = add_user(
        &users,
        "dr.test",
        "clinician",
        &["4A"],
        &password("dr.test"),
    );
    assert!(o.status.success());
    let port = free_port();
    let audit = dir.join("audit.jsonl");
    let mut vigil = serve(&dir, &users, &format!("127.0.0.1:{port}"), "300", &audit);
    wait_for_port(port, "the board", 30);
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/board");
    std::fs::create_dir_all(&artefacts).unwrap();
    let url = format!("https://localhost:{port}/");
    let pw = password("dr.test");
    let args = [url.as_str(), "dr.test", &pw, "sim-00030"];
    let login = script.with_file_name("login.mjs");
    let seen = crate::board::browse(&login, &args, &artefacts, &mut vigil);
    crate::board::stop(vigil);
    assert_eq!(seen["redirected"], "/login", "{seen}");
    assert!(
        seen["who"]
            .as_str()
            .unwrap()
            .contains("dr.test, clinician of ward 4A"),
        "{seen}"
    );
    assert_eq!(seen["session"]["secure"], true, "{seen}");
    assert_eq!(seen["session"]["httpOnly"], true, "{seen}");
    assert_eq!(seen["session"]["sameSite"], "Strict", "{seen}");
    let rows = seen["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|p| ward_of(p.as_str().unwrap()) == "4A"),
        "{seen}"
    );
    assert_eq!(seen["button"], "Acknowledge as dr.test");
    let ack = seen["ackText"].as_str().unwrap();
    assert!(
        ack.contains("acknowledged by dr.test") && ack.contains("seen at the bedside"),
        "{ack}"
    );
    assert_eq!(seen["otherStatus"], 404, "{seen}");
    assert_eq!(seen["afterSignOut"], "/login", "{seen}");
}
