//! The client's loop (`connect`, `demo`): one connection after another to
//! the same room, between the user (the trust gate, the TUI or stdin) and
//! [`net::connect`]. Intents go through it to the connection of the
//! moment; events come back through it.
//!
//! It reconnects a member whose connection dropped (when the [`Dial`] asks
//! for it, as `connect` does): after a network error, not after a refusal,
//! it waits as [`net::Backoff`] says, tries the room's addresses in turn,
//! reports [`NetEvent::Reconnecting`] then [`NetEvent::Back`], and refuses
//! a room that comes back with another key. The member resumes what it
//! missed by itself (see [`crate::chat::member`]).
//!
//! `--reveal-script` and headless `--reveal` are fed here too
//! ([`RevealCommands`]), as the events pass, rather than by a task of
//! their own between the client and the screen.
//!
//! The tamper lab (`demo`, `connect --lab`), when there is one, acts only
//! through its own steps ([`Lab`]): it takes `/tamper`, may change the next
//! dial, watches what the connection shows, and decides what a tampered
//! connection's end means. Without one, `/tamper` only says how to enable it.

use tokio::sync::mpsc;

use super::RevealCommands;
use super::lab::{self, Lab, LabEnd};
use crate::chat::{ChatEvent, RefusalCode};
use crate::net::{self, Backoff, Dial, Intent, NetError, NetEvent, StepGate};
use crate::tls::{self, Fingerprint, OsRng};

/// Intents waiting for the connection of the moment.
const QUEUE: usize = 1024;

/// Runs the client until the user leaves or a connection fails for good
/// (its error is the result, as [`net::connect`]'s).
pub(super) async fn run(
    mut target: Dial,
    mut lab: Option<Lab>,
    mut reveal: Option<RevealCommands>,
    mut ui: mpsc::Receiver<Intent>,
    events: mpsc::Sender<NetEvent>,
    mut step: Option<StepGate>,
) -> Result<(), NetError> {
    target.hook = lab.as_ref().map(Lab::hook);
    let mut ui_open = true;
    let mut away = Away::new(&target);
    loop {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (etx, mut erx) = mpsc::channel(64);
        let dial = match lab.as_mut().and_then(|lab| lab.dial(&target)) {
            Some(dial) => dial,
            None => {
                let (host, port) = away.address();
                Dial { host, port, ..target.clone() }
            }
        };
        let conn = net::connect(dial, rx, etx, step.take());
        tokio::pin!(conn);
        let mut tx = ui_open.then_some(tx);
        let result = loop {
            tokio::select! {
                result = &mut conn => break result,
                Some(event) = erx.recv() => {
                    // A lab case's connection may show another key on purpose.
                    if watched(lab.as_ref()) && away.watch(&event) {
                        // Another key than the room's: not trusted, whatever the plan.
                        forward(tx.as_ref(), Intent::Close, &events).await;
                    }
                    if let Some(report) = show(event, lab.as_mut(), reveal.as_mut(), &mut away, &events).await {
                        let _ = events.send(report).await;
                    }
                }
                intent = ui.recv(), if ui_open => match intent {
                    Some(Intent::Tamper(case)) => match lab.as_mut() {
                        Some(lab) => lab.request(case, tx.as_ref(), &events).await,
                        None => {
                            let _ = events.send(lab::off()).await;
                        }
                    },
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
            if watched(lab.as_ref()) {
                away.watch(&event);
            }
            show(event, lab.as_mut(), reveal.as_mut(), &mut away, &events).await;
        }
        if let Some(changed) = away.changed_key.take() {
            return Err(changed);
        }
        let result = match lab.as_mut() {
            Some(lab) => match lab.ended(result, ui_open, &events).await {
                LabEnd::Again => continue,
                LabEnd::Leave(result) => return result,
                LabEnd::NotLab(result) => result,
            },
            None => result,
        };
        match result {
            // The user is leaving, or has left.
            Ok(()) => return Ok(()),
            Err(e) if target.reconnect && ui_open && e.is_transient() => {
                if !away.again(e, &mut ui, &events).await? {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Shows the user one event of the connection, as the lab (if any) tells
/// it, feeding the key schedule's commands on the way; returns the lab's
/// report on it, when the event ends a case.
async fn show(
    event: NetEvent,
    lab: Option<&mut Lab>,
    reveal: Option<&mut RevealCommands>,
    away: &mut Away,
    events: &mpsc::Sender<NetEvent>,
) -> Option<NetEvent> {
    let (event, report) = match lab {
        Some(lab) => lab.shown(event),
        None => (event, None),
    };
    if let Some(reveal) = reveal {
        reveal.see(&event);
    }
    let _ = events.send(event).await;
    away.say_back(events).await;
    report
}

/// Whether the room's key is watched on this connection: not while a lab
/// case is under way, whose connection may show another key on purpose.
fn watched(lab: Option<&Lab>) -> bool {
    lab.is_none_or(|lab| !lab.busy())
}

/// Hands an intent to the connection of the moment.
pub(super) async fn forward(
    tx: Option<&mpsc::Sender<Intent>>,
    intent: Intent,
    events: &mpsc::Sender<NetEvent>,
) {
    let Some(tx) = tx else { return };
    if tx.try_send(intent).is_err() {
        let _ = events.send(lab::not_sent()).await;
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
