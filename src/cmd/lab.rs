//! The tamper lab's steps in the client's loop ([`super::client`]), in
//! `demo` and `connect --lab`: after a `/tamper` case, it reports what
//! caught it, and the loop connects again.
//!
//! `/tamper flip`, `replay` and `reorder` arm the hook the lab gave the
//! connection ([`ClientTamper`], which acts on the next line);
//! `finished`, `cert` and `mitm` close the connection and dial once more
//! with the one thing changed (the hook's engine sends a wrong Finished,
//! the demo's server presents another certificate, or the dial goes to
//! the man in the middle); `sig` arms the demo's lying relay and has the
//! bot it lies about say a line.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::client::forward;
use crate::chat::{ChatEvent, Kind, SigCheck, relay};
use crate::net::{self, Dial, Intent, NetError, NetEvent, NextConfig};
use crate::teach::lab::{Case, Checker, ClientTamper, ConnectionHook, LyingRelay, Report, Wire};
use crate::tls::{self, ClientAuth, ClientTrust, ServerConfig, ServerTrust};

/// How long the lab waits before it connects again: the peer's end of the
/// failed connection has left the room by then.
const PAUSE: Duration = Duration::from_millis(500);

/// What the lab can do where it runs (`demo`, or `connect --lab`), and
/// where its case stands.
pub(super) struct Lab {
    /// The hook given to every connection the client makes.
    hook: Arc<ClientTamper>,
    /// The man in the middle: a server with a key of its own, on a
    /// loopback port, and the trust the client dials it with.
    mitm: Option<Mitm>,
    /// What only the demo, which runs the room, can do.
    demo: Option<DemoLab>,
    pending: Pending,
    /// `sig` is under way on this connection: the lying relay's author's
    /// next message is the outcome.
    sig_armed: bool,
}

impl Lab {
    /// The lab, with what it can do here.
    pub(super) fn new(mitm: Option<Mitm>, demo: Option<DemoLab>) -> Self {
        Self { hook: Arc::default(), mitm, demo, pending: Pending::None, sig_armed: false }
    }

    /// The hook for the client's connections.
    pub(super) fn hook(&self) -> Arc<dyn ConnectionHook> {
        self.hook.clone()
    }

    /// Whether a case is under way (its connection may show another key
    /// on purpose).
    pub(super) fn busy(&self) -> bool {
        !matches!(self.pending, Pending::None)
    }

    /// The next connection's dial, when the case under way changes it
    /// (`None`: the client dials as it would). A new connection has no
    /// `sig` under way.
    pub(super) fn dial(&mut self, target: &Dial) -> Option<Dial> {
        self.sig_armed = false;
        let Pending::Dialed(case) = self.pending else { return None };
        let normal = target.clone();
        Some(match case {
            Case::Finished => {
                self.hook.arm_finished();
                normal
            }
            Case::Mitm => match &self.mitm {
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
                if let Some(demo) = &self.demo {
                    let other = if case == Case::CertCa { &demo.other_ca } else { &demo.other_name };
                    if let Ok(mut next) = demo.next_config.lock() {
                        *next = Some(other.clone());
                    }
                }
                normal
            }
            _ => normal,
        })
    }

    /// `/tamper CASE`: says what happens, and sets it up on the connection
    /// of the moment (`conn`).
    pub(super) async fn request(
        &mut self,
        case: Case,
        conn: Option<&mpsc::Sender<Intent>>,
        events: &mpsc::Sender<NetEvent>,
    ) {
        let (report, act) = arm(self, case);
        let _ = events.send(NetEvent::Lab(report)).await;
        match act {
            Act::Nothing => {}
            Act::Wire(wire) => {
                self.pending = Pending::Armed(case);
                self.hook.arm_wire(wire);
            }
            Act::Redial => {
                self.pending = Pending::Redial(case);
                forward(conn, Intent::Close, events).await;
            }
            Act::Sig => {
                if let Some(demo) = &self.demo {
                    self.sig_armed = true;
                    demo.relay.arm();
                    let say = Intent::Say { kind: Kind::Text, text: demo.line.clone(), to: None };
                    let _ = demo.author.send(say).await;
                }
            }
        }
    }

