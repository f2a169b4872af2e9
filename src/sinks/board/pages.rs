//! The board's HTML, rendered on the server from [`BoardState`]: the ward overview, a patient's
//! page, and the fragments the page's script fetches to update itself when the live stream
//! says something changed. Every state is in words and symbols, never colour alone; the layout
//! is one column on a phone's width.

use std::fmt::Write;

use super::access::Scope;
use super::state::{BoardAlert, BoardState, PatientPage, PatientRow, Point, urgency};
use crate::alerting::{Alert, AlertEvidence};
use crate::news2::{self, Band};
use crate::observation::EventTime;

pub const SCRIPT: &str = include_str!("board.js");
pub const STYLE: &str = include_str!("board.css");

/// How much of a patient's history the overview's sparkline shows.
const SPARKLINE_US: i64 = 6 * 3600 * 1_000_000;

/// Who a page is for: what they may see, and their sign-in, when there is one.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub scope: &'a Scope,
    pub signed: Option<Signed<'a>>,
}

/// A signed-in user, as their pages show them.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    pub name: &'a str,
    /// What they see, in words: `clinician of ward 4A`.
    pub describe: &'a str,
    /// Their session's token, which every form carries.
    pub csrf: &'a str,
}

impl View<'_> {
    fn sees(&self, row: &PatientRow) -> bool {
        self.scope.patient(row.ward.as_deref())
    }

    /// Who is signed in, and the form to sign out.
    fn who(&self) -> String {
        let Some(s) = self.signed else {
            return String::new();
        };
        format!(
            "<form class=\"who\" method=\"post\" action=\"/logout\">Signed in as \
             <strong>{name}</strong>, {describe} <input type=\"hidden\" name=\"csrf\" \
             value=\"{csrf}\"><button type=\"submit\">Sign out</button></form>",
            name = esc(s.name),
            describe = esc(s.describe),
            csrf = esc(s.csrf),
        )
    }
}

/// The ward overview (`/`).
pub fn overview(state: &BoardState, closed: bool, view: View<'_>) -> String {
    let mut rows = String::new();
    for row in state.patients().iter().filter(|r| view.sees(r)) {
        rows.push_str(&row_html(state, row, view));
    }
    if view.scope.patients().is_err() {
        rows = "<tr><td colspan=\"7\">Your role sees how many patients are in each band on \
                each ward, not the patients.</td></tr>"
            .to_owned();
    }
    let status = if closed {
        "the run is over: nothing more changes"
    } else {
        "live"
    };
    format!(
        "{head}<body data-page=\"overview\" data-last-id=\"{last}\">\
         <header><h1>Vigil ward board</h1>{who}<p id=\"status\" role=\"status\">{status}</p></header>\
         <section id=\"wards\" aria-label=\"patients per band per ward\">{wards}</section>\
         <table id=\"patients\"><thead><tr><th>Band</th><th>Patient</th><th>NEWS2</th>\
         <th>Risk</th><th>Last 6 h</th><th>Data</th><th>Latest alert</th></tr></thead>\
         <tbody>{rows}</tbody></table>{foot}",
        head = head("Vigil ward board"),
        last = state.last_id(),
        who = view.who(),
        wards = wards(state, view),
        foot = FOOT,
    )
}

/// A patient's page (`/patients/{id}`).
pub fn patient(state: &BoardState, id: &str, view: View<'_>) -> Option<String> {
    let main = patient_main(state, id, view)?;
    Some(format!(
        "{head}<body data-page=\"patient\" data-patient=\"{pid}\" data-last-id=\"{last}\">\
         <header><p><a href=\"/\">← ward board</a></p>{who}<h1>{pid}</h1>\
         <p id=\"status\" role=\"status\">live</p></header><main id=\"main\">{main}</main>{FOOT}",
        head = head(&format!("{id} · Vigil")),
        pid = esc(id),
        last = state.last_id(),
        who = view.who(),
    ))
}

/// A patient page's content: the row, a chart per vital, the alert history.
pub fn patient_main(state: &BoardState, id: &str, view: View<'_>) -> Option<String> {
    let (row, page) = state.patient(id).filter(|(row, _)| view.sees(row))?;
    let mut html = format!(
        "<table class=\"summary\"><tbody>{}</tbody></table><h2>Vital signs</h2><div class=\"charts\">",
        row_html(state, row, view)
    );
    for parameter in [
        news2::Parameter::RespirationRate,
        news2::Parameter::Spo2,
        news2::Parameter::SystolicBp,
        news2::Parameter::Pulse,
        news2::Parameter::Temperature,
    ] {
        html.push_str(&chart(parameter, page));
    }
    html.push_str("</div><h2>Alerts</h2>");
    html.push_str(&alert_history(page, view));
    Some(html)
}

