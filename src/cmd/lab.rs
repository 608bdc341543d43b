//! The tamper lab's client loop (`demo`, `connect --lab`): a client
//! connection that, after a `/tamper` case, reports what caught it and
//! connects again.
//!
//! It sits between the user (the trust gate, the TUI or stdin) and
//! [`net::connect`]: intents go through it to the connection of the
//! moment, events come back through it. `/tamper flip`, `replay` and
//! `reorder` are handed to the connection (the hook in its write path acts
//! on the next line); `finished`, `cert` and `mitm` close the connection
//! and dial once more with the one thing changed; `sig` asks the demo's
//! relay to alter bob's next line and has bob say one. Without `--lab`,
//! `/tamper` only says how to enable it.
//!
//! The same loop reconnects a member whose connection dropped (when the
//! [`Dial`] asks for it, as `connect` does): after a network error, not
//! after a refusal, it waits as [`net::Backoff`] says, tries the room's
//! addresses in turn, reports [`NetEvent::Reconnecting`] then
//! [`NetEvent::Back`], and refuses a room that comes back with another key.
//! The member resumes what it missed by itself (see [`crate::chat::member`]).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::chat::{ChatEvent, Kind, RefusalCode, SigCheck, relay};
use crate::net::{self, Backoff, Dial, Intent, NetError, NetEvent, NextConfig, RoomHandle, StepGate};
use crate::teach::lab::{Case, Checker, Report};
use crate::tls::{
    self, ClientAuth, ClientConfig, ClientTrust, Fingerprint, OsRng, ServerConfig, ServerTrust,
};

/// How long the lab waits before it connects again: the peer's end of the
/// failed connection has left the room by then.
const PAUSE: Duration = Duration::from_millis(500);

/// Intents waiting for the connection of the moment.
const QUEUE: usize = 1024;

/// What the lab can do where it runs.
pub(super) struct Lab {
    /// `demo`, or `connect --lab`: without it `/tamper` only explains.
    pub(super) enabled: bool,
    /// The man in the middle: a server with a key of its own, on a
    /// loopback port, and the trust the client dials it with.
    pub(super) mitm: Option<Mitm>,
    /// What only the demo, which runs the room, can do.
    pub(super) demo: Option<DemoLab>,
}

impl Lab {
    /// `/tamper` explains how to enable it, and does nothing.
    pub(super) fn off() -> Self {
        Self { enabled: false, mitm: None, demo: None }
    }
}

/// The interceptor of `/tamper mitm`.
pub(super) struct Mitm {
    /// Where it listens.
    pub(super) port: u16,
    /// How the client trusts the room when it meets the interceptor
    /// (`None`: as for the room itself).
    pub(super) trust: Option<ServerTrust>,
    /// One line on who the interceptor is.
    pub(super) about: String,
    /// Stops the interceptor when the lab is dropped.
    _shutdown: watch::Sender<bool>,
}

impl Mitm {
    /// Starts an interceptor on a loopback port: a server that terminates
    /// TLS with `cert` (its own key) and seats whoever completes a
    /// handshake in a room of its own. It never gets that far with a
    /// client that checks the key: the handshake fails first. `trust` is
    /// how the client checks it (`None`: as it checks the room).
    pub(super) async fn start(
        cert: crate::store::pki::CertifiedKey,
        suites: Vec<tls::CipherSuite>,
        trust: Option<ServerTrust>,
        about: String,
    ) -> Result<Self, std::io::Error> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = listener.local_addr()?;
        let room_id = cert.fingerprint();
        let mut config = ServerConfig::new(cert.into());
        config.suites = suites;
        config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
        config.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
        let (events, mut sink) = mpsc::channel(64);
        tokio::spawn(async move { while sink.recv().await.is_some() {} });
        let (shutdown_tx, shutdown) = watch::channel(false);
        let room = net::start_room(relay::Config::new(room_id.0), None, None, local, events.clone());
        let server = net::Server {
            listener,
            config: Arc::new(config),
            service: net::Service::Room { room, about: "an interceptor\n".into() },
            handshake_timeout: Duration::from_secs(30),
            events,
            shutdown,
            limits: net::Limits::default(),
            next_config: None,
            capture: None,
        };
        tokio::spawn(server.run());
        Ok(Self { port: local.port(), trust, about: format!("{about} on {local}"), _shutdown: shutdown_tx })
    }
}

