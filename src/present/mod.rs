//! How what happens is shown to people and programs.
//!
//! - `escape`: text a peer chose, made safe for a terminal; every string
//!   from the network passes through it before it is formatted;
//! - `report`: the words for each event (the TUI's notices, the headless
//!   lines, the log file) and its JSON object (`--json`);
//! - `logfile`: the TUI's log file, written on a thread of its own.

pub(crate) mod escape;
pub(crate) mod logfile;
pub(crate) mod report;
