//! The connection: record processing, alerts, application data, KeyUpdate
//! and close_notify around the handshake state machines (RFC 8446 §4.6, §5, §6).
//!
//! A [`Connection`] is a [`Core`] (record layer, buffers, events, keys)
//! plus its phase: the current handshake state, or the traffic phase with
//! the application secrets (see `state.rs` for
//! both; the states themselves are in `client.rs` and `server.rs`, which
//! also build the connection: [`Connection::client`], [`Connection::server`]).

use std::collections::VecDeque;

use super::crypto;
use super::describe;
use super::error::Error;
use super::events::{Direction, Event, Revealed, RevealedRecord, SecretBytes};
use super::messages::{self, AlertDescription, ContentType, HandshakeType};
use super::state::{
    AppData, AppSecrets, Core, MAX_EARLY_DATA_SKIPPED, Message, Next, Side, SkipEarlyData, State,
};

/// Largest handshake message accepted: far above any sane certificate chain,
/// far below what would let a peer make us buffer without bound.
const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;

/// Largest ClientHello a server accepts: the largest the structure of §4.1.2
/// allows (legacy_version, random, a 32-byte session id, the longest
/// cipher_suites and compression lists and a full 64 KiB extension block),
/// so any valid hello is read, however many schemes or extensions it lists.
const MAX_CLIENT_HELLO: usize = 2 + 32 + (1 + 32) + (2 + 65_534) + (1 + 255) + (2 + 65_535);

/// How many KeyUpdates in a row, with no application data from the peer
/// between them, are accepted. Each costs a key derivation, and one that
/// requests an update may cost an answer; a peer rekeying for its own
/// reasons needs one per record limit (§5.5), and answering ours needs one
/// per request. The next one is refused with unexpected_message, as rustls
/// does past the same count.
pub(crate) const MAX_KEY_UPDATES_IN_A_ROW: u32 = 32;

/// What is left of the early-data budget after skipping a record of `len`
/// bytes, or unexpected_message if the client sent more than we skip.
fn skip_early(left: usize, len: usize) -> Result<usize, Error> {
    left.checked_sub(len).ok_or_else(|| {
        Error::UnexpectedMessage(format!(
            "more than {MAX_EARLY_DATA_SKIPPED} bytes of early data, which tlschat does not accept"
        ))
    })
}

/// Where the connection is in its life.
enum Phase {
    Handshaking(Box<dyn State>),
    /// Connected: the application secrets, which KeyUpdate moves on.
    Traffic(Box<AppSecrets>),
    /// Failed or closed: holds the error to report, if it failed.
    Done(Option<Error>),
}

