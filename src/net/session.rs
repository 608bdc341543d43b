//! One connection's task: moves bytes between a TCP socket and the engine.
//!
//! Every connection, client or server, is a [`TlsStream`] (the socket, the
//! engine and two reused buffers) driven by one of two loops:
//!
//! - [`chat`]: `tokio::select!` over the socket, the connection's [`Inbox`]
//!   (what to send) and one timer (the handshake deadline, then the wait
//!   for the peer's close_notify). It reports what happens as [`NetEvent`]s.
//! - [`echo`]: the lean loop of `listen --echo`: read, feed the engine, send
//!   each record back, one write. No events, no per-record work beyond the
//!   engine's.
//!
//! Both follow the engine's driving order: after input, write what the
//! engine queued (which on failure carries its alert), then take events and
//! application data.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::text::{self, LineBuffer};
use super::{Closer, Intent, NetError, NetEvent, unix_now};
use crate::tls::{self, Connection, Event};

/// Size of the reused read buffer: room for four full TLS records.
const READ_BUFFER: usize = 64 * 1024;

/// The most an echo connection reads at once. Reads start at one record's
/// worth (a handshake never needs more) and grow while they come back full:
/// bulk data arrives faster than small reads drain it, and each read is a
/// system call and a wake-up.
const ECHO_READ_MAX: usize = 1024 * 1024;

/// How long to wait for the peer's close_notify (or EOF) after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

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
    read_buf: Box<[u8]>,
    /// Swapped with the engine's own buffer by `poll_transmit`, so neither
    /// side allocates once both have grown to a flight's size.
    write_buf: Vec<u8>,
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
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            write_buf: Vec::new(),
        }
    }

    /// Writes everything the engine has queued, as one write: a whole
    /// flight goes out in one segment where TCP allows.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.tls.poll_transmit(&mut self.write_buf) {
            return Ok(());
        }
        let result = self.tcp.write_all(&self.write_buf).await;
        self.write_buf.clear();
        result
    }

    /// Hands the `n` bytes just read to the engine. If it fails, its alert
    /// is queued: send it before reporting the error.
    async fn feed(&mut self, n: usize) -> Result<(), NetError> {
        let input = self.read_buf.get(..n).unwrap_or_default();
        if let Err(e) = self.tls.handle_input(input, unix_now()) {
            // The alert is a courtesy to the peer; the error is what matters.
            let _ = self.flush().await;
            return Err(e.into());
        }
        Ok(())
    }

    /// What the peer closing TCP means, given how far we got.
    fn eof(&self, closing: bool) -> Result<Closer, NetError> {
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
    /// A room member: what the server's user types goes to every member,
    /// and the server shutting down closes the connection.
    Room {
        /// Lines for every member.
        lines: broadcast::Receiver<Intent>,
        /// Becomes true when the server shuts down.
        shutdown: watch::Receiver<bool>,
    },
}

impl Inbox {
    /// The next thing to do. Cancel-safe: every await in it is.
    async fn recv(&mut self) -> Intent {
        match self {
            Self::Direct(intents) => intents.recv().await.unwrap_or(Intent::Close),
            Self::Room { lines, shutdown } => loop {
                tokio::select! {
                    line = lines.recv() => match line {
                        Ok(intent) => return intent,
                        // A member this far behind misses lines rather than
                        // holding up the room.
                        Err(RecvError::Lagged(_)) => {}
                        // The server's input ended; the room stays open.
                        Err(RecvError::Closed) => {
                            let _ = shutdown.changed().await;
                            return Intent::Close;
                        }
                    },
                    // A dropped sender means the server is gone too.
                    _ = shutdown.changed() => return Intent::Close,
                }
            },
        }
    }
}

/// How a room member's connection treats HTTP clients.
#[derive(Clone, Copy)]
enum Http<'a> {
    /// A client, or a server whose peer's first data was chat: no HTTP.
    Never,
    /// A server that has not seen data yet: answers if it is a request.
    Maybe { about: &'a str },
    /// ALPN agreed on http/1.1: answers whatever comes first.
    Agreed { about: &'a str },
    /// Answered: anything more is ignored until the connection closes.
    Served,
}

/// The state of one chat connection besides the stream.
struct Chat<'a> {
    http: Http<'a>,
    /// The negotiated suite, for the status page.
    suite: tls::CipherSuite,
    lines: LineBuffer,
    /// Lines completed by the latest input, reused.
    received: Vec<String>,
    /// Set once we have sent close_notify: until when we wait for the peer's.
    closing: Option<Instant>,
}

