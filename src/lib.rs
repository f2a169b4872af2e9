//! Vigil: a streaming analytics and early-warning engine for the Internet of Medical Things.
//!
//! The library holds the engine; the `vigil` binary only assembles it. Data flows one way:
//! sources → [`observation`] (decode and validate) → windows → [`news2`] and the risk model →
//! alert policy → sinks. The domain modules ([`exact`], [`observation`], [`news2`]) are pure: they
//! know nothing of Kafka, files or timely.

pub mod alerting;
pub mod archive;
pub mod audit;
pub mod bench;
pub mod component;
pub mod config;
pub mod exact;
pub mod export;
pub mod formats;
pub mod kafka;
pub mod metrics;
pub mod monitor;
pub mod news2;
pub mod observation;
pub mod picture;
pub mod pipeline;
pub mod prefetch;
pub mod pseudonym;
pub mod registry;
pub mod risk;
pub mod rules;
pub mod sinks;
pub mod sources;
pub mod training;
pub mod windows;
