//! The types of the handshake state machine, apart from the connection
//! that drives it: [`Core`], everything a connection has besides its
//! handshake state (record layer, buffers, events, keys), and the
//! [`State`] contract that each awaited message's struct in `client.rs`
//! and `server.rs` implements, consuming itself to handle one [`Message`]
//! and returning the [`Next`] state, so that a state that has handled its
//! message cannot be used again. `conn.rs` drives them; neither the
//! states nor this module know the [`Connection`](super::Connection).

use std::collections::VecDeque;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::KeyLog;
use super::crypto::{self, Rng, TranscriptHash};
use super::describe;
use super::error::Error;
use super::events::{Direction, Event, Field, HandshakeStep, Revealed, RevealedRecord, SecretBytes, Step};
use super::key_schedule::{self, SecretKind, TrafficSecret, TrafficSecrets};
use super::messages::{self, AlertDescription, ContentType, HandshakeType};
use super::record::{self, Deframer, MAX_CIPHERTEXT, MAX_PLAINTEXT, Protection};
use super::suites::Suite;

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
pub(crate) const KEY_UPDATE_INTERVAL: u64 = 1 << 23;

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
    /// Handles `msg` and returns the next state, or, when the handshake is
    /// complete, [`Next::Traffic`] with the secrets of the traffic phase.
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, now: u64) -> Result<Next, Error>;

    /// What this state waits for, for error messages ("waiting for ServerHello").
    fn waiting_for(&self) -> &'static str;

    /// Whether the handshake is stopped for the driver's trust in the
    /// server's key (a client's `hold_for_trust`).
    fn awaits_trust(&self) -> bool {
        false
    }

    /// The driver trusts the server's key: go on. Only called when
    /// [`awaits_trust`](Self::awaits_trust).
    fn trusted(self: Box<Self>, _core: &mut Core) -> Result<Next, Error> {
        Err(Error::Internal("the handshake is not waiting for trust"))
    }
}

/// What a state turns into.
pub(crate) enum Next {
    /// Another handshake state.
    State(Box<dyn State>),
    /// The handshake is done: the connection's traffic phase begins with
    /// these secrets, which only it holds.
    Traffic(Box<AppSecrets>),
}

/// The application traffic secrets and their KeyUpdate generations (§7.2).
/// The last handshake state makes them and hands them to the traffic phase
/// ([`Next::Traffic`]), so that nothing before it can reach them. Boxed
/// where they are kept, so they stay in one place until they are zeroized.
pub(crate) struct AppSecrets {
    /// The suite the handshake agreed, which keys every generation.
    pub(crate) suite: Suite,
    pub(crate) ours: TrafficSecret,
    pub(crate) theirs: TrafficSecret,
    our_generation: u64,
    their_generation: u64,
}

impl AppSecrets {
    /// Which of `traffic`'s secrets are ours on `side`. The exporter secret
    /// is not kept: tlschat exports nothing.
    pub(crate) fn new(side: Side, suite: Suite, traffic: TrafficSecrets) -> Box<Self> {
        let TrafficSecrets { client, server, .. } = traffic;
        let (ours, theirs) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        Box::new(Self { suite, ours, theirs, our_generation: 0, their_generation: 0 })
    }
}

/// A received application-data record not yet taken by the driver.
pub(super) enum AppData {
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
    pub(super) read_secret: Option<SecretKind>,
    pub(super) write_secret: Option<SecretKind>,
    pub(crate) transcript: TranscriptHash,
    pub(crate) client_random: [u8; 32],
    pub(super) deframer: Deframer,
    /// Handshake bytes received but not yet a whole message.
    pub(super) joiner: Vec<u8>,
    pub(super) read: Option<Protection>,
    pub(super) write: Option<Protection>,
    pub(super) tx: Vec<u8>,
    pub(super) events: VecDeque<Event>,
    pub(super) app_in: VecDeque<AppData>,
    /// Whether the peer's dummy ChangeCipherSpec is acceptable now (§D.4, §5).
    pub(crate) ccs_allowed: bool,
    /// Whether a protected record from the peer has opened: proof that the
    /// peer has keys, after which it may send nothing unprotected but CCS.
    pub(super) opened_a_record: bool,
    /// Records a write key protects before we update it (see [`KEY_UPDATE_INTERVAL`]).
    pub(super) key_update_interval: u64,
    /// KeyUpdates received since the peer's last application data.
    pub(super) key_updates_in_a_row: u32,
    /// Whether we have answered a KeyUpdate request since we last sent
    /// application data: more requests until then need no more answers.
    pub(super) answered_key_update: bool,
    /// Whether declined early data is being skipped (server only).
    pub(crate) skip_early_data: SkipEarlyData,
    /// Whether we have sent our dummy ChangeCipherSpec.
    pub(crate) sent_ccs: bool,
    /// Whether our first ClientHello is still to be written (record version 0x0301).
    pub(super) first_hello_pending: bool,
    pub(super) messages: usize,
    pub(crate) expected_messages: usize,
    pub(super) sent_close: bool,
    pub(super) received_close: bool,
    /// The peer's close_notify awaits our answer (§6.1). It is written by
    /// the next `poll_transmit` (or `close`), not at once: the driver may
    /// still reply to the records that came before the close_notify in the
    /// same input, and those replies must go out before our close_notify.
    pub(super) close_owed: bool,
    /// The tamper lab only ([`Connection::client_with_wrong_finished`]):
    /// our Finished goes out with one bit of its verify_data flipped.
    ///
    /// [`Connection::client_with_wrong_finished`]: super::Connection::client_with_wrong_finished
    pub(super) wrong_finished: bool,
}

