//! The tokio driver: sockets, tasks and timers around the sans-IO engine.
//!
//! The engine ([`crate::tls`]) turns bytes into bytes and events; this module
//! gives it a TCP socket, a clock and randomness, one task per connection.
//! A user interface talks to it only through two enums on tokio channels:
//! [`Intent`] in (what to send, when to close) and [`NetEvent`] out (handshake
//! steps, received text, how each connection ended). The headless log of
//! [`crate::cmd`] prints the events; the TUI draws the same ones.
//!
//! # Layout
//!
//! - this file: the types that cross the channels, [`connect`] (a client) and
//!   [`Server`] (the accept loop of `listen`);
//! - `addr.rs`: `HostPort`, an address as typed (`HOST:PORT`);
//! - `session.rs`: one connection's task, the `select!` loop between socket,
//!   engine, inbox and timers;
//! - `relay.rs`: the room's task, which only orders; `host.rs`: the room's
//!   host as a seat with its own task; `screen.rs`: the operator's events
//!   from the room, sent without waiting;
//! - `cluster.rs`: a relay of a room shared by several relays over NATS
//!   JetStream;
//! - `limits.rs`: the room's caps on connections, per address and in all;
//!   `backoff.rs`: a dropped client's waits before it connects again;
//! - `text.rs`: received bytes as printable lines, and the HTTP status page.
//!
//! # Failures stay where they happen
//!
//! Every connection runs in its own task and reports its own end; an error in
//! one (a bad handshake, a peer that vanished) is a [`NetEvent::Failed`] for
//! that peer and nothing else. A client's [`connect`] returns its error
//! instead, since there the connection is the whole program.

mod addr;
mod backoff;
pub mod cluster;
mod host;
#[cfg(test)]
mod lab_hook_tests;
mod limits;
mod relay;
mod screen;
mod session;
mod text;

pub(crate) use addr::{BadHostPort, HostPort};
pub(crate) use backoff::Backoff;
pub use limits::{DEFAULT_UNVERIFIED_PER_ADDRESS, Limits, Refusal, open_file_limit, raise_open_file_limit};
pub use relay::{
    Binder, Bus, Host, MAX_UNCOMMITTED, Reopened, RoomHandle, SEAT_QUEUE, start as start_room, start_durable,
    start_on_bus as start_room_on_bus, start_with_hook as start_room_with_hook,
};

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout_at};

use self::session::{Inbox, Role, TlsStream};
use crate::chat::{ChatEvent, Kind};
use crate::teach::lab::ConnectionHook;
use crate::teach::pcap::{Capture, Opener};
use crate::tls::{
    self, AlertDescription, CertSummary, ClientConfig, Connection, Direction, Event, Fingerprint,
    HandshakeStep, OsRng, Revealed, ServerConfig, ServerName, Summary,
};

/// What a connection asks the driver to do (from the UI or stdin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Send these bytes as application data (one `send`). In a room, the
    /// host's raw line is said as text.
    Send(Arc<[u8]>),
    /// Say something in the room: signed and framed on a `tlschat/1`
    /// connection, a plain line on any other.
    Say {
        /// Text, action (`/me`) or private (with `to`).
        kind: Kind,
        /// What to say.
        text: String,
        /// `/msg NAME`: the recipient.
        to: Option<String>,
    },
    /// Ask the room who is in (`/who`).
    Who,
    /// A member: stop showing what `name` says, for this session (`/ignore`).
    Ignore {
        /// Who.
        name: String,
    },
    /// A member: show both safety numbers and mark `name`'s key verified
    /// (`/verify`), after comparing them out of band.
    Verify {
        /// Who.
        name: String,
    },
    /// The host: disconnect `name` (`/kick`), and with `ban` refuse its key
    /// from now on (`/ban`).
    Remove {
        /// Who.
        name: String,
        /// Refuse the key from now on.
        ban: bool,
    },
    /// The host: bind `name` to the key `fingerprint` in the room's names,
    /// so that a closed room admits it (`/invite`).
    Invite {
        /// The name.
        name: String,
        /// The key.
        fingerprint: Fingerprint,
    },
    /// Send a KeyUpdate (RFC 8446 §4.6.3); with `request_peer` the peer is
    /// asked to update its keys too.
    KeyUpdate {
        /// Whether to send update_requested.
        request_peer: bool,
    },
    /// Send close_notify, then wait briefly for the peer's; during the
    /// handshake, at once and without waiting (what was queued is dropped).
    /// While a client's handshake waits for [`Intent::TrustServer`], it is
    /// cancelled: user_canceled, close_notify, and our certificate is never sent.
    Close,
    /// The user trusts the key a [`NetEvent::ServerKey`] showed: the client
    /// sends its second flight (its certificate, its Finished) and joins.
    /// Acted on at once; nothing is queued before it.
    TrustServer,
    /// The tamper lab (`/tamper`): the client's loop (`cmd`) hands it to
    /// the lab, which acts through the hook it gave the connection
    /// ([`Dial::hook`]); a connection itself ignores it.
    Tamper(crate::teach::lab::Case),
}

