//! The teaching tools around the live connection.
//!
//! - [`explain`]: why each handshake step matters, in plain words;
//! - [`schedule`]: the key schedule view's model, and for each value the
//!   command that recomputes it (`--reveal`);
//! - [`lab`]: the tamper lab's cases and the hooks that do the tampering;
//! - `demo`: the demo's two bots;
//! - `keylog`: the NSS key log (`--keylog`, `SSLKEYLOGFILE`);
//! - [`pcap`]: `--pcap`'s capture file.

pub(crate) mod demo;
pub mod explain;
pub(crate) mod keylog;
pub mod lab;
pub mod pcap;
pub mod schedule;
