//! How `tlschat connect` decides to trust a room's server, and the pins it
//! remembers.
//!
//! The order, first match wins:
//!
//! 1. `--ca FILE`: the engine validates the chain to that CA and the name
//!    connected to ([`ServerTrust::Roots`]). No pin is read or written.
//! 2. `--fingerprint FP`: the engine accepts exactly that key
//!    ([`ServerTrust::Fingerprint`]) and refuses any other with
//!    bad_certificate. Once connected the key is pinned, unless a pin for
//!    another key is already there: that is refused before connecting.
//! 3. A pin for `HOST:PORT` in the known-rooms file: as 2, and a changed
//!    key is refused during the handshake, so nothing is ever sent to it.
//!    The error shows the old and new fingerprints and the command that
//!    forgets the pin (`TrustError::Changed`).
//! 4. First contact: the handshake runs with [`ServerTrust::AnyKey`] and
//!    `hold_for_trust` (`Plan::holds_flight`), so the key is proven but not
//!    yet trusted, and the engine stops before our second flight: the room
//!    has not seen our certificate, so it does not know who we are and
//!    seats no one. The `gate` decides on the key the connection shows it
//!    ([`NetEvent::ServerKey`]): at once with `--trust-on-first-use`, by the
//!    user in the TUI's dialog, or never (headless without the flag:
//!    refused, showing the fingerprint). Trust lets the flight go
//!    ([`Intent::TrustServer`]) and then every line typed meanwhile; a
//!    refusal cancels the handshake with user_canceled and close_notify
//!    (RFC 8446 §6.1: a handshake cancelled for a reason that is no
//!    protocol failure), and nothing else is sent, as ssh asks before it
//!    authenticates.
//!
//! The known-rooms file (`CONFIG/known_rooms`, 0600) has one
//! `HOST:PORT FINGERPRINT` line per room, fingerprints in hex, like
//! OpenSSH's `known_hosts`; lines starting with `#` are comments.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::net::{HostPort, Intent, NetError, NetEvent};
use crate::store::home::{self, Access, FileError};
use crate::tls::cert::ServerName;
use crate::tls::crypto::hex;
use crate::tls::{self, AlertDescription, Fingerprint, RootStore, ServerTrust};

/// How many lines the gate holds while the user decides; beyond that, the
/// input waits.
const HOLD_LIMIT: usize = 64;

/// Why a room's server is not trusted, or pins could not be used. One
/// line each, saying what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TrustError {
    /// The pins file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A pins file line that is not `HOST:PORT FINGERPRINT`.
    #[error("{} line {line} is not `HOST:PORT FINGERPRINT`: fix or delete that line", .path.display())]
    BadLine {
        /// The pins file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The pinned key and the server's key differ.
    #[error(
        "the key of {room} has CHANGED: it was pinned as {} ({}), the server now presents {} ({}). Nothing was sent. Someone may be intercepting the connection, or the room was set up again; only if you know its key changed, forget the old pin with `tlschat trust forget {room}` and connect again",
        .pinned, .pinned.short(), .presented, .presented.short()
    )]
    Changed {
        /// The room, `HOST:PORT`.
        room: String,
        /// The pinned fingerprint.
        pinned: Fingerprint,
        /// What the server presented.
        presented: Fingerprint,
    },
    /// `--fingerprint` names another key than the pin.
    #[error(
        "{room} is pinned to the key {} ({}), not the --fingerprint {} given; if the room's key really changed, run `tlschat trust forget {room}` first",
        .pinned, .pinned.short(), .given.short()
    )]
    PinConflict {
        /// The room.
        room: String,
        /// The pinned fingerprint.
        pinned: Fingerprint,
        /// The one given.
        given: Fingerprint,
    },
    /// First contact without a way to ask.
    #[error(
        "{room} is not a known room: its key fingerprint is {} ({}). Compare it with the room's owner, then connect with `--fingerprint {}` (or `--trust-on-first-use`) to pin it. Nothing was sent",
        .presented, .presented.short(), hex(&.presented.0)
    )]
    FirstContact {
        /// The room.
        room: String,
        /// What the server presented.
        presented: Fingerprint,
    },
    /// The user said no in the dialog.
    #[error("you did not trust the key {} of {room}: disconnected, nothing was sent", .presented.short())]
    Declined {
        /// The room.
        room: String,
        /// What the server presented.
        presented: Fingerprint,
    },
    /// The server sent no certificate (cannot happen with AnyKey, which needs one).
    #[error("{room} presented no key")]
    NoKey {
        /// The room.
        room: String,
    },
    /// The room refused this client's identity.
    #[error(
        "{room} refused your identity {name} (alert access_denied): another key may already use that name there (pick another with `tlschat id --name NAME`), or the room is closed to keys its host did not invite, or the host banned yours"
    )]
    Refused {
        /// The room.
        room: String,
        /// The display name that was refused.
        name: String,
    },
}

