//! What the engine reports: one typed event per handshake step.
//!
//! The TUI animates exactly these events and the headless log prints them;
//! nothing else looks inside the engine. Events carry public values only
//! (message bytes, transcript hashes, secret *labels*), never secret values.

use std::fmt;

use super::cert::CertSummary;
use super::key_schedule::SecretKind;
use super::messages::{AlertDescription, CipherSuite, NamedGroup, SignatureScheme};

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
    pub name: &'static str,
    /// Its value, readable.
    pub value: String,
    /// Where the field's value lies in the message's `bytes` (offsets count
    /// the 4-byte handshake header), when that is cheap and certain to know.
    ///
    /// Length prefixes are left out, so `&bytes[range]` is the value as
    /// encoded: `legacy_session_id` is the id without its length byte,
    /// `cipher_suites` the list without its 2-byte length, `signature` and
    /// each certificate's DER likewise without theirs. `None` where the
    /// position is not computed (most extensions).
    pub range: Option<std::ops::Range<usize>>,
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
    pub number: usize,
    /// How many messages this handshake is expected to have, as known now
    /// (a HelloRetryRequest or CertificateRequest makes it grow).
    pub expected: usize,
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
    pub alpn: Option<Vec<u8>>,
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
}