impl Core {
    pub(super) fn new(
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
            deframer: Deframer::default(),
            joiner: Vec::new(),
            read: None,
            write: None,
            tx: Vec::with_capacity(4096),
            events: VecDeque::new(),
            app_in: VecDeque::new(),
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
            wrong_finished: false,
        }
    }

    // -- events ---------------------------------------------------------------

    pub(super) fn push_step(&mut self, step: Step) {
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
    pub(super) fn ccs_step(&mut self, direction: Direction) {
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
        let revealed = Revealed::Record(RevealedRecord {
            direction: Direction::Sent,
            secret,
            sequence,
            ciphertext: body[..n].to_vec(),
            plaintext: SecretBytes::new(&inner[..n]),
            length: body.len(),
        });
        self.events.push_back(Event::Revealed(revealed));
    }

    /// Moves application data still in the deframer's buffer out of it,
    /// before the buffer is compacted and its offsets change.
    pub(super) fn keep_app_data(&mut self) {
        for item in &mut self.app_in {
            if let AppData::InPlace(range) = item {
                *item = AppData::Owned(self.deframer.buffer_mut()[range.clone()].to_vec());
            }
        }
    }

    // -- keys -----------------------------------------------------------------

    /// Starts decrypting with `secret`, the traffic secret `kind`. Refuses
    /// if a handshake message straddles the change (§5.1: "Handshake
    /// messages MUST NOT span key changes").
    pub(crate) fn set_read_key(
        &mut self,
        suite: Suite,
        kind: SecretKind,
        secret: &TrafficSecret,
    ) -> Result<(), Error> {
        if !self.joiner.is_empty() {
            return Err(Error::UnexpectedMessage("a handshake message spans a key change".into()));
        }
        self.read = Some(self.protection(suite, kind, secret, Direction::Received));
        Ok(())
    }

    /// Starts encrypting with `secret`, the traffic secret `kind`.
    pub(crate) fn set_write_key(&mut self, suite: Suite, kind: SecretKind, secret: &TrafficSecret) {
        self.write = Some(self.protection(suite, kind, secret, Direction::Sent));
    }

    /// Record protection keyed from `secret` (the traffic secret `kind`)
    /// for reading (`Received`) or writing (`Sent`); with `reveal`, the key
    /// and IV it uses are reported, and `kind` is kept to label the records
    /// they protect. `kind` is only a label: the keys come from `secret`.
    fn protection(
        &mut self,
        suite: Suite,
        kind: SecretKind,
        secret: &TrafficSecret,
        direction: Direction,
    ) -> Protection {
        let (key, iv) = key_schedule::key_material(suite, secret);
        if self.reveal {
            match direction {
                Direction::Received => self.read_secret = Some(kind),
                Direction::Sent => self.write_secret = Some(kind),
            }
            self.events.push_back(Event::Revealed(Revealed::TrafficKeys {
                secret: kind,
                suite: suite.code(),
                direction,
                key: SecretBytes::new(&key),
                iv: SecretBytes::new(iv.expose()),
            }));
        }
        Protection::new(key_schedule::aead_key(suite, &key), iv)
    }

    /// Reports the application secrets (and with `reveal`, the master
    /// secret and their values) and hands them to the key log.
    pub(crate) fn app_secrets_derived(&mut self, traffic: &TrafficSecrets) {
        self.reveal_secret(SecretKind::MasterSecret, traffic.master.expose(), None);
        let hash = Some(traffic.finished_hash);
        self.reveal_secret(SecretKind::ClientApplicationTraffic(0), traffic.client.expose(), hash);
        self.reveal_secret(SecretKind::ServerApplicationTraffic(0), traffic.server.expose(), hash);
        self.reveal_secret(SecretKind::ExporterMaster, traffic.exporter.expose(), hash);
        self.secret(SecretKind::ClientApplicationTraffic(0), &traffic.client);
        self.secret(SecretKind::ServerApplicationTraffic(0), &traffic.server);
        self.secret(SecretKind::ExporterMaster, &traffic.exporter);
    }

    pub(super) fn secret_kind(&self, ours: bool, generation: u64) -> SecretKind {
        match (self.side == Side::Client) == ours {
            true => SecretKind::ClientApplicationTraffic(generation),
            false => SecretKind::ServerApplicationTraffic(generation),
        }
    }

    // -- writing --------------------------------------------------------------

    /// Writes handshake messages (a whole flight) in as few records as the
    /// size limit allows, protected if a write key is set.
    pub(crate) fn write_handshake(&mut self, flight: &[u8]) -> Result<(), Error> {
        match &self.write {
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

    pub(super) fn write_alert(&mut self, desc: AlertDescription) {
        if self.seal_alert(desc) {
            self.events.push_back(Event::AlertSent(desc));
        }
    }

    /// Writes an alert record with no event; false if it could not be sealed.
    pub(super) fn seal_alert(&mut self, desc: AlertDescription) -> bool {
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

    pub(super) fn write_app_data(&mut self, app: &mut AppSecrets, data: &[u8]) -> Result<(), Error> {
        if !data.is_empty() {
            self.answered_key_update = false;
        }
        for chunk in data.chunks(MAX_PLAINTEXT) {
            let used = self.write.as_ref().ok_or(Error::Internal("no write key"))?.sequence();
            if used.saturating_add(1) >= self.key_update_interval {
                // §5.5: a fresh key before this one has protected too many records.
                self.send_key_update(app, false)?;
            }
            self.seal(ContentType::APPLICATION_DATA, chunk)?;
        }
        Ok(())
    }

    /// Appends one record protected with the write key (and reveals it, if asked).
    fn seal(&mut self, typ: ContentType, payload: &[u8]) -> Result<(), Error> {
        let p = self.write.as_mut().ok_or(Error::Internal("no write key"))?;
        let (start, sequence) = (self.tx.len(), p.sequence());
        p.seal(typ, payload, &mut self.tx)?;
        self.reveal_sealed(start, sequence, payload, typ);
        Ok(())
    }

    /// Sends a KeyUpdate and moves our writing to the next secret (§4.6.3).
    pub(super) fn send_key_update(
        &mut self,
        app: &mut AppSecrets,
        update_requested: bool,
    ) -> Result<(), Error> {
        let mut msg = Vec::with_capacity(5);
        messages::encode_key_update(&mut msg, update_requested);
        self.write_handshake(&msg)?;
        self.message_step(Direction::Sent, &msg, true, false, || describe::key_update(update_requested));
        app.ours = key_schedule::next_traffic_secret(&app.ours);
        app.our_generation += 1;
        let generation = app.our_generation;
        let kind = self.secret_kind(true, generation);
        self.set_write_key(app.suite, kind, &app.ours);
        self.reveal_secret(kind, app.ours.expose(), None);
        self.secret(kind, &app.ours);
        self.event(Event::KeyUpdated { direction: Direction::Sent, update_requested, generation });
        Ok(())
    }

    /// A received KeyUpdate: move reading on, and answer if asked (§4.6.3):
    /// once, however many requests come while we send no data ("an
    /// implementation which receives multiple KeyUpdates while it is silent
    /// \[responds\] with a single update").
    pub(super) fn receive_key_update(
        &mut self,
        app: &mut AppSecrets,
        update_requested: bool,
    ) -> Result<(), Error> {
        app.theirs = key_schedule::next_traffic_secret(&app.theirs);
        app.their_generation += 1;
        let generation = app.their_generation;
        let kind = self.secret_kind(false, generation);
        self.set_read_key(app.suite, kind, &app.theirs)?;
        self.reveal_secret(kind, app.theirs.expose(), None);
        self.secret(kind, &app.theirs);
        self.event(Event::KeyUpdated { direction: Direction::Received, update_requested, generation });
        if update_requested && !self.sent_close && !self.answered_key_update {
            self.send_key_update(app, false)?;
            self.answered_key_update = true;
        }
        Ok(())
    }
}
