//! Certificate checks for the engine: RFC 8446 §4.4.2 (Certificate), §4.4.2.2
//! (server certificate selection) and §4.4.2.4 (receiving a Certificate);
//! RFC 5280 §4.1, §4.2 and §6.1 (X.509 profile and path validation);
//! RFC 8410 §3–§4 (Ed25519 in X.509); RFC 6125 §6.4 (matching host names).
//!
//! tlschat signs with Ed25519 only, so every certificate on a path must carry
//! an Ed25519 key and an Ed25519 signature; anything else is refused with
//! [`CertError::UnsupportedAlgorithm`] rather than half-checked. DER is parsed
//! by `x509-parser`; every signature is checked here with
//! [`ed25519_verify`](crate::tls::crypto::ed25519_verify) over the exact TBSCertificate bytes that were signed.
//!
//! The engine has no clock, so every check takes `now` in unix seconds.
//!
//! Path building follows the peer's chain loosely, as RFC 8446 §4.4.2 allows:
//! `chain[0]` is the leaf, the rest is a bag of candidate intermediates in
//! which issuers are found by subject name and then proved by signature.
//! Search is bounded (path length, chain length and a signature-check budget)
//! so a hostile chain cannot make the check slow.
//!
//! Layout: `names.rs`, server names and how a certificate's names match
//! them; `fingerprint.rs`, the one way a key is fingerprinted; `x509.rs`,
//! one parsed certificate and its checks; `path.rs`, trust anchors and the
//! path search from a leaf to one of them.

mod fingerprint;
mod names;
mod path;
#[cfg(test)]
mod tests;
mod x509;

pub use fingerprint::Fingerprint;
pub use names::ServerName;
pub(crate) use names::is_dns_name;
pub(crate) use path::certificates_from_pem;
pub use path::{RootStore, parse_leaf, verify_client_chain, verify_server_chain};

/// Most certificates on one path, counting the leaf and the trust anchor.
const MAX_PATH_LEN: usize = 5;

/// Most certificates a peer may send. Real chains here are two long (leaf and
/// room CA); the limit keeps path search small.
const MAX_CHAIN_LEN: usize = 10;

/// Most signature checks one path search may spend. Honest chains need one
/// per link; a chain of look-alike CAs could otherwise make the search try
/// every ordering of them.
const MAX_SIGNATURE_CHECKS: u32 = 64;

// ---------------------------------------------------------------------------
// Errors

/// Why a certificate or chain was refused. Each message is one line that
/// tells the user what is wrong with the certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The Certificate message carried no certificate.
    #[error("the peer sent no certificate")]
    Empty,
    /// A certificate (counted from 0, leaf first) is not well-formed DER X.509.
    #[error("certificate {index} is not valid X.509 DER")]
    BadEncoding {
        /// Position in the chain (or PEM block number).
        index: usize,
    },
    /// A key or signature algorithm other than Ed25519.
    #[error("{what} is not supported: tlschat accepts only Ed25519 certificates")]
    UnsupportedAlgorithm {
        /// Which algorithm, and on which certificate.
        what: String,
    },
    /// A signature on the path does not verify with its issuer's key.
    #[error("the signature on {subject} does not verify")]
    BadSignature {
        /// The certificate whose signature failed.
        subject: String,
    },
    /// The chain leads to no trusted CA.
    #[error("the certificate is issued by {issuer}, which is not a trusted CA")]
    UnknownIssuer {
        /// The issuer name the path search stopped at.
        issuer: String,
    },
    /// `now` is after the certificate's notAfter.
    #[error("the certificate for {subject} expired on {not_after}")]
    Expired {
        /// The expired certificate.
        subject: String,
        /// Its notAfter, as a UTC date.
        not_after: String,
    },
    /// `now` is before the certificate's notBefore.
    #[error(
        "the certificate for {subject} is not valid until {not_before} (is this computer's clock right?)"
    )]
    NotYetValid {
        /// The certificate that is not valid yet.
        subject: String,
        /// Its notBefore, as a UTC date.
        not_before: String,
    },
    /// The server certificate is not for the name that was connected to.
    #[error("{}", name_mismatch_message(.expected, .names))]
    NameMismatch {
        /// The name connected to.
        expected: String,
        /// The names the certificate is for (its subjectAltNames).
        names: Vec<String>,
    },
    /// A certificate that signed another one is not a CA.
    #[error("{subject} signed a certificate but is not a CA (it lacks basicConstraints CA:TRUE)")]
    NotCa {
        /// The would-be issuer.
        subject: String,
    },
    /// A certificate's key usage, extended key usage or other constraint
    /// forbids the use it is put to.
    #[error("{subject} may not be used here: {why}")]
    BadUsage {
        /// The certificate.
        subject: String,
        /// Which constraint, in words.
        why: String,
    },
    /// The path would be longer than five certificates, the peer sent more
    /// than ten, or the search ran out of budget.
    #[error(
        "the certificate chain is too long or too tangled to check (at most {MAX_PATH_LEN} certificates from leaf to CA)"
    )]
    ChainTooLong,
    /// A server name that is neither a host name nor an IP address.
    #[error("{name:?} is not a valid host name or IP address")]
    BadName {
        /// The text given.
        name: String,
    },
    /// PEM text with no `CERTIFICATE` block in it.
    #[error("no CERTIFICATE block was found in the PEM text")]
    NoCertificates,
}

fn name_mismatch_message(expected: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("the certificate names no host (it has no subjectAltName), so it is not for {expected}")
    } else {
        format!("the certificate is for {}, not {expected}", names.join(", "))
    }
}

// ---------------------------------------------------------------------------
// Summaries

/// What the engine reports about an accepted (or pinned) certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject distinguished name, e.g. `CN=localhost`.
    pub subject: String,
    /// Issuer distinguished name.
    pub(crate) issuer: String,
    /// notBefore, unix seconds.
    pub(crate) not_before: i64,
    /// notAfter, unix seconds.
    pub(crate) not_after: i64,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    /// BLAKE3 of the SubjectPublicKeyInfo.
    pub fingerprint: Fingerprint,
    /// Subject alternative names as text: DNS names and IP addresses as
    /// written, other kinds prefixed (`email:`, `uri:`).
    pub names: Vec<String>,
}