/// Which side ended a connection cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closer {
    /// The peer sent close_notify (and we answered).
    Peer,
    /// We sent close_notify.
    Us,
}

/// What happened on a connection, for the UI or the headless log. `peer`
/// is the address at the other end (for a client: the server).
#[derive(Debug)]
#[non_exhaustive]
pub enum NetEvent {
    /// A handshake step; its `Display` is the log line.
    Step {
        /// The connection.
        peer: SocketAddr,
        /// The step.
        step: HandshakeStep,
    },
    /// A client that holds its flight for trust (first contact): the server
    /// has proven this key, and the client sends nothing more (its
    /// certificate, so not who it is) until [`Intent::TrustServer`];
    /// [`Intent::Close`] cancels the handshake instead.
    ServerKey {
        /// The connection.
        peer: SocketAddr,
        /// The server's certificate, whose key it proved.
        cert: CertSummary,
    },
    /// The handshake completed.
    Connected {
        /// The connection.
        peer: SocketAddr,
        /// What was negotiated, and who the peer is.
        summary: Summary,
    },
    /// Traffic keys changed by a KeyUpdate (RFC 8446 §4.6.3).
    KeyUpdated {
        /// The connection.
        peer: SocketAddr,
        /// Sent: our sending keys changed. Received: the peer's.
        direction: Direction,
        /// Whether the KeyUpdate asked the other side to update too.
        update_requested: bool,
        /// The generation of the new application traffic secret.
        generation: u64,
    },
    /// A secret value, key or record as the engine used it; only when the
    /// user asked for them (`--reveal`, [`tls::ClientConfig::reveal`]).
    Revealed {
        /// The connection.
        peer: SocketAddr,
        /// The value.
        revealed: Revealed,
    },
    /// We sent an alert: close_notify, or the reason a connection failed.
    AlertSent {
        /// The connection.
        peer: SocketAddr,
        /// The alert.
        alert: AlertDescription,
    },
    /// A line of text received (terminal control characters replaced).
    Text {
        /// The connection.
        peer: SocketAddr,
        /// The line, without its newline.
        line: String,
    },
    /// Something happened in the room: a message (checked), a join, an
    /// acknowledgement... For a client, from its connection; for a room,
    /// what its host's seat sees.
    Chat {
        /// The connection (a room's own address for its host).
        peer: SocketAddr,
        /// What happened.
        event: ChatEvent,
    },
    /// A line for the room operator's log (a member refused, disconnected).
    RoomNote {
        /// What happened.
        note: String,
    },
    /// An HTTP client got the room's status page; the connection is closing.
    StatusPage {
        /// The connection.
        peer: SocketAddr,
    },
    /// `--step`: the client has its next handshake flight ready and holds
    /// it until its [`StepGate`] opens.
    Held {
        /// The connection.
        peer: SocketAddr,
    },
    /// The connection ended cleanly with close_notify.
    Closed {
        /// The connection.
        peer: SocketAddr,
        /// Who closed it.
        by: Closer,
    },
    /// A server's connection failed; the server goes on.
    Failed {
        /// The connection.
        peer: SocketAddr,
        /// Whether it failed before its handshake completed.
        during_handshake: bool,
        /// Why.
        error: NetError,
    },
    /// A connection was refused by the room's caps before its handshake.
    Refused {
        /// Where it came from.
        peer: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
    /// Accepting a connection failed (for example, out of file
    /// descriptors); the server pauses briefly and goes on.
    AcceptFailed {
        /// Why.
        error: io::Error,
    },
    /// What the tamper lab did and what caught it.
    Lab(crate::teach::lab::Report),
    /// The `--pcap` capture stopped growing (its size limit, a write
    /// error): told once, by the first connection to notice.
    CaptureStopped {
        /// What happened, naming the file.
        note: String,
    },
    /// A client's connection dropped (or the attempt to make it again
    /// failed): it connects again by itself after `delay`.
    Reconnecting {
        /// Attempts since the connection dropped, this one included.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// The address it will try (`HOST:PORT`).
        to: String,
        /// Why the last connection or attempt ended.
        error: String,
    },
    /// A client is back in the room after reconnecting (the resume of what
    /// it missed follows, as [`ChatEvent::Resumed`]).
    Back {
        /// The connection.
        peer: SocketAddr,
        /// The address it came back through (`HOST:PORT`).
        to: String,
        /// Attempts it took.
        attempts: u32,
    },
}

impl NetEvent {
    /// The event to report for an engine event, if any: `PeerClosed` is
    /// reported when the connection ends, as [`NetEvent::Closed`].
    pub fn from_engine(peer: SocketAddr, event: Event) -> Option<Self> {
        Some(match event {
            Event::Handshake(step) => Self::Step { peer, step },
            Event::ServerKey(cert) => Self::ServerKey { peer, cert },
            Event::Connected(summary) => Self::Connected { peer, summary },
            Event::KeyUpdated { direction, update_requested, generation } => {
                Self::KeyUpdated { peer, direction, update_requested, generation }
            }
            Event::AlertSent(alert) => Self::AlertSent { peer, alert },
            Event::PeerClosed => return None,
            Event::Revealed(revealed) => Self::Revealed { peer, revealed },
        })
    }
}

/// Why a connection failed. Each message is one line for the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {error}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver's answer.
        error: io::Error,
    },
    /// The host name resolved to no address.
    #[error("{host} has no address")]
    NoAddress {
        /// The name.
        host: String,
    },
    /// Nothing listens at the address.
    #[error("connection to {addr} refused: nothing is listening there")]
    Refused {
        /// The address tried last.
        addr: SocketAddr,
    },
    /// TCP connect failed for another reason.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// The address tried last.
        addr: SocketAddr,
        /// Why.
        error: io::Error,
    },
    /// Name resolution and TCP connect did not finish within the handshake limit.
    #[error("timed out after {} s connecting to {host}", .after.as_secs_f64())]
    ConnectTimeout {
        /// The host.
        host: String,
        /// The limit.
        after: Duration,
    },
    /// The TLS handshake did not finish within the limit.
    #[error("the TLS handshake timed out after {} s, {waiting_for}", .after.as_secs_f64())]
    HandshakeTimeout {
        /// The limit.
        after: Duration,
        /// What the handshake was waiting for.
        waiting_for: &'static str,
    },
    /// The engine refused the connection (certificate, alert received, ...):
    /// its message says why.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// The peer closed TCP in the middle of the handshake.
    #[error("the peer closed the connection during the handshake, {waiting_for}")]
    ClosedDuringHandshake {
        /// What the handshake was waiting for.
        waiting_for: &'static str,
    },
    /// The room broke the chat protocol.
    #[error("the room sent something that is not the chat protocol: {0}")]
    Chat(tls::codec::InvalidMessage),
    /// The peer closed TCP without close_notify after the handshake.
    #[error("the peer closed the connection without close_notify: what it sent last may have been cut off")]
    Vanished,
    /// The socket failed.
    #[error("network error: {0}")]
    Io(io::Error),
    /// A frame of ours does not fit the chat protocol's limits: refused,
    /// never sent cut short.
    #[error("{0}")]
    Unsendable(crate::chat::frame::FrameTooLong),
}

