//! Errors of the engine and the alert each one sends (RFC 8446 §6, §6.2).
//!
//! Every failure is an [`Error`]; [`Error::alert`] names the alert §6 asks
//! for, which the connection sends before it closes. Messages are one line
//! a user can act on and never contain secret values.

use super::cert::CertError;
use super::codec::{InvalidMessage, TooLong};
use super::messages::{AlertDescription, HelloError};

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message or record did not parse (decode_error).
    #[error("{0}")]
    Decode(InvalidMessage),
    /// A field held a value the RFC forbids there (illegal_parameter).
    #[error("illegal parameter: {0}")]
    IllegalParameter(&'static str),
    /// A message arrived that is not allowed in the current state (unexpected_message).
    #[error("unexpected message: {0}")]
    UnexpectedMessage(String),
    /// A protected record failed authentication (bad_record_mac).
    #[error("a record failed authentication (bad_record_mac): altered, replayed or out of order")]
    BadRecordMac,
    /// A record was longer than §5.1/§5.2 allow (record_overflow).
    #[error("record too long: {0} bytes")]
    RecordOverflow(usize),
    /// The peers have no suite, group or signature scheme in common (handshake_failure).
    #[error("no common parameters: {0}")]
    HandshakeFailure(&'static str),
    /// The peer does not speak TLS 1.3 (protocol_version).
    #[error("the peer does not offer TLS 1.3")]
    ProtocolVersion,
    /// A required extension is absent (missing_extension).
    #[error("missing extension: {0}")]
    MissingExtension(&'static str),
    /// The peer answered with an extension we never offered (unsupported_extension).
    #[error("unsolicited extension: {0}")]
    UnsupportedExtension(String),
    /// Finished or CertificateVerify did not verify (decrypt_error).
    #[error("{0} did not verify (decrypt_error)")]
    DecryptError(&'static str),
    /// The peer's certificate was refused.
    #[error("certificate refused: {0}")]
    Certificate(CertError),
    /// The server's key is not the pinned one.
    #[error("the server's key fingerprint {got} does not match the expected {expected}")]
    FingerprintMismatch {
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint the server presented.
        got: String,
    },
    /// A client certificate is required and none was sent (certificate_required).
    #[error("the client sent no certificate, and one is required")]
    CertificateRequired,
    /// The server's policy refused a client whose key the handshake proved
    /// (access_denied); the reason is for the server's log.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The client offers only application protocols we do not speak.
    #[error("no application protocol in common")]
    NoApplicationProtocol,
    /// The peer sent a fatal alert.
    #[error("the peer sent alert {0}")]
    AlertReceived(AlertDescription),
    /// Something that cannot happen with a correct peer or our own config.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The connection is closed; nothing more can be sent.
    #[error("the connection is closed")]
    Closed,
}

impl Error {
    /// The alert to send for this error, if one is sent at all.
    pub fn alert(&self) -> Option<AlertDescription> {
        Some(match self {
            Self::Decode(_) => AlertDescription::DECODE_ERROR,
            Self::IllegalParameter(_) => AlertDescription::ILLEGAL_PARAMETER,
            Self::UnexpectedMessage(_) => AlertDescription::UNEXPECTED_MESSAGE,
            Self::BadRecordMac => AlertDescription::BAD_RECORD_MAC,
            Self::RecordOverflow(_) => AlertDescription::RECORD_OVERFLOW,
            Self::HandshakeFailure(_) => AlertDescription::HANDSHAKE_FAILURE,
            Self::ProtocolVersion => AlertDescription::PROTOCOL_VERSION,
            Self::MissingExtension(_) => AlertDescription::MISSING_EXTENSION,
            Self::UnsupportedExtension(_) => AlertDescription::UNSUPPORTED_EXTENSION,
            Self::DecryptError(_) => AlertDescription::DECRYPT_ERROR,
            Self::Certificate(e) => cert_alert(e),
            Self::FingerprintMismatch { .. } => AlertDescription::BAD_CERTIFICATE,
            Self::CertificateRequired => AlertDescription::CERTIFICATE_REQUIRED,
            Self::AccessDenied(_) => AlertDescription::ACCESS_DENIED,
            Self::NoApplicationProtocol => AlertDescription::NO_APPLICATION_PROTOCOL,
            Self::Internal(_) => AlertDescription::INTERNAL_ERROR,
            Self::AlertReceived(_) | Self::Closed => return None,
        })
    }

    /// An unexpected_message error naming what came and in which state.
    pub(crate) fn unexpected(got: impl std::fmt::Display, state: &str) -> Self {
        Self::UnexpectedMessage(format!("{got} while {state}"))
    }
}

/// A message of ours with a field longer than its length prefix allows (a
/// certificate chain over 2^24-1 bytes, an extension over 65,535): our own
/// configuration is at fault, so internal_error, and nothing is sent.
impl From<TooLong> for Error {
    fn from(_: TooLong) -> Self {
        Self::Internal("a message of ours has a field longer than its length prefix allows")
    }
}

/// The §6.2 alert for a refused certificate.
fn cert_alert(e: &CertError) -> AlertDescription {
    match e {
        CertError::Empty | CertError::BadEncoding { .. } => AlertDescription::DECODE_ERROR,
        CertError::UnsupportedAlgorithm { .. } => AlertDescription::UNSUPPORTED_CERTIFICATE,
        CertError::UnknownIssuer { .. } => AlertDescription::UNKNOWN_CA,
        CertError::Expired { .. } | CertError::NotYetValid { .. } => AlertDescription::CERTIFICATE_EXPIRED,
        _ => AlertDescription::BAD_CERTIFICATE,
    }
}

impl From<InvalidMessage> for Error {
    fn from(e: InvalidMessage) -> Self {
        Self::Decode(e)
    }
}

impl From<HelloError> for Error {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::Decode(e) => Self::Decode(e),
            HelloError::Illegal(why) => Self::IllegalParameter(why),
        }
    }
}

impl From<CertError> for Error {
    fn from(e: CertError) -> Self {
        Self::Certificate(e)
    }
}
