//! The connection: record processing, alerts, application data, KeyUpdate
//! and close_notify around the handshake state machines (RFC 8446 §4.6, §5, §6).
//!
//! A [`Connection`] is a [`Core`] (record layer, buffers, events, secrets of
//! the traffic phase) plus the current handshake state. Each handshake state
//! is a struct that consumes itself to handle one message and returns the
//! next state (see `client.rs` and `server.rs`), so a state that has handled
//! its message cannot be used again.

use std::collections::VecDeque;
use std::sync::Arc;

use super::cert::ServerName;
use zeroize::Zeroizing;

use super::crypto::{self, Rng, TranscriptHash};
use super::error::Error;
use super::events::{Direction, Event, Field, HandshakeStep, Revealed, SecretBytes, Step};
use super::key_schedule::{self, SecretKind, TrafficSecret, TrafficSecrets};
use super::messages::{self, AlertDescription, ContentType, HandshakeType};
use super::record::{self, Deframer, MAX_CIPHERTEXT, MAX_PLAINTEXT, Protection};
use super::suites::Suite;
use super::{ClientConfig, KeyLog, ServerConfig, client, server};

/// Largest handshake message accepted: far above any sane certificate chain,
/// far below what would let a peer make us buffer without bound.
const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;

/// Largest ClientHello a server accepts: the largest the structure of §4.1.2
/// allows (legacy_version, random, a 32-byte session id, the longest
/// cipher_suites and compression lists and a full 64 KiB extension block),
/// so any valid hello is read, however many schemes or extensions it lists.
const MAX_CLIENT_HELLO: usize = 2 + 32 + (1 + 32) + (2 + 65_534) + (1 + 255) + (2 + 65_535);

/// How many bytes of declined 0-RTT data a server skips (§4.2.10), counted
/// as the lengths of the protected records dropped: 16 KiB of data plus the
/// 256 bytes of expansion one record may carry (§5.2). tlschat issues no
/// tickets and so never invites early data; this only lets a client that
/// tries anyway (with another server's ticket) fall back to a full
/// handshake. A client that sends more is refused with unexpected_message.
pub(crate) const MAX_EARLY_DATA_SKIPPED: usize = MAX_CIPHERTEXT;

/// How many records one write key protects before the connection moves to
/// the next with a KeyUpdate of its own (§5.5, §4.6.3): 2^23, about 8.4
/// million records, well below the 2^24.5 full-size records that §5.5 allows
/// AES-GCM under one key. ChaCha20-Poly1305 has no such limit in practice,
/// but one rule for both suites is simpler, and a KeyUpdate every 8 million
/// records costs nothing. The KeyUpdate itself is the key's last record.
pub const KEY_UPDATE_INTERVAL: u64 = 1 << 23;

/// How many KeyUpdates in a row, with no application data from the peer
/// between them, are accepted. Each costs a key derivation, and one that
/// requests an update may cost an answer; a peer rekeying for its own
/// reasons needs one per record limit (§5.5), and answering ours needs one
/// per request. The next one is refused with unexpected_message, as rustls
/// does past the same count.
pub(crate) const MAX_KEY_UPDATES_IN_A_ROW: u32 = 32;

/// Whether and how a server skips the 0-RTT records of a client whose
/// early_data it did not accept (§4.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipEarlyData {
    /// Nothing is skipped: a record that does not open is bad_record_mac.
    No,
    /// After a ServerHello: records that do not open with the client's
    /// handshake key are dropped, this many bytes more at most. The first
    /// record that opens is the client's second flight and ends the skipping.
    Undecryptable(usize),
    /// After a HelloRetryRequest, until the second ClientHello: every
    /// protected record is dropped unread, this many bytes more at most.
    AllProtected(usize),
}

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// One received handshake message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) typ: HandshakeType,
    /// The whole message, header included (what the transcript hashes).
    pub(crate) raw: &'a [u8],
    /// The body after the four-byte header.
    pub(crate) body: &'a [u8],
}

/// A handshake state: handles one message, consuming itself.
pub(crate) trait State: Send {
    /// Handles `msg` and returns the next state, or `None` when the
    /// handshake is complete and the connection is in its traffic phase.
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, now: u64) -> Result<Next, Error>;

    /// What this state waits for, for error messages ("waiting for ServerHello").
    fn waiting_for(&self) -> &'static str;
}