impl NetError {
    /// Whether the connection was lost rather than refused: the network,
    /// the relay gone or restarting. A client that was in the room tries
    /// again after such an error; never after the room's TLS or chat said
    /// no (a changed key, a bad certificate, a broken protocol).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Resolve { .. }
            | Self::NoAddress { .. }
            | Self::Refused { .. }
            | Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::HandshakeTimeout { .. }
            | Self::ClosedDuringHandshake { .. }
            | Self::Vanished
            | Self::Io(_) => true,
            Self::Tls(_) | Self::Chat(_) | Self::Unsendable(_) => false,
        }
    }
}

// Written out rather than `#[from]`, which would also make the io::Error the
// `source()`: every message here already includes its cause, so a reporter
// that walks the chain (`tlschat`'s one-line error, as anyhow's `{:#}`)
// would print it twice.
impl From<crate::chat::frame::FrameTooLong> for NetError {
    fn from(error: crate::chat::frame::FrameTooLong) -> Self {
        Self::Unsendable(error)
    }
}

impl From<io::Error> for NetError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// A member's own command (`/ignore`, `/verify`) carried out on its
/// [`Member`](crate::chat::Member), as the event that answers it (a
/// refusal says why it could not be); `None` for any other intent. A
/// client's connection and the room's host both answer them this way.
fn member_command(member: &mut crate::chat::Member, intent: &Intent) -> Option<ChatEvent> {
    let done = match intent {
        Intent::Ignore { name } => member.ignore(name),
        Intent::Verify { name } => member.verify(name),
        _ => return None,
    };
    let refused = |e: crate::chat::ComposeError| ChatEvent::Refused {
        code: crate::chat::RefusalCode::BadMessage,
        text: e.to_string(),
    };
    Some(done.unwrap_or_else(refused))
}

