//! Replay of a Parquet archive (see [`crate::archive`]): every archived record in event-time
//! order, optionally limited to a time range and to some patients, each with the verdict the live
//! run gave it ([`Archived`]).
//!
//! The pipeline takes those verdicts as recorded rather than judge the records again: a record
//! that arrived late live is late in the replay (not processed), and one held aside for its
//! device's clock is held again, at the time it was held, so that a replay gives the alerts the
//! live run gave. Impossible values come back as rejections of a known patient, as they were
//! live. A held record is replayed at the time it was held (its `clock`), not at its own.

use std::collections::HashSet;
use std::path::Path;

use super::{Archived, Position, Progress, Recorded, Rejected, Source, SourceError, SourceItem};
use crate::archive::{self, ArchiveError, Row};
use crate::observation::{EventTime, Observation, Subject};

fn position(row: &Row) -> Option<Position> {
    row.offset.map(|offset| Position {
        partition: row.partition,
        offset,
        entry: row.entry,
    })
}

/// Event-time order (a held record at the time it was held), with a total order for ties
/// (ingest order last).
fn order(
    row: &Row,
) -> (
    i64,
    &str,
    crate::observation::Vital,
    Option<&str>,
    i64,
    Option<i64>,
) {
    let time = match row.held {
        Some(_) => row.clock_us,
        None => row.time.micros(),
    };
    (
        time,
        row.patient.as_str(),
        row.vital,
        row.device.as_ref().map(|d| d.as_str()),
        row.ingest_us,
        row.offset,
    )
}

/// What to replay.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub from: Option<EventTime>,
    pub to: Option<EventTime>,
    /// Only these patients, when not empty.
    pub patients: HashSet<String>,
    /// Only rows from this source (`kafka:vitals`), when set.
    pub source: Option<String>,
    /// Only rows from these Kafka partitions, when set.
    pub partitions: Option<Vec<i32>>,
    /// Only rows that happened, or were judged (their partition's clock), from this instant on
    /// (µs): a restart from a snapshot replays the archive after it.
    pub since_us: Option<i64>,
}

impl Selection {
    fn admits(&self, row: &Row) -> bool {
        self.from.is_none_or(|f| row.time >= f)
            && self
                .since_us
                .is_none_or(|s| row.time.micros() >= s || row.clock_us >= s)
            && self.to.is_none_or(|t| row.time < t)
            && (self.patients.is_empty() || self.patients.contains(row.patient.as_str()))
            && self
                .partitions
                .as_ref()
                .is_none_or(|ps| row.partition.is_some_and(|p| ps.contains(&p)))
    }
}

/// An archive as a source.
pub struct ArchiveReplay {
    merge: Merge,
    done: usize,
    total: usize,
}

