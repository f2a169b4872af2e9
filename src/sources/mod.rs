//! Sources: where observations come from. Each produces [`SourceItem`]s in arrival order, with
//! event times; the dataflow orders them by event time (see [`crate::pipeline`]).
//!
//! A source never drops a record silently: what is not an observation comes out as a
//! [`Rejected`] item with its position and reason, for the dead-letter output and, when the
//! patient and vital are known, a data-quality alert.
//!
//! Each kind of source a pipeline can name is a folder here: its config (deserialised from the
//! `[source]` section, checked with line-accurate problems by [`SourceKind::validate`]) and what
//! it builds. Adding one is its folder and one line in the `components!` list below.

pub mod archive;
pub mod azt1d;
pub mod home;
pub mod jsonl;
pub mod kafka;
pub mod mllp;
pub mod paced;
pub mod physionet;
pub mod resume;
pub mod simulator;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use thiserror::Error;

use crate::component::{Problem, Section};
use crate::observation::{Observation, Rejection, Subject};

/// Where a record was in its source: a Kafka partition and offset, or a line of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub partition: Option<i32>,
    pub offset: i64,
    /// Which part of a message of many observations (a FHIR Bundle's entry, an HL7 OBX segment).
    pub entry: Option<u32>,
}

impl Position {
    /// Line `n` (1-based) of a file.
    pub fn line(n: u64) -> Position {
        Position {
            partition: None,
            offset: n as i64,
            entry: None,
        }
    }

    /// The same message, part `entry`.
    pub fn with_entry(self, entry: Option<u32>) -> Position {
        Position { entry, ..self }
    }
}

/// One record from a source.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem {
    /// An observation, with its position in the source when it has one.
    Observation(Observation, Option<Position>),
    Rejected(Rejected),
    /// A record read back from the archive, with what the run that archived it decided.
    Archived(Box<Archived>),
}

impl SourceItem {
    /// When it happened (µs), if known; for a record held aside in the archive, when it was held.
    pub fn time_us(&self) -> Option<i64> {
        match self {
            SourceItem::Observation(o, _) => Some(o.time().micros()),
            SourceItem::Rejected(r) => r.subject.as_ref().map(|s| s.time.micros()),
            SourceItem::Archived(a) => match a.verdict {
                Recorded::Held(_) => Some(a.clock_us),
                _ => a.item.time_us(),
            },
        }
    }

    /// Where it was in its source, when it has a position.
    pub fn position(&self) -> Option<Position> {
        match self {
            SourceItem::Observation(_, at) => *at,
            SourceItem::Rejected(r) => r.at,
            SourceItem::Archived(a) => a.item.position(),
        }
    }
}

/// A record of the archive (an observation, or an impossible value of a known patient as a
/// [`Rejected`] with its subject) and the verdict it was given when it arrived: a replay and a
/// resumed run take the verdict as recorded rather than judge the record again.
#[derive(Clone, Debug, PartialEq)]
pub struct Archived {
    pub item: SourceItem,
    pub verdict: Recorded,
    /// Its partition's event-time clock when it was judged.
    pub clock_us: i64,
    /// When it reached Vigil (wall clock, µs).
    pub ingest_us: i64,
    /// Why it was held, when it was.
    pub reason: Option<String>,
}

/// The verdict an archived record was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Processed in time.
    OnTime,
    /// Arrived later than the allowed lateness: archived, not processed.
    Late,
    /// Its device's clock could not be believed: archived, reported, not processed.
    Held(crate::monitor::events::HoldKind),
}

/// A record that is not an observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// Where it was: `line 17`, `p000012.psv line 5`.
    pub position: String,
    /// Its position in the source, when it has one.
    pub at: Option<Position>,
    /// Why, naming the field.
    pub reason: String,
    /// The wire field at fault, when one is.
    pub field: Option<&'static str>,
    /// The patient, time and vital, when they could be read.
    pub subject: Option<Subject>,
    /// The record as received (for the dead-letter output), when it is text.
    pub raw: Option<String>,
}