/// The rows of `ids` (those on the board), for the overview to swap in.
pub fn rows(state: &BoardState, ids: &[&str], view: View<'_>) -> String {
    let mut html = String::new();
    for id in ids {
        if let Some((row, _)) = state.patient(id).filter(|(row, _)| view.sees(row)) {
            html.push_str(&row_html(state, row, view));
        }
    }
    html
}

/// Patients per band on each ward.
pub fn wards(state: &BoardState, view: View<'_>) -> String {
    let mut wards = state.wards();
    wards.retain(|w| view.scope.ward(&w.ward));
    if wards.is_empty() {
        return "<p class=\"muted\">No wards: give the pipeline a registry with a ward column \
                to count patients per band per ward.</p>"
            .to_owned();
    }
    let mut html = String::from("<ul class=\"wards\">");
    for w in wards {
        let _ = write!(
            html,
            "<li><strong>Ward {}</strong> <span class=\"band-high\">▲▲ high {}</span> \
             <span class=\"band-medium\">▲ medium {}</span> \
             <span class=\"band-low-medium\">△ low-medium {}</span> \
             <span class=\"band-low\">● low {}</span></li>",
            esc(&w.ward),
            w.high,
            w.medium,
            w.low_medium,
            w.low
        );
    }
    html.push_str("</ul>");
    html
}

/// The sign-in page (`/login`): the form carries `csrf`, the token its cookie holds too, and
/// `next`, where to go once signed in; `message` says why the last try failed.
pub fn login(csrf: &str, next: &str, message: Option<&str>) -> String {
    let message = message.map_or(String::new(), |m| {
        format!("<p class=\"warn\" role=\"alert\">{}</p>", esc(m))
    });
    format!(
        "{head}<body data-page=\"login\"><header><h1>Vigil ward board</h1></header><main>\
         {message}<form class=\"login\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <p><label>Name <input name=\"name\" required maxlength=\"64\" autocomplete=\"username\" \
         autofocus></label></p><p><label>Password <input name=\"password\" type=\"password\" \
         required autocomplete=\"current-password\"></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form></main></body></html>",
        head = head("Sign in · Vigil"),
        csrf = esc(csrf),
        next = esc(next),
    )
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/board.css\"></head>",
        esc(title)
    )
}

const FOOT: &str = "<script src=\"/board.js\"></script></body></html>";

/// A band in words, with a symbol and a class (colour is only a third of the message).
fn band_label(band: Option<Band>, scored: bool) -> (&'static str, &'static str) {
    match (band, scored) {
        (Some(Band::High), _) => ("band-high", "▲▲ High"),
        (Some(Band::Medium), _) => ("band-medium", "▲ Medium"),
        (Some(Band::LowMedium), _) => ("band-low-medium", "△ Low-medium (a single 3)"),
        (Some(Band::Low), _) => ("band-low", "● Low"),
        (None, true) => ("band-none", "? Incomplete, no band"),
        (None, false) => ("band-none", "○ Not scored yet"),
    }
}

/// One patient's row of the overview.
fn row_html(state: &BoardState, row: &PatientRow, view: View<'_>) -> String {
    let (class, band) = band_label(row.band, row.news2.is_some());
    let (b, upper, risk) = urgency(row);
    let rank = f64::from(b + 1) * 1e6 + f64::from(upper) * 1e3 + risk * 999.0;
    let news2 = match row.news2 {
        Some(n) if n.complete => n.total.to_string(),
        Some(n) => format!("at least {}, up to {} (incomplete)", n.total, n.upper),
        None => "—".to_owned(),
    };
    let risk = row
        .risk
        .map_or("—".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let ward = row.ward.as_deref().map_or(String::new(), |w| {
        format!("<br><small>ward {}</small>", esc(w))
    });
    let history = state.patient(&row.patient).map(|(_, p)| p);
    format!(
        "<tr id=\"p-{id}\" class=\"{class}\" data-patient=\"{id}\" data-urgency=\"{rank}\">\
         <td class=\"band\">{band}</td><td><a href=\"/patients/{id}\">{id}</a>{ward}</td>\
         <td>{news2}</td><td>{risk}</td><td>{spark}</td><td>{data}</td><td>{alert}</td></tr>",
        id = esc(&row.patient),
        spark = history.map_or(String::new(), sparkline),
        data = data_quality(row),
        alert = latest_alert(row, view),
    )
}

/// What is stale, missing or offline, in words.
fn data_quality(row: &PatientRow) -> String {
    let mut parts = Vec::new();
    if !row.stale.is_empty() {
        parts.push(format!(
            "<span class=\"warn\">◔ stale or missing: {}</span>",
            esc(&row.stale.join(", "))
        ));
    }
    if !row.offline.is_empty() {
        parts.push(format!(
            "<span class=\"warn\">⚠ offline: {}</span>",
            esc(&row.offline.join(", "))
        ));
    }
    if parts.is_empty() {
        return "✓ current".to_owned();
    }
    parts.join("<br>")
}

/// The row's latest alert to people, acknowledged or with the form to acknowledge it.
fn latest_alert(row: &PatientRow, view: View<'_>) -> String {
    let Some(a) = &row.alert else {
        return "—".to_owned();
    };
    let ack = match &a.acknowledged {
        Some(k) => acknowledged(k),
        None => ack_form(&a.id, view),
    };
    format!(
        "<span class=\"when\">{}</span> {}<br>{ack}",
        time(a.time_us),
        esc(&a.summary)
    )
}

fn acknowledged(k: &super::state::Acknowledged) -> String {
    let note = match k.note.as_str() {
        "" => String::new(),
        n => format!(": {}", esc(n)),
    };
    format!(
        "<span class=\"acked\">✔ acknowledged by {} at {}{note}</span>",
        esc(&k.by),
        time(k.at_us)
    )
}

/// The form to acknowledge `alert`: the signed-in user's, carrying their session's token, or
/// the demo's, which asks for a name.
fn ack_form(alert: &str, view: View<'_>) -> String {
    let who = match view.signed {
        Some(s) => format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            esc(s.csrf)
        ),
        None => "<input name=\"by\" required maxlength=\"80\" placeholder=\"your name\" \
                 aria-label=\"your name\">"
            .to_owned(),
    };
    let button = match view.signed {
        Some(s) => format!("Acknowledge as {}", esc(s.name)),
        None => "Acknowledge".to_owned(),
    };
    format!(
        "<form class=\"ack\" data-alert=\"{id}\">{who}<input name=\"note\" maxlength=\"500\" \
         placeholder=\"note\" aria-label=\"note\"><button type=\"submit\">{button}</button>\
         <output class=\"result\"></output></form>",
        id = esc(alert)
    )
}

