//! The only home of the primitive crates (RFC 8446 §5.3, §7.1, §7.4, §4.4.3).
//!
//! Everything the engine needs from cryptography goes through this module:
//! randomness (injected through [`Rng`]), X25519, Ed25519, SHA-256, HMAC,
//! HKDF and the two AEADs. Secrets live in newtypes that zeroize on drop and
//! print as `<redacted>`.

use std::fmt;

use aes_gcm::Aes128Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a SHA-256 output: both supported suites hash with SHA-256.
pub(crate) const HASH_LEN: usize = 32;
/// Length of an AEAD tag for both supported suites.
pub(crate) const TAG_LEN: usize = 16;
/// Length of a per-record nonce (RFC 8446 §5.3: iv_length is 12 for both suites).
pub(crate) const NONCE_LEN: usize = 12;

/// A source of randomness, injected so the engine stays deterministic under test.
///
/// The binary supplies the operating system's generator ([`OsRng`]); tests
/// supply a seeded one so every byte on the wire repeats from run to run.
pub trait Rng: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's random generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        // Without a working OS generator no key can be made safely; there is
        // nothing sensible to fall back to.
        #[allow(clippy::expect_used)]
        getrandom::fill(buf).expect("the operating system's random generator failed");
    }
}

/// A deterministic generator for tests and reproducible transcripts
/// (a BLAKE3 extendable output keyed by the seed). Never use it for real
/// keys: it exists only in the crate's tests and with the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub struct SeededRng {
    reader: blake3::OutputReader,
}

#[cfg(any(test, feature = "testing"))]
impl SeededRng {
    /// A generator whose output depends only on `seed`.
    pub fn new_for_testing_only(seed: u64) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("tlschat seeded test rng");
        hasher.update(&seed.to_le_bytes());
        Self { reader: hasher.finalize_xof() }
    }
}

#[cfg(any(test, feature = "testing"))]
impl fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededRng")
    }
}

#[cfg(any(test, feature = "testing"))]
impl Rng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) {
        self.reader.fill(buf);
    }
}

/// Fixed-size secret bytes: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>(pub(crate) [u8; N]);

impl<const N: usize> Secret<N> {
    /// Wraps raw secret bytes.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Callers must not copy them anywhere that outlives the secret.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(<redacted>)")
    }
}

/// Compares two byte strings in constant time (for MACs and Finished).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

// ---------------------------------------------------------------------------
// Hashing

/// A running SHA-256 transcript hash (RFC 8446 §4.4.1).
#[derive(Clone, Default)]
pub struct TranscriptHash(Sha256);

impl TranscriptHash {
    /// Adds bytes to the transcript.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hash of everything added so far; the transcript continues.
    pub fn current(&self) -> [u8; HASH_LEN] {
        self.0.clone().finalize().into()
    }
}

impl fmt::Debug for TranscriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TranscriptHash({})", hex(&self.current()))
    }
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; HASH_LEN] {
    Sha256::digest(bytes).into()
}

/// HMAC-SHA256(key, msg).
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; HASH_LEN] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// HKDF-Extract(salt, ikm) with SHA-256 (RFC 5869 §2.2).
pub(crate) fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> Secret<HASH_LEN> {
    let (prk, _) = hkdf::Hkdf::<Sha256>::extract(Some(salt), ikm);
    Secret(prk.into())
}

/// HKDF-Expand(prk, info, L) with SHA-256 (RFC 5869 §2.3), info given in parts.
pub(crate) fn hkdf_expand(prk: &[u8; HASH_LEN], info: &[&[u8]], out: &mut [u8]) {
    let hk = hkdf::Hkdf::<Sha256>::from_prk(prk)
        .unwrap_or_else(|_| unreachable!("a SHA-256 output is a valid PRK"));
    hk.expand_multi_info(info, out)
        .unwrap_or_else(|_| unreachable!("TLS never asks for more than 255 hash lengths"));
}

// ---------------------------------------------------------------------------
// X25519

/// An X25519 private key for one handshake (RFC 7748).
pub struct X25519Secret(x25519_dalek::StaticSecret);