/// `--step`: a client holds each of its handshake flights until the user
/// lets it go (the [`NetEvent::Held`] event says one is waiting). Made by
/// [`step_gate`].
#[derive(Debug)]
pub struct StepGate(mpsc::Receiver<()>);

/// A [`StepGate`] and its sender: each `()` sent releases one held flight;
/// dropping the sender releases the rest.
pub fn step_gate() -> (mpsc::Sender<()>, StepGate) {
    let (go, gate) = mpsc::channel(1);
    (go, StepGate(gate))
}

/// A connection to make: where, as which name, with which configuration,
/// within what time, and recorded where.
#[derive(Clone)]
pub struct Dial {
    /// The host to resolve and connect to.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The name the server's certificate must hold.
    pub server_name: ServerName,
    /// The client's TLS configuration.
    pub config: Arc<ClientConfig>,
    /// Bounds everything up to a completed handshake: name resolution, TCP
    /// connect and TLS (not counting the time a `--step` gate holds a
    /// flight, nor the wait for [`Intent::TrustServer`]).
    pub handshake_timeout: Duration,
    /// `--pcap`: where the connection is recorded; the capture should also
    /// be in `config`'s key log, for its secrets.
    pub capture: Option<Arc<Capture>>,
    /// Where the member keeps its contacts, one file per room (named by the
    /// room's id): `None` remembers nothing after the connection. The
    /// contacts hold the last room sequence number seen, which a later
    /// connection resumes from.
    pub contacts_dir: Option<PathBuf>,
    /// Other addresses of the same room (`connect A B ...`): tried in turn
    /// when one fails. They must present the same room key.
    pub also: Vec<(String, u16)>,
    /// Connect again by itself (with `Backoff`) when a connection that
    /// got into the room drops.
    pub reconnect: bool,
    /// The tamper lab's hook: it makes the engine and seals the lines it
    /// tampers with. `None` (every connection but the lab's): the engine
    /// is [`Connection::client`] and lines are sealed as they are.
    pub hook: Option<Arc<dyn ConnectionHook>>,
}

impl Dial {
    /// A connection to `host:port` as `server_name`, not recorded.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        server_name: ServerName,
        config: Arc<ClientConfig>,
        handshake_timeout: Duration,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            server_name,
            config,
            handshake_timeout,
            capture: None,
            contacts_dir: None,
            also: Vec::new(),
            reconnect: false,
            hook: None,
        }
    }

    /// Every address of the room: the first, then [`Self::also`].
    pub(crate) fn addresses(&self) -> Vec<(String, u16)> {
        std::iter::once((self.host.clone(), self.port)).chain(self.also.iter().cloned()).collect()
    }
}