/// A room as pins name it: `host:port`, the host lower-cased without a
/// trailing dot, IPv6 addresses in brackets.
pub(crate) fn room_id(host: &str, port: u16) -> String {
    match ServerName::parse(host) {
        Ok(ServerName::Ip(IpAddr::V6(ip))) => format!("[{ip}]:{port}"),
        Ok(name) => format!("{name}:{port}"),
        Err(_) => format!("{}:{port}", host.to_ascii_lowercase()),
    }
}

/// Reads `HOST:PORT` or `[IPv6]:PORT` (see [`HostPort`]) as a room id; the
/// host must be a host name or an IP address.
pub(crate) fn parse_room(text: &str) -> Option<String> {
    let addr = HostPort::parse(text).ok()?;
    if let Some(socket) = addr.socket_addr() {
        // An IPv6 %scope is no part of the room's name.
        return Some(room_id(&socket.ip().to_string(), addr.port()));
    }
    addr.server_name().ok()?;
    Some(room_id(addr.host(), addr.port()))
}

/// The pins of known rooms.
#[derive(Debug, Clone)]
pub(crate) struct KnownRooms {
    path: PathBuf,
    pins: Vec<(String, Fingerprint)>,
}

impl KnownRooms {
    /// Reads the pins file; a missing file has no pins.
    pub(crate) fn load(path: PathBuf) -> Result<Self, TrustError> {
        let pins = read_pins(&path)?;
        Ok(Self { path, pins })
    }

    /// No pins, without reading the file: for `--ca`, which does not use them.
    pub(crate) fn none(path: PathBuf) -> Self {
        Self { path, pins: Vec::new() }
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every pin, in file order.
    pub(crate) fn pins(&self) -> &[(String, Fingerprint)] {
        &self.pins
    }

    /// The pin for `room`, if any.
    pub(crate) fn get(&self, room: &str) -> Option<Fingerprint> {
        self.pins.iter().find(|(r, _)| r == room).map(|(_, fp)| *fp)
    }

    /// Pins `room` to `fingerprint`. The file is read again first: a pin
    /// for the same key is kept, a pin for another key (made meanwhile by
    /// another tlschat) is a [`TrustError::Changed`] and nothing is written.
    pub(crate) fn add(&mut self, room: &str, fingerprint: Fingerprint) -> Result<(), TrustError> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            home::private_dir(parent)?;
        }
        self.pins = read_pins(&self.path)?;
        match self.get(room) {
            Some(pinned) if pinned == fingerprint => return Ok(()),
            Some(pinned) => {
                return Err(TrustError::Changed { room: room.to_owned(), pinned, presented: fingerprint });
            }
            None => {}
        }
        home::append_line(&self.path, &format!("{room} {}", hex(&fingerprint.0)), Access::Private)?;
        self.pins.push((room.to_owned(), fingerprint));
        Ok(())
    }

    /// Removes the pin of `room`; returns what it was. The file is rewritten
    /// whole, keeping every other line (comments included).
    pub(crate) fn forget(&mut self, room: &str) -> Result<Option<Fingerprint>, TrustError> {
        let Some(text) = home::read(&self.path, Access::Private)? else { return Ok(None) };
        self.pins = parse_pins(&self.path, &text)?;
        let Some(old) = self.get(room) else { return Ok(None) };
        let kept: String = text
            .lines()
            .filter(|line| line.split_whitespace().next() != Some(room))
            .map(|line| format!("{line}\n"))
            .collect();
        home::replace(&self.path, kept.as_bytes(), Access::Private)?;
        self.pins.retain(|(r, _)| r != room);
        Ok(Some(old))
    }
}

