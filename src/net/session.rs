//! One connection's task: moves bytes between a TCP socket and the engine.
//!
//! Every connection, client or server, is a [`TlsStream`] (the socket, the
//! engine and two reused buffers) driven by one of two loops:
//!
//! - [`chat`]: `tokio::select!` over the socket, the connection's [`Inbox`]
//!   (what to send), a `--step` client's [`StepGate`] and one timer (the
//!   handshake deadline, then the wait for the peer's close_notify). It
//!   reports what happens as [`NetEvent`]s.
//! - [`echo`]: the lean loop of `listen --echo`: read, feed the engine, send
//!   each record back, one write. No events, no per-record work beyond the
//!   engine's.
//!
//! Both follow the engine's driving order: after input, write what the
//! engine queued (which on failure carries its alert), then take events and
//! application data.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::relay::{Out, RoomHandle, RoomInput};
use super::text::{self, LineBuffer};
use super::{Closer, Intent, NetError, NetEvent, StepGate, unix_now, unix_now_ms};
use crate::chat::relay::{Joiner, SeatId, Transport};
use crate::chat::{ChatEvent, Contacts, Frame, FrameBuffer, Kind, Member, RefusalCode};
use crate::store::home::{self, Access};
use crate::store::identity;
use crate::teach::lab::{self, Wire};
use crate::teach::pcap::{Capture, Opener, Tap};
use crate::tls::crypto::hex;
use crate::tls::{self, Connection, Ed25519Key, Event, OsRng};

/// What a chat connection reads at once, straight into the engine's
/// buffer (which grows for a longer record, and is given back between
/// reads, see [`Connection::release_buffers`]: an idle member holds no
/// buffer). Chat lines and handshake flights fit; a small figure keeps a
/// join storm's peak, and so the allocator's high-water mark, low.
const READ_CHUNK: usize = 4096;

/// The most an echo connection reads at once. Reads start at one record's
/// worth (a handshake never needs more) and grow while they come back full:
/// bulk data arrives faster than small reads drain it, and each read is a
/// system call and a wake-up.
const ECHO_READ_MAX: usize = 1024 * 1024;

/// How long to wait for the peer's close_notify (or EOF) after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How many intents are taken off the inbox while they cannot be acted on
/// yet (handshake running, flight held). Beyond this they wait in the
/// channel, so a fast writer still feels backpressure.
const EARLY_LIMIT: usize = 64;

/// Why a room member's connection was cut while writing to it.
const KICKED: &str = "the room disconnected this member: it stopped reading what the room sent";

/// How long a write to a chat peer may wait for it to read.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// Why a write to a chat peer gave up.
const STALLED: &str = "the peer read nothing for 30 s: disconnected";

/// Fires when the room kicks this connection; never, outside a room.
/// How often an idle member of an end-to-end room checks whether its leaf
/// is due for an update.
const E2E_TICK: Duration = Duration::from_secs(30);

async fn kicked(kick: Option<&Notify>) {
    match kick {
        Some(kick) => kick.notified().await,
        None => std::future::pending().await,
    }
}

/// Completes when `timer` does; never without one.
async fn maybe(timer: Option<tokio::time::Sleep>) {
    match timer {
        Some(timer) => timer.await,
        None => std::future::pending().await,
    }
}

/// A TCP socket with a TLS engine on it.
pub(super) struct TlsStream {
    tcp: TcpStream,
    pub(super) tls: Connection,
    pub(super) peer: SocketAddr,
    /// Whether the engine has reported the handshake complete.
    pub(super) connected: bool,
    /// When the handshake is abandoned, and the limit it came from (for the message).
    deadline: Instant,
    limit: Duration,
    /// Swapped with the engine's own buffer by `poll_transmit`, so neither
    /// side allocates once both have grown to a flight's size.
    write_buf: Vec<u8>,
    /// A room's signal that this member is out (it stopped reading): a
    /// write that waits for the peer gives up when it fires.
    kick: Option<Arc<Notify>>,
    /// Whether buffers are given back after each write (chat), or kept for
    /// the next (the echo server's bulk path).
    lean: bool,
    /// `--pcap`: records what is written and read.
    tap: Option<Tap>,
    /// With a tap, reads land here first (the tap needs to see them), and
    /// go to the engine from here.
    scratch: Vec<u8>,
}

impl TlsStream {
    /// Wraps `tcp`; the handshake must be done within `limit` of `start`.
    pub(super) fn new(
        tcp: TcpStream,
        tls: Connection,
        peer: SocketAddr,
        start: Instant,
        limit: Duration,
    ) -> Self {
        Self {
            tcp,
            tls,
            peer,
            connected: false,
            deadline: start + limit,
            limit,
            write_buf: Vec::new(),
            kick: None,
            lean: false,
            tap: None,
            scratch: Vec::new(),
        }
    }

    /// Records the connection into `capture` from now on (`--pcap`), as a
    /// TCP connection opened by `opener`.
    pub(super) fn capture(&mut self, capture: Arc<Capture>, opener: Opener) -> io::Result<()> {
        let local = self.tcp.local_addr()?;
        self.tap = Some(Tap::open(capture, local, self.peer, opener));
        Ok(())
    }