/// The NEWS2 total over the last hours, as a small line.
fn sparkline(page: &PatientPage) -> String {
    let Some(last) = page.history.back() else {
        return String::new();
    };
    let from = last.time_us - SPARKLINE_US;
    let points: Vec<&Point> = page.history.iter().filter(|p| p.time_us >= from).collect();
    let mut line = String::new();
    for p in &points {
        let x = (p.time_us - from) as f64 / SPARKLINE_US as f64 * 120.0;
        let y = 30.0 - f64::from(p.total.min(15)) * 2.0;
        let _ = write!(line, "{x:.1},{y:.1} ");
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 120 32\" width=\"120\" height=\"32\" role=\"img\" \
         aria-label=\"NEWS2 over the last 6 hours, now {}\"><line x1=\"0\" x2=\"120\" y1=\"20\" \
         y2=\"20\" class=\"threshold\"/><polyline points=\"{line}\"/></svg>",
        last.total
    )
}

/// The NEWS2 sub-score a value of `parameter` takes (SpO2 on scale 1), for the chart's bands.
fn subscore(parameter: news2::Parameter, value: f64) -> u8 {
    let v = value.round() as i64;
    match parameter {
        news2::Parameter::RespirationRate => news2::respiration_rate_subscore(v),
        news2::Parameter::Spo2 => news2::spo2_scale1_subscore(v),
        news2::Parameter::SystolicBp => news2::systolic_bp_subscore(v),
        news2::Parameter::Pulse => news2::pulse_subscore(v),
        news2::Parameter::Temperature => news2::temperature_subscore((value * 10.0).round() as i64),
        _ => 0,
    }
}

/// The range each chart spans (the NEWS2 chart's own).
fn chart_range(parameter: news2::Parameter) -> (f64, f64) {
    match parameter {
        news2::Parameter::RespirationRate => (4.0, 36.0),
        news2::Parameter::Spo2 => (80.0, 100.0),
        news2::Parameter::SystolicBp => (60.0, 240.0),
        news2::Parameter::Pulse => (30.0, 150.0),
        _ => (34.0, 40.0),
    }
}

