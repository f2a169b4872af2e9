//! `[[sinks]] kind = "fhir"`: alerts written back as FHIR R4 resources ([`resources`]), to an
//! NDJSON file (`path`, one resource a line, as Bulk Data reads it) and/or a FHIR server
//! (`url`, its base: each flush POSTs a transaction Bundle of `PUT`s).
//!
//! A resource's id comes from its alert's id and each entry is a `PUT` of that id, so a Bundle
//! sent twice (a retry after a lost answer, a resumed run delivering again) leaves the server as
//! one delivery would. A server that does not answer, or answers 429 or 5xx, is tried again with
//! a doubling backoff; any other refusal is an error that names the status and what the server
//! said. The flush returns only once the server has accepted everything.

pub mod resources;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::jsonl::JsonLines;
use super::{AlertSink, SinkContext, SinkError, SinkKind};
use crate::alerting::Alert;
use crate::component::{Problem, Section};

/// The `[[sinks]]` of FHIR output.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSinkConfig {
    /// An NDJSON file of resources.
    pub path: Option<PathBuf>,
    /// A FHIR server's base URL (`http://ehr.example/fhir`).
    pub url: Option<String>,
    /// How many times a Bundle is tried again before the run fails.
    #[serde(default = "FhirSinkConfig::default_retries")]
    pub retries: u32,
}

impl FhirSinkConfig {
    fn default_retries() -> u32 {
        8
    }
}

impl SinkKind for FhirSinkConfig {
    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.path.is_none() && self.url.is_none() {
            problems.push(section.problem(
                "kind",
                "a fhir sink needs `path` (an NDJSON file), `url` (a FHIR server's base), or both",
            ));
        }
        if let Some(url) = &self.url
            && !url.starts_with("http://")
        {
            problems.push(section.problem(
                "url",
                format!("`url` {url:?} must be http://host[:port]/base (HTTPS is not built in yet: put a TLS proxy in front)"),
            ));
        }
        problems
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(path) = &mut self.path
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
    }

    fn build(&self, cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError> {
        let file = match &self.path {
            Some(path) => Some(
                match cx.resume {
                    true => JsonLines::resume(path),
                    false => JsonLines::create(path),
                }
                .map_err(|source| SinkError {
                    sink: format!("FHIR file {}", path.display()),
                    source,
                })?,
            ),
            None => None,
        };
        let server = self.url.as_ref().map(|url| Server {
            url: url.trim_end_matches('/').to_owned(),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(30)))
                .http_status_as_error(false)
                .build()
                .into(),
            retries: self.retries,
            pending: Vec::new(),
        });
        Ok(Box::new(FhirSink {
            file,
            server,
            scores: Default::default(),
        }))
    }
}

/// FHIR output: the file, the server, or both.
pub struct FhirSink {
    file: Option<JsonLines>,
    server: Option<Server>,
    /// Each patient's score Observation in force (the last score update's).
    scores: std::collections::HashMap<String, String>,
}

struct Server {
    url: String,
    agent: ureq::Agent,
    retries: u32,
    /// Resources not yet accepted by the server.
    pending: Vec<J>,
}

/// Entries per Bundle.
const BUNDLE_ENTRIES: usize = 300;

impl Server {
    /// Sends everything pending, a Bundle at a time.
    fn deliver(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BUNDLE_ENTRIES);
            let bundle = transaction(&self.pending[..n]);
            self.post(&bundle.to_string())?;
            self.pending.drain(..n);
        }
        Ok(())
    }

    fn post(&self, body: &str) -> io::Result<()> {
        let mut wait = Duration::from_millis(100);
        for attempt in 0..=self.retries {
            let outcome = self
                .agent
                .post(&self.url)
                .header("Content-Type", "application/fhir+json")
                .header("Accept", "application/fhir+json")
                .send(body);
            let retry = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if (200..300).contains(&status) {
                        return Ok(());
                    }
                    let said = response
                        .into_body()
                        .read_to_string()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>();
                    if status != 429 && status < 500 {
                        return Err(io::Error::other(format!(
                            "{} refused the Bundle: HTTP {status}: {said}",
                            self.url
                        )));
                    }
                    format!("HTTP {status}: {said}")
                }
                Err(e) => e.to_string(),
            };
            if attempt == self.retries {
                return Err(io::Error::other(format!(
                    "{} did not accept the Bundle after {} tries: {retry}",
                    self.url,
                    attempt + 1
                )));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(10));
        }
        Ok(())
    }
}

/// A transaction Bundle of `PUT`s, each resource at its own id.
fn transaction(resources: &[J]) -> J {
    let entries: Vec<J> = resources
        .iter()
        .map(|r| {
            let kind = r["resourceType"].as_str().unwrap_or_default();
            let id = r["id"].as_str().unwrap_or_default();
            json!({
                "fullUrl": format!("{kind}/{id}"),
                "resource": r,
                "request": {"method": "PUT", "url": format!("{kind}/{id}")},
            })
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

impl FhirSink {
    fn emit(&mut self, resource: J) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.write_record(&resource)?;
        }
        if let Some(server) = &mut self.server {
            server.pending.push(resource);
        }
        Ok(())
    }
}

impl AlertSink for FhirSink {
    fn backlog(&self) -> u64 {
        self.server.as_ref().map_or(0, |s| s.pending.len() as u64)
    }

    /// Alerts come sorted by time and patient, and a score update after the alerts of its
    /// instant: within one patient's instant the update is written first, so that its alerts
    /// are about the score they were raised on.
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for instant in alerts.chunk_by(|a, b| a.time_us == b.time_us && a.patient == b.patient) {
            // (Reminders, board state too, have no resource: the score Observation in force
            // says the band is still raised.)
            let updates = instant.iter().filter(|a| a.is_score_update());
            for alert in updates.chain(instant.iter().filter(|a| a.pages())) {
                if alert.is_score_update() {
                    let id = format!("news2-{}", alert.id);
                    self.scores.insert(alert.patient.clone(), id);
                }
                let score = self.scores.get(&alert.patient).map(String::as_str);
                for resource in resources::of_alert(alert, score) {
                    self.emit(resource)?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            AlertSink::flush(file)?;
        }
        if let Some(server) = &mut self.server {
            server.deliver()?;
        }
        Ok(())
    }

    fn board_state(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            parts.push(format!("FHIR file {}", file.path().display()));
        }
        if let Some(server) = &self.server {
            parts.push(format!("FHIR server {}", server.url));
        }
        parts.join(" and ")
    }
}
