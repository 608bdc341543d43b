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
//!  tui: app (model), ui (view), terminal    keys -> App::update -> Intents
//!         ^  NetEvent            | Intent         (tokio mpsc, bounded)
//!         |                      v
//!  net (tokio)               sockets, one task per connection, the relay's task
//!         ^                      |
//!  chat (sans-IO)            frames on ALPN tlschat/1, signed messages, the
//!                            relay's ordering, the member's checks, MLS
//!         ^                      |
//!  tls (sans-IO engine)      bytes in -> bytes out + events; no tokio, no
//!                            clock, no OS randomness (all injected)
//! ```
//!
//! # The path of a line, both ways
//!
//! From an author's key press to the relay:
//!
//! ```text
//!  key press -> tui::app::App::update -> Update { intents: [Intent::Say] }
//!    -> (first contact: store::pins::gate holds it until the key is trusted)
//!    -> net::session (the client's task): chat::Member::say signs it,
//!       chat::Frame::Post, tls::Connection seals a record -> socket
//! ```
//!
//! Through the relay (`tlschat listen`):
//!
//! ```text
//!  socket -> net::session (the seat's task): tls opens the record,
//!    chat::FrameBuffer cuts the frame, chat::relay::Inbound::check checks
//!    the signature (the proof, chat::message::Verified)
//!    -> net::relay (the room's task, which only orders): chat::Relay::frame
//!       numbers it (room_seq) and decides who gets it (relay::Decision)
//!    -> each reader's seat task: one record per batch -> socket
//! ```
//!
//! From the socket to a reader's screen:
//!
//! ```text
//!  socket -> net::session: tls opens the record, chat::FrameBuffer,
//!    chat::Member checks signature, chain, time and name binding
//!    -> NetEvent::Chat on the channel
//!    -> (first contact: the trust gate; the TUI: present::logfile's tee,
//!       which hands the log's words to a thread of its own)
//!    -> tui::terminal's loop -> App::update -> tui::ui draws the frame
//!       (headless: present::report::words prints the lines or the JSON)
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