fn read_pins(path: &Path) -> Result<Vec<(String, Fingerprint)>, TrustError> {
    match home::read(path, Access::Private)? {
        Some(text) => parse_pins(path, &text),
        None => Ok(Vec::new()),
    }
}

fn parse_pins(path: &Path, text: &str) -> Result<Vec<(String, Fingerprint)>, TrustError> {
    let mut pins: Vec<(String, Fingerprint)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || TrustError::BadLine { path: path.to_owned(), line: i + 1 };
        let mut words = line.split_whitespace();
        let (Some(room), Some(fp), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let room = parse_room(room).ok_or_else(bad)?;
        let fp = Fingerprint::parse(fp).ok_or_else(bad)?;
        // As in known_hosts, the first line for a room is the one that counts.
        if !pins.iter().any(|(r, _)| *r == room) {
            pins.push((room, fp));
        }
    }
    Ok(pins)
}

/// What to do on first contact with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstContact {
    /// `--trust-on-first-use`: pin the key and go on.
    Trust,
    /// The TUI: ask the user in a dialog.
    Ask,
    /// Headless without `--trust-on-first-use`: refuse, showing the key.
    Refuse,
}

/// Where the trust in the server comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `--ca`.
    Ca,
    /// `--fingerprint`; `pin` when it is to be pinned once connected.
    Fingerprint {
        /// Whether no pin exists yet.
        pin: bool,
    },
    /// A pin from the known-rooms file.
    Pinned(Fingerprint),
    /// No pin: first contact.
    FirstContact(FirstContact),
}

/// The trust decision for one connection, made before connecting.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The room, as pins name it.
    pub(crate) room: String,
    /// What the engine checks.
    pub(crate) trust: ServerTrust,
    /// Why.
    pub(crate) origin: Origin,
    /// The pins file, to pin the key once connected.
    pub(crate) pins: PathBuf,
}

impl Plan {
    /// Decides in the order of the module doc. `ca` and `fingerprint` are
    /// the command line's.
    pub(crate) fn decide(
        room: String,
        ca: Option<RootStore>,
        fingerprint: Option<Fingerprint>,
        known: &KnownRooms,
        first_contact: FirstContact,
    ) -> Result<Self, TrustError> {
        let pins = known.path().to_owned();
        let pinned = known.get(&room);
        let (trust, origin) = match (ca, fingerprint, pinned) {
            (Some(roots), _, _) => (ServerTrust::Roots(roots), Origin::Ca),
            (None, Some(given), Some(pinned)) if given != pinned => {
                return Err(TrustError::PinConflict { room, pinned, given });
            }
            (None, Some(given), pinned) => {
                (ServerTrust::Fingerprint(given), Origin::Fingerprint { pin: pinned.is_none() })
            }
            (None, None, Some(pinned)) => (ServerTrust::Fingerprint(pinned), Origin::Pinned(pinned)),
            (None, None, None) => (ServerTrust::AnyKey, Origin::FirstContact(first_contact)),
        };
        Ok(Self { room, trust, origin, pins })
    }

    /// Whether lines must pass through the [`gate`]: on first contact, and
    /// to pin a `--fingerprint` key once connected.
    pub(crate) fn needs_gate(&self) -> bool {
        matches!(self.origin, Origin::FirstContact(_) | Origin::Fingerprint { pin: true })
    }

    /// Whether the client holds its second flight (its certificate, so
    /// who it is) until the [`gate`] trusts the key: on first contact only.
    /// The engine has already checked every other key before that flight.
    pub(crate) fn holds_flight(&self) -> bool {
        matches!(self.origin, Origin::FirstContact(_))
    }

