//! tlschat: a terminal secure messenger over a TLS 1.3 written here from primitives.
//!
//! The `tlschat` binary is only its command line (`src/main.rs`); the
//! program is this library, so that tests link every part of it.
//!
//! # Layers
//!
//! ```text
//!  cmd (listen, connect, demo, id, trust)   wiring per command
//!         |
//!  app, ui, tui (ratatui)    renders state, turns keys into intents
//!         ^  NetEvent            | Intent         (tokio mpsc, bounded)
//!         |                      v
//!  net (tokio)               sockets, tasks, timers, caps; drives tls and chat
//!         ^                      |
//!  chat (sans-IO)            frames on ALPN tlschat/1, signed messages, the
//!                            room's fan-out decisions, the member's checks
//!         ^                      |
//!  tls (sans-IO engine)      bytes in -> bytes out + events; no tokio, no
//!                            clock, no OS randomness (all injected)
//! ```
//!
//! # Layout
//!
//! - [`cmd`]: each command's work once the command line is read, and the
//!   one-line [`cmd::Error`] every failure becomes;
//! - [`tls`]: the TLS 1.3 engine; [`chat`]: the chat protocol; [`net`]: the
//!   tokio driver of both, and [`net::HostPort`], an address as typed;
//! - [`app`], [`ui`], [`tui`]: the full-screen interface (model, view, terminal);
//! - [`report`]: how events are told in words and JSON; [`escape`]: peer
//!   text made safe for a terminal; [`explain`]: why each handshake step
//!   matters, in plain words; [`logfile`]: the TUI's log file;
//!   [`keylog`]: the NSS key log; [`pcap`]: `--pcap`'s capture file;
//!   [`schedule`]: the key schedule view's model and the commands that
//!   recompute each value (`--reveal`);
//! - [`home`]: where files live; [`identity`]: the user's key and name;
//!   [`trust`]: how servers are trusted, and the pins; [`room`]: a room's
//!   keys and name bindings; [`pki`]: keys and certificates; [`demo`]: the demo's bots;
//! - [`store`]: the room's log and name bindings on disk (redb);
//!   [`cluster`]: one room shared by several relays over NATS JetStream.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod app;
pub mod chat;
pub mod cluster;
pub mod cmd;
pub mod demo;
pub mod escape;
pub mod explain;
pub mod home;
pub mod identity;
pub mod keylog;
pub mod lab;
pub mod logfile;
pub mod net;
pub mod pcap;
pub mod pki;
pub mod report;
pub mod room;
pub mod schedule;
pub mod store;
pub mod tls;
pub mod trust;
pub mod tui;
pub mod ui;