impl Rejected {
    /// A rejected wire message.
    pub fn from_rejection(
        position: String,
        at: Option<Position>,
        rejection: Rejection,
        raw: Option<String>,
    ) -> Rejected {
        Rejected {
            position,
            at,
            reason: rejection.error.to_string(),
            field: rejection.error.field(),
            subject: rejection.subject,
            raw,
        }
    }
}

/// The items of one message of many parts (FHIR, HL7 v2), read at `position` (labelled `label`:
/// `line 4`, `message 3`): each observation with its part, each problem as a rejection naming
/// where it was in the message. `raw` is the message, kept (up to 4 KiB) with each rejection.
pub fn push_decoded(
    label: &str,
    position: Position,
    raw: &[u8],
    decoded: impl Iterator<Item = crate::formats::Decoded>,
    out: &mut Vec<SourceItem>,
) {
    for part in decoded {
        match part {
            Ok(part) => out.push(SourceItem::Observation(
                part.obs,
                Some(position.with_entry(part.entry)),
            )),
            Err(problem) => out.push(SourceItem::Rejected(Rejected {
                position: match problem.path.is_empty() {
                    true => label.to_owned(),
                    false => format!("{label} {}", problem.path),
                },
                at: Some(position.with_entry(problem.entry)),
                reason: problem.reason,
                field: None,
                subject: problem.subject,
                raw: Some(String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned()),
            })),
        }
    }
}

/// How far a finite source has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// Where a drain that read nothing for its idle time stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained {
    /// Read to its end: the run may stop.
    Done,
    /// Behind its end with no error reported (a broker slow to answer on a loaded machine):
    /// the run reads on, and asks again. Says where the source stands.
    Behind(String),
}

/// A source of observations.
pub trait Source: Send {
    /// Appends up to about `max` items to `out`; returns `false` once the source is exhausted.
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError>;

    /// How far the source has come (for progress bars).
    fn progress(&self) -> Progress;

    /// How many partitions this source reads interleaved, when more than one stream of its own
    /// order is mixed (Kafka): the watermark then follows the slowest of them.
    fn expected_partitions(&self) -> Option<usize> {
        None
    }

    /// The positions of what `fill` has returned so far (never of what a wrapper still holds), to
    /// commit once it is durable; `None` for sources that keep no positions.
    fn checkpoint(&self) -> Option<Checkpoint> {
        None
    }

    /// What a source resumed over its archive has done (see [`resume`]); zero for the others.
    fn resumed(&self) -> Resumed {
        Resumed::default()
    }

    /// Commits a checkpoint: everything read up to it is durable and its alerts delivered.
    fn commit(&mut self, _checkpoint: &Checkpoint) -> Result<(), SourceError> {
        Ok(())
    }

    /// Whether records arrive as they happen (Kafka), so that a time far ahead of the wall clock
    /// at ingest cannot be believed; a file or a dataset replays the past at any speed.
    fn live(&self) -> bool {
        false
    }

    /// The partitions this source reads, when it reads some of a topic's: a resumed run replays
    /// the archive's rows of those.
    fn partitions(&self) -> Option<Vec<i32>> {
        None
    }

    /// Each partition's lag: messages between the position and the partition's end, as last
    /// heard from the broker (without asking it). Empty for a source without partitions.
    fn lag(&self) -> Vec<(i32, i64)> {
        Vec::new()
    }

    /// Partitions that cannot be read on, newly found: their patients go unmonitored (checked
    /// every batch; a source checks at its own pace).
    fn stalled(&mut self) -> Vec<kafka::Stall> {
        Vec::new()
    }

    /// Asked when a drain (`--exit-when-idle`) has read nothing for `silent` (at least its idle
    /// time): whether the source was read to its end, or is behind it with nothing wrong (read
    /// on); an error if it cannot be read to its end.
    fn drained(&mut self, _silent: std::time::Duration) -> Result<Drained, SourceError> {
        Ok(Drained::Done)
    }

    /// Whether the source gives its records in event-time order by construction (a dataset
    /// replay sorts them): then no record is late and no device's clock is judged.
    fn time_ordered(&self) -> bool {
        false
    }

