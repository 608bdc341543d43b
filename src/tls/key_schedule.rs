//! The TLS 1.3 key schedule (RFC 8446 §7.1, §7.3, §4.4.4, §4.6.3).
//!
//! Both supported suites hash with SHA-256, so every secret is 32 bytes. The
//! schedule moves through typed stages, [`HandshakeSecrets`] then
//! [`TrafficSecrets`], each made by consuming the one before: a stage that
//! has served cannot be asked for keys again, and nothing derives an
//! application secret before the handshake secret exists.
//!
//! ```text
//!            0 -> HKDF-Extract = Early Secret
//!                  Derive-Secret(., "derived", "")
//!  (EC)DHE -> HKDF-Extract = Handshake Secret -> "c hs traffic", "s hs traffic"
//!                  Derive-Secret(., "derived", "")
//!            0 -> HKDF-Extract = Master Secret -> "c ap traffic", "s ap traffic", "exp master"
//! ```

use std::fmt;

use zeroize::Zeroizing;

use super::crypto::{self, AeadKey, HASH_LEN, NONCE_LEN, Secret};
use super::suites::{Aead, Hash, Suite};

/// A 32-byte secret of the schedule.
pub type TrafficSecret = Secret<HASH_LEN>;

/// The labels of HKDF-Expand-Label that TLS 1.3 uses (§7.1, §7.3, §4.4.4,
/// §7.2). Only these exist, so "tls13 " and a label always fit HkdfLabel's
/// `opaque label<7..255>` and its one-byte length is never written from a
/// value that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// "derived"
    Derived,
    /// "c hs traffic"
    ClientHandshakeTraffic,
    /// "s hs traffic"
    ServerHandshakeTraffic,
    /// "c ap traffic"
    ClientApplicationTraffic,
    /// "s ap traffic"
    ServerApplicationTraffic,
    /// "exp master"
    ExporterMaster,
    /// "finished"
    Finished,
    /// "traffic upd"
    TrafficUpdate,
    /// "key"
    Key,
    /// "iv"
    Iv,
}

impl Label {
    /// Every label, for the compile-time check of their lengths.
    const ALL: [Self; 10] = [
        Self::Derived,
        Self::ClientHandshakeTraffic,
        Self::ServerHandshakeTraffic,
        Self::ClientApplicationTraffic,
        Self::ServerApplicationTraffic,
        Self::ExporterMaster,
        Self::Finished,
        Self::TrafficUpdate,
        Self::Key,
        Self::Iv,
    ];

    /// The label as the RFC spells it, without the "tls13 " prefix.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Derived => "derived",
            Self::ClientHandshakeTraffic => "c hs traffic",
            Self::ServerHandshakeTraffic => "s hs traffic",
            Self::ClientApplicationTraffic => "c ap traffic",
            Self::ServerApplicationTraffic => "s ap traffic",
            Self::ExporterMaster => "exp master",
            Self::Finished => "finished",
            Self::TrafficUpdate => "traffic upd",
            Self::Key => "key",
            Self::Iv => "iv",
        }
    }
}

// "tls13 " and any label fit HkdfLabel's `opaque label<7..255>`, so its
// one-byte length below is never written from a value that does not fit.
const _: () = {
    let mut i = 0;
    while i < Label::ALL.len() {
        assert!(6 + Label::ALL[i].as_str().len() <= 255);
        i += 1;
    }
};

/// The context of an HkdfLabel (`opaque context<0..255>`): in TLS 1.3
/// either empty or a transcript hash, so its one-byte length always fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelContext<'a> {
    /// No context.
    Empty,
    /// A transcript hash.
    Hash(&'a [u8; HASH_LEN]),
}

impl LabelContext<'_> {
    /// The context's bytes: at most a hash length.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Hash(h) => &h[..],
        }
    }
}

const _: () = assert!(HASH_LEN <= 255);

/// HKDF-Expand-Label(Secret, Label, Context, Length) (§7.1), into `N`
/// bytes: a secret, a key or an IV, at most a hash length (checked when it
/// compiles), so HkdfLabel's uint16 `length` always fits; the label and the
/// context fit by their types.
pub(crate) fn expand_label<const N: usize>(
    secret: &[u8; HASH_LEN],
    label: Label,
    context: LabelContext<'_>,
) -> [u8; N] {
    const { assert!(N <= HASH_LEN, "HKDF-Expand-Label here yields at most a hash length") };
    let mut out = [0u8; N];
    let context = context.bytes();
    // Each cast below is bounded by a compile-time check above.
    let length = (N as u16).to_be_bytes();
    let label_len = [(6 + label.as_str().len()) as u8];
    let context_len = [context.len() as u8];
    crypto::hkdf_expand(
        secret,
        &[&length, &label_len, b"tls13 ", label.as_str().as_bytes(), &context_len, context],
        &mut out,
    );
    out
}