/// What a state turns into.
pub(crate) enum Next {
    /// Another handshake state.
    State(Box<dyn State>),
    /// The handshake is done.
    Traffic,
}

/// The application traffic secrets and their KeyUpdate generations (§7.2).
struct AppSecrets {
    ours: TrafficSecret,
    theirs: TrafficSecret,
    our_generation: u64,
    their_generation: u64,
}

/// A received application-data record not yet taken by the driver.
enum AppData {
    /// Still where it was decrypted, at this range of the deframer's buffer.
    InPlace(std::ops::Range<usize>),
    /// Moved out because the deframer needed its buffer back.
    Owned(Vec<u8>),
}

/// Everything a connection has besides its handshake state.
pub(crate) struct Core {
    pub(crate) side: Side,
    pub(crate) rng: Box<dyn Rng>,
    pub(crate) keylog: Option<Arc<dyn KeyLog>>,
    pub(crate) emit_steps: bool,
    /// Whether secret values are reported as [`Event::Revealed`] (the user's opt-in).
    pub(crate) reveal: bool,
    /// With `reveal`: the traffic secrets whose keys read and write now.
    read_secret: Option<SecretKind>,
    write_secret: Option<SecretKind>,
    pub(crate) transcript: TranscriptHash,
    pub(crate) client_random: [u8; 32],
    /// The agreed suite, once the hellos have agreed one.
    pub(crate) suite: Option<Suite>,
    deframer: Deframer,
    /// Handshake bytes received but not yet a whole message.
    joiner: Vec<u8>,
    read: Option<Protection>,
    write: Option<Protection>,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    app_in: VecDeque<AppData>,
    app_secrets: Option<AppSecrets>,
    /// Whether the peer's dummy ChangeCipherSpec is acceptable now (§D.4, §5).
    pub(crate) ccs_allowed: bool,
    /// Whether a protected record from the peer has opened: proof that the
    /// peer has keys, after which it may send nothing unprotected but CCS.
    opened_a_record: bool,
    /// Records a write key protects before we update it (see [`KEY_UPDATE_INTERVAL`]).
    key_update_interval: u64,
    /// KeyUpdates received since the peer's last application data.
    key_updates_in_a_row: u32,
    /// Whether we have answered a KeyUpdate request since we last sent
    /// application data: more requests until then need no more answers.
    answered_key_update: bool,
    /// Whether declined early data is being skipped (server only).
    pub(crate) skip_early_data: SkipEarlyData,
    /// Whether we have sent our dummy ChangeCipherSpec.
    pub(crate) sent_ccs: bool,
    /// Whether our first ClientHello is still to be written (record version 0x0301).
    first_hello_pending: bool,
    messages: usize,
    pub(crate) expected_messages: usize,
    sent_close: bool,
    received_close: bool,
    /// The peer's close_notify awaits our answer (§6.1). It is written by
    /// the next `poll_transmit` (or `close`), not at once: the driver may
    /// still reply to the records that came before the close_notify in the
    /// same input, and those replies must go out before our close_notify.
    close_owed: bool,
}

impl Core {
    fn new(
        side: Side,
        rng: Box<dyn Rng>,
        keylog: Option<Arc<dyn KeyLog>>,
        emit_steps: bool,
        reveal: bool,
    ) -> Self {
        Self {
            side,
            rng,
            keylog,
            emit_steps,
            reveal,
            read_secret: None,
            write_secret: None,
            transcript: TranscriptHash::default(),
            client_random: [0; 32],
            suite: None,
            deframer: Deframer::default(),
            joiner: Vec::new(),
            read: None,
            write: None,
            tx: Vec::with_capacity(4096),
            events: VecDeque::new(),
            app_in: VecDeque::new(),
            app_secrets: None,
            ccs_allowed: false,
            skip_early_data: SkipEarlyData::No,
            opened_a_record: false,
            key_update_interval: KEY_UPDATE_INTERVAL,
            key_updates_in_a_row: 0,
            answered_key_update: false,
            sent_ccs: false,
            first_hello_pending: side == Side::Client,
            messages: 0,
            expected_messages: 7,
            sent_close: false,
            received_close: false,
            close_owed: false,
        }
    }

    // -- events ---------------------------------------------------------------

    fn push_step(&mut self, step: Step) {
        let number = self.messages;
        let expected = self.expected_messages.max(number);
        self.events.push_back(Event::Handshake(HandshakeStep { number, expected, step }));
    }

