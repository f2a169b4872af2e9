//! Cluster mode: one run over several processes, on timely's own cluster (`vigil run
//! PIPELINE --processes N --process I --hosts FILE`), every worker of every process reading its
//! share of the topic's partitions.
//!
//! Invariants:
//! - Worker indices are global: process `I` runs workers `I·threads .. (I+1)·threads`. A
//!   partition's worker, a patient's worker and every archive file's name are therefore the
//!   same with one process or N of the same total.
//! - Process 0 alone reads a single-reader source (a file, the simulator, the MLLP listener),
//!   runs the ordered sinks, the board and the delivery log, and records acknowledgements.
//!   Every process archives what its own workers read, into the one archive directory they all
//!   see (a shared file system when they are on different machines).
//! - What the durability protocol shares between workers ([`super::durability::Delivery`]) is
//!   mirrored between processes ([`mirror`]): a worker commits its partitions' offsets only
//!   once process 0 has delivered the alerts they led to, and process 0's delivered line waits
//!   for every process's archive.
//! - Timely is fail-stop: when one process dies the others' workers fail with it, and nothing
//!   was committed past what is archived and delivered; a restart of all of them resumes over
//!   the archive.

pub mod mirror;
#[cfg(test)]
mod tests;
pub mod wire;

use std::ops::Range;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// This process's place in a cluster of processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index, `0..addresses.len()`.
    pub process: usize,
    /// Every process's `host:port`, in process order (timely's hostfile).
    pub addresses: Vec<String>,
}

/// A cluster that cannot be formed as given.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot read the hosts file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", .path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "the hosts file {} lists {found} process{} but --processes is {processes}: one host:port \
         a line, one line per process",
        .path.display(),
        if *.found == 1 { "" } else { "es" }
    )]
    Count {
        path: PathBuf,
        found: usize,
        processes: usize,
    },
    #[error("--process {process} is not one of the {processes} processes (0 to {})", .processes - 1)]
    Process { process: usize, processes: usize },
}

impl Cluster {
    /// Process `process` of `processes`, whose addresses are in the hosts file `path`.
    pub fn from_hostfile(
        path: &Path,
        processes: usize,
        process: usize,
    ) -> Result<Cluster, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
            path: path.to_owned(),
            source,
        })?;
        Cluster::parse(&text, path, processes, process)
    }

    /// A hosts file's text: one `host:port` a line; blank lines and `#` comments are skipped.
    pub fn parse(
        text: &str,
        path: &Path,
        processes: usize,
        process: usize,
    ) -> Result<Cluster, ClusterError> {
        if process >= processes {
            return Err(ClusterError::Process { process, processes });
        }
        let mut addresses = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            check_address(entry).map_err(|reason| ClusterError::Line {
                path: path.to_owned(),
                line: i + 1,
                reason,
            })?;
            addresses.push(entry.to_owned());
        }
        if addresses.len() != processes {
            return Err(ClusterError::Count {
                path: path.to_owned(),
                found: addresses.len(),
                processes,
            });
        }
        Ok(Cluster { process, addresses })
    }

    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// The global indices of this process's workers, with `threads` workers a process.
    pub fn workers(&self, threads: usize) -> Range<usize> {
        self.process * threads..(self.process + 1) * threads
    }

    /// Timely's configuration of this process, with `threads` workers.
    pub fn config(&self, threads: usize) -> timely::Config {
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }

    /// Where this process writes a side file (dead letters, late observations) asked for at
    /// `path`: there for process 0, beside it with the process's index for the others
    /// (`rejected.jsonl` → `rejected.p1.jsonl`), so that processes sharing a directory do not
    /// write over each other.
    pub fn side_path(&self, path: &Path) -> PathBuf {
        if self.process == 0 {
            return path.to_owned();
        }
        let stem = path
            .file_stem()
            .map_or_else(Default::default, |s| s.to_string_lossy());
        let name = match path.extension() {
            Some(ext) => format!("{stem}.p{}.{}", self.process, ext.to_string_lossy()),
            None => format!("{stem}.p{}", self.process),
        };
        path.with_file_name(name)
    }
}

/// A `host:port` timely can listen at and connect to.
fn check_address(entry: &str) -> Result<(), String> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err(format!("{entry:?} is not host:port"));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{entry:?} has no host before its port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{entry:?}: {port:?} is not a port (1 to 65535)")),
    }
}
