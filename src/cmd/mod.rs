//! The commands: what `tlschat listen`, `connect`, `demo`, `id` and `trust`
//! do once the command line is read.
//!
//! `main.rs` parses the command line into each command's `Options` and
//! calls its `run`; everything after that lives here: the TLS
//! configuration (certificates, trust, suites, key log), the wiring of
//! stdin, the TUI and the [`NetEvent`] channel to the connection tasks of
//! [`crate::net`], and the headless log (formatted by `crate::present::report`).
//!
//! # Layout
//!
//! - this file: `Error`, [`Presentation`], [`TlsOptions`] and the helpers the
//!   commands share (stdin, the log file, the identity, the key log);
//! - [`connect`]: a client joined to a room, behind the trust gate;
//! - [`listen`]: a room (or an echo server) on a port;
//! - [`demo`]: a room, its bots (from `crate::teach::demo`) and the user, in one process;
//! - [`id`] and [`trust`]: the identity and the pinned rooms.
//!
//! # Errors
//!
//! Every failure is one `Error` (anyhow's), which `main` prints as one
//! line, `tlschat: <reason>`, with its causes after colons (`{:#}`).
//! Messages say what went wrong and what to do next.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::clock::unix_now;
use crate::net::{Intent, NetEvent};
use crate::present::logfile::{self, LogFile};
use crate::present::report::{self, Audience};
use crate::store::home::Home;
use crate::store::identity::{Identity, IdentityStore, Loaded};
use crate::teach::keylog::{KeyLogFile, Tee};
use crate::teach::pcap::Capture;
use crate::tls::{CipherSuite, KeyLog, OsRng};
use crate::tui::app::{Command, Typist};

/// Prints one line of the headless log. A closed stdout (`tlschat … | head`)
/// must not crash the program, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = writeln!(::std::io::stdout().lock(), $($arg)*);
    }};
}

mod client;
pub mod connect;
pub mod demo;
pub mod id;
mod lab;
pub mod listen;
pub mod trust;

/// Events waiting for the log; connections wait (not drop) when it is full.
const EVENT_QUEUE: usize = 256;
/// Lines typed ahead of a connection that cannot send yet.
const INPUT_QUEUE: usize = 64;

/// Why a command failed: a headline, with the causes beneath it.
///
/// The commands only report their failures, never match on them, so this
/// is [`anyhow::Error`]; `main` prints it with `{:#}`, one line:
/// `tlschat: <reason>: <cause>: <cause>`.
pub(crate) type Error = anyhow::Error;

/// How a command presents what happens on the terminal: the TUI, plain
/// lines, or JSON lines on stdout, and the TUI's bell and clock.
#[derive(Debug, Clone, Copy)]
pub struct Presentation {
    /// The full-screen interface (else the headless log on stdout).
    pub tui: bool,
    /// Headless, one JSON object per line.
    pub json: bool,
    /// Ring the terminal bell when a line mentions the user.
    pub bell: bool,
    /// How the TUI shows times: local, or UTC (`--utc`).
    pub clock: crate::tui::app::Clock,
}

impl Presentation {
    /// Prints an event's lines for `audience` (headless only).
    fn print(self, event: &NetEvent, audience: Audience) {
        if self.json {
            if let Some(value) = report::json(event) {
                say!("{value}");
            }
        } else {
            for line in report::lines(event, audience) {
                say!("{line}");
            }
        }
    }

    /// Prints a line of setup information: as `{"type":"info"}` in JSON.
    fn info(self, text: &str) {
        if self.json {
            say!("{}", serde_json::json!({"type": "info", "text": text}));
        } else {
            say!("{text}");
        }
    }
}

/// The TLS settings every command that makes connections takes.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Where to append session secrets (NSS key log format); without it, a
    /// non-empty `SSLKEYLOGFILE`.
    pub keylog: Option<PathBuf>,
    /// Where to write the session as a pcapng capture with its secrets
    /// embedded (`--pcap`).
    pub pcap: Option<PathBuf>,
    /// The cipher suites allowed, most preferred first.
    pub suites: Vec<CipherSuite>,
    /// How long a handshake may take before it is abandoned.
    pub handshake_timeout: Duration,
    /// `--reveal` (`Some(true)`) or `--no-reveal` (`Some(false)`): whether
    /// the session's secret values are shown; `None` takes the command's
    /// default (on for `demo`, off otherwise).
    pub reveal: Option<bool>,
    /// `--reveal-script FILE`: the key schedule's commands written to FILE
    /// as a script that checks each value (implies `--reveal`).
    pub reveal_script: Option<PathBuf>,
}

impl TlsOptions {
    /// Whether to reveal secret values, given the command's default. Said
    /// on stderr when the user turned it on, as for the key log.
    fn reveal(&self, default: bool) -> bool {
        if self.reveal == Some(true) {
            eprintln!(
                "tlschat: --reveal: this session's secret values will be shown on screen (and printed, headless)"
            );
        }
        if let Some(path) = &self.reveal_script {
            eprintln!(
                "tlschat: writing this session's key schedule commands and secrets to {} (--reveal-script): \
                 anyone who reads it can decrypt the session",
                path.display()
            );
            return true;
        }
        self.reveal.unwrap_or(default)
    }