/// Derive-Secret(Secret, Label, Messages) given Transcript-Hash(Messages) (§7.1).
pub(crate) fn derive_secret(
    secret: &[u8; HASH_LEN],
    label: Label,
    transcript_hash: &[u8; HASH_LEN],
) -> TrafficSecret {
    Secret::new(expand_label(secret, label, LabelContext::Hash(transcript_hash)))
}

/// The labels of every secret the schedule derives, as the UI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// The (EC)DHE shared secret from X25519.
    SharedSecret,
    /// Early Secret = HKDF-Extract(0, 0): no PSK is used.
    EarlySecret,
    /// Handshake Secret.
    HandshakeSecret,
    /// client_handshake_traffic_secret ("c hs traffic").
    ClientHandshakeTraffic,
    /// server_handshake_traffic_secret ("s hs traffic").
    ServerHandshakeTraffic,
    /// Master Secret.
    MasterSecret,
    /// client_application_traffic_secret_N ("c ap traffic", then "traffic upd").
    ClientApplicationTraffic(u64),
    /// server_application_traffic_secret_N.
    ServerApplicationTraffic(u64),
    /// exporter_master_secret ("exp master").
    ExporterMaster,
}

impl SecretKind {
    /// The RFC's label for this secret.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::SharedSecret => "(EC)DHE shared secret",
            Self::EarlySecret => "early secret",
            Self::HandshakeSecret => "handshake secret",
            Self::ClientHandshakeTraffic => "c hs traffic",
            Self::ServerHandshakeTraffic => "s hs traffic",
            Self::MasterSecret => "master secret",
            Self::ClientApplicationTraffic(0) => "c ap traffic",
            Self::ServerApplicationTraffic(0) => "s ap traffic",
            Self::ClientApplicationTraffic(_) | Self::ServerApplicationTraffic(_) => "traffic upd",
            Self::ExporterMaster => "exp master",
        }
    }

    /// The NSS key log label (for Wireshark), for secrets that have one.
    pub(crate) fn keylog_label(self) -> Option<String> {
        Some(match self {
            Self::ClientHandshakeTraffic => "CLIENT_HANDSHAKE_TRAFFIC_SECRET".into(),
            Self::ServerHandshakeTraffic => "SERVER_HANDSHAKE_TRAFFIC_SECRET".into(),
            Self::ClientApplicationTraffic(n) => format!("CLIENT_TRAFFIC_SECRET_{n}"),
            Self::ServerApplicationTraffic(n) => format!("SERVER_TRAFFIC_SECRET_{n}"),
            Self::ExporterMaster => "EXPORTER_SECRET".into(),
            _ => return None,
        })
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientApplicationTraffic(n) | Self::ServerApplicationTraffic(n) if *n > 0 => {
                let side =
                    if matches!(self, Self::ClientApplicationTraffic(_)) { "client" } else { "server" };
                write!(f, "{side} application traffic secret {n} (traffic upd)")
            }
            _ => f.write_str(self.label()),
        }
    }
}

/// SHA-256 of the empty string, the context of each "derived" step.
fn empty_hash() -> [u8; HASH_LEN] {
    crypto::sha256(b"")
}

/// The Early Secret without a PSK: HKDF-Extract(0, 0), the same for every
/// connection. It is not secret.
pub(crate) fn early_secret() -> TrafficSecret {
    crypto::hkdf_extract(&[0u8; HASH_LEN], &[0u8; HASH_LEN])
}

/// Derive-Secret(Early Secret, "derived", ""): the salt of the handshake
/// secret, computed once per process (see [`early_secret`]).
fn early_derived() -> &'static [u8; HASH_LEN] {
    static SALT: std::sync::OnceLock<[u8; HASH_LEN]> = std::sync::OnceLock::new();
    SALT.get_or_init(|| *derive_secret(early_secret().expose(), Label::Derived, &empty_hash()).expose())
}

/// The schedule after the ServerHello: handshake traffic secrets exist.
pub struct HandshakeSecrets {
    handshake_secret: TrafficSecret,
    /// client_handshake_traffic_secret
    pub client: TrafficSecret,
    /// server_handshake_traffic_secret
    pub server: TrafficSecret,
    /// Transcript-Hash(ClientHello..ServerHello), which both were derived over.
    pub(crate) hello_hash: [u8; HASH_LEN],
}

impl fmt::Debug for HandshakeSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeSecrets(<redacted>)")
    }
}

impl HandshakeSecrets {
    /// Runs the schedule from the start to the handshake traffic secrets, given
    /// the (EC)DHE secret and Transcript-Hash(ClientHello..ServerHello).
    pub fn derive(shared: &Secret<32>, hello_hash: &[u8; HASH_LEN]) -> Self {
        let handshake_secret = crypto::hkdf_extract(early_derived(), shared.expose());
        Self {
            client: derive_secret(handshake_secret.expose(), Label::ClientHandshakeTraffic, hello_hash),
            server: derive_secret(handshake_secret.expose(), Label::ServerHandshakeTraffic, hello_hash),
            handshake_secret,
            hello_hash: *hello_hash,
        }
    }

