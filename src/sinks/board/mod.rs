//! The ward board: what clinicians see, live. Served by `vigil run ... --board ADDR` (the
//! server comes with the HTTP stack in a later commit); this module holds what it shows,
//! [`state`], built from the board-state stream (score updates, reminders, acknowledgements)
//! and the alerts to people, in the sinks' deterministic order.

pub mod state;

pub use state::BoardState;
