//! What the engine reports: one typed event per handshake step.
//!
//! The TUI animates exactly these events and the headless log prints them;
//! nothing else looks inside the engine. Events carry public values only
//! (message bytes, transcript hashes, secret *labels*), never secret values,
//! with one exception the driver must ask for: with `reveal` on in the
//! engine's config, [`Event::Revealed`] carries the values the engine used,
//! for a user who wants to see (and recompute) their own session's keys.

use std::fmt;

use zeroize::Zeroizing;

use super::cert::CertSummary;
use super::key_schedule::SecretKind;
use super::messages::{AlertDescription, CipherSuite, NamedGroup, SignatureScheme};

/// Secret bytes the engine revealed on request: zeroized on drop, redacted
/// in `Debug` (a revealed value goes to the user's screen, never to a log by
/// accident).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// A copy of `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, <redacted>)", self.0.len())
    }
}

/// A value the engine used, reported only when its config has `reveal` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revealed {
    /// The X25519 exchange (§4.2.8, §7.4.2): our ephemeral private key, its
    /// public key and the peer's public key, from which the shared secret
    /// (reported next as [`SecretKind::SharedSecret`]) can be recomputed.
    KeyExchange {
        /// Our ephemeral private key (32 bytes).
        private_key: SecretBytes,
        /// Our public key share.
        public_key: [u8; 32],
        /// The peer's public key share.
        peer_public_key: [u8; 32],
    },
    /// A secret of the key schedule (§7.1) as the engine derived it.
    Secret {
        /// Which secret.
        kind: SecretKind,
        /// Its value (32 bytes).
        value: SecretBytes,
        /// The Transcript-Hash the secret was derived over, for the
        /// traffic and exporter secrets (`None` for the shared, early,
        /// handshake and master secrets, which take none, and for
        /// KeyUpdate's "traffic upd", whose context is empty).
        transcript_hash: Option<[u8; 32]>,
    },
    /// A Finished (§4.4.4): the finished_key and the transcript hash it
    /// was computed over, with the verify_data that resulted.
    Finished {
        /// Sent: ours; Received: the peer's, which was checked.
        direction: Direction,
        /// The handshake traffic secret the finished_key comes from.
        base: SecretKind,
        /// finished_key = HKDF-Expand-Label(base, "finished", "", 32).
        finished_key: SecretBytes,
        /// Transcript-Hash of the messages before this Finished.
        transcript_hash: [u8; 32],
        /// HMAC(finished_key, transcript_hash): what the Finished carries.
        verify_data: [u8; 32],
    },
    /// The key and IV of a traffic secret (§7.3), when the engine started
    /// to protect or open records with them.
    TrafficKeys {
        /// The traffic secret they come from.
        secret: SecretKind,
        /// The suite, which decides the key's length and the AEAD.
        suite: CipherSuite,
        /// Sent: our write keys; Received: the keys we read the peer's records with.
        direction: Direction,
        /// The AEAD key (16 or 32 bytes).
        key: SecretBytes,
        /// The write IV (12 bytes).
        iv: SecretBytes,
    },
    /// A protected record (§5.2): enough to decrypt its start independently.
    Record(RevealedRecord),
}

/// A protected record as [`Revealed::Record`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedRecord {
    /// Sent or received.
    pub(crate) direction: Direction,
    /// The traffic secret whose keys protect it.
    pub(crate) secret: SecretKind,
    /// Its sequence number under those keys (§5.3).
    pub(crate) sequence: u64,
    /// The first bytes of its encrypted_record (at most
    /// [`Revealed::RECORD_PREFIX`]; the tag is never among them).
    pub(crate) ciphertext: Vec<u8>,
    /// The same number of bytes of TLSInnerPlaintext: content, then the
    /// content type byte and any padding.
    pub(crate) plaintext: SecretBytes,
    /// The whole encrypted_record's length, tag included.
    pub(crate) length: usize,
}

impl Revealed {
    /// How many bytes of a record's ciphertext and plaintext are reported.
    pub(crate) const RECORD_PREFIX: usize = 48;
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it.
    Sent,
    /// The peer sent it.
    Received,
}

impl Direction {
    /// An arrow for logs: `->` sent, `<-` received.
    pub fn arrow(self) -> &'static str {
        match self {
            Self::Sent => "->",
            Self::Received => "<-",
        }
    }
}