    /// The capture's notice that it stopped growing, for the first
    /// connection to ask after it did.
    fn capture_notice(&self) -> Option<String> {
        self.tap.as_ref().and_then(|tap| tap.capture().take_notice())
    }

    /// Reads at most `want` bytes: straight into the engine's buffer, or,
    /// with a tap, through `scratch`. Cancel-safe.
    ///
    /// It waits for the socket to be readable before it asks for a buffer:
    /// a connection that sits idle (a chat member, for hours) holds none.
    async fn read(&mut self, want: usize) -> io::Result<usize> {
        loop {
            self.tcp.readable().await?;
            let read = if self.tap.is_some() {
                self.scratch.resize(want, 0);
                self.tcp.try_read(&mut self.scratch)
            } else {
                self.tcp.try_read(self.tls.input_buffer(want))
            };
            match read {
                // Tokio keeps a socket marked readable until a read would
                // block, so this is how most waits for the next bytes begin:
                // a lean connection gives back the buffer it just took.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.lean {
                        self.tls.release_buffers();
                        self.scratch = Vec::new();
                    }
                }
                read => return read,
            }
        }
    }

    /// Hands the `n` bytes [`read`](Self::read) just read to the engine,
    /// then to the tap: after the engine has processed them, every secret
    /// they need has reached the capture, which writes it first.
    fn handle_read(&mut self, n: usize) -> Result<(), tls::Error> {
        match &mut self.tap {
            None => self.tls.handle_read(n, unix_now()),
            Some(tap) => {
                let result = self.tls.handle_input(&self.scratch[..n], unix_now());
                tap.received(&self.scratch[..n]);
                result
            }
        }
    }

    /// Writes everything the engine has queued (after a flight held by
    /// `--step`, if one is), as one write: a whole flight goes out in one
    /// segment where TCP allows.
    async fn flush(&mut self) -> io::Result<()> {
        let _ = self.tls.poll_transmit(&mut self.write_buf);
        if self.write_buf.is_empty() {
            return Ok(());
        }
        // A chat peer that reads nothing for WRITE_DEADLINE, or that its room
        // gave up on, is dropped; the echo server's bulk writes wait.
        let deadline = self.lean.then(|| tokio::time::sleep(WRITE_DEADLINE));
        let result = tokio::select! {
            result = self.tcp.write_all(&self.write_buf) => result,
            () = kicked(self.kick.as_deref()) => Err(io::Error::new(io::ErrorKind::TimedOut, KICKED)),
            () = maybe(deadline) => Err(io::Error::new(io::ErrorKind::TimedOut, STALLED)),
        };
        if let (Ok(()), Some(tap)) = (&result, &mut self.tap) {
            tap.sent(&self.write_buf);
        }
        if self.lean {
            // Given back rather than kept: most chat connections are idle.
            self.write_buf = Vec::new();
        } else {
            self.write_buf.clear();
        }
        result
    }

    /// Hands the `n` bytes just read to the engine. If it fails, its alert
    /// is queued: send it, and report the engine's account of what failed
    /// (the failed check, the alert) before the error.
    async fn feed(&mut self, n: usize, events: &mpsc::Sender<NetEvent>) -> Result<(), NetError> {
        if let Err(e) = self.handle_read(n) {
            // The alert is a courtesy to the peer; the error is what matters.
            let _ = self.flush().await;
            while let Some(event) = self.tls.poll_event() {
                if let Some(event) = NetEvent::from_engine(self.peer, event) {
                    let _ = events.send(event).await;
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// What the peer closing TCP means, given how far we got.
    fn eof(&mut self, closing: bool) -> Result<Closer, NetError> {
        if let Some(tap) = &mut self.tap {
            tap.peer_closed();
        }
        if closing {
            // We said goodbye; a peer may answer with EOF instead of close_notify.
            Ok(Closer::Us)
        } else if let Some(waiting_for) = self.tls.waiting_for() {
            Err(NetError::ClosedDuringHandshake { waiting_for })
        } else {
            Err(NetError::Vanished)
        }
    }

    fn handshake_timeout(&self) -> NetError {
        let waiting_for = self.tls.waiting_for().unwrap_or("waiting for the handshake");
        NetError::HandshakeTimeout { after: self.limit, waiting_for }
    }
}

/// Where a chat connection's outgoing data comes from.
pub(super) enum Inbox {
    /// A client: its user's input. The channel closing means "close".
    Direct(mpsc::Receiver<Intent>),
    /// A seat in a room: what the room's task queues for it, and the
    /// server shutting down closes the connection.
    Room {
        /// The seat's queue (see [`super::relay`]).
        out: mpsc::Receiver<Out>,
        /// Becomes true when the server shuts down.
        shutdown: watch::Receiver<bool>,
        /// What stopped the last batch (see [`batch`]), taken next.
        held: Option<Out>,
    },
}

impl Inbox {
    /// A seat's inbox: its queue, and the server's shutdown signal.
    pub(super) fn room(out: mpsc::Receiver<Out>, shutdown: watch::Receiver<bool>) -> Self {
        Self::Room { out, shutdown, held: None }
    }

    /// The next thing to do; `None` when the input has ended (a client's
    /// channel closed), which closes the connection once everything asked
    /// for before has been done. Cancel-safe: every await in it is.
    async fn recv(&mut self) -> Option<Intent> {
        match self {
            Self::Direct(intents) => intents.recv().await,
            Self::Room { out, shutdown, held } => {
                let next = match held.take() {
                    Some(next) => Some(next),
                    None => tokio::select! {
                        next = out.recv() => next,
                        // A dropped sender means the server is gone too.
                        _ = shutdown.changed() => return Some(Intent::Close),
                    },
                };
                Some(match next {
                    Some(Out::Bytes(bytes)) => Intent::Send(batch(bytes, out, held)),
                    Some(Out::KeyUpdate) => Intent::KeyUpdate { request_peer: true },
                    // Closed by the room, or the room is gone.
                    Some(Out::Close) | None => Intent::Close,
                })
            }
        }
    }
}

/// How many queued bytes a seat gathers into one write: one record's worth.
const BATCH: usize = tls::record::MAX_PLAINTEXT;

/// `first` and the frames already queued behind it, up to [`BATCH`] bytes:
/// sealed as one record and written with one system call, where one at a
/// time would cost a record and a write each (a busy room, a member that
/// fell behind). What stops the batch that is not bytes (a KeyUpdate, a
/// close) is put in `held`, to be done next, so the order is kept.
fn batch(first: Arc<[u8]>, out: &mut mpsc::Receiver<Out>, held: &mut Option<Out>) -> Arc<[u8]> {
    let mut gathered: Option<Vec<u8>> = None;
    let mut len = first.len();
    while len < BATCH {
        match out.try_recv() {
            Ok(Out::Bytes(next)) => {
                let bytes = gathered.get_or_insert_with(|| {
                    let mut bytes = Vec::with_capacity(BATCH.max(first.len() + next.len()));
                    bytes.extend_from_slice(&first);
                    bytes
                });
                bytes.extend_from_slice(&next);
                len += next.len();
            }
            Ok(other) => {
                *held = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    gathered.map_or(first, Arc::from)
}

/// A server connection's place in its room.
pub(super) struct Seat {
    /// The room's task.
    pub(super) room: RoomHandle,
    /// This connection's seat.
    pub(super) id: SeatId,
    /// The seat's queue, handed to the room when the handshake completes
    /// (then only the room holds it: when the room lets go, the
    /// connection's inbox ends).
    pub(super) out: Option<mpsc::Sender<Out>>,
    /// The status page's text.
    pub(super) about: Arc<str>,
    /// Fired by the room when it drops this member for not reading.
    pub(super) kick: Arc<Notify>,
    /// The connection's place under the room's caps.
    pub(super) slot: Option<super::limits::Slot>,
}

/// Which end of a chat connection this is.
pub(super) enum Role {
    /// A client; `key` (the one its certificate proves) signs its messages.
    Client {
        /// The identity key, if the client has one.
        /// Boxed: the key is 224 bytes, and a seat's task holds a `Role`
        /// in three places at once.
        key: Option<Box<Ed25519Key>>,
        /// Where the member's contacts are kept, a file per room.
        contacts_dir: Option<PathBuf>,
    },
    /// A room's connection to one member.
    Seat(Seat),
}

/// What a connection does with application data once the handshake is done.
enum Mode {
    /// Handshake still running.
    Handshake,
    /// A client talking to something other than a tlschat room: lines.
    Plain,
    /// A client in a tlschat room: frames, checked by its member state.
    Member(Box<Member>),
    /// A room's seat that speaks frames (`tlschat/1`).
    SeatFrames,
    /// A room's seat for a guest: lines.
    SeatLines,
    /// A seat that broke the protocol: nothing more is read from it.
    Ignore,
}

/// How a room member's connection treats HTTP clients.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Http {
    /// A client, or a server whose peer's first data was chat: no HTTP.
    Never,
    /// A server that has not seen data yet: answers if it is a request.
    Maybe,
    /// ALPN agreed on http/1.1: answers whatever comes first.
    Agreed,
    /// Answered: anything more is ignored until the connection closes.
    Served,
}

/// A member's contacts file, and when it was last written.
struct ContactsFile {
    path: PathBuf,
    saved: Option<Instant>,
}

/// How often a member's contacts are written while it reads: learned
/// bindings and key changes at once, session marks at most this often
/// (and when the connection ends).
const SAVE_CONTACTS_EVERY: Duration = Duration::from_secs(2);

impl ContactsFile {
    /// Reads a room's contacts; a missing file has none. Its directory is
    /// made (0700) or checked here, once, for the writes that follow.
    fn load(path: &Path) -> Result<Contacts, String> {
        if let Some(dir) = path.parent() {
            home::private_dir(dir).map_err(|e| e.to_string())?;
        }
        match home::read(path, Access::Private) {
            Ok(None) => Ok(Contacts::new()),
            Ok(Some(text)) => Contacts::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The state of one chat connection besides the stream.
struct Chat {
    /// A member's contacts file, once the room is known.
    contacts: Option<ContactsFile>,
    http: Http,
    role: Role,
    mode: Mode,
    frames: FrameBuffer,
    /// The negotiated suite, for the status page.
    suite: tls::CipherSuite,
    lines: LineBuffer,
    /// Lines completed by the latest input, reused.
    received: Vec<String>,
    /// Set once we have sent close_notify: until when we wait for the peer's.
    closing: Option<Instant>,
    /// Intents taken off the inbox before they could be acted on: nothing
    /// is sent before the handshake completes (no early data) or while a
    /// flight is held. Close is never queued: it is acted on at once.
    early: VecDeque<Intent>,
    /// The inbox has ended: close once `early` is done.
    input_ended: bool,
    /// `--step` (clients only): holds each handshake flight until it opens.
    step: Option<StepGate>,
    /// Since when a flight is held (in the stream's `write_buf`).
    held: Option<Instant>,
    /// Since when the engine waits for [`Intent::TrustServer`] (a client
    /// that holds its flight for trust, after [`NetEvent::ServerKey`]).
    trust_wait: Option<Instant>,
    /// The tamper lab: what to do to the records of the next line.
    tamper: Option<Wire>,
    /// Frames a member sends of itself in answer to what it received (key
    /// packages, Welcomes, lines that waited for their group), sent once
    /// the received data is taken.
    reply: Vec<u8>,
}

/// Runs a chat connection until it closes or fails: a client's, or a
/// room's seat (which also answers HTTP requests with the status page);
/// `step` holds a client's handshake flights.
pub(super) async fn chat(
    s: &mut TlsStream,
    inbox: &mut Inbox,
    events: &mpsc::Sender<NetEvent>,
    role: Role,
    step: Option<StepGate>,
) -> Result<Closer, NetError> {
    s.lean = true;
    if let Role::Seat(seat) = &role {
        s.kick = Some(seat.kick.clone());
    }
    let mut chat = Chat {
        contacts: None,
        http: if matches!(role, Role::Seat(_)) { Http::Maybe } else { Http::Never },
        role,
        mode: Mode::Handshake,
        frames: FrameBuffer::default(),
        suite: tls::CipherSuite(0),
        lines: LineBuffer::default(),
        received: Vec::new(),
        closing: None,
        early: VecDeque::new(),
        input_ended: false,
        step,
        held: None,
        trust_wait: None,
        tamper: None,
        reply: Vec::new(),
    };
    let result = chat.run(s, inbox, events).await;
    // However it ended, a last line without its newline is still shown.
    if let Some(line) = chat.lines.finish() {
        chat.received.push(line);
        chat.deliver_lines(s.peer, events).await;
    }
    result
}

impl Drop for Chat {
    /// The session marks read since the last write are kept too.
    fn drop(&mut self) {
        let _ = self.save_contacts(true);
    }
}

impl Chat {
    /// Writes the member's contacts if they changed: bindings at once,
    /// session marks at most every [`SAVE_CONTACTS_EVERY`] unless `now`.
    /// Returns why it could not.
    fn save_contacts(&mut self, now: bool) -> Option<String> {
        let (Some(file), Mode::Member(member)) = (&mut self.contacts, &mut self.mode) else { return None };
        if !member.contacts().is_dirty() {
            return None;
        }
        let recent = file.saved.is_some_and(|at| at.elapsed() < SAVE_CONTACTS_EVERY);
        if recent && !now && !member.contacts().has_new_binding() {
            return None;
        }
        let text = member.contacts().to_text();
        match home::replace(&file.path, text.as_bytes(), Access::Private) {
            Ok(()) => {
                member.contacts_mut().saved();
                file.saved = Some(Instant::now());
                None
            }
            Err(e) => {
                // Told once: the next write is tried with the next change.
                file.saved = Some(Instant::now());
                Some(e.to_string())
            }
        }
    }

    async fn run(
        &mut self,
        s: &mut TlsStream,
        inbox: &mut Inbox,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<Closer, NetError> {
        // A client's engine starts with its ClientHello queued.
        if let Some(closer) = Box::pin(self.pump(s, events)).await? {
            return Ok(closer);
        }
        loop {
            if let Some(note) = s.capture_notice() {
                let _ = events.send(NetEvent::CaptureStopped { note }).await;
            }
            // What was asked for while it could not be done goes out now, in order.
            if s.connected && self.held.is_none() && self.closing.is_none() {
                while let Some(intent) = self.early.pop_front() {
                    if let Some(closer) = Box::pin(self.act(s, intent, events)).await? {
                        return Ok(closer);
                    }
                }
                if self.input_ended {
                    self.close(s).await?;
                }
            }
            // One timer: the handshake deadline, then the wait for
            // close_notify. A held flight, or the wait for the user's
            // trust, stops the handshake's clock.
            let timer = self.closing.unwrap_or(s.deadline);
            let timer_armed = self.closing.is_some()
                || (s.tls.is_handshaking() && self.held.is_none() && self.trust_wait.is_none());
            // Nothing is taken after our close_notify, nor beyond the limit
            // while intents cannot be acted on.
            let listening = self.closing.is_none() && !self.input_ended && self.early.len() < EARLY_LIMIT;
            let ticking = s.connected
                && self.closing.is_none()
                && matches!(&self.mode, Mode::Member(member) if member.e2e_room());
            tokio::select! {
                read = s.read(READ_CHUNK) => match read {
                    Ok(0) => return s.eof(self.closing.is_some()),
                    Ok(n) => {
                        Box::pin(s.feed(n, events)).await?;
                        if let Some(closer) = Box::pin(self.pump(s, events)).await? {
                            return Ok(closer);
                        }
                        // Idle members hold no buffers: they grow again when bytes come.
                        s.tls.release_buffers();
                    }
                    // A peer that resets the connection after our close_notify
                    // has heard all we had to say.
                    Err(_) if self.closing.is_some() => return Ok(Closer::Us),
                    // A peer that vanished while what we last sent (a
                    // member's key packages, say) was unread resets rather
                    // than closes: gone without close_notify all the same.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset && s.connected => {
                        return s.eof(false);
                    }
                    Err(e) => return Err(e.into()),
                },
                intent = inbox.recv(), if listening => match intent {
                    // At once, even mid-handshake: either side may close at
                    // any time (RFC 8446 §6.1), and a user who quits while
                    // the server is slow should not have to wait for it,
                    // nor for its answer (which §6.1 does not require).
                    Some(Intent::Close) if !s.connected => {
                        let cancelling = s.tls.awaits_trust();
                        self.close(s).await?;
                        if cancelling {
                            // user_canceled, then close_notify: said, since
                            // they are all the room hears from us.
                            while let Some(event) = s.tls.poll_event() {
                                if let Some(event) = NetEvent::from_engine(s.peer, event) {
                                    let _ = events.send(event).await;
                                }
                            }
                        }
                        return Ok(Closer::Us);
                    }
                    Some(Intent::Close) => self.close(s).await?,
                    // At once too: it lets our flight go, which nothing waits behind.
                    Some(Intent::TrustServer) => {
                        if let Some(closer) = Box::pin(self.trust_server(s, events)).await? {
                            return Ok(closer);
                        }
                    }
                    Some(intent) => self.early.push_back(intent),
                    None => self.input_ended = true,
                },
                go = next_go(&mut self.step), if self.held.is_some() => Box::pin(self.release(s, go)).await?,
                // An end-to-end room's member updates its leaf now and then,
                // even when nothing else happens (see Member::tick).
                () = tokio::time::sleep(E2E_TICK), if ticking => {
                    if let Mode::Member(member) = &mut self.mode {
                        let said = member.tick(unix_now_ms());
                        let frames: Vec<u8> = member.take_outgoing().iter().flat_map(Frame::encode).collect();
                        for event in said {
                            let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
                        }
                        if !frames.is_empty() {
                            s.tls.send(&frames)?;
                            s.flush().await?;
                        }
                    }
                }
                () = sleep_until(timer), if timer_armed => {
                    return match self.closing {
                        // No answer to our close_notify in time: done anyway.
                        Some(_) => Ok(Closer::Us),
                        None => Err(s.handshake_timeout()),
                    };
                }
            }
        }
    }

    /// Takes what the engine has for us after input: events, then
    /// application data, then bytes to send. Returns the closer once the
    /// peer has closed.
    async fn pump(
        &mut self,
        s: &mut TlsStream,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<Option<Closer>, NetError> {
        while let Some(event) = s.tls.poll_event() {
            if let Event::ServerKey(_) = &event {
                self.trust_wait = Some(Instant::now());
            }
            if let Event::Connected(summary) = &event {
                s.connected = true;
                self.suite = summary.suite;
                self.connected(s.peer, summary, events).await;
            }
            if let Some(event) = NetEvent::from_engine(s.peer, event) {
                let _ = events.send(event).await;
            }
        }
        while let Some(data) = s.tls.recv_application_data() {
            let page = match self.http {
                Http::Agreed => true,
                Http::Maybe => text::is_http_request(&data),
                _ => false,
            };
            if let (true, Role::Seat(seat)) = (page, &self.role) {
                let about =
                    format!("{}in the room: {} (the host included)\n", seat.about, seat.room.members());
                s.tls.send(&text::status_response(&data, &about, self.suite))?;
                self.http = Http::Served;
                self.mode = Mode::Ignore;
                self.close(s).await?;
                let _ = events.send(NetEvent::StatusPage { peer: s.peer }).await;
                continue;
            }
            if self.http == Http::Served {
                continue;
            }
            self.http = Http::Never;
            match &mut self.mode {
                Mode::Plain | Mode::SeatLines => self.lines.push(&data, &mut self.received),
                Mode::Member(_) | Mode::SeatFrames => self.frames.push(&data),
                Mode::Handshake | Mode::Ignore => {}
            }
            self.take_frames(s.peer, events).await?;
            // A member that saw the room before asks, after its Welcome,
            // for what it missed (sent with what the engine has queued).
            if let Mode::Member(member) = &mut self.mode
                && let Some(resume) = member.take_resume()
            {
                s.tls.send(&resume.encode())?;
            }
            let reply = std::mem::take(&mut self.reply);
            // After our close_notify nothing more is said: what the member
            // would have answered (its key packages) is dropped.
            if !reply.is_empty() && self.closing.is_none() {
                s.tls.send(&reply)?;
            }
        }
        self.deliver_lines(s.peer, events).await;
        if s.tls.is_closed() {
            // The peer's close_notify, first or in answer to ours. The engine
            // has queued our answer if one is due: a courtesy the peer may no
            // longer be there to read.
            let _ = s.flush().await;
            return Ok(Some(if self.closing.is_some() { Closer::Us } else { Closer::Peer }));
        }
        if !self.hold(s, events).await {
            s.flush().await?;
        }
        Ok(None)
    }

    /// The handshake completed: choose what the connection carries, and
    /// take a seat in the room for a server.
    async fn connected(
        &mut self,
        peer: SocketAddr,
        summary: &tls::Summary,
        events_for_contacts: &mpsc::Sender<NetEvent>,
    ) {
        let chat = summary.alpn.as_deref() == Some(tls::ALPN_TLSCHAT);
        match &mut self.role {
            Role::Client { key, contacts_dir } => {
                self.mode = match (chat, key.take(), &summary.peer) {
                    // The room's id is the key the handshake just proved.
                    (true, Some(key), Some(server)) => {
                        let room = server.fingerprint.0;
                        let member = Member::new(room, *key, &mut OsRng);
                        let file = contacts_dir.as_ref().map(|dir| dir.join(format!("{}.txt", hex(&room))));
                        let (member, file) = match file.map(|path| (ContactsFile::load(&path), path)) {
                            None => (member, None),
                            Some((Ok(contacts), path)) => {
                                (member.with_contacts(contacts), Some(ContactsFile { path, saved: None }))
                            }
                            Some((Err(why), _)) => {
                                // Kept apart: a file that does not read is not overwritten.
                                let event = ChatEvent::ContactsNotKept { why };
                                let _ = events_for_contacts.send(NetEvent::Chat { peer, event }).await;
                                (member, None)
                            }
                        };
                        self.contacts = file;
                        Mode::Member(Box::new(member))
                    }
                    _ => Mode::Plain,
                };
            }
            Role::Seat(seat) => {
                if summary.alpn.as_deref() == Some(tls::ALPN_HTTP11) {
                    self.http = Http::Agreed;
                    self.mode = Mode::Ignore;
                    return;
                }
                // Frames for members who proved a key; lines for guests,
                // whatever they offered: without a key there is nothing to sign.
                let (joiner, transport) =
                    match summary.peer.as_ref().and_then(|c| identity::name_of(c).map(|n| (n, c))) {
                        Some((name, cert)) if chat => (
                            Joiner::Verified { name: name.to_owned(), key: cert.public_key },
                            Transport::Frames,
                        ),
                        _ => (Joiner::Guest, Transport::Lines),
                    };
                self.mode = match transport {
                    Transport::Frames => Mode::SeatFrames,
                    Transport::Lines => Mode::SeatLines,
                };
                if let (Joiner::Verified { .. }, Some(slot)) = (&joiner, seat.slot.as_mut()) {
                    slot.verified();
                }
                let Some(out) = seat.out.take() else { return };
                let kick = seat.kick.clone();
                let join = RoomInput::Join { id: seat.id, joiner, transport, out, kick, from: peer.ip() };
                let _ = seat.room.inputs.send(join).await;
            }
        }
    }

    /// Takes the complete frames received: a member checks them, a seat
    /// hands them to the room.
    async fn take_frames(
        &mut self,
        peer: SocketAddr,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<(), NetError> {
        loop {
            let frame = match self.frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.frames = FrameBuffer::default();
                    if let Role::Seat(seat) = &self.role {
                        // The room tells the member why and closes it.
                        let input =
                            RoomInput::Malformed { id: seat.id, why: format!("sent a malformed frame: {e}") };
                        let _ = seat.room.inputs.send(input).await;
                        self.mode = Mode::Ignore;
                        return Ok(());
                    }
                    return Err(NetError::Chat(e));
                }
            };
            match (&mut self.mode, &self.role) {
                (Mode::Member(member), _) => {
                    let said = member.receive(frame, unix_now_ms()).map_err(NetError::Chat)?;
                    // What the member sends of itself: key packages, a
                    // Welcome, lines that waited for their group.
                    let frames: Vec<u8> = member.take_outgoing().iter().flat_map(Frame::encode).collect();
                    if !frames.is_empty() {
                        self.reply.extend_from_slice(&frames);
                    }
                    for event in said {
                        let _ = events.send(NetEvent::Chat { peer, event }).await;
                    }
                    if let Some(why) = self.save_contacts(false) {
                        let _ = events
                            .send(NetEvent::Chat { peer, event: ChatEvent::ContactsNotKept { why } })
                            .await;
                    }
                }
                (Mode::SeatFrames, Role::Seat(seat)) => {
                    let _ = seat.room.inputs.send(RoomInput::Frame { id: seat.id, frame }).await;
                }
                _ => {}
            }
        }
    }

    /// Hands the complete lines received on: a client reports them, a
    /// guest's seat gives them to the room.
    async fn deliver_lines(&mut self, peer: SocketAddr, events: &mpsc::Sender<NetEvent>) {
        for line in self.received.drain(..) {
            match &self.role {
                Role::Seat(seat) => {
                    let _ = seat.room.inputs.send(RoomInput::Line { id: seat.id, line }).await;
                }
                Role::Client { .. } => {
                    let _ = events.send(NetEvent::Text { peer, line }).await;
                }
            }
        }
    }

    /// Does what the user asked for, once the connection can.
    async fn act(
        &mut self,
        s: &mut TlsStream,
        intent: Intent,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<Option<Closer>, NetError> {
        match intent {
            Intent::Send(data) => self.send_line(s, &data).await?,
            Intent::Say { kind, text, to } => {
                let now = unix_now_ms();
                let (bytes, event) = match &mut self.mode {
                    // A private line goes end to end, or waits for its
                    // group: never in clear.
                    Mode::Member(member) => match member.say(kind, &text, to.as_deref(), now) {
                        Ok(mut said) => {
                            let frames: Vec<u8> =
                                member.take_outgoing().iter().flat_map(Frame::encode).collect();
                            let last = said.pop();
                            for event in said {
                                let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
                            }
                            let Some(event) = last else { return Ok(None) };
                            ((!frames.is_empty()).then_some(frames), event)
                        }
                        Err(e) => {
                            let text = format!("not sent: {e}");
                            (None, ChatEvent::Refused { code: RefusalCode::BadMessage, text })
                        }
                    },
                    // Not a tlschat room: a plain line, as a guest's would be.
                    _ => {
                        let line = match kind {
                            Kind::Action => format!("* {text}\n"),
                            _ => format!("{text}\n"),
                        };
                        (
                            Some(line.into_bytes()),
                            ChatEvent::Sent { seq: 0, kind, to, text, acked: false, e2e: false },
                        )
                    }
                };
                if let Some(bytes) = bytes {
                    self.send_line(s, &bytes).await?;
                }
                let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
            }
            Intent::Who => {
                if let Mode::Member(_) = self.mode {
                    s.tls.send(&Frame::Who.encode())?;
                    s.flush().await?;
                } else {
                    let text =
                        "/who needs a tlschat room: this server does not speak the chat protocol".to_owned();
                    let event = ChatEvent::Refused { code: RefusalCode::BadMessage, text };
                    let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
                }
            }
            Intent::Ignore { .. } | Intent::Verify { .. } if matches!(self.mode, Mode::Member(_)) => {
                let Mode::Member(member) = &mut self.mode else { return Ok(None) };
                let Some(event) = super::member_command(member, &intent) else { return Ok(None) };
                if let Some(why) = self.save_contacts(true) {
                    let _ = events
                        .send(NetEvent::Chat { peer: s.peer, event: ChatEvent::ContactsNotKept { why } })
                        .await;
                }
                let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
            }
            Intent::Ignore { .. } | Intent::Verify { .. } | Intent::Remove { .. } | Intent::Invite { .. } => {
                let text = "that command is for a tlschat room's members (/ignore, /verify) or its host (/kick, /ban, /invite)".to_owned();
                let event = ChatEvent::Refused { code: RefusalCode::BadMessage, text };
                let _ = events.send(NetEvent::Chat { peer: s.peer, event }).await;
            }
            Intent::KeyUpdate { request_peer } => {
                s.tls.key_update(request_peer)?;
                // The new keys' events (the KeyUpdate step, KeyUpdated, the
                // key log's secret) are reported like any other.
                return self.pump(s, events).await;
            }
            Intent::Close => self.close(s).await?,
            // Acted on when it arrives (see `run`); late, it has nothing to do.
            Intent::TrustServer => {}
            Intent::TamperNext(wire) => self.tamper = Some(wire),
            // The lab's loop acts on the others.
            Intent::Tamper(_) => {}
        }
        Ok(None)
    }

    /// Seals a line and writes it; when the tamper lab armed a case, its
    /// sealed records are tampered with first, between the engine and the
    /// socket (a reordered line goes out as two records, so that there are
    /// two to swap).
    async fn send_line(&mut self, s: &mut TlsStream, bytes: &[u8]) -> Result<(), NetError> {
        match self.tamper.take() {
            None => s.tls.send(bytes)?,
            Some(Wire::Replay) => {
                // The record goes alone first, and the room takes it (the
                // line is delivered once, and acknowledged) before its copy.
                s.tls.send(bytes)?;
                let _ = s.tls.poll_transmit(&mut s.write_buf);
                let copy = lab::first_record(&s.write_buf);
                s.flush().await?;
                if let Some(copy) = copy {
                    tokio::time::sleep(lab::REPLAY_GAP).await;
                    s.write_buf.extend_from_slice(&copy);
                }
            }
            Some(wire) => {
                if wire == Wire::Reorder && bytes.len() > 1 {
                    let half = bytes.len() / 2;
                    s.tls.send(&bytes[..half])?;
                    s.tls.send(&bytes[half..])?;
                } else {
                    s.tls.send(bytes)?;
                }
                let _ = s.tls.poll_transmit(&mut s.write_buf);
                lab::tamper_records(&mut s.write_buf, wire);
            }
        }
        s.flush().await?;
        Ok(())
    }

    /// `--step`: takes the flight the engine has just queued off it and
    /// keeps it unsent until the gate opens. Returns whether a flight is held.
    async fn hold(&mut self, s: &mut TlsStream, events: &mpsc::Sender<NetEvent>) -> bool {
        if self.step.is_none() {
            return false;
        }
        if self.held.is_some() {
            // Whatever the engine queues meanwhile goes out after the held flight.
            return true;
        }
        if !s.tls.poll_transmit(&mut s.write_buf) {
            return false;
        }
        self.held = Some(Instant::now());
        let _ = events.send(NetEvent::Held { peer: s.peer }).await;
        true
    }

    /// Sends the held flight. The handshake deadline moves on by the time
    /// it was held; after the last flight (or once the gate's sender is
    /// gone, `go` being `None`) nothing more is held.
    async fn release(&mut self, s: &mut TlsStream, go: Option<()>) -> Result<(), NetError> {
        if let Some(since) = self.held.take() {
            s.deadline += since.elapsed();
        }
        if go.is_none() || s.connected {
            self.step = None;
        }
        s.flush().await?;
        Ok(())
    }

    /// The user trusts the server's key: the engine writes our second
    /// flight (held in turn by `--step`, if on) and the handshake completes.
    /// The handshake's clock moves on by the time the user took.
    async fn trust_server(
        &mut self,
        s: &mut TlsStream,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<Option<Closer>, NetError> {
        let Some(since) = self.trust_wait.take() else { return Ok(None) };
        s.deadline += since.elapsed();
        if let Err(e) = s.tls.trust_server() {
            let _ = s.flush().await;
            return Err(e.into());
        }
        self.pump(s, events).await
    }

    /// Sends close_notify (after a held flight, if any: the peer then sees
    /// a complete flight and a clean close) and starts waiting for the peer's.
    async fn close(&mut self, s: &mut TlsStream) -> Result<(), NetError> {
        self.held = None;
        self.step = None;
        s.tls.close();
        s.flush().await?;
        self.closing = Some(Instant::now() + CLOSE_WAIT);
        Ok(())
    }
}

/// The gate's next opening; never, without a gate. Cancel-safe.
async fn next_go(step: &mut Option<StepGate>) -> Option<()> {
    match step {
        Some(gate) => gate.0.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs a `listen --echo` connection: each application-data record is
/// answered with one record of the same bytes.
pub(super) async fn echo(s: &mut TlsStream) -> Result<Closer, NetError> {
    // Reused for every record: the bytes go from the engine's buffer, where
    // they were decrypted, through here into the engine's write buffer.
    let mut record = Vec::with_capacity(tls::record::MAX_PLAINTEXT);
    let mut want = tls::record::MAX_CIPHERTEXT + tls::record::HEADER_LEN;
    loop {
        let handshaking = s.tls.is_handshaking();
        let deadline = s.deadline;
        // Read straight into the engine's buffer (no copy on the way in),
        // unless a capture must see the bytes.
        let read = s.read(want);
        let n = if handshaking {
            let read = timeout_at(deadline, read).await;
            match read {
                Ok(read) => read?,
                Err(_) => return Err(s.handshake_timeout()),
            }
        } else {
            read.await?
        };
        if n == 0 {
            return s.eof(false);
        }
        if n >= want {
            want = (want * 4).min(ECHO_READ_MAX);
        }
        if let Err(e) = s.handle_read(n) {
            let _ = s.flush().await;
            return Err(e.into());
        }
        // Records that came with the peer's close_notify are answered too:
        // the engine writes its own close_notify after them, at the flush.
        while s.tls.recv_application_data_into(&mut record) {
            let sent = s.tls.send(&record);
            record.clear();
            sent?;
        }
        // Nobody watches an echo server's steps (emit_steps is off), but the
        // remaining events must not pile up.
        while let Some(event) = s.tls.poll_event() {
            s.connected |= matches!(event, Event::Connected(_));
        }
        if s.tls.is_closed() {
            let _ = s.flush().await;
            return Ok(Closer::Peer);
        }
        s.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Out {
        Out::Bytes(Arc::from(text.as_bytes()))
    }

    #[test]
    fn a_batch_gathers_what_is_queued_and_keeps_what_stops_it_for_next() {
        let (tx, mut rx) = mpsc::channel(8);
        for out in [bytes("b"), bytes("c"), Out::KeyUpdate, bytes("d")] {
            tx.try_send(out).unwrap();
        }
        let mut held = None;
        assert_eq!(&*batch(Arc::from(&b"a"[..]), &mut rx, &mut held), b"abc");
        assert!(matches!(held, Some(Out::KeyUpdate)));
        // Nothing behind it: the frame itself, not a copy.
        let (_tx, mut empty) = mpsc::channel(1);
        let first: Arc<[u8]> = Arc::from(&b"alone"[..]);
        assert!(Arc::ptr_eq(&batch(first.clone(), &mut empty, &mut None), &first));
    }

    #[test]
    fn a_batch_stops_once_it_holds_a_records_worth() {
        let (tx, mut rx) = mpsc::channel(8);
        let frame = vec![7u8; BATCH / 2];
        for _ in 0..2 {
            tx.try_send(Out::Bytes(Arc::from(&frame[..]))).unwrap();
        }
        let mut held = None;
        assert_eq!(batch(Arc::from(&frame[..]), &mut rx, &mut held).len(), BATCH);
        assert!(held.is_none());
        // The frame left over starts the next batch, alone.
        let Ok(Out::Bytes(next)) = rx.try_recv() else { panic!("a frame is left") };
        assert_eq!(batch(next, &mut rx, &mut held).len(), BATCH / 2);
    }
}