    /// The trust error a failed connection amounts to, if it is one: a
    /// pinned key that changed, or the room refusing `identity_name`.
    pub(crate) fn explain(&self, error: &NetError, identity_name: Option<&str>) -> Option<TrustError> {
        match (error, self.origin) {
            (NetError::Tls(tls::Error::FingerprintMismatch { expected, got }), Origin::Pinned(pinned)) => {
                let presented = Fingerprint::parse(got)?;
                (Fingerprint::parse(expected) == Some(pinned)).then_some(())?;
                Some(TrustError::Changed { room: self.room.clone(), pinned, presented })
            }
            (NetError::Tls(tls::Error::AlertReceived(AlertDescription::ACCESS_DENIED)), _) => {
                Some(TrustError::Refused { room: self.room.clone(), name: identity_name?.to_owned() })
            }
            _ => None,
        }
    }
}

/// The user's answer to a first-contact question: dropping it unanswered
/// is a no.
#[derive(Debug)]
pub(crate) struct Answer(oneshot::Sender<bool>);

impl Answer {
    /// Trust the key (and pin it).
    pub(crate) fn trust(self) {
        let _ = self.0.send(true);
    }

    /// Do not trust it: the connection closes without sending anything.
    pub(crate) fn refuse(self) {
        let _ = self.0.send(false);
    }

    /// Whether the connection stopped waiting for the answer.
    pub(crate) fn is_stale(&self) -> bool {
        self.0.is_closed()
    }
}

/// A first-contact question for the TUI.
#[derive(Debug)]
pub struct Question {
    /// The room.
    pub(crate) room: String,
    /// The key the server proved it holds.
    pub(crate) fingerprint: Fingerprint,
    /// Where the answer goes.
    pub(crate) answer: Answer,
}

impl Question {
    /// A question about `fingerprint` for `room`, and where its answer
    /// arrives (`Err` if it was dropped unanswered).
    pub fn new(room: String, fingerprint: Fingerprint) -> (Self, oneshot::Receiver<bool>) {
        let (tx, rx) = oneshot::channel();
        (Self { room, fingerprint, answer: Answer(tx) }, rx)
    }
}

/// Sits between a client connection and its user while the server's key is
/// not yet trusted (see the module doc). `from_net`/`to_ui` carry events,
/// `from_ui`/`to_net` intents; `questions` is where a [`FirstContact::Ask`]
/// question goes. The key arrives in [`NetEvent::ServerKey`] when the plan
/// [holds the flight](Plan::holds_flight), else in [`NetEvent::Connected`].
/// Nothing from `from_ui` but [`Intent::Close`] reaches `to_net` before
/// the key is trusted; then [`Intent::TrustServer`] (when the flight is
/// held) and everything after it passes. A refusal sends [`Intent::Close`]
/// (user_canceled and close_notify while the flight is held) and drops
/// what was held. A later connection through the same gate (the tamper
/// lab's redials) is let go at once if it shows the trusted key, and
/// closed if it shows another.
///
/// Returns when the connection's events end: `Ok` if the key was trusted (or
/// the connection ended before a decision), the reason otherwise.
pub(crate) async fn gate(
    plan: Plan,
    mut from_net: mpsc::Receiver<NetEvent>,
    to_ui: mpsc::Sender<NetEvent>,
    mut from_ui: mpsc::Receiver<Intent>,
    to_net: mpsc::Sender<Intent>,
    questions: Option<mpsc::Sender<Question>>,
) -> Result<(), TrustError> {
    let mut gate = TrustGate {
        plan,
        to_net: Some(to_net),
        held: VecDeque::new(),
        trusted: None,
        state: State::Waiting,
        input_open: true,
        verdict: Ok(()),
    };
    let mut pending: Option<(oneshot::Receiver<bool>, Fingerprint)> = None;
    loop {
        let listening = gate.input_open && gate.held.len() < HOLD_LIMIT;
        tokio::select! {
            event = from_net.recv() => {
                let Some(event) = event else { return gate.verdict };
                let connected = match &event {
                    NetEvent::ServerKey { cert, .. } => Some(Some(cert.fingerprint)),
                    // Decided already, at ServerKey.
                    NetEvent::Connected { .. } if gate.plan.holds_flight() => None,
                    NetEvent::Connected { summary, .. } => Some(summary.peer.as_ref().map(|c| c.fingerprint)),
                    _ => None,
                };
                let _ = to_ui.send(event).await;
                match connected {
                    None => {}
                    Some(None) => {
                        let room = gate.plan.room.clone();
                        gate.refuse(TrustError::NoKey { room }).await;
                    }
                    // A later connection (the lab's): the key decided before, or not at all.
                    Some(Some(presented)) if gate.state != State::Waiting => gate.again(presented).await,
                    Some(Some(presented)) if pending.is_some() => {
                        // A second key while the user decides on the first: never trusted.
                        let room = gate.plan.room.clone();
                        pending = None;
                        gate.refuse(TrustError::FirstContact { room, presented }).await;
                    }
                    Some(Some(presented)) => match decide_now(&gate.plan, presented) {
                        Decision::Trust => gate.trust(presented).await,
                        Decision::Refuse(e) => gate.refuse(e).await,
                        Decision::Ask => {
                            let room = gate.plan.room.clone();
                            let (question, rx) = Question::new(room.clone(), presented);
                            match &questions {
                                Some(q) if q.send(question).await.is_ok() => pending = Some((rx, presented)),
                                _ => gate.refuse(TrustError::FirstContact { room, presented }).await,
                            }
                        }
                    },
                }
            },
            trusted = answer(&mut pending), if pending.is_some() => {
                if let Some((_, presented)) = pending.take() {
                    if trusted {
                        gate.trust(presented).await;
                    } else {
                        let room = gate.plan.room.clone();
                        gate.refuse(TrustError::Declined { room, presented }).await;
                    }
                }
            },
            intent = from_ui.recv(), if listening => match intent {
                // Closing is always allowed, and at once.
                Some(Intent::Close) => gate.send(Intent::Close).await,
                Some(intent) => gate.take(intent).await,
                None => gate.input_ended(),
            },
        }
    }
}