/// Makes the connection `dial` describes and runs the chat session: what
/// arrives on `intents` is sent, what happens is reported on `events`.
/// Lines sent before the handshake completes wait for it. [`Intent::Close`]
/// sends close_notify at once, even mid-handshake; `intents` closing sends
/// it once everything asked for before has been sent. `step` (`--step`)
/// holds each of our flights until it says go.
///
/// Returns `Ok` when the connection ended with a close_notify from either
/// side, and the reason otherwise.
pub async fn connect(
    dial: Dial,
    intents: mpsc::Receiver<Intent>,
    events: mpsc::Sender<NetEvent>,
    step: Option<StepGate>,
) -> Result<(), NetError> {
    let Dial { host, port, server_name, config, handshake_timeout, capture, contacts_dir, hook, .. } = dial;
    let start = Instant::now();
    let tcp = timeout_at(start + handshake_timeout, open(&host, port))
        .await
        .map_err(|_| NetError::ConnectTimeout { host, after: handshake_timeout })??;
    tcp.set_nodelay(true)?;
    let peer = tcp.peer_addr()?;
    // Chat messages are signed with the key mutual TLS proves.
    let key = config.client_cert.as_ref().map(|c| Box::new(c.key.clone()));
    let tls = match &hook {
        Some(hook) => hook.engine(config, server_name, Box::new(OsRng))?,
        None => Connection::client(config, server_name, Box::new(OsRng))?,
    };
    let mut stream = TlsStream::new(tcp, tls, peer, start, handshake_timeout);
    if let Some(capture) = capture {
        stream.capture(capture, Opener::Us)?;
    }
    let role = Role::Client { key, contacts_dir, hook };
    let by = session::chat(&mut stream, &mut Inbox::Direct(intents), &events, role, step).await?;
    let _ = events.send(NetEvent::Closed { peer, by }).await;
    Ok(())
}

/// Resolves `host` and connects to the first address that answers.
async fn open(host: &str, port: u16) -> Result<TcpStream, NetError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| NetError::Resolve { host: host.to_owned(), error })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if e.kind() == io::ErrorKind::ConnectionRefused => NetError::Refused { addr },
        Some((addr, error)) => NetError::Connect { addr, error },
        None => NetError::NoAddress { host: host.to_owned() },
    })
}

/// What a [`Server`] does with its connections.
#[derive(Debug, Clone)]
pub enum Service {
    /// The chat room (see [`start_room`]): every connection takes a seat
    /// once its handshake completes. HTTP clients get a status page with
    /// `about` and the member count.
    Room {
        /// The room's task.
        room: RoomHandle,
        /// The status page's text about the room.
        about: Arc<str>,
    },
    /// `listen --echo`: each application-data record is answered with one
    /// record of the same bytes. Only failures are reported.
    Echo,
}

/// The accept loop of `tlschat listen`: one task per connection.
#[derive(Debug)]
pub struct Server {
    /// The bound socket.
    pub listener: TcpListener,
    /// The TLS configuration every connection shares.
    pub config: Arc<ServerConfig>,
    /// Chat room or echo.
    pub service: Service,
    /// How long a client has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Where connections report.
    pub events: mpsc::Sender<NetEvent>,
    /// Becomes true to stop accepting and close the room's connections
    /// with close_notify. Echo connections are left to end by themselves.
    pub shutdown: watch::Receiver<bool>,
    /// How many connections, and how many unverified ones per address.
    pub limits: Limits,
    /// The tamper lab (`demo`'s `/tamper cert`): when it holds a
    /// configuration, the next connection accepted takes it (once).
    pub next_config: Option<NextConfig>,
    /// `--pcap`: where every connection is recorded, each as its own TCP
    /// stream (the capture should also be in `config`'s key log).
    pub capture: Option<Arc<Capture>>,
}

/// A one-shot configuration for a [`Server`]'s next connection.
pub(crate) type NextConfig = Arc<std::sync::Mutex<Option<Arc<ServerConfig>>>>;

/// What the kernel may hold for a room member that is not reading. Linux
/// grows a socket's send buffer up to 4 MiB by default, which a member
/// that stops reading would pin in the server's kernel; a chat stream
/// needs little, and past this the seat's queue fills and the room lets
/// the member go ("too slow"). Linux doubles the value for its own books.
pub(crate) const SEAT_SEND_BUFFER: usize = 64 * 1024;

/// Members sit idle for hours, which is chat: TCP keepalive, not a
/// timeout, finds the ones whose machine vanished without closing (after
/// about three minutes of silence and unanswered probes).
fn keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(120))
        .with_interval(Duration::from_secs(15))
        .with_retries(4)
}

/// A room seat's socket: a bounded send buffer and keepalive.
fn tune_seat_socket(tcp: &TcpStream) -> io::Result<()> {
    let socket = socket2::SockRef::from(tcp);
    socket.set_send_buffer_size(SEAT_SEND_BUFFER)?;
    socket.set_tcp_keepalive(&keepalive())
}