/// The demo's room, which the lab may change.
pub(super) struct DemoLab {
    /// The room server's next-connection configuration.
    pub(super) next_config: NextConfig,
    /// A server certificate from another CA.
    pub(super) other_ca: Arc<ServerConfig>,
    /// A server certificate from the room's CA, for another name.
    pub(super) other_name: Arc<ServerConfig>,
    /// The room's task, whose relay alters bob's next line for `sig`.
    pub(super) room: RoomHandle,
    /// What bob says.
    pub(super) bob: mpsc::Sender<Intent>,
}

/// Where a case stands on the current connection.
enum Pending {
    /// Nothing.
    None,
    /// Armed on this connection (flip, replay, reorder): its end is the outcome.
    Armed(Case),
    /// This connection is closing: the next dial is tampered.
    Redial(Case),
    /// This connection is the tampered one: its end is the outcome.
    Dialed(Case),
}

/// Runs the client until the user leaves or a connection fails outside a
/// lab case (its error is the result, as [`net::connect`]'s).
pub(super) async fn run(
    target: Dial,
    lab: Lab,
    mut ui: mpsc::Receiver<Intent>,
    events: mpsc::Sender<NetEvent>,
    mut step: Option<StepGate>,
) -> Result<(), NetError> {
    let mut pending = Pending::None;
    let mut ui_open = true;
    let mut away = Away::new(&target);
    loop {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (etx, mut erx) = mpsc::channel(64);
        let mut dial = next_dial(&target, &lab, &pending);
        if matches!(pending, Pending::None) {
            (dial.host, dial.port) = away.address();
        }
        let conn = net::connect(dial, rx, etx, step.take());
        tokio::pin!(conn);
        let mut tx = ui_open.then_some(tx);
        let mut sig_armed = false;
        let result = loop {
            tokio::select! {
                result = &mut conn => break result,
                Some(event) = erx.recv() => {
                    // A lab case's connection may show another key on purpose.
                    if matches!(pending, Pending::None) && away.watch(&event) {
                        // Another key than the room's: not trusted, whatever the plan.
                        forward(tx.as_ref(), Intent::Close, &events).await;
                    }
                    let marked = match &event {
                        NetEvent::Chat { event: ChatEvent::Message(m), .. } if sig_armed && m.from == "bob" => {
                            Some(Report::Marked { from: m.from.clone(), valid: m.sig == SigCheck::Valid })
                        }
                        _ => None,
                    };
                    let event = shown(event, &pending);
                    let _ = events.send(event).await;
                    away.say_back(&events).await;
                    if let Some(report) = marked {
                        sig_armed = false;
                        let _ = events.send(NetEvent::Lab(report)).await;
                    }
                }
                intent = ui.recv(), if ui_open => match intent {
                    Some(Intent::Tamper(case)) => {
                        let (report, act) = arm(&lab, case, &pending);
                        let _ = events.send(NetEvent::Lab(report)).await;
                        match act {
                            Act::Nothing => {}
                            Act::Wire(wire) => {
                                pending = Pending::Armed(case);
                                forward(tx.as_ref(), Intent::TamperNext(wire), &events).await;
                            }
                            Act::Redial => {
                                pending = Pending::Redial(case);
                                forward(tx.as_ref(), Intent::Close, &events).await;
                            }
                            Act::Sig => {
                                if let Some(demo) = &lab.demo {
                                    sig_armed = true;
                                    demo.room.alter_next_for_lab("bob").await;
                                    let text = "meet me at noon by the fountain (signed by bob)".to_owned();
                                    let _ = demo.bob.send(Intent::Say { kind: Kind::Text, text, to: None }).await;
                                }
                            }
                        }
                    }
                    // Reconnecting, not in yet: what the user says would
                    // wait for this attempt, lost if it fails, so it is
                    // refused now. The rest (the trust gate's go-ahead,
                    // a close) goes to the attempt.
                    Some(intent) if away.reconnecting && says(&intent) => {
                        away.not_sent(&events).await;
                    }
                    Some(intent) => forward(tx.as_ref(), intent, &events).await,
                    None => {
                        ui_open = false;
                        // The connection closes once what was asked is sent.
                        tx = None;
                    }
                },
            }
        };
        // What the connection reported before it ended.
        while let Some(event) = erx.recv().await {
            if matches!(pending, Pending::None) {
                away.watch(&event);
            }
            let _ = events.send(shown(event, &pending)).await;
            away.say_back(&events).await;
        }
        if let Some(changed) = away.changed_key.take() {
            return Err(changed);
        }
        pending = match (pending, result) {
            // The user is leaving, or has left.
            (Pending::None | Pending::Armed(_), Ok(())) => return Ok(()),
            (_, Ok(())) if !ui_open => return Ok(()),
            // Closed by us, to dial the tampered connection.
            (Pending::Redial(case), Ok(())) => Pending::Dialed(case),
            (Pending::Armed(case) | Pending::Dialed(case), result) => {
                let report = ended(case, result);
                let _ = events.send(NetEvent::Lab(report)).await;
                if !ui_open {
                    return Ok(());
                }
                tokio::time::sleep(PAUSE).await;
                let _ = events.send(NetEvent::Lab(Report::Reconnecting)).await;
                Pending::None
            }
            (Pending::None, Err(e)) if target.reconnect && ui_open && e.is_transient() => {
                if !away.again(e, &mut ui, &events).await? {
                    return Ok(());
                }
                Pending::None
            }
            (_, Err(e)) => return Err(e),
        };
    }
}