/// One vital over the page's history, on the NEWS2 chart's bands (shaded by the sub-score each
/// value would take).
fn chart(parameter: news2::Parameter, page: &PatientPage) -> String {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let key = parameter.key();
    let (lo, hi) = chart_range(parameter);
    let y = |v: f64| H - (v.clamp(lo, hi) - lo) / (hi - lo) * H;
    let mut bands = String::new();
    let steps = 60;
    for i in 0..steps {
        let v0 = lo + (hi - lo) * f64::from(i) / f64::from(steps);
        let v1 = lo + (hi - lo) * f64::from(i + 1) / f64::from(steps);
        let s = subscore(parameter, (v0 + v1) / 2.0);
        if s > 0 {
            let _ = write!(
                bands,
                "<rect class=\"s{s}\" x=\"0\" width=\"{W}\" y=\"{:.1}\" height=\"{:.1}\"/>",
                y(v1),
                y(v0) - y(v1)
            );
        }
    }
    let values: Vec<(i64, f64)> = page
        .history
        .iter()
        .filter_map(|p| Some((p.time_us, *p.values.get(key)?)))
        .collect();
    let (t0, t1) = match (values.first(), values.last()) {
        (Some(a), Some(b)) => (a.0, b.0.max(a.0 + 1)),
        _ => (0, 1),
    };
    let mut line = String::new();
    for (t, v) in &values {
        let x = (t - t0) as f64 / (t1 - t0) as f64 * W;
        let _ = write!(line, "{x:.1},{:.1} ", y(*v));
    }
    let latest = values.last().map_or("no value yet".to_owned(), |(t, v)| {
        format!("{v} at {}", time(*t))
    });
    format!(
        "<figure class=\"chart\"><figcaption>{name}: {latest}</figcaption>\
         <svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{name} over time; shaded where NEWS2 scores it 1, 2 or 3\">{bands}\
         <polyline points=\"{line}\"/></svg><small>shading: NEWS2 sub-score 1 (light) to 3 \
         (dark); {lo} to {hi}</small></figure>",
        name = parameter.human_name(),
    )
}

/// The patient's alerts, newest first, with their evidence and response.
fn alert_history(page: &PatientPage, view: View<'_>) -> String {
    if page.alerts.is_empty() {
        return "<p>No alerts.</p>".to_owned();
    }
    let mut html = String::from("<ol class=\"alerts\" reversed>");
    for a in page.alerts.iter().rev() {
        html.push_str(&alert_item(a, view));
    }
    html.push_str("</ol>");
    html
}

fn alert_item(a: &BoardAlert, view: View<'_>) -> String {
    let alert = &a.alert;
    let ack = match (&a.acknowledged, alert.pages()) {
        (Some(k), _) => acknowledged(k),
        (None, true) => ack_form(&alert.id, view),
        (None, false) => String::new(),
    };
    format!(
        "<li id=\"a-{id}\" class=\"sev-{sev:?}\"><p><span class=\"when\">{when}</span> \
         <strong>{kind} {event}</strong> ({sev_name})</p><p>{summary}</p>\
         <p><em>Response:</em> {response}</p>{evidence}{ack}</li>",
        id = esc(&alert.id),
        sev = alert.severity,
        when = time(alert.time_us),
        kind = esc(&json_name(&alert.kind)),
        event = esc(&json_name(&alert.event)),
        sev_name = esc(&json_name(&alert.severity)),
        summary = esc(&alert.summary),
        response = esc(&alert.response),
        evidence = evidence(alert),
    )
}

/// The values and sub-scores, or the model's top features, behind an alert.
fn evidence(alert: &Alert) -> String {
    let mut html = String::new();
    if let Some(AlertEvidence::News2(e)) = &alert.evidence {
        html.push_str("<table class=\"evidence\"><tr><th>parameter</th><th>value</th><th>age</th><th>sub-score</th></tr>");
        for v in &e.values {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&v.parameter),
                esc(v.value.as_deref().unwrap_or("missing")),
                v.age_s.map_or("—".to_owned(), age),
                v.subscore.map_or("—".to_owned(), |s| s.to_string())
            );
        }
        html.push_str("</table>");
    }
    if let Some(r) = &alert.risk {
        let features: Vec<String> = r
            .top_features
            .iter()
            .map(|c| esc(&serde_json::to_string(c).unwrap_or_default()))
            .collect();
        let _ = write!(
            html,
            "<p>Model {} {}: {:.1} % (alert at {:.1} %). Top features: {}</p>",
            esc(&r.model),
            esc(&r.version),
            r.probability * 100.0,
            r.threshold * 100.0,
            features.join("; ")
        );
    }
    html
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// A serde name (`low-medium`) of an enum value.
fn json_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// An event time for people: `2026-01-05 04:10:25 UTC`.
fn time(us: i64) -> String {
    let text = EventTime::from_micros(us).to_rfc3339();
    format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_devices_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_chart_shades_where_news2_scores_a_value() {
        // Respiration rate 21-24 scores 2, 25 or more 3, 12-20 nothing.
        assert_eq!(subscore(news2::Parameter::RespirationRate, 16.0), 0);
        assert_eq!(subscore(news2::Parameter::RespirationRate, 22.0), 2);
        assert_eq!(subscore(news2::Parameter::RespirationRate, 25.0), 3);
        // Temperature 38.1-39.0 scores 1.
        assert_eq!(subscore(news2::Parameter::Temperature, 38.5), 1);
        let page = PatientPage::default();
        let html = chart(news2::Parameter::RespirationRate, &page);
        assert!(html.contains("class=\"s3\""), "{html}");
        assert!(html.contains("no value yet"), "{html}");
    }
}