impl Server {
    /// Accepts connections until `shutdown`.
    pub async fn run(mut self) {
        let occupancy = limits::Occupancy::new(self.limits);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = self.shutdown.changed() => return,
            };
            match accepted {
                Ok((tcp, peer)) => match occupancy.admit(peer.ip()) {
                    Ok(slot) => self.spawn(tcp, peer, slot),
                    Err(refusal) => {
                        // Closed at once, before any TLS: the cheapest answer
                        // to a flood. Not reported if the log is behind.
                        drop(tcp);
                        let _ = self.events.try_send(NetEvent::Refused { peer, refusal });
                    }
                },
                Err(error) => {
                    let _ = self.events.send(NetEvent::AcceptFailed { error }).await;
                    // The cause (usually too many open files) does not go away
                    // at once: pause rather than spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Starts the task that serves one connection, which holds `slot`.
    fn spawn(&self, tcp: TcpStream, peer: SocketAddr, slot: limits::Slot) {
        let start = Instant::now();
        let lab = self.next_config.as_ref().and_then(|next| next.lock().ok()?.take());
        let tls = Connection::server(lab.unwrap_or_else(|| self.config.clone()), Box::new(OsRng));
        let limit = self.handshake_timeout;
        let events = self.events.clone();
        let capture = self.capture.clone();
        // The connection's place under the caps, held for its life: by its
        // seat in a room (which lets it go of the unverified count once the
        // member proved its key), else by its task.
        let mut slot = Some(slot);
        let room = match &self.service {
            Service::Room { room, about } => {
                let (out, inbox) = mpsc::channel(SEAT_QUEUE);
                let seat = session::RoomPlace {
                    room: room.clone(),
                    id: room.next_seat(),
                    out: Some(out),
                    about: about.clone(),
                    kick: Arc::new(tokio::sync::Notify::new()),
                    slot: slot.take(),
                };
                Some((Inbox::room(inbox, self.shutdown.clone()), seat))
            }
            Service::Echo => None,
        };
        // Small writes (a chat line, a handshake flight) go out at once.
        let nodelay = tcp.set_nodelay(true).and_then(|()| match room {
            Some(_) => tune_seat_socket(&tcp),
            None => Ok(()),
        });
        // Built here, not in the task: what the task captures stays in it
        // for its whole life, so the engine is moved in once, in the stream.
        let mut stream = TlsStream::new(tcp, tls, peer, start, limit);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = nodelay {
                let error = error.into();
                let _ = events.send(NetEvent::Failed { peer, during_handshake: true, error }).await;
                return;
            }
            if let Some(capture) = capture
                && let Err(error) = stream.capture(capture, Opener::Peer)
            {
                let error = error.into();
                let _ = events.send(NetEvent::Failed { peer, during_handshake: true, error }).await;
                return;
            }
            // An echo server reports failures only: the benchmark makes
            // thousands of connections a second.
            let report_closes = room.is_some();
            let result = match room {
                Some((mut inbox, seat)) => {
                    let (inputs, id) = (seat.room.inputs.clone(), seat.id);
                    let result =
                        session::chat(&mut stream, &mut inbox, &events, Role::Seat(seat), None).await;
                    let reason = match &result {
                        Ok(_) => String::new(),
                        Err(e) => e.to_string(),
                    };
                    let _ = inputs.send(relay::RoomInput::Leave { id, reason }).await;
                    result
                }
                None => session::echo(&mut stream).await,
            };
            let event = match result {
                Ok(by) if report_closes => NetEvent::Closed { peer, by },
                Ok(_) => return,
                Err(error) => NetEvent::Failed { peer, during_handshake: !stream.connected, error },
            };
            let _ = events.send(event).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_seat_socket_has_a_bounded_send_buffer_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (seat, _) = listener.accept().await.unwrap();
        let untouched = socket2::SockRef::from(&client);
        assert!(!untouched.keepalive().unwrap());
        tune_seat_socket(&seat).unwrap();
        let socket = socket2::SockRef::from(&seat);
        // Linux reports twice what was set; never the default's megabytes.
        let size = socket.send_buffer_size().unwrap();
        assert!((SEAT_SEND_BUFFER..=2 * SEAT_SEND_BUFFER).contains(&size), "{size}");
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(120));
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(15));
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
    }
}