/// Whether the key is trusted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not yet: lines are held.
    Waiting,
    /// Trusted: lines pass.
    Open,
    /// Refused: lines are dropped.
    Shut,
}

/// The gate's state between its inputs.
struct TrustGate {
    plan: Plan,
    /// `None` once the connection has been told to close, or the user's
    /// input has ended after the key was trusted.
    to_net: Option<mpsc::Sender<Intent>>,
    held: VecDeque<Intent>,
    /// The key trusted, once it is.
    trusted: Option<Fingerprint>,
    state: State,
    /// Whether the user may still send more.
    input_open: bool,
    verdict: Result<(), TrustError>,
}

impl TrustGate {
    async fn send(&mut self, intent: Intent) {
        if let Some(net) = &self.to_net {
            let _ = net.send(intent).await;
        }
    }

    /// A line (or KeyUpdate) from the user.
    async fn take(&mut self, intent: Intent) {
        match self.state {
            State::Waiting => self.held.push_back(intent),
            State::Open => self.send(intent).await,
            State::Shut => {}
        }
    }

    fn input_ended(&mut self) {
        self.input_open = false;
        // Once trusted, the end of input closes the connection after what
        // was sent; before, the held lines are still to go (see `trust`).
        if self.state != State::Waiting {
            self.to_net = None;
        }
    }

    /// Pins the key if the plan says so, then lets our flight go (when it
    /// is held) and the held lines after it.
    async fn trust(&mut self, presented: Fingerprint) {
        if let Err(e) = pin(&self.plan, presented) {
            return self.refuse(e).await;
        }
        self.state = State::Open;
        self.trusted = Some(presented);
        if self.plan.holds_flight() {
            self.send(Intent::TrustServer).await;
        }
        while let Some(intent) = self.held.pop_front() {
            self.send(intent).await;
        }
        if !self.input_open {
            // The input ended while we waited: close once the held lines are out.
            self.to_net = None;
        }
    }

    /// A connection after the first (the tamper lab dials again through
    /// the same gate): its flight goes if it shows the key trusted before,
    /// and it is closed, our flight unsent, if it shows another.
    async fn again(&mut self, presented: Fingerprint) {
        if self.state != State::Open || !self.plan.holds_flight() {
            return;
        }
        if self.trusted == Some(presented) {
            self.send(Intent::TrustServer).await;
        } else {
            self.send(Intent::Close).await;
        }
    }

    /// Closes the connection without sending what was held.
    async fn refuse(&mut self, why: TrustError) {
        self.state = State::Shut;
        self.held.clear();
        self.send(Intent::Close).await;
        self.to_net = None;
        self.verdict = Err(why);
    }
}