impl X25519Secret {
    /// Draws a fresh private key from `rng`.
    pub(crate) fn generate(rng: &mut dyn Rng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *bytes);
        Self(x25519_dalek::StaticSecret::from(*bytes))
    }

    /// A fixed private key, for known-answer tests.
    #[cfg(any(test, feature = "testing"))]
    pub fn from_bytes_for_testing_only(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The public key to send in a key_share.
    pub fn public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// The private key's bytes, for the user's explicit `reveal` only.
    pub(crate) fn expose_for_reveal(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The shared secret with `peer`, or `None` when the peer's key is a
    /// low-order point that makes the result all zeros (RFC 7748 §6.1;
    /// RFC 8446 §7.4.2 requires aborting then).
    pub fn agree(&self, peer: &[u8; 32]) -> Option<Secret<32>> {
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        shared.was_contributory().then(|| Secret(shared.to_bytes()))
    }
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------
// Ed25519

/// An Ed25519 private key (RFC 8032); zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Ed25519Key(ed25519_dalek::SigningKey);

impl Ed25519Key {
    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut dyn Rng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *seed);
        Self::from_seed(&seed)
    }

    /// The key whose 32-byte private seed is `seed` (RFC 8032 §5.1.5).
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Reads a PKCS#8 PEM private key ("BEGIN PRIVATE KEY", as OpenSSL writes).
    pub(crate) fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyFormatError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map(Self).map_err(|_| KeyFormatError)
    }

    /// Writes the key as PKCS#8 PEM, readable by OpenSSL.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes, spki::der::pem::LineEnding};
        let mut bytes = KeypairBytes::from(&self.0);
        // PKCS#8 v1 without the public key (RFC 8410 §7), as OpenSSL writes it:
        // OpenSSL 3.0 refuses the v2 form that carries the public key too.
        bytes.public_key = None;
        bytes.to_pkcs8_pem(LineEnding::LF).unwrap_or_else(|_| unreachable!("an Ed25519 key always encodes"))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `msg` (pure Ed25519, no prehash).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Key(public {})", hex(&self.public_key()))
    }
}

/// A private key file that is not a PKCS#8 Ed25519 key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a PKCS#8 Ed25519 private key")]
pub struct KeyFormatError;

/// Checks an Ed25519 signature over `msg` by `public_key`.
///
/// Uses the strict rules (canonical S, no small-order keys or R) so one
/// message has one valid signature per key. One check: the strict one
/// computes the same equation as the lenient one and refuses more, so
/// what it accepts the lenient one would too.
pub(crate) fn ed25519_verify(public_key: &[u8; 32], msg: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(msg, &sig).is_ok()
}

// ---------------------------------------------------------------------------
// AEAD

/// The AEAD of a cipher suite, keyed for one direction.
pub enum AeadKey {
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha20Poly1305(Box<ChaCha20Poly1305>),
    /// AES-128-GCM (NIST SP 800-38D).
    Aes128Gcm(Box<Aes128Gcm>),
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChaCha20Poly1305(_) => f.write_str("AeadKey::ChaCha20Poly1305(<redacted>)"),
            Self::Aes128Gcm(_) => f.write_str("AeadKey::Aes128Gcm(<redacted>)"),
        }
    }
}

/// Authentication failed: the record was altered or is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadError;

impl AeadKey {
    /// Keys ChaCha20-Poly1305 with a 32-byte key.
    pub(crate) fn chacha20_poly1305(key: &[u8]) -> Self {
        Self::ChaCha20Poly1305(Box::new(
            ChaCha20Poly1305::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("key length comes from the suite")),
        ))
    }

    /// Keys AES-128-GCM with a 16-byte key.
    pub(crate) fn aes_128_gcm(key: &[u8]) -> Self {
        Self::Aes128Gcm(Box::new(
            Aes128Gcm::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("key length comes from the suite")),
        ))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let result = match self {
            Self::ChaCha20Poly1305(k) => {
                k.encrypt_inout_detached(&(*nonce).into(), aad, buf.into()).map(Into::into)
            }
            Self::Aes128Gcm(k) => k.encrypt_inout_detached(&(*nonce).into(), aad, buf.into()).map(Into::into),
        };
        result.unwrap_or_else(|_| unreachable!("records are far below the AEAD length limits"))
    }

    /// Checks `tag` and decrypts `buf` in place.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        match self {
            Self::ChaCha20Poly1305(k) => {
                k.decrypt_inout_detached(&(*nonce).into(), aad, buf.into(), &(*tag).into())
            }
            Self::Aes128Gcm(k) => k.decrypt_inout_detached(&(*nonce).into(), aad, buf.into(), &(*tag).into()),
        }
        .map_err(|_| AeadError)
    }
}

/// Lower-case hex of `bytes`, for logs of public values and tests.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
