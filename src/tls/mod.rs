//! The sans-IO TLS 1.3 engine (RFC 8446).
//!
//! The engine does no I/O, reads no clock and draws no randomness of its own:
//! bytes go in through [`Connection::handle_input`], bytes to send come out of
//! [`Connection::poll_transmit`], and what happened comes out of
//! [`Connection::poll_event`]. Randomness is an injected [`crypto::Rng`] and
//! the time for certificate checks is passed in, so with the same seed and
//! input the engine writes the same bytes.
//!
//! ```text
//!   socket bytes ──handle_input──▶ ┌────────────┐ ──poll_transmit──▶ socket
//!   app plaintext ──────send─────▶ │ Connection │ ──poll_event─────▶ UI / log
//!                                  └────────────┘ ──recv_application_data──▶ app
//! ```
//!
//! Driving order: after any input, drain `poll_transmit` (which also carries
//! the alert of a failure), then `poll_event` and `recv_application_data`.

// What `internal` re-exports is `pub` for it alone: without the `testing`
// feature it is public in name only.
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub(crate) mod cert;
mod client;
pub(crate) mod codec;
mod conn;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub(crate) mod crypto;
mod describe;
mod error;
mod events;
mod handshake;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub(crate) mod key_schedule;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub(crate) mod messages;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub(crate) mod record;
mod server;
mod state;
mod suites;
#[cfg(test)]
mod test_vectors;

use std::sync::Arc;

pub use cert::{CertError, CertSummary, Fingerprint, RootStore, ServerName};
pub use conn::Connection;
#[cfg(any(test, feature = "testing"))]
pub use crypto::SeededRng;
pub use crypto::{Ed25519Key, KeyFormatError, OsRng, Rng};
pub use error::Error;
pub use events::{
    Direction, Event, Field, HandshakeStep, Revealed, RevealedRecord, SecretBytes, Step, Summary,
};
pub use key_schedule::SecretKind;
pub use messages::{AlertDescription, CipherSuite, NamedGroup, SignatureScheme};
#[cfg(any(test, feature = "testing"))]
pub(crate) use state::KEY_UPDATE_INTERVAL;
pub use suites::Suite;

/// The engine's internals, for tlschat's own tests, benchmarks and fuzz
/// targets: the wire codec and messages, the record layer, the key
/// schedule, the primitives and the certificate checks, which they drive
/// or tamper with directly. Not part of tlschat's API: everything an
/// application needs is above, and this may change with any commit. Only
/// with the `testing` feature, as the test-only constructors.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod internal {
    /// Certificate checks (see `src/tls/cert/`).
    pub mod cert {
        pub use crate::tls::cert::*;
    }
    /// The primitives, the only users of the primitive crates.
    pub mod crypto {
        pub use crate::tls::crypto::*;
    }
    /// The key schedule (RFC 8446 §7.1).
    pub mod key_schedule {
        pub use crate::tls::key_schedule::*;
    }
    /// Handshake messages and wire codes (RFC 8446 §4).
    pub mod messages {
        pub use crate::tls::messages::*;
    }
    /// The record layer (RFC 8446 §5).
    pub mod record {
        pub use crate::tls::record::*;
    }
}

/// The ALPN protocol of tlschat's framed chat (`tlschat/1`).
pub const ALPN_TLSCHAT: &[u8] = b"tlschat/1";
/// The ALPN protocol of HTTP/1.1, answered with a status page.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Cipher suites tlschat speaks, in its order of preference.
pub const SUPPORTED_SUITES: [CipherSuite; 2] = [Suite::ALL[0].code(), Suite::ALL[1].code()];

/// A certificate chain (DER, leaf first) and the private key of its leaf.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    /// The chain as sent in Certificate, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The leaf's private key.
    pub key: Ed25519Key,
}

/// Receives secrets for an NSS key log file, so Wireshark can decrypt a
/// capture. Only ever installed by an explicit `--keylog`/SSLKEYLOGFILE.
pub trait KeyLog: Send + Sync {
    /// One key log line: `label client_random secret`.
    fn log(&self, label: &str, client_random: &[u8; 32], secret: &[u8]);
}

/// How a client decides to trust the server's certificate.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// Validate the chain against these CAs and the name connected to.
    Roots(RootStore),
    /// Accept exactly the key with this fingerprint (pinning), whatever signed it.
    Fingerprint(Fingerprint),
    /// Accept any Ed25519 key that proves itself with CertificateVerify,
    /// whoever signed its certificate and whatever names it carries. The
    /// trust decision is left to the caller, who must make it from
    /// [`Summary::peer`] when [`Event::Connected`] arrives and before
    /// sending any application data, or, with
    /// [`ClientConfig::hold_for_trust`], from [`Event::ServerKey`] before
    /// our certificate is sent: this is for the first contact with a
    /// server, to show its user the key before pinning it (as SSH does).
    AnyKey,
}

/// How a server treats client certificates (mutual TLS).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Send no CertificateRequest.
    None,
    /// Ask for a certificate; a client without one may continue.
    Optional(ClientTrust),
    /// Ask for a certificate and refuse clients without one (certificate_required).
    Required(ClientTrust),
}