impl ArchiveReplay {
    /// Loads the selected rows of the archive under `dir`, decrypting them with `key`.
    pub fn open(
        dir: &Path,
        selection: &Selection,
        key: Option<&archive::ArchiveKey>,
    ) -> Result<ArchiveReplay, SourceError> {
        let to_source = |e: ArchiveError| match e {
            ArchiveError::Io { path, source } => SourceError::Io { path, source },
            ArchiveError::Format { path, reason } => SourceError::Format { path, reason },
        };
        let files = archive::files(dir).map_err(to_source)?;
        if files.is_empty() {
            return Err(SourceError::Format {
                path: dir.to_owned(),
                reason: "no archive files (observations/date=*/part-*.parquet)".into(),
            });
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runs = read_sorted(&files, selection, key, threads).map_err(to_source)?;
        let total = runs.iter().map(Vec::len).sum();
        Ok(ArchiveReplay {
            merge: Merge::new(runs),
            done: 0,
            total,
        })
    }

    /// Rows to replay.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// Each file's selected rows, sorted, in file order: the files are read (decoded, decrypted,
/// sorted) on up to `threads` threads, as a replay's start is mostly this.
fn read_sorted(
    files: &[std::path::PathBuf],
    selection: &Selection,
    key: Option<&archive::ArchiveKey>,
    threads: usize,
) -> Result<Vec<Vec<Row>>, ArchiveError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let read = |file: &Path| -> Result<Vec<Row>, ArchiveError> {
        let rows: Vec<Row> =
            archive::read_file_since(file, selection.source.as_deref(), key, selection.since_us)?
                .into_iter()
                .filter(|r| selection.admits(r))
                .collect();
        Ok(sorted(rows))
    };
    let mut runs: Vec<(usize, Result<Vec<Row>, ArchiveError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.clamp(1, files.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else {
                            return mine;
                        };
                        mine.push((i, read(file)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, rows)| rows).collect()
}

/// For each name, 1 + its place among the distinct names sorted (0 for none, which `Option`
/// orders first): one hash a name, and a sort of the few distinct ones.
fn ranks<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<u32> {
    let mut first: std::collections::HashMap<&'a str, u32> = std::collections::HashMap::new();
    let mut seen: Vec<u32> = names
        .map(|name| {
            name.map_or(0, |name| {
                let next = first.len() as u32 + 1;
                *first.entry(name).or_insert(next)
            })
        })
        .collect();
    let mut distinct: Vec<(&str, u32)> = first.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0; distinct.len() + 1];
    for (place, (_, id)) in distinct.into_iter().enumerate() {
        rank[id as usize] = place as u32 + 1;
    }
    for id in &mut seen {
        *id = rank[*id as usize];
    }
    seen
}

/// `rows` in [`order`], stably. A row is large and an archive's rows are far from that order
/// within an event time, so this sorts small keys (names as ranks) and moves each row once.
fn sorted(rows: Vec<Row>) -> Vec<Row> {
    let permutation: Vec<u32> = {
        let patient = ranks(rows.iter().map(|r| Some(r.patient.as_str())));
        let device = ranks(rows.iter().map(|r| r.device.as_ref().map(|d| d.as_str())));
        let mut keys: Vec<_> = rows
            .iter()
            .zip(0u32..)
            .map(|(row, i)| {
                let (time, _, vital, _, ingest, offset) = order(row);
                // The index last keeps ties in their first order.
                let at = i as usize;
                (time, patient[at], vital, device[at], ingest, offset, i)
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.6).collect()
    };
    let mut slots: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
    permutation
        .into_iter()
        .filter_map(|i| slots[i as usize].take())
        .collect()
}

/// The sorted runs as one sequence in [`order`], read where they lie (a row is large, and
/// moving a million into one vector took a quarter of a second); of equal rows, the earlier
/// run's first, which is what one stable sort of the files' rows, one after the other, gives.
/// An archive's files mostly follow one another in time, so each step gives the whole stretch
/// of the leading run that comes before every other run's next row (by binary search).
struct Merge {
    runs: Vec<Vec<Row>>,
    /// Each run's next row.
    next: Vec<usize>,
}

impl Merge {
    fn new(runs: Vec<Vec<Row>>) -> Merge {
        let next = vec![0; runs.len()];
        Merge { runs, next }
    }

    fn rest(&self, run: usize) -> &[Row] {
        &self.runs[run][self.next[run]..]
    }

    /// The next stretch of rows in order, as its run and how many; `None` at the end.
    fn stretch(&self) -> Option<(usize, usize)> {
        let mut best: Option<(usize, &Row)> = None;
        for run in 0..self.runs.len() {
            let Some(row) = self.rest(run).first() else {
                continue;
            };
            // Strictly less: a tie keeps the earlier run's row.
            if best.is_none_or(|(_, b)| order(row) < order(b)) {
                best = Some((run, row));
            }
        }
        best.map(|(lead, _)| (lead, self.before_the_others(lead)))
    }

    /// How many of run `lead`'s next rows come before every other run's next row: those equal
    /// to a later run's row come first, those equal to an earlier run's do not. At least one,
    /// as `lead`'s next row is the least (and the earliest run's of equal ones).
    fn before_the_others(&self, lead: usize) -> usize {
        let rows = self.rest(lead);
        let mut stretch = rows.len();
        for run in (0..self.runs.len()).filter(|&r| r != lead) {
            let Some(next) = self.rest(run).first() else {
                continue;
            };
            let next = order(next);
            let before = if lead < run {
                rows.partition_point(|r| order(r) <= next)
            } else {
                rows.partition_point(|r| order(r) < next)
            };
            stretch = stretch.min(before);
        }
        stretch.max(1)
    }

    /// Up to `max` rows in order, each given to `emit`; how many.
    fn take(&mut self, max: usize, mut emit: impl FnMut(&Row)) -> usize {
        let mut n = 0;
        while n < max {
            let Some((run, stretch)) = self.stretch() else {
                break;
            };
            let take = stretch.min(max - n);
            self.rest(run)[..take].iter().for_each(&mut emit);
            self.next[run] += take;
            n += take;
            if self.rest(run).is_empty() {
                // A file replayed to its end gives its memory back.
                self.runs[run] = Vec::new();
                self.next[run] = 0;
            }
        }
        n
    }
}

impl Source for ArchiveReplay {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        self.done += self.merge.take(max, |row| {
            out.push(SourceItem::Archived(Box::new(archived(row))))
        });
        Ok(self.done < self.total)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.done as u64,
            total: Some(self.total as u64),
        }
    }

    /// Rows are sorted by event time when the archive is opened.
    fn time_ordered(&self) -> bool {
        true
    }
}

/// A row as the record it was, with its verdict.
fn archived(row: &Row) -> Archived {
    let verdict = match (row.held, row.processed) {
        (Some(kind), _) => Recorded::Held(kind),
        (None, true) => Recorded::OnTime,
        (None, false) => Recorded::Late,
    };
    let rejected = |reason: String, subject: Option<Subject>| {
        SourceItem::Rejected(Rejected {
            position: format!("archive offset {:?}", row.offset),
            at: position(row),
            reason,
            field: Some("value"),
            subject,
            raw: None,
        })
    };
    let item = match (&row.invalid_reason, row.held) {
        (Some(reason), None) => rejected(
            reason.clone(),
            Some(Subject {
                patient: row.patient.clone(),
                time: row.time,
                vital: row.vital,
            }),
        ),
        _ => match Observation::with_detail(
            row.patient.clone(),
            row.device.clone(),
            row.time,
            row.vital,
            row.value,
            row.unit,
            row.detail.clone(),
        ) {
            Ok(obs) => SourceItem::Observation(obs, position(row)),
            // An impossible value held for its clock (its reason is the hold's): held again,
            // so that its patient hears of the clock as they did live.
            Err(e) => rejected(
                e.to_string(),
                row.held.map(|_| Subject {
                    patient: row.patient.clone(),
                    time: row.time,
                    vital: row.vital,
                }),
            ),
        },
    };
    Archived {
        item,
        verdict,
        clock_us: row.clock_us,
        ingest_us: row.ingest_us,
        reason: row.held.and(row.invalid_reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Identifier, Unit, Value, Vital};
    use proptest::prelude::*;

    /// The runs' rows in the merge's order, by the tag each row carries.
    fn merged(runs: Vec<Vec<Row>>) -> Vec<Value> {
        let mut merge = Merge::new(runs);
        let mut tags = Vec::new();
        // A few rows a call, as the replay's batches cut stretches.
        while merge.take(3, |row| tags.push(row.value)) > 0 {}
        tags
    }

    fn row(patient: &str, time: i64, ingest_us: i64, tag: usize) -> Row {
        let obs = Observation::new(
            Identifier::new(patient).unwrap(),
            None,
            EventTime::from_micros(time),
            Vital::HeartRate,
            Value::Number(60.0),
            Some(Unit::PerMinute),
        )
        .unwrap();
        let mut row = Row::observation(&obs, ingest_us, None, true, time);
        // What the order does not look at, to tell equal rows apart.
        row.value = Value::Number(tag as f64);
        row
    }

    proptest! {
        /// Files read and sorted apart (by ranks), then merged, give one stable sort (by the
        /// rows' own order) of all their rows.
        #[test]
        fn sorted_merged_runs_are_the_stable_sort_of_the_files_rows(
            rows in proptest::collection::vec(
                (0usize..3, 0i64..4, 0usize..2, 0usize..3, 0i64..2), 0..60)
        ) {
            let made: Vec<(usize, Row)> = rows
                .iter()
                .enumerate()
                .map(|(tag, &(file, t, p, d, ingest))| {
                    let mut r = row(["b", "a"][p], t, ingest, tag);
                    r.device = [None, Identifier::new("m2").ok(), Identifier::new("m1").ok()][d].clone();
                    (file, r)
                })
                .collect();
            let mut runs: Vec<Vec<Row>> = vec![Vec::new(); 3];
            for (file, r) in &made {
                runs[*file].push(r.clone());
            }
            let mut all: Vec<Row> = runs.iter().flatten().cloned().collect();
            all.sort_by(|a, b| order(a).cmp(&order(b)));
            let runs: Vec<Vec<Row>> = runs.into_iter().map(sorted).collect();
            let tags = |rows: &[Row]| rows.iter().map(|r| r.value).collect::<Vec<_>>();
            prop_assert_eq!(merged(runs), tags(&all));
        }

        /// Files that mostly follow one another in time (an archive's), overlapping at their
        /// edges, merge in stretches to the same stable sort.
        #[test]
        fn runs_that_follow_one_another_merge_to_the_stable_sort(
            rows in proptest::collection::vec((0usize..4, 0i64..6, 0usize..2, 0i64..2), 0..120)
        ) {
            let mut runs: Vec<Vec<Row>> = vec![Vec::new(); 4];
            for (tag, &(file, t, p, ingest)) in rows.iter().enumerate() {
                runs[file].push(row(["b", "a"][p], file as i64 * 4 + t, ingest, tag));
            }
            let mut all: Vec<Row> = runs.iter().flatten().cloned().collect();
            all.sort_by(|a, b| order(a).cmp(&order(b)));
            let runs: Vec<Vec<Row>> = runs.into_iter().map(sorted).collect();
            let tags = |rows: &[Row]| rows.iter().map(|r| r.value).collect::<Vec<_>>();
            prop_assert_eq!(merged(runs), tags(&all));
        }
    }
}
