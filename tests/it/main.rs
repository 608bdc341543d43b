//! tlschat's integration tests, as one test crate (one binary to link),
//! in folders by layer. Run them all with `cargo test`, one folder with
//! `cargo test --test it engine::`, one file with `cargo test --test it
//! chat::room::`.
//!
//! Two helper modules serve them all: [`engine_pair`] pumps a client and a
//! server engine against each other in memory; [`programs`] runs the
//! `tlschat` binary and the peers (OpenSSL, GnuTLS, tmux) as child
//! processes with deadlines.

mod engine_pair;
mod programs;

/// The TLS 1.3 engine in memory: handshakes, RFC 8446 rules, hostile
/// bytes, close_notify, the values `--reveal` shows.
mod engine {
    mod close_notify;
    mod conformance;
    mod handshake;
    mod hostile_input;
    mod reveal;
}

/// The engine against TLS stacks nobody here wrote: OpenSSL and curl,
/// GnuTLS, rustls.
mod interop {
    mod gnutls;
    mod openssl;
    mod rustls;
}

/// The chat over the network: the tokio driver, the room and its members,
/// resuming, the log on disk, the cluster, trust, a lying relay, MLS
/// updates.
mod chat {
    mod cluster;
    mod durable;
    mod e2e_update;
    mod hostile_relay;
    mod net;
    mod resume;
    mod room;
    mod trust;
}

/// The command line end to end: `listen`/`connect`, identities, the tamper
/// lab, `--pcap`.
mod cmd {
    mod cli;
    mod identity;
    mod lab;
    mod pcap;
}

/// The full-screen interface: ratatui's `TestBackend` (with insta
/// snapshots), and the real program in tmux.
mod tui {
    mod first_contact;
    mod terminal_injection;
    mod tmux;
    mod trust_tui;
    mod ui;
}