/// Runs a chat connection until it closes or fails. `about` is the room's
/// status page text for a server (which makes it answer HTTP requests),
/// `None` for a client.
pub(super) async fn chat(
    s: &mut TlsStream,
    inbox: &mut Inbox,
    events: &mpsc::Sender<NetEvent>,
    about: Option<&str>,
) -> Result<Closer, NetError> {
    let mut chat = Chat {
        http: about.map_or(Http::Never, |about| Http::Maybe { about }),
        suite: tls::CipherSuite(0),
        lines: LineBuffer::default(),
        received: Vec::new(),
        closing: None,
    };
    let result = chat.run(s, inbox, events).await;
    // However it ended, a last line without its newline is still shown.
    if let Some(line) = chat.lines.finish() {
        let _ = events.send(NetEvent::Text { peer: s.peer, line }).await;
    }
    result
}

impl Chat<'_> {
    async fn run(
        &mut self,
        s: &mut TlsStream,
        inbox: &mut Inbox,
        events: &mpsc::Sender<NetEvent>,
    ) -> Result<Closer, NetError> {
        // A client's engine starts with its ClientHello queued.
        if let Some(closer) = self.pump(s, events).await? {
            return Ok(closer);
        }
        loop {
            // One timer: the handshake deadline, then the wait for close_notify.
            let timer = self.closing.unwrap_or(s.deadline);
            let timer_armed = self.closing.is_some() || s.tls.is_handshaking();
            // Nothing is sent before the handshake completes (no early data)
            // or after our close_notify; intents wait in the channel meanwhile.
            let ready = s.connected && self.closing.is_none();
            tokio::select! {
                read = s.tcp.read(&mut s.read_buf) => match read {
                    Ok(0) => return s.eof(self.closing.is_some()),
                    Ok(n) => {
                        s.feed(n).await?;
                        if let Some(closer) = self.pump(s, events).await? {
                            return Ok(closer);
                        }
                    }
                    // A peer that resets the connection after our close_notify
                    // has heard all we had to say.
                    Err(_) if self.closing.is_some() => return Ok(Closer::Us),
                    Err(e) => return Err(e.into()),
                },
                intent = inbox.recv(), if ready => match intent {
                    Intent::Send(data) => {
                        s.tls.send(&data)?;
                        s.flush().await?;
                    }
                    Intent::KeyUpdate { request_peer } => {
                        s.tls.key_update(request_peer)?;
                        // The new keys' events (KeyUpdated, the key log's
                        // secret) are reported like any other.
                        self.pump(s, events).await?;
                    }
                    Intent::Close => self.close(s).await?,
                },
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
            if let Event::Connected(summary) = &event {
                s.connected = true;
                self.suite = summary.suite;
                if let (Http::Maybe { about }, Some(tls::ALPN_HTTP11)) = (self.http, summary.alpn.as_deref())
                {
                    self.http = Http::Agreed { about };
                }
            }
            if let Some(event) = NetEvent::from_engine(s.peer, event) {
                let _ = events.send(event).await;
            }
        }
        while let Some(data) = s.tls.recv_application_data() {
            let page_for = match self.http {
                Http::Agreed { about } => Some(about),
                Http::Maybe { about } if text::is_http_request(&data) => Some(about),
                _ => None,
            };
            if let Some(about) = page_for {
                s.tls.send(&text::status_response(&data, about, self.suite))?;
                self.http = Http::Served;
                self.close(s).await?;
                let _ = events.send(NetEvent::StatusPage { peer: s.peer }).await;
            } else if !matches!(self.http, Http::Served) {
                self.http = Http::Never;
                self.lines.push(&data, &mut self.received);
            }
        }
        for line in self.received.drain(..) {
            let _ = events.send(NetEvent::Text { peer: s.peer, line }).await;
        }
        if s.tls.is_closed() {
            // The peer's close_notify, first or in answer to ours. The engine
            // has queued our answer if one is due: a courtesy the peer may no
            // longer be there to read.
            let _ = s.flush().await;
            return Ok(Some(if self.closing.is_some() { Closer::Us } else { Closer::Peer }));
        }
        s.flush().await?;
        Ok(None)
    }

    /// Sends close_notify and starts waiting for the peer's.
    async fn close(&mut self, s: &mut TlsStream) -> Result<(), NetError> {
        s.tls.close();
        s.flush().await?;
        self.closing = Some(Instant::now() + CLOSE_WAIT);
        Ok(())
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
        // Read straight into the engine's buffer: no copy on the way in.
        let read = s.tcp.read(s.tls.input_buffer(want));
        let n = if handshaking {
            match timeout_at(s.deadline, read).await {
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
        if let Err(e) = s.tls.handle_read(n, unix_now()) {
            let _ = s.flush().await;
            return Err(e.into());
        }
        while s.tls.recv_application_data_into(&mut record) {
            let sent = s.tls.send(&record);
            record.clear();
            if let Err(e) = sent {
                // Records that came with the peer's close_notify cannot be
                // answered: the engine has already closed our side.
                if s.tls.is_closed() {
                    break;
                }
                return Err(e.into());
            }
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