    /// The handshake secret itself (for known-answer tests and `reveal`).
    pub(crate) fn handshake_secret(&self) -> &TrafficSecret {
        &self.handshake_secret
    }

    /// Moves on to the master secret, given Transcript-Hash(ClientHello..server Finished).
    pub(crate) fn into_traffic(self, finished_hash: &[u8; HASH_LEN]) -> TrafficSecrets {
        let salt = derive_secret(self.handshake_secret.expose(), Label::Derived, &empty_hash());
        let master = crypto::hkdf_extract(salt.expose(), &[0u8; HASH_LEN]);
        TrafficSecrets {
            client: derive_secret(master.expose(), Label::ClientApplicationTraffic, finished_hash),
            server: derive_secret(master.expose(), Label::ServerApplicationTraffic, finished_hash),
            exporter: derive_secret(master.expose(), Label::ExporterMaster, finished_hash),
            master,
            finished_hash: *finished_hash,
        }
    }
}

/// The schedule after the server Finished: application traffic secrets.
pub(crate) struct TrafficSecrets {
    /// client_application_traffic_secret_0
    pub(crate) client: TrafficSecret,
    /// server_application_traffic_secret_0
    pub(crate) server: TrafficSecret,
    /// exporter_master_secret
    pub(crate) exporter: TrafficSecret,
    /// The Master Secret (kept for known-answer tests and `reveal`).
    pub(crate) master: TrafficSecret,
    /// Transcript-Hash(ClientHello..server Finished), which the three were derived over.
    pub(crate) finished_hash: [u8; HASH_LEN],
}

impl fmt::Debug for TrafficSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrafficSecrets(<redacted>)")
    }
}

/// finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (§4.4.4).
pub(crate) fn finished_key(base: &TrafficSecret) -> Secret<HASH_LEN> {
    Secret::new(expand_label(base.expose(), Label::Finished, LabelContext::Empty))
}

/// verify_data = HMAC(finished_key, Transcript-Hash(...)) (§4.4.4).
#[cfg(any(test, feature = "testing"))]
pub fn verify_data(base: &TrafficSecret, transcript_hash: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    finished_mac(&finished_key(base), transcript_hash)
}

/// HMAC(finished_key, Transcript-Hash(...)), given the finished_key (§4.4.4).
pub(crate) fn finished_mac(
    finished_key: &Secret<HASH_LEN>,
    transcript_hash: &[u8; HASH_LEN],
) -> [u8; HASH_LEN] {
    crypto::hmac_sha256(finished_key.expose(), transcript_hash)
}

/// application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length) (§7.2).
pub(crate) fn next_traffic_secret(current: &TrafficSecret) -> TrafficSecret {
    Secret::new(expand_label(current.expose(), Label::TrafficUpdate, LabelContext::Empty))
}

/// The write key and IV of a traffic secret (§7.3).
#[cfg(any(test, feature = "testing"))]
pub fn traffic_keys(suite: Suite, secret: &TrafficSecret) -> (AeadKey, Secret<NONCE_LEN>) {
    let (key, iv) = key_material(suite, secret);
    (aead_key(suite, &key), iv)
}

/// The suite's AEAD keyed with `key` (from [`key_material`]).
pub(crate) fn aead_key(suite: Suite, key: &[u8]) -> AeadKey {
    match suite.aead() {
        Aead::Aes128Gcm => AeadKey::aes_128_gcm(key),
        Aead::ChaCha20Poly1305 => AeadKey::chacha20_poly1305(key),
    }
}

/// The raw key and IV bytes of a traffic secret (§7.3): the key is
/// HKDF-Expand-Label(secret, "key", "", key_length), 16 bytes for
/// AES-128-GCM and 32 for ChaCha20-Poly1305; the IV is 12 bytes.
pub(crate) fn key_material(suite: Suite, secret: &TrafficSecret) -> (Zeroizing<Vec<u8>>, Secret<NONCE_LEN>) {
    // Every secret here is a SHA-256 output (TrafficSecret is 32 bytes): a
    // suite with another hash fails to compile here until it has its own.
    let Hash::Sha256 = suite.hash();
    let iv = expand_label::<NONCE_LEN>(secret.expose(), Label::Iv, LabelContext::Empty);
    let key = match suite.aead() {
        Aead::Aes128Gcm => Zeroizing::new(
            Zeroizing::new(expand_label::<16>(secret.expose(), Label::Key, LabelContext::Empty)).to_vec(),
        ),
        Aead::ChaCha20Poly1305 => Zeroizing::new(
            Zeroizing::new(expand_label::<32>(secret.expose(), Label::Key, LabelContext::Empty)).to_vec(),
        ),
    };
    (key, Secret::new(iv))
}