    /// Reports a handshake message. `fields` is only called when steps are on,
    /// so a server that nobody watches does not format them.
    pub(crate) fn message_step(
        &mut self,
        direction: Direction,
        raw: &[u8],
        encrypted: bool,
        in_transcript: bool,
        describe: impl FnOnce() -> (String, Vec<Field>),
    ) {
        self.messages += 1;
        if !self.emit_steps {
            return;
        }
        let name = match HandshakeType(raw.first().copied().unwrap_or(0)) {
            // A HelloRetryRequest is a ServerHello with a special random (§4.1.3).
            HandshakeType::SERVER_HELLO if raw.get(6..38) == Some(&messages::HRR_RANDOM[..]) => {
                "HelloRetryRequest"
            }
            other => other.name().unwrap_or("unknown"),
        };
        let (summary, fields) = describe();
        let transcript_hash = in_transcript.then(|| self.transcript.current());
        self.push_step(Step::Message {
            direction,
            name,
            summary,
            fields,
            bytes: raw.to_vec(),
            encrypted,
            transcript_hash,
        });
    }

    /// Reports the dummy ChangeCipherSpec, which is not a handshake message.
    fn ccs_step(&mut self, direction: Direction) {
        if self.emit_steps {
            self.push_step(Step::Message {
                direction,
                name: "ChangeCipherSpec",
                summary: "middlebox compatibility, ignored".into(),
                fields: Vec::new(),
                bytes: vec![1],
                encrypted: false,
                transcript_hash: None,
            });
        }
    }

    /// Reports a check and its outcome.
    pub(crate) fn check(&mut self, what: &'static str, ok: bool, detail: impl FnOnce() -> String) {
        if self.emit_steps || !ok {
            self.push_step(Step::Check { what, ok, detail: detail() });
        }
    }

    /// Reports a derived secret and hands it to the key log, if one is set.
    pub(crate) fn secret(&mut self, kind: SecretKind, value: &TrafficSecret) {
        if let (Some(log), Some(label)) = (&self.keylog, kind.keylog_label()) {
            log.log(&label, &self.client_random, value.expose());
        }
        if self.emit_steps {
            self.push_step(Step::SecretDerived { kind });
        }
    }