    /// An event as the user is shown it, and the lab's report on it if it
    /// is an outcome. Our Finished, one bit flipped, ends the client's
    /// side of the handshake, but the room has yet to check it, so it is
    /// not "complete" (`Connected`) for a handshake about to fail.
    pub(super) fn shown(&mut self, event: NetEvent) -> (NetEvent, Option<NetEvent>) {
        let marked = match (&event, &self.demo) {
            (NetEvent::Chat { event: ChatEvent::Message(m), .. }, Some(demo))
                if self.sig_armed && m.from == demo.relay.author() =>
            {
                self.sig_armed = false;
                Some(NetEvent::Lab(Report::Marked { from: m.from.clone(), valid: m.sig == SigCheck::Valid }))
            }
            _ => None,
        };
        let event = match event {
            NetEvent::Connected { .. } if matches!(self.pending, Pending::Dialed(Case::Finished)) => {
                NetEvent::Lab(Report::Note(
                    "tamper finished: our Finished (one bit of verify_data flipped) is sent; the room checks it now"
                        .to_owned(),
                ))
            }
            event => event,
        };
        (event, marked)
    }

    /// The connection of the moment ended with `result`: what that means
    /// for the case under way, if one is.
    pub(super) async fn ended(
        &mut self,
        result: Result<(), NetError>,
        ui_open: bool,
        events: &mpsc::Sender<NetEvent>,
    ) -> LabEnd {
        // What was armed for this connection and not used is not carried
        // over to the next.
        self.hook.disarm();
        let (pending, next) = match (std::mem::replace(&mut self.pending, Pending::None), result) {
            (pending @ (Pending::None | Pending::Armed(_)), Ok(())) => (pending, LabEnd::NotLab(Ok(()))),
            (Pending::None, result) => (Pending::None, LabEnd::NotLab(result)),
            (pending, Ok(())) if !ui_open => (pending, LabEnd::Leave(Ok(()))),
            // Closed by us, to dial the tampered connection.
            (Pending::Redial(case), Ok(())) => (Pending::Dialed(case), LabEnd::Again),
            (Pending::Armed(case) | Pending::Dialed(case), result) => {
                let _ = events.send(NetEvent::Lab(outcome(case, result))).await;
                if !ui_open {
                    return LabEnd::Leave(Ok(()));
                }
                tokio::time::sleep(PAUSE).await;
                let _ = events.send(NetEvent::Lab(Report::Reconnecting)).await;
                (Pending::None, LabEnd::Again)
            }
            (pending @ Pending::Redial(_), Err(e)) => (pending, LabEnd::Leave(Err(e))),
        };
        self.pending = pending;
        next
    }
}

/// What a connection's end means to the lab.
pub(super) enum LabEnd {
    /// Connect again at once (the tampered dial, or after a case).
    Again,
    /// The client is done, with this result.
    Leave(Result<(), NetError>),
    /// No case was under way: the client decides, as without a lab.
    NotLab(Result<(), NetError>),
}

/// What `/tamper` says where there is no lab.
pub(super) fn off() -> NetEvent {
    NetEvent::Lab(Report::Note(
        "/tamper is off: it breaks this connection on purpose. Start tlschat connect with --lab, \
         or try it in tlschat demo"
            .to_owned(),
    ))
}

/// What the client says when the connection of the moment could not take
/// an intent.
pub(super) fn not_sent() -> NetEvent {
    NetEvent::Lab(Report::Note("not sent: the connection is over, or too much is waiting".to_owned()))
}

/// Where a case stands on the current connection.
#[derive(Clone, Copy)]
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
    /// The room's delivery hook, armed for `sig`: it alters the next line
    /// of its author.
    pub(super) relay: Arc<LyingRelay>,
    /// What the relay's author says when told to, and what it says then.
    pub(super) author: mpsc::Sender<Intent>,
    pub(super) line: String,
}

/// What to do for a case.
enum Act {
    Nothing,
    Wire(Wire),
    Redial,
    Sig,
}

/// What the lab says about `/tamper CASE`, and does.
fn arm(lab: &Lab, case: Case) -> (Report, Act) {
    let note = |text: &str| (Report::Note(text.to_owned()), Act::Nothing);
    if lab.busy() {
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
        Case::Sig => match &lab.demo {
            Some(demo) => {
                let author = demo.relay.author();
                armed(
                    format!(
                        "{author} says a line; the demo's relay (told to lie: tlschat's relay never alters a message) \
                         changes its text on the way to you and keeps {author}'s signature"
                    ),
                    Act::Sig,
                )
            }
            None => note("not a case for this client"),
        },
    }
}

/// The outcome of a tampered connection, from how it ended.
fn outcome(case: Case, result: Result<(), NetError>) -> Report {
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