    /// Where the key schedule's commands go besides F4: the script, and
    /// headless lines when `--reveal` was given.
    fn reveal_out(&self, out: Presentation) -> RevealOut {
        RevealOut {
            script: self.reveal_script.clone(),
            print: !out.tui && !out.json && self.reveal == Some(true),
        }
    }

    /// The key log: `keylog`, else a non-empty `SSLKEYLOGFILE`.
    fn keylog(&self) -> Result<Option<Arc<KeyLogFile>>, Error> {
        let (path, source) = match &self.keylog {
            Some(path) => (path.clone(), "--keylog"),
            None => match std::env::var_os("SSLKEYLOGFILE").filter(|p| !p.is_empty()) {
                Some(path) => (PathBuf::from(path), "SSLKEYLOGFILE"),
                None => return Ok(None),
            },
        };
        let file =
            KeyLogFile::open(&path).with_context(|| format!("cannot open the key log {}", path.display()))?;
        // Never silently: whoever reads this file can decrypt the session.
        eprintln!(
            "tlschat: writing this session's secrets to {} ({source}): anyone who reads it can decrypt the session",
            path.display()
        );
        Ok(Some(Arc::new(file)))
    }

    /// The `--pcap` capture, if asked for; `what` says whose connections
    /// it records, for the warning.
    fn capture(&self, what: &str) -> Result<Option<Arc<Capture>>, Error> {
        let Some(path) = &self.pcap else { return Ok(None) };
        let capture =
            Capture::create(path).with_context(|| format!("cannot create the capture {}", path.display()))?;
        // Never silently: the capture holds the secrets, as a key log does.
        eprintln!(
            "tlschat: writing {what} and its secrets to {} (--pcap): anyone who reads it can decrypt the session",
            path.display()
        );
        Ok(Some(Arc::new(capture)))
    }
}

/// Where the engine's secrets go: the key log, the capture, both or neither.
fn secrets_to(keylog: Option<&Arc<KeyLogFile>>, capture: Option<&Arc<Capture>>) -> Option<Arc<dyn KeyLog>> {
    let mut logs: Vec<Arc<dyn KeyLog>> = Vec::new();
    if let Some(keylog) = keylog {
        logs.push(keylog.clone());
    }
    if let Some(capture) = capture {
        logs.push(capture.clone());
    }
    Tee::of(logs)
}

/// What a line typed on a headless stdin by `by` asks of the network, if
/// anything: the TUI's parser and table ([`Command::intent`]); what the
/// TUI shows as a notice (usage, a refusal) goes to stderr.
fn intent_of(line: &str, by: Typist) -> Option<Intent> {
    match Command::parse(line) {
        Command::TamperHelp => {
            for line in crate::teach::lab::usage() {
                eprintln!("tlschat: {line}");
            }
            None
        }
        Command::Nick => {
            eprintln!("tlschat: {}", crate::tui::app::NICK_HELP);
            None
        }
        command => command.intent(by).unwrap_or_else(|why| {
            eprintln!("tlschat: {why}");
            None
        }),
    }
}

/// The login name, for a new identity's default display name.
fn login_name() -> Option<String> {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).ok()
}

/// The user's identity, made on first use (and said so when `say` is set:
/// in the TUI the screen is not ours to print on).
fn load_identity(home: &Home, say: bool) -> Result<Identity, Error> {
    let store = IdentityStore::new(home.identity_dir());
    let (identity, loaded) = store.load_or_create(&mut OsRng, login_name().as_deref(), None)?;
    if loaded == Loaded::Created && say {
        say!(
            "made your identity {} (safety number {}) in {}; `tlschat id --name NAME` renames it",
            identity.name(),
            identity.fingerprint().short(),
            store.key_path().display()
        );
    }
    Ok(identity)
}

/// In the TUI the screen is the interface's: the headless log's lines go
/// to the log file instead (see [`crate::present::logfile`]), `first` at the top.
fn log_to_file(
    events: mpsc::Receiver<NetEvent>,
    audience: Audience,
    first: &str,
) -> mpsc::Receiver<NetEvent> {
    match LogFile::open_default() {
        Ok(mut log) => {
            let _ = log.line(unix_now(), first);
            let format: fn(&NetEvent) -> Vec<String> = match audience {
                Audience::RoomLog => |e| report::lines(e, Audience::RoomLog),
                _ => |e| report::lines(e, Audience::ClientLog),
            };
            logfile::tee(events, log, format)
        }
        Err(e) => {
            // Printed before the interface takes the screen, and still there after.
            eprintln!("tlschat: warning: no log file ({e}); this session is not logged");
            events
        }
    }
}

/// Where the key schedule's commands go besides the F4 view (a client's
/// own connection): `--reveal-script FILE` rewrites FILE (0600) as a
/// runnable script, with each value checked, whenever a value is
/// revealed; `print` (headless, with `--reveal` given) prints each command
/// once, under its name and expected value, as soon as its inputs are known.
#[derive(Clone, Debug, Default)]
pub(crate) struct RevealOut {
    pub(crate) script: Option<PathBuf>,
    pub(crate) print: bool,
}