    /// Reports a secret that has no key log line (early, handshake, master).
    pub(crate) fn secret_step(&mut self, kind: SecretKind) {
        if self.emit_steps {
            self.push_step(Step::SecretDerived { kind });
        }
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Reports a value the engine used, only if the user asked to see them.
    /// `make` is not called otherwise, so no copy of a secret is made.
    pub(crate) fn reveal(&mut self, make: impl FnOnce() -> Revealed) {
        if self.reveal {
            self.events.push_back(Event::Revealed(make()));
        }
    }

    /// Reveals a secret of the schedule (see [`reveal`](Self::reveal)).
    pub(crate) fn reveal_secret(
        &mut self,
        kind: SecretKind,
        value: &[u8],
        transcript_hash: Option<[u8; 32]>,
    ) {
        self.reveal(|| Revealed::Secret { kind, value: SecretBytes::new(value), transcript_hash });
    }

    /// The traffic secret whose keys are being set for reading (`read`) or
    /// writing: the handshake secrets until the application secrets exist,
    /// then those, at their current generation.
    fn protecting_secret(&self, read: bool) -> SecretKind {
        let client_side = (self.side == Side::Client) != read;
        match &self.app_secrets {
            None if client_side => SecretKind::ClientHandshakeTraffic,
            None => SecretKind::ServerHandshakeTraffic,
            Some(app) => {
                let generation = if read { app.their_generation } else { app.our_generation };
                self.secret_kind(!read, generation)
            }
        }
    }

    /// Reveals the record that `seal` just appended to `tx` at `start`.
    fn reveal_sealed(&mut self, start: usize, sequence: u64, payload: &[u8], typ: ContentType) {
        if !self.reveal {
            return;
        }
        let Some(secret) = self.write_secret else { return };
        let body = &self.tx[start + record::HEADER_LEN..];
        let n = body.len().saturating_sub(crypto::TAG_LEN).min(Revealed::RECORD_PREFIX);
        // TLSInnerPlaintext is the payload then the type byte (no padding is sent).
        let mut inner = Zeroizing::new(payload[..payload.len().min(n)].to_vec());
        if inner.len() < n {
            inner.push(typ.0);
        }
        let revealed = Revealed::Record {
            direction: Direction::Sent,
            secret,
            sequence,
            ciphertext: body[..n].to_vec(),
            plaintext: SecretBytes::new(&inner[..n]),
            length: body.len(),
        };
        self.events.push_back(Event::Revealed(revealed));
    }

    /// Moves application data still in the deframer's buffer out of it,
    /// before the buffer is compacted and its offsets change.
    fn keep_app_data(&mut self) {
        for item in &mut self.app_in {
            if let AppData::InPlace(range) = item {
                *item = AppData::Owned(self.deframer.buffer_mut()[range.clone()].to_vec());
            }
        }
    }

    // -- keys -----------------------------------------------------------------

    /// Starts decrypting with `secret`. Refuses if a handshake message
    /// straddles the change (§5.1: "Handshake messages MUST NOT span key changes").
    pub(crate) fn set_read_key(&mut self, secret: &TrafficSecret) -> Result<(), Error> {
        if !self.joiner.is_empty() {
            return Err(Error::UnexpectedMessage("a handshake message spans a key change".into()));
        }
        let protection = self.protection(secret, true)?;
        self.read = Some(protection);
        Ok(())
    }

    /// Starts encrypting with `secret`.
    pub(crate) fn set_write_key(&mut self, secret: &TrafficSecret) -> Result<(), Error> {
        let protection = self.protection(secret, false)?;
        self.write = Some(protection);
        Ok(())
    }

    /// Record protection keyed from `secret` for reading or writing; with
    /// `reveal`, the key and IV it uses are reported.
    fn protection(&mut self, secret: &TrafficSecret, read: bool) -> Result<Protection, Error> {
        let suite = self.suite()?;
        let (key, iv) = key_schedule::key_material(suite, secret);
        if self.reveal {
            let kind = self.protecting_secret(read);
            if read {
                self.read_secret = Some(kind);
            } else {
                self.write_secret = Some(kind);
            }
            self.events.push_back(Event::Revealed(Revealed::TrafficKeys {
                secret: kind,
                suite: suite.code(),
                direction: if read { Direction::Received } else { Direction::Sent },
                key: SecretBytes::new(&key),
                iv: SecretBytes::new(iv.expose()),
            }));
        }
        Ok(Protection::new(key_schedule::aead_key(suite, &key), iv))
    }

    /// The agreed suite; keys before one is agreed are a bug of ours.
    pub(crate) fn suite(&self) -> Result<Suite, Error> {
        self.suite.ok_or(Error::Internal("record keys before a cipher suite was agreed"))
    }

    /// Keeps the application secrets for KeyUpdate and logs them.
    pub(crate) fn set_app_secrets(&mut self, traffic: TrafficSecrets) {
        self.reveal_secret(SecretKind::MasterSecret, traffic.master.expose(), None);
        let hash = Some(traffic.finished_hash);
        self.reveal_secret(SecretKind::ClientApplicationTraffic(0), traffic.client.expose(), hash);
        self.reveal_secret(SecretKind::ServerApplicationTraffic(0), traffic.server.expose(), hash);
        self.reveal_secret(SecretKind::ExporterMaster, traffic.exporter.expose(), hash);
        self.secret(SecretKind::ClientApplicationTraffic(0), &traffic.client);
        self.secret(SecretKind::ServerApplicationTraffic(0), &traffic.server);
        self.secret(SecretKind::ExporterMaster, &traffic.exporter);
        let TrafficSecrets { client, server, .. } = traffic;
        let (ours, theirs) = match self.side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        self.app_secrets = Some(AppSecrets { ours, theirs, our_generation: 0, their_generation: 0 });
    }

    /// Switches reading to the peer's application secret.
    pub(crate) fn start_app_read(&mut self) -> Result<(), Error> {
        let secret =
            self.app_secrets.as_ref().ok_or(Error::Internal("no application secrets"))?.theirs.clone();
        self.set_read_key(&secret)
    }

    /// Switches writing to our application secret.
    pub(crate) fn start_app_write(&mut self) -> Result<(), Error> {
        let secret = self.app_secrets.as_ref().ok_or(Error::Internal("no application secrets"))?.ours.clone();
        self.set_write_key(&secret)
    }

    fn secret_kind(&self, ours: bool, generation: u64) -> SecretKind {
        match (self.side == Side::Client) == ours {
            true => SecretKind::ClientApplicationTraffic(generation),
            false => SecretKind::ServerApplicationTraffic(generation),
        }
    }

    // -- writing --------------------------------------------------------------

    /// Writes handshake messages (a whole flight) in as few records as the
    /// size limit allows, protected if a write key is set.
    pub(crate) fn write_handshake(&mut self, flight: &[u8]) -> Result<(), Error> {
        match &mut self.write {
            Some(_) => {
                for chunk in flight.chunks(MAX_PLAINTEXT) {
                    self.seal(ContentType::HANDSHAKE, chunk)?;
                }
            }
            None => {
                let first = std::mem::take(&mut self.first_hello_pending);
                record::write_plaintext(ContentType::HANDSHAKE, flight, first, &mut self.tx);
            }
        }
        Ok(())
    }

    /// Writes the dummy ChangeCipherSpec once per connection (§D.4).
    pub(crate) fn write_ccs(&mut self) {
        if !self.sent_ccs {
            self.sent_ccs = true;
            record::write_plaintext(ContentType::CHANGE_CIPHER_SPEC, &[1], false, &mut self.tx);
            self.ccs_step(Direction::Sent);
        }
    }

    fn write_alert(&mut self, desc: AlertDescription) {
        if self.seal_alert(desc) {
            self.events.push_back(Event::AlertSent(desc));
        }
    }

    /// Writes an alert record with no event; false if it could not be sealed.
    fn seal_alert(&mut self, desc: AlertDescription) -> bool {
        let body = messages::encode_alert(desc);
        let result = match &self.write {
            Some(_) => self.seal(ContentType::ALERT, &body),
            None => {
                record::write_plaintext(ContentType::ALERT, &body, false, &mut self.tx);
                Ok(())
            }
        };
        result.is_ok()
    }

    /// Appends one record protected with the write key (and reveals it, if asked).
    fn seal(&mut self, typ: ContentType, payload: &[u8]) -> Result<(), Error> {
        let p = self.write.as_mut().ok_or(Error::Internal("no write key"))?;
        let (start, sequence) = (self.tx.len(), p.sequence());
        p.seal(typ, payload, &mut self.tx)?;
        self.reveal_sealed(start, sequence, payload, typ);
        Ok(())
    }

    fn write_app_data(&mut self, data: &[u8]) -> Result<(), Error> {
        if !data.is_empty() {
            self.answered_key_update = false;
        }
        for chunk in data.chunks(MAX_PLAINTEXT) {
            let used = self.write.as_ref().ok_or(Error::Internal("no write key"))?.sequence();
            if used.saturating_add(1) >= self.key_update_interval {
                // §5.5: a fresh key before this one has protected too many records.
                self.send_key_update(false)?;
            }
            self.seal(ContentType::APPLICATION_DATA, chunk)?;
        }
        Ok(())
    }

    /// Sends a KeyUpdate and moves our writing to the next secret (§4.6.3).
    fn send_key_update(&mut self, update_requested: bool) -> Result<(), Error> {
        let mut msg = Vec::with_capacity(5);
        messages::encode_key_update(&mut msg, update_requested);
        self.write_handshake(&msg)?;
        self.message_step(Direction::Sent, &msg, true, false, || key_update_fields(update_requested));
        let app =
            self.app_secrets.as_mut().ok_or(Error::Internal("KeyUpdate before the handshake finished"))?;
        app.ours = key_schedule::next_traffic_secret(&app.ours);
        app.our_generation += 1;
        let (secret, generation) = (app.ours.clone(), app.our_generation);
        self.set_write_key(&secret)?;
        let kind = self.secret_kind(true, generation);
        self.reveal_secret(kind, secret.expose(), None);
        self.secret(kind, &secret);
        self.event(Event::KeyUpdated { direction: Direction::Sent, update_requested, generation });
        Ok(())
    }

    /// A received KeyUpdate: move reading on, and answer if asked (§4.6.3):
    /// once, however many requests come while we send no data ("an
    /// implementation which receives multiple KeyUpdates while it is silent
    /// [responds] with a single update").
    fn receive_key_update(&mut self, update_requested: bool) -> Result<(), Error> {
        let app =
            self.app_secrets.as_mut().ok_or(Error::Internal("KeyUpdate before the handshake finished"))?;
        app.theirs = key_schedule::next_traffic_secret(&app.theirs);
        app.their_generation += 1;
        let (secret, generation) = (app.theirs.clone(), app.their_generation);
        self.set_read_key(&secret)?;
        let kind = self.secret_kind(false, generation);
        self.reveal_secret(kind, secret.expose(), None);
        self.secret(kind, &secret);
        self.event(Event::KeyUpdated { direction: Direction::Received, update_requested, generation });
        if update_requested && !self.sent_close && !self.answered_key_update {
            self.send_key_update(false)?;
            self.answered_key_update = true;
        }
        Ok(())
    }
}

/// What is left of the early-data budget after skipping a record of `len`
/// bytes, or unexpected_message if the client sent more than we skip.
fn skip_early(left: usize, len: usize) -> Result<usize, Error> {
    left.checked_sub(len).ok_or_else(|| {
        Error::UnexpectedMessage(format!(
            "more than {MAX_EARLY_DATA_SKIPPED} bytes of early data, which tlschat does not accept"
        ))
    })
}

/// Summary and fields of a KeyUpdate.
fn key_update_fields(update_requested: bool) -> (String, Vec<Field>) {
    let s = if update_requested { "update_requested" } else { "update_not_requested" };
    (s.into(), vec![Field { name: "request_update", value: s.into(), range: Some(4..5) }])
}

/// Where the connection is in its life.
enum Phase {
    Handshaking(Box<dyn State>),
    Traffic,
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
    /// Starts a client handshake with `server_name`: the ClientHello is ready
    /// in [`poll_transmit`](Self::poll_transmit) at once.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName,
        rng: Box<dyn Rng>,
    ) -> Result<Self, Error> {
        let mut core = Core::new(Side::Client, rng, config.keylog.clone(), config.emit_steps, config.reveal);
        let state = client::start(&mut core, config, server_name)?;
        Ok(Self { core, phase: Phase::Handshaking(state) })
    }