    /// Sends a record the pipeline held aside (a device clock that cannot be believed) where the
    /// source keeps its dead letters, with the reason: `wire` is the record in the wire format,
    /// `patient` its patient.
    fn dead_letter(
        &mut self,
        _at: Option<Position>,
        _patient: &str,
        _wire: &str,
        _reason: &str,
    ) -> Result<(), SourceError> {
        Ok(())
    }
}

/// What a resumed source did: rows replayed from the archive to rebuild patients' state, and
/// messages read again from the topic and skipped because the archive already held them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    pub restored: u64,
    pub skipped: u64,
}

/// Positions to commit: per partition, the next offset to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub offsets: Vec<(i32, i64)>,
}

/// A source that cannot go on.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("kafka: {reason}")]
    Kafka { reason: String },
}

/// What a source's config builds.
pub enum Built {
    /// One source, read by worker 0.
    One(Box<dyn Source>),
    /// A source per worker, built on its thread (Kafka: each takes its share of partitions).
    PerWorker(SourceFactory),
}

/// Builds worker `w` of `n`'s source.
pub type SourceFactory =
    Arc<dyn Fn(usize, usize) -> Result<Box<dyn Source>, SourceError> + Send + Sync>;

/// What building a source may need from the run.
#[derive(Clone, Default)]
pub struct BuildContext {
    /// Raised to stop reading (SIGINT, SIGTERM).
    pub stop: Arc<AtomicBool>,
}

/// A kind of source, as a pipeline's `[source]` section configures it.
pub trait SourceKind {
    /// How the archive names it in its `source` column (`kafka:vitals`).
    fn name(&self) -> String;

    /// What deserialising cannot check, each problem at the line of its key.
    fn validate(&self, _section: &Section) -> Vec<Problem> {
        Vec::new()
    }

    /// Makes relative paths relative to the pipeline file's directory `base`.
    fn resolve_paths(&mut self, _base: &Path) {}

    /// How its messages are written (the archive's `format` column), when it reads messages.
    fn format(&self) -> Option<crate::formats::InputFormat> {
        None
    }

    /// Whether its records come in partitions that every worker of every process reads a
    /// share of (a Kafka topic). Otherwise one reader, worker 0, reads them all: the other
    /// processes of a cluster build nothing, and worker 0 is given fewer patients.
    fn partitioned(&self) -> bool {
        false
    }

    /// The running source.
    fn build(&self, cx: &BuildContext) -> Result<Built, SourceError>;
}

crate::component::components! {
    /// Where observations come from: a pipeline's `[source]`, by its `kind`.
    SourceConfig: dyn SourceKind, in "source", kinds KINDS {
        /// The built-in deterministic cohort simulator.
        "simulator" => Simulator(simulator::SimulatorConfig),
        /// A file of wire-format JSON lines (`-`: standard input).
        "jsonl" => Jsonl(jsonl::JsonlConfig),
        /// PhysioNet/CinC 2019: a directory of hourly `.psv` files, one per patient.
        "physionet2019" => Physionet2019(physionet::Physionet2019),
        /// PhysioNet/CinC 2012: a directory of long-format `Time,Parameter,Value` files.
        "physionet2012" => Physionet2012(physionet::Physionet2012),
        /// A Kafka topic of wire-format (or FHIR, or HL7 v2) messages.
        "kafka" => Kafka(kafka::KafkaSourceConfig),
        /// A live HL7 v2 MLLP listener, acknowledging each message once it is durable.
        "mllp" => Mllp(mllp::MllpConfig),
        /// AZT1D: a directory of `Subject N.csv` CGM traces.
        "azt1d" => Azt1d(azt1d::Azt1dConfig),
        /// A simulated home cohort: CGMs, pumps, pill bottles, inhalers.
        "home" => Home(home::HomeConfig),
    }
}

/// How a source is named in the archive's `source` column.
pub fn describe(config: &SourceConfig) -> String {
    config.kind().name()
}