/// Which client certificates a server accepts.
#[derive(Debug, Clone)]
pub enum ClientTrust {
    /// Chains that lead to one of these CAs.
    Roots(RootStore),
    /// Any Ed25519 certificate whose CertificateVerify proves the key: the
    /// key itself is the identity (self-signed user certificates).
    AnyKey,
    /// As [`AnyKey`](Self::AnyKey), and then, once the client's Finished has
    /// verified, the [`Admission`] decides whether this key may join; a
    /// refusal fails the handshake with access_denied.
    Admit(Arc<dyn Admission>),
}

/// A server's decision on a client whose key the handshake has proven
/// (see [`ClientTrust::Admit`]): for example, binding the name in its
/// certificate to the first key that uses it.
pub trait Admission: Send + Sync + std::fmt::Debug {
    /// `Ok` lets the client in; `Err` says why not, in one line, and the
    /// handshake fails with access_denied. Called once per handshake, after
    /// CertificateVerify and Finished have verified, so `peer` holds a key
    /// the client has proven it owns.
    fn admit(&self, peer: &CertSummary) -> Result<(), String>;
}

/// A client's configuration.
#[derive(Clone)]
pub struct ClientConfig {
    /// Cipher suites to offer, most preferred first.
    pub suites: Vec<CipherSuite>,
    /// ALPN protocols to offer (none: no extension).
    pub alpn: Vec<Vec<u8>>,
    /// How the server is authenticated.
    pub trust: ServerTrust,
    /// The certificate to answer a CertificateRequest with.
    pub client_cert: Option<CertifiedKey>,
    /// Where secrets go for Wireshark, if anywhere.
    pub keylog: Option<Arc<dyn KeyLog>>,
    /// Whether to emit a [`Step`] event for each handshake step.
    pub emit_steps: bool,
    /// Whether to report the secret values the engine uses as
    /// [`Event::Revealed`] (off by default). Only an explicit opt-in of the
    /// user turns it on, as for [`keylog`](Self::keylog).
    pub reveal: bool,
    /// Whether the first ClientHello carries an X25519 key share (feature
    /// `testing` only; the program always sends one). Tests turn this off
    /// to make the server answer with a HelloRetryRequest.
    #[cfg(any(test, feature = "testing"))]
    pub key_share_in_first_hello: bool,
    /// Decide on the server's key before it learns who we are (off by
    /// default): once the server's Certificate, CertificateVerify and
    /// Finished have verified, the handshake stops with
    /// [`Event::ServerKey`] and our second flight (the client certificate
    /// that proves our identity, our Finished) is not even written until
    /// [`Connection::trust_server`]. [`Connection::close`] meanwhile sends
    /// user_canceled and close_notify instead. For [`ServerTrust::AnyKey`],
    /// where the user decides, as SSH asks before it authenticates.
    pub hold_for_trust: bool,
}

impl ClientConfig {
    /// Both suites, no ALPN, no client certificate, steps on.
    pub fn new(trust: ServerTrust) -> Self {
        Self {
            suites: SUPPORTED_SUITES.to_vec(),
            alpn: Vec::new(),
            trust,
            client_cert: None,
            keylog: None,
            emit_steps: true,
            reveal: false,
            #[cfg(any(test, feature = "testing"))]
            key_share_in_first_hello: true,
            hold_for_trust: false,
        }
    }

    /// Whether the first ClientHello carries a key share: always, but in
    /// tests that ask for a HelloRetryRequest.
    pub(crate) fn key_share_first(&self) -> bool {
        #[cfg(any(test, feature = "testing"))]
        return self.key_share_in_first_hello;
        #[cfg(not(any(test, feature = "testing")))]
        true
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("suites", &self.suites)
            .field("alpn", &self.alpn)
            .field("trust", &self.trust)
            .field("client_cert", &self.client_cert.is_some())
            .field("keylog", &self.keylog.is_some())
            .field("hold_for_trust", &self.hold_for_trust)
            .field("reveal", &self.reveal)
            .finish()
    }
}

/// A server's configuration.
#[derive(Clone)]
pub struct ServerConfig {
    /// Cipher suites accepted, most preferred first: the server's order decides (§4.1.1).
    pub suites: Vec<CipherSuite>,
    /// ALPN protocols served, most preferred first. A client that offers ALPN
    /// but none of these is refused with no_application_protocol (RFC 7301 §3.2).
    pub alpn: Vec<Vec<u8>>,
    /// The server's certificate chain and key.
    pub cert: CertifiedKey,
    /// Whether and how client certificates are requested.
    pub client_auth: ClientAuth,
    /// Where secrets go for Wireshark, if anywhere.
    pub keylog: Option<Arc<dyn KeyLog>>,
    /// Whether to emit a [`Step`] event for each handshake step.
    pub emit_steps: bool,
    /// Whether to report the secret values the engine uses as
    /// [`Event::Revealed`] (off by default). Only an explicit opt-in of the
    /// user turns it on, as for [`keylog`](Self::keylog).
    pub reveal: bool,
}

impl ServerConfig {
    /// Both suites, no ALPN, no client authentication, steps on.
    pub fn new(cert: CertifiedKey) -> Self {
        Self {
            suites: SUPPORTED_SUITES.to_vec(),
            alpn: Vec::new(),
            cert,
            client_auth: ClientAuth::None,
            keylog: None,
            emit_steps: true,
            reveal: false,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("suites", &self.suites)
            .field("alpn", &self.alpn)
            .field("client_auth", &self.client_auth)
            .field("keylog", &self.keylog.is_some())
            .field("reveal", &self.reveal)
            .finish()
    }
}