/// Whether `intent` is the user saying something to the room (a line, a
/// command the room answers), which a connection that is down cannot carry.
fn says(intent: &Intent) -> bool {
    matches!(intent, Intent::Say { .. } | Intent::Send(_) | Intent::Who)
}

/// A client's reconnecting: where it stands between connections.
struct Away {
    /// The room's addresses, and the one of the moment.
    addresses: Vec<(String, u16)>,
    at: usize,
    /// Addresses tried in a row without getting in, before the first
    /// connection: each once, then the error is the client's.
    failed_first: usize,
    backoff: Backoff,
    /// Whether a connection got into the room (completed its handshake).
    in_room: bool,
    /// Reconnecting: the next connection in says [`NetEvent::Back`].
    reconnecting: bool,
    /// The room's key, from the first connection.
    room_key: Option<Fingerprint>,
    /// A later connection showed another key: the error to end with.
    changed_key: Option<NetError>,
    /// The last peer, to address notices to.
    peer: Option<std::net::SocketAddr>,
    /// A reconnection just completed: [`NetEvent::Back`] follows its
    /// `Connected`.
    back: Option<NetEvent>,
}

impl Away {
    fn new(target: &Dial) -> Self {
        Self {
            addresses: target.addresses(),
            at: 0,
            failed_first: 0,
            backoff: Backoff::default(),
            in_room: false,
            reconnecting: false,
            room_key: None,
            changed_key: None,
            peer: None,
            back: None,
        }
    }

    fn address(&self) -> (String, u16) {
        self.addresses.get(self.at).cloned().unwrap_or_default()
    }

    fn shown_address(&self) -> String {
        let (host, port) = self.address();
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
    }