/// One decoded field of a message, for the explorable panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The RFC's name of the field.
    pub(crate) name: &'static str,
    /// Its value, readable.
    pub(crate) value: String,
    /// Where the field's value lies in the message's `bytes` (offsets count
    /// the 4-byte handshake header), when that is cheap and certain to know.
    ///
    /// Length prefixes are left out, so `&bytes[range]` is the value as
    /// encoded: `legacy_session_id` is the id without its length byte,
    /// `cipher_suites` the list without its 2-byte length, `signature` and
    /// each certificate's DER likewise without theirs. `None` where the
    /// position is not computed (most extensions).
    pub(crate) range: Option<std::ops::Range<usize>>,
}

/// One step of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A handshake message (or the dummy ChangeCipherSpec) went one way.
    Message {
        /// Sent or received.
        direction: Direction,
        /// The message's name, e.g. "ServerHello".
        name: &'static str,
        /// A one-line summary, e.g. "TLS_CHACHA20_POLY1305_SHA256, x25519".
        summary: String,
        /// Decoded fields.
        fields: Vec<Field>,
        /// The message as on the wire before record protection (header included).
        bytes: Vec<u8>,
        /// Whether it travelled in protected records.
        encrypted: bool,
        /// Transcript-Hash up to and including this message, where it is part of the transcript.
        transcript_hash: Option<[u8; 32]>,
    },
    /// A secret of the key schedule was derived (its value is never reported).
    SecretDerived {
        /// Which secret.
        kind: SecretKind,
    },
    /// A check passed or failed.
    Check {
        /// What was checked, e.g. "certificate chain".
        what: &'static str,
        /// Whether it passed.
        ok: bool,
        /// Why, in one line.
        detail: String,
    },
}

/// A numbered handshake step. `number` counts messages only; other steps
/// carry the number of the message they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeStep {
    /// 1-based number of the latest message.
    pub(crate) number: usize,
    /// How many messages this handshake is expected to have, as known now
    /// (a HelloRetryRequest or CertificateRequest makes it grow).
    pub(crate) expected: usize,
    /// The step.
    pub step: Step,
}

impl fmt::Display for HandshakeStep {
    /// The headless log line, e.g. `2/7 <- ServerHello  TLS_CHACHA20_POLY1305_SHA256, x25519`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Step::Message { direction, name, summary, bytes, .. } => {
                write!(
                    f,
                    "{}/{} {} {name}  {summary} ({} bytes)",
                    self.number,
                    self.expected,
                    direction.arrow(),
                    bytes.len()
                )
            }
            Step::SecretDerived { kind } => write!(f, "      derived {kind}"),
            Step::Check { what, ok: true, detail } => write!(f, "      ok      {what}: {detail}"),
            Step::Check { what, ok: false, detail } => write!(f, "      FAILED  {what}: {detail}"),
        }
    }
}

/// What a finished handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The cipher suite.
    pub suite: CipherSuite,
    /// The key exchange group.
    pub group: NamedGroup,
    /// The signature scheme of the server's CertificateVerify.
    pub signature_scheme: SignatureScheme,
    /// The ALPN protocol, if one was agreed.
    pub(crate) alpn: Option<Vec<u8>>,
    /// The peer's certificate, if it sent one.
    pub peer: Option<CertSummary>,
    /// Whether a HelloRetryRequest was needed.
    pub retried: bool,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
}

/// Something the driver should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A handshake step happened.
    Handshake(HandshakeStep),
    /// A client with [`hold_for_trust`](super::ClientConfig::hold_for_trust):
    /// the server has proven this key (CertificateVerify and Finished
    /// verified) and the handshake waits for
    /// [`Connection::trust_server`](super::Connection::trust_server) before
    /// our second flight.
    ServerKey(CertSummary),
    /// The handshake finished; application data can flow both ways.
    Connected(Summary),
    /// Traffic keys changed by KeyUpdate (§4.6.3).
    KeyUpdated {
        /// Sent: our sending keys changed. Received: the peer's did.
        direction: Direction,
        /// Whether the KeyUpdate asked the other side to update too.
        update_requested: bool,
        /// The generation N of the new application traffic secret.
        generation: u64,
    },
    /// We sent an alert (a fatal one means the connection is over).
    AlertSent(AlertDescription),
    /// The peer sent close_notify: it will send nothing more.
    PeerClosed,
    /// A secret value, key or record as the engine used it: only with
    /// `reveal` on in the config, never otherwise.
    Revealed(Revealed),
}