/// The user's answer, once there is a question: true to trust.
async fn answer(pending: &mut Option<(oneshot::Receiver<bool>, Fingerprint)>) -> bool {
    match pending {
        Some((rx, _)) => rx.await == Ok(true),
        None => std::future::pending().await,
    }
}

/// What the gate can decide without asking.
enum Decision {
    Trust,
    Refuse(TrustError),
    Ask,
}

fn decide_now(plan: &Plan, presented: Fingerprint) -> Decision {
    match plan.origin {
        // The engine has already checked these keys.
        Origin::Ca | Origin::Pinned(_) | Origin::Fingerprint { .. } => Decision::Trust,
        Origin::FirstContact(FirstContact::Trust) => Decision::Trust,
        Origin::FirstContact(FirstContact::Ask) => Decision::Ask,
        Origin::FirstContact(FirstContact::Refuse) => {
            Decision::Refuse(TrustError::FirstContact { room: plan.room.clone(), presented })
        }
    }
}

/// Pins the key when the plan says so.
fn pin(plan: &Plan, presented: Fingerprint) -> Result<(), TrustError> {
    match plan.origin {
        Origin::Fingerprint { pin: true } | Origin::FirstContact(_) => {
            KnownRooms::load(plan.pins.clone())?.add(&plan.room, presented)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{CertSummary, CipherSuite, NamedGroup, SignatureScheme, Summary};
    use std::sync::Arc;

    fn temp(name: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tlschat-trust-unit-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    fn connected(fingerprint: Fingerprint) -> NetEvent {
        let cert = CertSummary {
            subject: "CN=localhost".into(),
            issuer: "CN=x".into(),
            not_before: 0,
            not_after: 0,
            public_key: [0; 32],
            fingerprint,
            names: vec![],
        };
        NetEvent::Connected {
            peer: "127.0.0.1:8443".parse().unwrap(),
            summary: Summary {
                suite: CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
                group: NamedGroup::X25519,
                signature_scheme: SignatureScheme::ED25519,
                alpn: None,
                peer: Some(cert),
                retried: false,
                server_name: None,
            },
        }
    }

    /// What a connection that holds its flight shows first.
    fn server_key(fingerprint: Fingerprint) -> NetEvent {
        let NetEvent::Connected { peer, summary } = connected(fingerprint) else { unreachable!() };
        NetEvent::ServerKey { peer, cert: summary.peer.unwrap() }
    }

    fn line(text: &str) -> Intent {
        Intent::Send(Arc::from(text.as_bytes()))
    }

    /// Waits at most five seconds: a gate that holds on to something must
    /// fail the test, not hang it.
    async fn within<T>(what: impl std::future::Future<Output = T>) -> T {
        match tokio::time::timeout(std::time::Duration::from_secs(5), what).await {
            Ok(value) => value,
            Err(_) => panic!("the gate did not answer within 5 s"),
        }
    }

    fn sent(intent: Option<Intent>) -> String {
        match intent {
            Some(Intent::Send(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            other => format!("{other:?}"),
        }
    }

    struct Wired {
        net_events: mpsc::Sender<NetEvent>,
        ui_events: mpsc::Receiver<NetEvent>,
        ui_intents: mpsc::Sender<Intent>,
        net_intents: mpsc::Receiver<Intent>,
        questions: mpsc::Receiver<Question>,
        done: tokio::task::JoinHandle<Result<(), TrustError>>,
    }

    fn wire(dir: &Path, first_contact: FirstContact) -> Wired {
        let plan = Plan::decide(
            "localhost:8443".into(),
            None,
            None,
            &KnownRooms::load(dir.join("known_rooms")).unwrap(),
            first_contact,
        )
        .unwrap();
        let (net_events, from_net) = mpsc::channel(8);
        let (to_ui, ui_events) = mpsc::channel(8);
        let (ui_intents, from_ui) = mpsc::channel(8);
        let (to_net, net_intents) = mpsc::channel(8);
        let (q, questions) = mpsc::channel(1);
        let done = tokio::spawn(gate(plan, from_net, to_ui, from_ui, to_net, Some(q)));
        Wired { net_events, ui_events, ui_intents, net_intents, questions, done }
    }

    #[tokio::test]
    async fn the_gate_holds_lines_until_the_user_trusts_the_key_then_sends_them_in_order_and_pins_it() {
        let dir = temp("trusted");
        let mut w = wire(&dir, FirstContact::Ask);
        w.ui_intents.send(line("one")).await.unwrap();
        w.ui_intents.send(line("two")).await.unwrap();
        let fp = Fingerprint([9; 32]);
        w.net_events.send(server_key(fp)).await.unwrap();
        assert!(matches!(within(w.ui_events.recv()).await, Some(NetEvent::ServerKey { .. })));
        let question = within(w.questions.recv()).await.unwrap();
        assert_eq!((question.room.as_str(), question.fingerprint), ("localhost:8443", fp));
        assert!(w.net_intents.try_recv().is_err(), "nothing may pass before the answer");
        question.answer.trust();
        // Our flight first, then the lines, in order.
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::TrustServer)));
        // The handshake completes: nothing more to decide.
        w.net_events.send(connected(fp)).await.unwrap();
        assert!(matches!(within(w.ui_events.recv()).await, Some(NetEvent::Connected { .. })));
        assert_eq!(sent(within(w.net_intents.recv()).await), "one");
        assert_eq!(sent(within(w.net_intents.recv()).await), "two");
        w.ui_intents.send(line("three")).await.unwrap();
        assert_eq!(sent(within(w.net_intents.recv()).await), "three");
        // The end of input ends the connection's input too.
        drop(w.ui_intents);
        assert!(within(w.net_intents.recv()).await.is_none());
        drop(w.net_events);
        assert!(within(w.done).await.unwrap().is_ok());
        assert_eq!(KnownRooms::load(dir.join("known_rooms")).unwrap().get("localhost:8443"), Some(fp));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_gate_sends_only_close_when_the_user_says_no_and_pins_nothing() {
        let dir = temp("declined");
        let mut w = wire(&dir, FirstContact::Ask);
        w.ui_intents.send(line("secret")).await.unwrap();
        w.net_events.send(server_key(Fingerprint([1; 32]))).await.unwrap();
        let question = within(w.questions.recv()).await.unwrap();
        // Dropping the question unanswered is a no, too.
        drop(question);
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::Close)));
        assert!(within(w.net_intents.recv()).await.is_none(), "nothing after close");
        w.ui_intents.send(line("later")).await.unwrap();
        drop(w.net_events);
        assert!(matches!(within(w.done).await.unwrap(), Err(TrustError::Declined { .. })));
        assert!(!dir.join("known_rooms").exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_gate_refuses_first_contact_without_asking_when_told_to() {
        let dir = temp("refused");
        let mut w = wire(&dir, FirstContact::Refuse);
        w.ui_intents.send(line("secret")).await.unwrap();
        w.net_events.send(server_key(Fingerprint([2; 32]))).await.unwrap();
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::Close)));
        assert!(w.questions.try_recv().is_err());
        drop(w.net_events);
        let err = within(w.done).await.unwrap().unwrap_err();
        assert!(matches!(err, TrustError::FirstContact { .. }), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_later_connection_goes_on_with_the_trusted_key_and_is_closed_with_another() {
        let dir = temp("redial");
        let mut w = wire(&dir, FirstContact::Trust);
        let fp = Fingerprint([6; 32]);
        w.net_events.send(server_key(fp)).await.unwrap();
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::TrustServer)));
        w.net_events.send(server_key(fp)).await.unwrap();
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::TrustServer)));
        w.net_events.send(server_key(Fingerprint([7; 32]))).await.unwrap();
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::Close)));
        drop(w.net_events);
        assert!(within(w.done).await.unwrap().is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn input_that_ends_before_the_decision_still_goes_out_once_trusted() {
        let dir = temp("early-eof");
        let mut w = wire(&dir, FirstContact::Trust);
        w.ui_intents.send(line("only line")).await.unwrap();
        drop(w.ui_intents);
        tokio::task::yield_now().await;
        w.net_events.send(server_key(Fingerprint([3; 32]))).await.unwrap();
        assert!(matches!(within(w.net_intents.recv()).await, Some(Intent::TrustServer)));
        assert_eq!(sent(within(w.net_intents.recv()).await), "only line");
        assert!(within(w.net_intents.recv()).await.is_none());
        drop(w.net_events);
        assert!(within(w.done).await.unwrap().is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn pins_are_added_once_refused_when_another_key_is_pinned_and_forgotten_on_request() {
        let dir = temp("pins");
        let path = dir.join("known_rooms");
        let mut known = KnownRooms::load(path.clone()).unwrap();
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        known.add("localhost:8443", a).unwrap();
        known.add("localhost:8443", a).unwrap();
        known.add("[::1]:8443", b).unwrap();
        assert!(matches!(known.add("localhost:8443", b), Err(TrustError::Changed { .. })));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let mut again = KnownRooms::load(path.clone()).unwrap();
        assert_eq!(again.get("localhost:8443"), Some(a));
        assert_eq!(again.forget("localhost:8443").unwrap(), Some(a));
        assert_eq!(again.forget("localhost:8443").unwrap(), None);
        assert_eq!(KnownRooms::load(path).unwrap().pins(), [("[::1]:8443".to_owned(), b)]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rooms_are_named_the_same_however_they_are_typed() {
        assert_eq!(room_id("LocalHost.", 8443), "localhost:8443");
        assert_eq!(room_id("::1", 1), "[::1]:1");
        assert_eq!(parse_room("[::1]:1").as_deref(), Some("[::1]:1"));
        assert_eq!(parse_room("Example.COM:443").as_deref(), Some("example.com:443"));
        assert_eq!(parse_room("127.0.0.1:80").as_deref(), Some("127.0.0.1:80"));
        for bad in ["example.com", "a b:1", ":1", "host:port", "host:99999"] {
            assert_eq!(parse_room(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_plan_follows_ca_then_fingerprint_then_pin_then_first_contact() {
        let dir = temp("plan");
        let mut known = KnownRooms::load(dir.join("known_rooms")).unwrap();
        let pinned = Fingerprint([4; 32]);
        known.add("h:1", pinned).unwrap();
        let room = || "h:1".to_owned();
        let roots = crate::tls::RootStore::new();
        let ask = FirstContact::Ask;
        let p = Plan::decide(room(), Some(roots), Some(Fingerprint([5; 32])), &known, ask).unwrap();
        assert_eq!(p.origin, Origin::Ca);
        assert!(!p.needs_gate());
        let p = Plan::decide(room(), None, Some(pinned), &known, ask).unwrap();
        assert_eq!(p.origin, Origin::Fingerprint { pin: false });
        assert!(matches!(
            Plan::decide(room(), None, Some(Fingerprint([5; 32])), &known, ask),
            Err(TrustError::PinConflict { .. })
        ));
        let p = Plan::decide(room(), None, None, &known, ask).unwrap();
        assert_eq!(p.origin, Origin::Pinned(pinned));
        assert!(matches!(p.trust, ServerTrust::Fingerprint(fp) if fp == pinned));
        let p = Plan::decide("other:1".into(), None, None, &known, ask).unwrap();
        assert_eq!(p.origin, Origin::FirstContact(ask));
        assert!(matches!(p.trust, ServerTrust::AnyKey));
        assert!(p.needs_gate() && p.holds_flight());
        let p = Plan::decide("other:1".into(), None, Some(pinned), &known, ask).unwrap();
        assert_eq!(p.origin, Origin::Fingerprint { pin: true });
        assert!(p.needs_gate() && !p.holds_flight());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn error_messages_are_single_lines() {
        let fp = Fingerprint([1; 32]);
        let room = "h:1".to_owned();
        let errors = [
            TrustError::BadLine { path: "/p".into(), line: 3 },
            TrustError::Changed { room: room.clone(), pinned: fp, presented: fp },
            TrustError::PinConflict { room: room.clone(), pinned: fp, given: fp },
            TrustError::FirstContact { room: room.clone(), presented: fp },
            TrustError::Declined { room: room.clone(), presented: fp },
            TrustError::NoKey { room: room.clone() },
            TrustError::Refused { room, name: "alice".into() },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