/// A TLS 1.3 connection, client or server. See the [module docs](super) for
/// the driving contract.
pub struct Connection {
    core: Core,
    phase: Phase,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.core.side)
            .field("handshaking", &self.is_handshaking())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection in its handshake, at `state`: how `client.rs` and
    /// `server.rs` build [`Connection::client`] and [`Connection::server`].
    pub(crate) fn handshaking(core: Core, state: Box<dyn State>) -> Self {
        Self { core, phase: Phase::Handshaking(state) }
    }

    /// Processes bytes received from the peer; `now` (Unix seconds) is used
    /// to check certificate validity. On failure the alert for the error is
    /// queued for [`poll_transmit`](Self::poll_transmit) and the connection is over.
    pub fn handle_input(&mut self, bytes: &[u8], now: u64) -> Result<(), Error> {
        if let Phase::Done(err) = &self.phase {
            return Err(err.clone().unwrap_or(Error::Closed));
        }
        self.core.keep_app_data();
        self.core.deframer.push(bytes);
        let result = self.process_records(now);
        result.map_err(|e| self.fail(e))
    }

    /// Gives back the memory of buffers that hold nothing now: received
    /// bytes all handed out, nothing queued to send, no event or data
    /// waiting. A driver that keeps many mostly idle connections calls it
    /// when one goes quiet; the buffers grow again when bytes come.
    pub fn release_buffers(&mut self) {
        let core = &mut self.core;
        if core.app_in.is_empty() {
            core.app_in = VecDeque::new();
            core.deframer.release_if_empty();
        }
        if core.tx.is_empty() {
            core.tx = Vec::new();
        }
        if core.events.is_empty() {
            core.events = VecDeque::new();
        }
        // No handshake message half received: the handshake's largest
        // message (a certificate chain) need not stay reserved for a
        // KeyUpdate that may never come.
        if core.joiner.is_empty() {
            core.joiner = Vec::new();
        }
    }

    /// Bytes of memory the engine's buffers hold now (received records,
    /// half-received handshake messages, bytes to send, events and data
    /// waiting): what [`release_buffers`](Self::release_buffers) gives back.
    pub fn buffered(&self) -> usize {
        let core = &self.core;
        core.deframer.capacity()
            + core.joiner.capacity()
            + core.tx.capacity()
            + core.events.capacity() * std::mem::size_of::<Event>()
            + core.app_in.capacity() * std::mem::size_of::<AppData>()
    }

    /// Space inside the engine to read at least `min` received bytes into,
    /// followed by [`handle_read`](Self::handle_read): saves the copy that
    /// [`handle_input`](Self::handle_input) makes.
    pub fn input_buffer(&mut self, min: usize) -> &mut [u8] {
        self.core.keep_app_data();
        self.core.deframer.spare(min)
    }

    /// Processes `n` bytes just read into [`input_buffer`](Self::input_buffer),
    /// like [`handle_input`](Self::handle_input).
    pub fn handle_read(&mut self, n: usize, now: u64) -> Result<(), Error> {
        if let Phase::Done(err) = &self.phase {
            return Err(err.clone().unwrap_or(Error::Closed));
        }
        self.core.deframer.commit(n);
        let result = self.process_records(now);
        result.map_err(|e| self.fail(e))
    }

    /// Queues application data. Before the handshake completes this fails:
    /// tlschat never sends early or half-RTT data. After the peer's
    /// close_notify it still succeeds until the next
    /// [`poll_transmit`](Self::poll_transmit), so that the records which
    /// came before the close_notify can be answered.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Traffic(app) if !self.core.sent_close => self.core.write_app_data(app, data),
            Phase::Done(Some(e)) => Err(e.clone()),
            Phase::Handshaking(_) => Err(Error::Internal("application data before the handshake finished")),
            _ => Err(Error::Closed),
        }
    }

    /// Sends a KeyUpdate; with `request_peer` the peer is asked to update too (§4.6.3).
    pub fn key_update(&mut self, request_peer: bool) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Traffic(app) if !self.core.sent_close => self.core.send_key_update(app, request_peer),
            Phase::Handshaking(_) => Err(Error::Internal("KeyUpdate before the handshake finished")),
            _ => Err(Error::Closed),
        }
    }

    /// Lowers how many records one write key protects before the connection
    /// updates it by itself (normally [`KEY_UPDATE_INTERVAL`](super::KEY_UPDATE_INTERVAL)), so that tests
    /// can watch it happen. At least 2, since the KeyUpdate is the last
    /// record of the old key; never above the normal interval.
    #[cfg(any(test, feature = "testing"))]
    pub fn set_key_update_interval_for_testing_only(&mut self, records: u64) {
        self.core.key_update_interval = records.clamp(2, super::KEY_UPDATE_INTERVAL);
    }

    /// Whether a client's handshake is stopped until the driver trusts the
    /// server's key ([`ClientConfig::hold_for_trust`](super::ClientConfig::hold_for_trust),
    /// after [`Event::ServerKey`]): nothing of our second flight is queued yet.
    pub fn awaits_trust(&self) -> bool {
        matches!(&self.phase, Phase::Handshaking(state) if state.awaits_trust())
    }

    /// The driver trusts the server's key it was shown in
    /// [`Event::ServerKey`]: our second flight ([Certificate,
    /// CertificateVerify], Finished) is queued and [`Event::Connected`]
    /// follows. Does nothing unless [`awaits_trust`](Self::awaits_trust).
    pub fn trust_server(&mut self) -> Result<(), Error> {
        if !self.awaits_trust() || self.core.sent_close {
            return Ok(());
        }
        let Phase::Handshaking(state) = std::mem::replace(&mut self.phase, Phase::Done(None)) else {
            return Err(self.fail(Error::Internal("no handshake to go on with")));
        };
        match state.trusted(&mut self.core) {
            Ok(Next::State(next)) => self.phase = Phase::Handshaking(next),
            Ok(Next::Traffic(app)) => self.phase = Phase::Traffic(app),
            Err(e) => return Err(self.fail(e)),
        }
        Ok(())
    }

    /// Sends close_notify: we will send nothing more (§6.1). While the
    /// handshake [awaits trust](Self::awaits_trust), it is cancelled:
    /// user_canceled goes first (§6.1: "canceling the handshake for some
    /// reason unrelated to a protocol failure", followed by close_notify),
    /// under our handshake keys, and our second flight is never written.
    pub fn close(&mut self) {
        if !self.core.sent_close && !matches!(self.phase, Phase::Done(Some(_))) {
            if self.awaits_trust() {
                self.core.write_alert(AlertDescription::USER_CANCELED);
            }
            self.core.sent_close = true;
            if std::mem::take(&mut self.core.close_owed) {
                // Its AlertSent event went out when the peer's close_notify came.
                self.core.seal_alert(AlertDescription::CLOSE_NOTIFY);
            } else {
                self.core.write_alert(AlertDescription::CLOSE_NOTIFY);
            }
        }
        if self.core.received_close {
            self.phase = Phase::Done(None);
        }
    }

    /// Moves the bytes waiting to be sent onto `out`; false if there were none.
    ///
    /// After the peer's close_notify, data [`send`](Self::send) queued in
    /// reply to what came before it goes first, then our close_notify.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.core.close_owed {
            self.close();
        }
        if self.core.tx.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.core.tx);
        } else {
            out.append(&mut self.core.tx);
        }
        true
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.events.pop_front()
    }

    /// The content of the next application data record received, if any.
    #[must_use]
    pub fn recv_application_data(&mut self) -> Option<Vec<u8>> {
        Some(match self.core.app_in.pop_front()? {
            AppData::Owned(v) => v,
            AppData::InPlace(range) => self.core.deframer.buffer_mut()[range].to_vec(),
        })
    }

    /// Appends the content of the next application data record received to
    /// `out`, without allocating; false if there is none.
    pub fn recv_application_data_into(&mut self, out: &mut Vec<u8>) -> bool {
        match self.core.app_in.pop_front() {
            Some(AppData::Owned(v)) => out.extend_from_slice(&v),
            Some(AppData::InPlace(range)) => out.extend_from_slice(&self.core.deframer.buffer_mut()[range]),
            None => return false,
        }
        true
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking(_))
    }

    /// Whether the connection is over: failed, or closed in both directions,
    /// or closed by the peer.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Done(_)) || self.core.received_close
    }

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<&Error> {
        match &self.phase {
            Phase::Done(e) => e.as_ref(),
            _ => None,
        }
    }

    /// What the handshake is waiting for, if it is running (for timeouts and UIs).
    pub fn waiting_for(&self) -> Option<&'static str> {
        match &self.phase {
            Phase::Handshaking(s) => Some(s.waiting_for()),
            _ => None,
        }
    }

    /// Ends the connection with `err`: sends its alert and remembers it.
    fn fail(&mut self, err: Error) -> Error {
        if let (Some(alert), false) = (err.alert(), self.core.sent_close) {
            self.core.write_alert(alert);
        }
        self.core.sent_close = true;
        self.core.close_owed = false;
        self.phase = Phase::Done(Some(err.clone()));
        err
    }

    fn process_records(&mut self, now: u64) -> Result<(), Error> {
        while !self.core.received_close {
            let Some(rec) = self.core.deframer.next_record()? else { break };
            let handshaking = self.is_handshaking();
            let body_range = rec.start..rec.start + rec.len;
            let (typ, len) = match rec.typ {
                ContentType::CHANGE_CIPHER_SPEC => {
                    // §5: the dummy ChangeCipherSpec is one byte, 0x01, unprotected,
                    // and only between the first ClientHello and the peer's Finished.
                    let body = &self.core.deframer.buffer_mut()[body_range];
                    if body != [1] || !handshaking || !self.core.ccs_allowed {
                        return Err(Error::UnexpectedMessage(
                            "a ChangeCipherSpec record out of place".into(),
                        ));
                    }
                    self.core.ccs_allowed = false;
                    self.core.ccs_step(Direction::Received);
                    continue;
                }
                ContentType::APPLICATION_DATA => {
                    if let SkipEarlyData::AllProtected(left) = self.core.skip_early_data {
                        self.core.skip_early_data = SkipEarlyData::AllProtected(skip_early(left, rec.len)?);
                        continue;
                    }
                    let Some(read) = self.core.read.as_mut() else {
                        return Err(Error::UnexpectedMessage(
                            "a protected record before keys were agreed".into(),
                        ));
                    };
                    let buf = self.core.deframer.buffer_mut();
                    // With `reveal`, the start of the ciphertext, before it is opened in place.
                    let sequence = read.sequence();
                    let shown = rec.len.saturating_sub(crypto::TAG_LEN).min(Revealed::RECORD_PREFIX);
                    let ciphertext = self.core.reveal.then(|| buf[rec.start..rec.start + shown].to_vec());
                    match read.open(&rec.header, &mut buf[body_range.clone()]) {
                        Err(Error::BadRecordMac) => match self.core.skip_early_data {
                            SkipEarlyData::Undecryptable(left) => {
                                let left = skip_early(left, rec.len)?;
                                self.core.skip_early_data = SkipEarlyData::Undecryptable(left);
                                continue;
                            }
                            _ => return Err(Error::BadRecordMac),
                        },
                        opened => {
                            self.core.skip_early_data = SkipEarlyData::No;
                            self.core.opened_a_record = true;
                            let opened = opened?;
                            if let (Some(ciphertext), Some(secret)) = (ciphertext, self.core.read_secret) {
                                let plaintext =
                                    &self.core.deframer.buffer_mut()[rec.start..rec.start + shown];
                                let revealed = Revealed::Record(RevealedRecord {
                                    direction: Direction::Received,
                                    secret,
                                    sequence,
                                    ciphertext,
                                    plaintext: SecretBytes::new(plaintext),
                                    length: rec.len,
                                });
                                self.core.event(Event::Revealed(revealed));
                            }
                            opened
                        }
                    }
                }
                // An unprotected alert is heard only from a peer that may
                // have no keys yet: before we have any (a HelloRetryRequest
                // or ServerHello refused), and on a server until a record of
                // the client has opened (a client that fails on our
                // ServerHello cannot protect its alert). A client has its
                // keys from the ServerHello on, the server from before it.
                ContentType::ALERT
                    if self.core.read.is_none()
                        || (self.core.side == Side::Server && !self.core.opened_a_record) =>
                {
                    (rec.typ, rec.len)
                }
                other if self.core.read.is_none() => (other, rec.len),
                other => {
                    return Err(Error::UnexpectedMessage(format!(
                        "an unprotected {other} record after keys were agreed"
                    )));
                }
            };
            let plaintext = rec.start..rec.start + len;
            if typ != ContentType::HANDSHAKE && !self.core.joiner.is_empty() {
                return Err(Error::UnexpectedMessage(
                    "a record interleaved with a fragmented handshake message".into(),
                ));
            }
            match typ {
                ContentType::HANDSHAKE => {
                    if len == 0 {
                        return Err(Error::UnexpectedMessage("an empty handshake record".into()));
                    }
                    let bytes = &self.core.deframer.buffer_mut()[plaintext];
                    self.core.joiner.extend_from_slice(bytes);
                    self.process_handshake(now)?;
                }
                ContentType::ALERT => match self.core.deframer.buffer_mut()[plaintext] {
                    // §5.4: "Implementations MUST NOT send Handshake and Alert
                    // records that have a zero-length TLSInnerPlaintext.content".
                    [] => return Err(Error::UnexpectedMessage("an empty alert record".into())),
                    [_level, desc] => self.handle_alert(AlertDescription(desc))?,
                    _ => {
                        return Err(Error::Decode(super::codec::InvalidMessage {
                            what: "alert",
                            why: "not two bytes",
                        }));
                    }
                },
                ContentType::APPLICATION_DATA => {
                    if !matches!(self.phase, Phase::Traffic(_)) {
                        return Err(Error::UnexpectedMessage(
                            "application data before the handshake finished".into(),
                        ));
                    }
                    // §5.4: zero-length application data is legal and carries
                    // nothing, so the driver is not handed an empty record.
                    if len > 0 {
                        self.core.key_updates_in_a_row = 0;
                        // Left where it was decrypted until the driver takes it.
                        self.core.app_in.push_back(AppData::InPlace(plaintext));
                    }
                }
                other => {
                    return Err(Error::UnexpectedMessage(format!("a protected {other} record")));
                }
            }
        }
        Ok(())
    }

    fn handle_alert(&mut self, desc: AlertDescription) -> Result<(), Error> {
        match desc {
            AlertDescription::CLOSE_NOTIFY => {
                self.core.received_close = true;
                self.core.event(Event::PeerClosed);
                // §6.1: answer with our own close_notify. With traffic keys,
                // after whatever the driver sends in reply to the application
                // data before this record: the next poll_transmit writes it.
                // Its event comes now, in its place among the others.
                if matches!(self.phase, Phase::Traffic(_)) && !self.core.sent_close {
                    self.core.close_owed = true;
                    self.core.event(Event::AlertSent(AlertDescription::CLOSE_NOTIFY));
                } else {
                    self.close();
                }
                Ok(())
            }
            // user_canceled is followed by close_notify; nothing to do yet.
            AlertDescription::USER_CANCELED => Ok(()),
            // §6: every other alert is fatal, whatever level it claims.
            other => {
                // We must not answer a fatal alert with one of ours.
                self.core.sent_close = true;
                Err(Error::AlertReceived(other))
            }
        }
    }

    fn process_handshake(&mut self, now: u64) -> Result<(), Error> {
        loop {
            let joiner = &self.core.joiner;
            let Some(header) = joiner.get(..4) else { return Ok(()) };
            let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
            let client_hello =
                self.core.side == Side::Server && HandshakeType(header[0]) == HandshakeType::CLIENT_HELLO;
            if len > MAX_HANDSHAKE_MESSAGE && !(client_hello && len <= MAX_CLIENT_HELLO) {
                return Err(Error::Decode(super::codec::InvalidMessage {
                    what: "handshake message",
                    why: "longer than 64 KiB (a ClientHello: longer than its structure allows)",
                }));
            }
            if joiner.len() < 4 + len {
                return Ok(());
            }
            let raw: Vec<u8> = self.core.joiner.drain(..4 + len).collect();
            let msg = Message { typ: HandshakeType(raw[0]), raw: &raw, body: &raw[4..] };
            match std::mem::replace(&mut self.phase, Phase::Done(None)) {
                Phase::Handshaking(state) => match state.handle(&mut self.core, msg, now)? {
                    Next::State(next) => self.phase = Phase::Handshaking(next),
                    Next::Traffic(app) => self.phase = Phase::Traffic(app),
                },
                Phase::Traffic(mut app) => {
                    let handled = self.post_handshake(&mut app, msg);
                    self.phase = Phase::Traffic(app);
                    handled?;
                }
                done @ Phase::Done(_) => self.phase = done,
            }
        }
    }

    /// Messages after the handshake (§4.6).
    fn post_handshake(&mut self, app: &mut AppSecrets, msg: Message<'_>) -> Result<(), Error> {
        match msg.typ {
            HandshakeType::KEY_UPDATE => {
                let requested = messages::decode_key_update(msg.body)?
                    .ok_or(Error::IllegalParameter("KeyUpdate request_update is neither 0 nor 1"))?;
                self.core.key_updates_in_a_row += 1;
                if self.core.key_updates_in_a_row > MAX_KEY_UPDATES_IN_A_ROW {
                    return Err(Error::UnexpectedMessage(format!(
                        "more than {MAX_KEY_UPDATES_IN_A_ROW} KeyUpdates with no application data between them"
                    )));
                }
                self.core.message_step(Direction::Received, msg.raw, true, false, || {
                    describe::key_update(requested)
                });
                self.core.receive_key_update(app, requested)
            }
            // Tickets are for resumption, which tlschat does not do: skip them.
            HandshakeType::NEW_SESSION_TICKET if self.core.side == Side::Client => {
                self.core.message_step(Direction::Received, msg.raw, true, false, || {
                    ("ignored: tlschat does not resume sessions".into(), Vec::new())
                });
                Ok(())
            }
            other => Err(Error::unexpected(other, "connected")),
        }
    }
}
