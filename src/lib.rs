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
//! One folder per layer, from the wire up:
//!
//! - [`tls`]: the TLS 1.3 engine, sans-IO;
//! - [`chat`]: the chat protocol, sans-IO: frames, signed messages, the
//!   relay's ordering and the member's checks, MLS groups;
//! - [`net`]: the tokio driver of both: one task per connection, the
//!   relay's task, the NATS bus of a room served by several relays;
//! - [`store`]: what is kept on disk: where files live, the user's identity,
//!   pinned rooms, a room's keys, its name bindings and its log, and the
//!   keys and certificates made for them;
//! - [`present`]: peer text made safe for a terminal, and the words and
//!   JSON for each event;
//! - [`tui`]: the full-screen interface: model ([`tui::app`]), view
//!   ([`tui::ui`]) and the terminal's event loop;
//! - [`teach`]: the teaching tools: explanations, the key schedule view's
//!   model, the tamper lab, the demo's bots, the key log and `--pcap`;
//! - [`clock`]: the wall clock, read in one place, and its dates;
//! - [`cmd`]: each command's work once the command line is read, and the
//!   one-line error every failure becomes.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod chat;
pub mod clock;
pub mod cmd;
pub mod net;
pub mod present;
pub mod store;
pub mod teach;
pub mod tls;
pub mod tui;
