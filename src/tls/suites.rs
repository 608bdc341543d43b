//! The cipher suites tlschat speaks, as a closed set (RFC 8446 §B.4, §9.1).
//!
//! [`CipherSuite`] is the wire code, which may be anything a peer sends;
//! [`Suite`] is one of the suites the engine implements, and carries its
//! AEAD and its hash. A connection holds a `Suite` once one is agreed, so
//! every place that derives keys matches on it exhaustively: adding a suite
//! fails to compile until each of them says what it means there.

use super::messages::CipherSuite;

/// A cipher suite the engine implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// TLS_CHACHA20_POLY1305_SHA256 {0x13,0x03}: tlschat's preference.
    ChaCha20Poly1305Sha256,
    /// TLS_AES_128_GCM_SHA256 {0x13,0x01}: mandatory to implement (§9.1).
    Aes128GcmSha256,
}

/// The AEAD algorithm of a suite (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Aead {
    /// ChaCha20-Poly1305 (RFC 8439), 32-byte keys.
    ChaCha20Poly1305,
    /// AES-128-GCM (NIST SP 800-38D), 16-byte keys.
    Aes128Gcm,
}

/// The hash of a suite: the HKDF and transcript hash (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hash {
    /// SHA-256: 32-byte secrets and transcript hashes.
    Sha256,
}

impl Suite {
    /// Every suite the engine implements, in tlschat's order of preference.
    pub(crate) const ALL: [Self; 2] = [Self::ChaCha20Poly1305Sha256, Self::Aes128GcmSha256];

    /// The suite a wire code names, if the engine implements it.
    pub fn from_code(code: CipherSuite) -> Option<Self> {
        match code {
            CipherSuite::TLS_CHACHA20_POLY1305_SHA256 => Some(Self::ChaCha20Poly1305Sha256),
            CipherSuite::TLS_AES_128_GCM_SHA256 => Some(Self::Aes128GcmSha256),
            _ => None,
        }
    }

    /// The suite's wire code.
    pub(crate) const fn code(self) -> CipherSuite {
        match self {
            Self::ChaCha20Poly1305Sha256 => CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
            Self::Aes128GcmSha256 => CipherSuite::TLS_AES_128_GCM_SHA256,
        }
    }

    /// The suite's AEAD.
    pub(crate) fn aead(self) -> Aead {
        match self {
            Self::ChaCha20Poly1305Sha256 => Aead::ChaCha20Poly1305,
            Self::Aes128GcmSha256 => Aead::Aes128Gcm,
        }
    }

    /// The suite's hash.
    pub(crate) fn hash(self) -> Hash {
        match self {
            Self::ChaCha20Poly1305Sha256 | Self::Aes128GcmSha256 => Hash::Sha256,
        }
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.code().fmt(f)
    }
}

impl Aead {
    /// Length of the key (§7.3 `[sender]_write_key`).
    #[cfg(test)]
    pub(crate) fn key_len(self) -> usize {
        match self {
            Self::ChaCha20Poly1305 => 32,
            Self::Aes128Gcm => 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_suite_round_trips_through_its_code_and_others_are_not_suites() {
        for suite in Suite::ALL {
            assert_eq!(Suite::from_code(suite.code()), Some(suite));
        }
        assert_eq!(Suite::from_code(CipherSuite::TLS_AES_256_GCM_SHA384), None);
        assert_eq!(Suite::from_code(CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV), None);
        assert_eq!(Suite::Aes128GcmSha256.aead().key_len(), 16);
        assert_eq!(Suite::ChaCha20Poly1305Sha256.to_string(), "TLS_CHACHA20_POLY1305_SHA256");
    }
}