    /// A server connection waiting for a ClientHello.
    pub fn server(config: Arc<ServerConfig>, rng: Box<dyn Rng>) -> Self {
        let core = Core::new(Side::Server, rng, config.keylog.clone(), config.emit_steps, config.reveal);
        Self { core, phase: Phase::Handshaking(server::start(config)) }
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
        match &self.phase {
            Phase::Traffic if !self.core.sent_close => self.core.write_app_data(data),
            Phase::Done(Some(e)) => Err(e.clone()),
            Phase::Handshaking(_) => Err(Error::Internal("application data before the handshake finished")),
            _ => Err(Error::Closed),
        }
    }

    /// Sends a KeyUpdate; with `request_peer` the peer is asked to update too (§4.6.3).
    pub fn key_update(&mut self, request_peer: bool) -> Result<(), Error> {
        match self.phase {
            Phase::Traffic if !self.core.sent_close => self.core.send_key_update(request_peer),
            Phase::Handshaking(_) => Err(Error::Internal("KeyUpdate before the handshake finished")),
            _ => Err(Error::Closed),
        }
    }

    /// Lowers how many records one write key protects before the connection
    /// updates it by itself (normally [`KEY_UPDATE_INTERVAL`]), so that tests
    /// can watch it happen. At least 2, since the KeyUpdate is the last
    /// record of the old key; never above the normal interval.
    pub fn set_key_update_interval_for_testing_only(&mut self, records: u64) {
        self.core.key_update_interval = records.clamp(2, KEY_UPDATE_INTERVAL);
    }

    /// Sends close_notify: we will send nothing more (§6.1).
    pub fn close(&mut self) {
        if !self.core.sent_close && !matches!(self.phase, Phase::Done(Some(_))) {
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
                                let revealed = Revealed::Record {
                                    direction: Direction::Received,
                                    secret,
                                    sequence,
                                    ciphertext,
                                    plaintext: SecretBytes::new(plaintext),
                                    length: rec.len,
                                };
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
                    if !matches!(self.phase, Phase::Traffic) {
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
                if matches!(self.phase, Phase::Traffic) && !self.core.sent_close {
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
                    Next::Traffic => self.phase = Phase::Traffic,
                },
                Phase::Traffic => {
                    self.phase = Phase::Traffic;
                    self.post_handshake(msg)?;
                }
                done @ Phase::Done(_) => self.phase = done,
            }
        }
    }

    /// Messages after the handshake (§4.6).
    fn post_handshake(&mut self, msg: Message<'_>) -> Result<(), Error> {
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
                self.core
                    .message_step(Direction::Received, msg.raw, true, false, || key_update_fields(requested));
                self.core.receive_key_update(requested)
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