impl RevealOut {
    fn wanted(&self) -> bool {
        self.script.is_some() || self.print
    }
}

/// Feeds a key schedule with a client's events for [`RevealOut`], as the
/// client's loop sees them (no task or channel of its own). A new
/// handshake (the client connects again) starts a new schedule; the
/// script keeps the latest connection's.
pub(super) struct RevealCommands {
    out: RevealOut,
    schedule: crate::teach::schedule::Schedule,
    printed: Vec<zeroize::Zeroizing<String>>,
    warned: bool,
}

impl RevealCommands {
    /// The schedule's commands where `out` says; `None` if nowhere.
    pub(super) fn new(out: RevealOut) -> Option<Self> {
        out.wanted().then(|| Self {
            out,
            schedule: crate::teach::schedule::Schedule::default(),
            printed: Vec::new(),
            warned: false,
        })
    }

    /// Takes note of `event`: a handshake step, or a value revealed, which
    /// rewrites the script and prints the commands it completes.
    pub(super) fn see(&mut self, event: &NetEvent) {
        let changed = match event {
            NetEvent::Step { step, .. } => {
                if step.number <= 1 && matches!(step.step, crate::tls::Step::Message { .. }) {
                    self.schedule = crate::teach::schedule::Schedule::default();
                }
                self.schedule.step(step);
                false
            }
            NetEvent::Revealed { revealed, .. } => {
                self.schedule.reveal(revealed.clone());
                true
            }
            _ => false,
        };
        if !changed {
            return;
        }
        if let Some(path) = &self.out.script
            && let Err(e) = write_secret(path, self.schedule.script().as_bytes())
            && !self.warned
        {
            self.warned = true;
            eprintln!("tlschat: cannot write the key schedule script {}: {e}", path.display());
        }
        if self.out.print {
            for (name, proof) in self.schedule.named_proofs() {
                if self.printed.iter().any(|c| c.as_str() == proof.command.as_str()) {
                    continue;
                }
                say!("# {name}: expect {}\n{}", proof.expected.as_str(), proof.command.as_str());
                self.printed.push(proof.command);
            }
        }
    }
}

/// Writes a file only its owner may read (0600), replacing it.
fn write_secret(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)
}

/// Reads stdin line by line on a thread of its own and gives each line,
/// with its newline, to `deliver` until it returns false or input ends.
///
/// A plain thread rather than `tokio::io::stdin`: tokio's stdin blocks a
/// runtime thread in a read that cannot be cancelled, which would keep the
/// program from exiting while the terminal is idle.
fn read_stdin_lines(mut deliver: impl FnMut(Arc<[u8]>) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Whatever the terminal ended the line with, send one "\n".
            while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                line.pop();
            }
            line.push(b'\n');
            if !deliver(Arc::from(line.as_slice())) {
                return;
            }
        }
    });
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a private key file given on the command line: it must not be
/// readable by others (the fix is named), and its text is wiped on drop.
fn read_private_key(path: &Path) -> Result<zeroize::Zeroizing<String>, Error> {
    match crate::store::home::read(path, crate::store::home::Access::Private)? {
        Some(text) => Ok(text),
        None => Err(Error::msg(format!("cannot read {}: no such file", path.display()))),
    }
}

/// Writes a certificate file others may read (0644), creating its directory
/// for the owner only (0700): keys may later live beside it.
fn write_public(path: &Path, contents: &str) -> Result<(), Error> {
    let context = || format!("cannot write {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).with_context(context)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path).and_then(|mut f| f.write_all(contents.as_bytes())).with_context(context)
}

/// Tells the user if the key log stopped being written: a capture would then
/// not decrypt.
fn warn_keylog(keylog: Option<&KeyLogFile>) {
    let Some(log) = keylog else { return };
    if let Some(error) = log.take_error() {
        eprintln!("tlschat: warning: the key log {} is incomplete: {error}", log.path().display());
    }
}

/// Tells the user if the capture stopped growing before the end: later
/// packets are not in it.
fn warn_capture(capture: Option<&Capture>) {
    let Some(capture) = capture else { return };
    if let Some(why) = capture.stopped() {
        eprintln!("tlschat: warning: the capture {} is incomplete: {why}", capture.path().display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_one_line_with_each_cause_after_a_colon() {
        let io = io::Error::other("disk on fire");
        let error = Err::<(), _>(io).context("cannot read /x").unwrap_err();
        assert_eq!(error.to_string(), "cannot read /x");
        assert_eq!(format!("{error:#}"), "cannot read /x: disk on fire");
        assert_eq!(format!("{:#}", Error::msg("plain")), "plain");
        let address = Error::from(crate::net::BadHostPort::Form("x".into()));
        assert_eq!(
            format!("{address:#}"),
            r#""x" is not HOST:PORT (IPv6 addresses go in brackets: [::1]:8443)"#
        );
    }
}