    /// Takes note of a connection's event; true when it shows a room key
    /// other than the one the first connection proved (it must be closed).
    fn watch(&mut self, event: &NetEvent) -> bool {
        let presented = match event {
            NetEvent::ServerKey { cert, .. } => Some(cert.fingerprint),
            NetEvent::Connected { summary, .. } => summary.peer.as_ref().map(|c| c.fingerprint),
            _ => None,
        };
        if let (Some(presented), Some(known)) = (presented, self.room_key)
            && presented != known
        {
            self.changed_key = Some(NetError::Tls(tls::Error::FingerprintMismatch {
                expected: known.to_string(),
                got: presented.to_string(),
            }));
            return true;
        }
        if let NetEvent::Connected { peer, .. } = event {
            self.room_key = self.room_key.or(presented);
            self.in_room = true;
            self.peer = Some(*peer);
            if std::mem::take(&mut self.reconnecting) {
                let attempts = self.backoff.attempts();
                self.backoff.reset();
                self.back = Some(NetEvent::Back { peer: *peer, to: self.shown_address(), attempts });
            }
        }
        false
    }

    /// Tells the user that what they just asked for was not sent: the
    /// connection is down.
    async fn not_sent(&self, events: &mpsc::Sender<NetEvent>) {
        let text = format!(
            "not sent: the connection is down; reconnecting (attempt {} to {})",
            self.backoff.attempts(),
            self.shown_address()
        );
        let event = ChatEvent::Refused { code: RefusalCode::Disconnected, text };
        let peer = self.peer.unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
        let _ = events.send(NetEvent::Chat { peer, event }).await;
    }

    /// Says [`NetEvent::Back`] once the connection that came back is told.
    async fn say_back(&mut self, events: &mpsc::Sender<NetEvent>) {
        if let Some(back) = self.back.take() {
            let _ = events.send(back).await;
        }
    }

    /// The connection of the moment failed with `error`, a network error:
    /// before the room was ever reached, the next address is tried at
    /// once (the error is returned once each was); after, the next address
    /// is tried after a backoff. False when the user left meanwhile.
    async fn again(
        &mut self,
        error: NetError,
        ui: &mut mpsc::Receiver<Intent>,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<bool, NetError> {
        self.at = (self.at + 1) % self.addresses.len().max(1);
        if !self.in_room {
            self.failed_first += 1;
            return if self.failed_first >= self.addresses.len() { Err(error) } else { Ok(true) };
        }
        self.reconnecting = true;
        let delay = self.backoff.next_delay(&mut OsRng);
        let attempt = self.backoff.attempts();
        let to = self.shown_address();
        let note = NetEvent::Reconnecting { attempt, delay, to, error: error.to_string() };
        let _ = events.send(note).await;
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => return Ok(true),
                intent = ui.recv() => match intent {
                    None | Some(Intent::Close) => return Ok(false),
                    Some(intent) if says(&intent) => self.not_sent(events).await,
                    // Nothing to act on without a connection.
                    Some(_) => {}
                },
            }
        }
    }
}

/// An event as the user is shown it: our Finished, one bit flipped, ends
/// the client's side of the handshake, but the room has yet to check it,
/// so it is not "complete" (`Connected`) for a handshake about to fail.
fn shown(event: NetEvent, pending: &Pending) -> NetEvent {
    match event {
        NetEvent::Connected { .. } if matches!(pending, Pending::Dialed(Case::Finished)) => {
            NetEvent::Lab(Report::Note(
                "tamper finished: our Finished (one bit of verify_data flipped) is sent; the room checks it now"
                    .to_owned(),
            ))
        }
        event => event,
    }
}

/// Where and how to connect next: to `target`, unless the case being
/// dialed changes that.
fn next_dial(target: &Dial, lab: &Lab, pending: &Pending) -> Dial {
    let normal = target.clone();
    let Pending::Dialed(case) = pending else { return normal };
    match case {
        Case::Finished => {
            let config = ClientConfig { corrupt_finished_for_lab_only: true, ..(*target.config).clone() };
            Dial { config: Arc::new(config), ..normal }
        }
        Case::Mitm => match &lab.mitm {
            Some(mitm) => {
                let mut config = (*target.config).clone();
                if let Some(trust) = &mitm.trust {
                    config.trust = trust.clone();
                }
                Dial { host: "127.0.0.1".to_owned(), port: mitm.port, config: Arc::new(config), ..normal }
            }
            None => normal,
        },
        Case::CertCa | Case::CertName => {
            if let Some(demo) = &lab.demo {
                let other = if *case == Case::CertCa { &demo.other_ca } else { &demo.other_name };
                if let Ok(mut next) = demo.next_config.lock() {
                    *next = Some(other.clone());
                }
            }
            normal
        }
        _ => normal,
    }
}

/// What to do for a case.
enum Act {
    Nothing,
    Wire(crate::teach::lab::Wire),
    Redial,
    Sig,
}

/// What the lab says about `/tamper CASE`, and does.
fn arm(lab: &Lab, case: Case, pending: &Pending) -> (Report, Act) {
    let note = |text: &str| (Report::Note(text.to_owned()), Act::Nothing);
    if !lab.enabled {
        return note(
            "/tamper is off: it breaks this connection on purpose. Start tlschat connect with --lab, \
             or try it in tlschat demo",
        );
    }
    if !matches!(pending, Pending::None) {
        return note("a tamper case is already under way: wait for its outcome");
    }
    if case.demo_only() && lab.demo.is_none() {
        return note(&format!(
            "/tamper {case} needs tlschat demo: it changes the server or the relay, which a client cannot do to a real room"
        ));
    }
    let armed = |next: String, act| (Report::Armed { case, next }, act);
    match case {
        Case::Flip | Case::Replay | Case::Reorder => match case.wire() {
            Some(wire) => armed(format!("{}: type a line", case.does()), Act::Wire(wire)),
            None => note("not a record case"),
        },
        Case::Finished => armed(
            "closing, then connecting again with one bit of our Finished's verify_data flipped".into(),
            Act::Redial,
        ),
        Case::CertCa => armed(
            "closing, then connecting again: the demo's server presents, once, a certificate from another CA".into(),
            Act::Redial,
        ),
        Case::CertName => armed(
            "closing, then connecting again: the demo's server presents, once, a certificate from the room's CA \
             for www.example.org"
                .into(),
            Act::Redial,
        ),
        Case::Mitm => match &lab.mitm {
            Some(mitm) => armed(format!("closing, then connecting through {}", mitm.about), Act::Redial),
            None => note("no man in the middle could be started here"),
        },
        Case::Sig => armed(
            "bob says a line; the demo's relay (told to lie: tlschat's relay never alters a message) changes \
             its text on the way to you and keeps bob's signature"
                .into(),
            Act::Sig,
        ),
    }
}

/// Hands an intent to the connection of the moment.
async fn forward(tx: Option<&mpsc::Sender<Intent>>, intent: Intent, events: &mpsc::Sender<NetEvent>) {
    let Some(tx) = tx else { return };
    if tx.try_send(intent).is_err() {
        let note = "not sent: the connection is over, or too much is waiting".to_owned();
        let _ = events.send(NetEvent::Lab(Report::Note(note))).await;
    }
}

/// The outcome of a tampered connection, from how it ended.
fn ended(case: Case, result: Result<(), NetError>) -> Report {
    let (alert, error) = match &result {
        Ok(()) => (None, "it closed cleanly with close_notify".to_owned()),
        Err(NetError::Tls(tls::Error::AlertReceived(alert))) => {
            (Some((Checker::Peer, *alert)), String::new())
        }
        Err(NetError::Tls(e)) => (e.alert().map(|a| (Checker::Us, a)), String::new()),
        Err(_) => (None, String::new()),
    };
    let error = match result {
        Err(e) => e.to_string(),
        Ok(()) => error,
    };
    Report::Ended { case, alert, error }
}
