//! Making keys and certificates: a room's CA, the server and client
//! certificates it issues, self-signed user identities, and loading
//! certificate/key files.
//!
//! This lives outside the engine: it runs when a room is set up or a user
//! creates an identity, never during a handshake. Certificates are built by
//! `rcgen` (RFC 5280) and signed with our own [`Ed25519Key`] through the
//! [`rcgen::SigningKey`] trait, so no second crypto library is linked
//! (RFC 8410 §3 fixes the algorithm identifier: id-Ed25519, no parameters).
//! Randomness (keys, serial numbers) comes from an injected [`Rng`] and time is
//! passed in, so a seeded generator and a fixed `now` give identical DER.
//!
//! The profiles follow what OpenSSL, rustls/webpki and tlschat's own
//! `verify_server_chain` expect:
//!
//! | certificate | basicConstraints | keyUsage | extKeyUsage | SAN | lifetime |
//! | --- | --- | --- | --- | --- | --- |
//! | room CA | CA:TRUE (critical) | keyCertSign, cRLSign (critical) | — | — | 10 years |
//! | server | CA:FALSE | digitalSignature | serverAuth | DNS / IP | 825 days |
//! | client | CA:FALSE | digitalSignature | clientAuth | — | 825 days |
//! | self-signed client | CA:FALSE | digitalSignature | clientAuth | — | 10 years |
//!
//! Every certificate starts one hour before `now`, so a peer whose clock is a
//! little behind still accepts it.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

use crate::tls::cert::{self, CertError, Fingerprint, ServerName};
use crate::tls::crypto::{Ed25519Key, KeyFormatError, Rng, ed25519_verify, sha256};

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;

/// How far before `now` certificates start, to absorb clock skew between peers.
const BACKDATE: u64 = HOUR;
/// Lifetime of a room CA and of a self-signed identity: ten years, leap days included.
const LONG_LIFETIME: u64 = 3653 * DAY;
/// Lifetime of an issued leaf: 825 days, the longest that Apple's TLS stack
/// and the former CA/Browser Forum rules accept, so browsers and curl on every
/// platform take it.
const LEAF_LIFETIME: u64 = 825 * DAY;

/// Why a key or certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen refused the parameters.
    #[error("could not build the certificate: {0}")]
    Build(#[from] rcgen::Error),
    /// A server certificate was asked for with no name.
    #[error("a server certificate needs at least one host name or IP address")]
    NoNames,
    /// A server name that is neither a host name nor an IP address.
    #[error("{name:?} cannot go in a certificate: use a host name (optionally *.domain) or an IP address")]
    BadName {
        /// The name given.
        name: String,
    },
    /// An empty common name for a CA or client certificate.
    #[error("the certificate's common name must not be empty")]
    EmptyCommonName,
    /// `now` cannot be written as a certificate date.
    #[error("the time {now} (unix seconds) cannot be written in a certificate")]
    BadTime {
        /// The time given.
        now: u64,
    },
    /// A certificate that was read is unusable.
    #[error("{0}")]
    Certificate(#[from] CertError),
    /// A private key file that is not an unencrypted PKCS#8 Ed25519 key.
    #[error("the private key is {0} (tlschat uses Ed25519 keys in unencrypted PKCS#8 PEM)")]
    Key(#[from] KeyFormatError),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// A stored CA whose subject name tlschat cannot write back byte for byte
    /// into the certificates it issues, which would then not chain to it.
    #[error(
        "the CA name {subject} cannot be reproduced exactly (only one UTF8String, PrintableString or IA5String attribute per name part, each type once, is supported)"
    )]
    UnsupportedCaName {
        /// The CA's subject.
        subject: String,
    },
    /// Writing PEM failed (only for absurdly large certificates).
    #[error("could not encode the certificate as PEM")]
    Pem,
}

/// A certificate chain and the private key of its leaf, ready to serve.
#[derive(Clone)]
pub struct CertifiedKey {
    /// The leaf's private key.
    pub key: Ed25519Key,
    /// The chain in DER, leaf first, as sent in a TLS Certificate message.
    pub chain_der: Vec<Vec<u8>>,
    /// The same chain as PEM, leaf first, as written to a certificate file.
    pub chain_pem: String,
}

impl CertifiedKey {
    fn new(key: Ed25519Key, chain_der: Vec<Vec<u8>>) -> Result<Self, PkiError> {
        let chain_pem = chain_der.iter().map(|der| certificate_pem(der)).collect::<Result<String, _>>()?;
        Ok(Self { key, chain_der, chain_pem })
    }

    /// The fingerprint of the leaf's key, as peers pin it.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_ed25519(&self.key.public_key())
    }
}

impl fmt::Debug for CertifiedKey {
    /// The key prints only its public half (see [`Ed25519Key`]); the chain is
    /// summarised rather than dumped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("key", &self.key)
            .field("certificates", &self.chain_der.len())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// A room's certificate authority: issues the room's server certificate and
/// its members' client certificates.
#[derive(Clone)]
pub struct RoomCa {
    /// The CA's private key.
    pub(crate) key: Ed25519Key,
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// The CA certificate, PEM: what members put in their trust store.
    pub cert_pem: String,
    /// The subject name and key identifier that rcgen writes into each issued
    /// certificate's issuer and authorityKeyIdentifier fields.
    issuer: CertificateParams,
}

impl RoomCa {
    /// A new CA named `common_name` with a fresh key: CA:TRUE and keyUsage
    /// keyCertSign + cRLSign, both critical; valid from an hour before `now`
    /// for ten years; serial number from `rng`.
    pub fn generate(common_name: &str, rng: &mut dyn Rng, now: u64) -> Result<Self, PkiError> {
        let key = Ed25519Key::generate(rng);
        let mut params = base_params(common_name, &key, rng)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, now, LONG_LIFETIME)?;
        let cert = params.self_signed(&RcgenKey::new(&key))?;
        let cert_der = cert.der().to_vec();
        let cert_pem = certificate_pem(&cert_der)?;
        Ok(Self { key, cert_der, cert_pem, issuer: params })
    }

    /// Reloads a CA saved as a certificate PEM and a PKCS#8 key PEM. The
    /// certificate (the first `CERTIFICATE` block) must be an Ed25519 CA that
    /// the key belongs to.
    pub(crate) fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_der =
            cert::certificates_from_pem(cert_pem)?.into_iter().next().ok_or(CertError::NoCertificates)?;
        // The same rules as for a trust anchor: members will use it as one.
        cert::RootStore::new().add_der(&cert_der)?;
        let key = Ed25519Key::from_pkcs8_pem(key_pem)?;
        if cert::parse_leaf(&cert_der)?.public_key != key.public_key() {
            return Err(PkiError::KeyMismatch);
        }

        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| CertError::BadEncoding { index: 0 })?;
        let mut issuer = CertificateParams::default();
        issuer.distinguished_name = distinguished_name(x509.subject())?;
        // Keep the CA's own subjectKeyIdentifier so that authorityKeyIdentifier
        // in what it issues matches it, whoever made the CA.
        let ski = x509.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
        issuer.key_identifier_method = KeyIdMethod::PreSpecified(ski.unwrap_or_else(|| key_identifier(&key)));
        issuer.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];

        let cert_pem = certificate_pem(&cert_der)?;
        Ok(Self { key, cert_der, cert_pem, issuer })
    }

    /// The fingerprint of the CA's key.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_ed25519(&self.key.public_key())
    }

    /// A server certificate for `key`. Each name becomes an iPAddress SAN if it
    /// is an IP address (`[::1]` allowed) and a dNSName SAN otherwise (a
    /// leading `*.` label is allowed); the first name is also the common
    /// name. CA:FALSE, digitalSignature, serverAuth; valid from an hour before
    /// `now` for 825 days. The chain is `[leaf, CA]`.
    pub fn issue_server(
        &self,
        key: Ed25519Key,
        names: &[String],
        rng: &mut dyn Rng,
        now: u64,
    ) -> Result<CertifiedKey, PkiError> {
        let sans = names.iter().map(|n| san(n)).collect::<Result<Vec<_>, _>>()?;
        // The CN repeats the first name, normalised as in its SAN, for the
        // tools that still display it.
        let common_name = match sans.first() {
            Some(SanType::IpAddress(ip)) => ip.to_string(),
            Some(SanType::DnsName(dns)) => dns.as_str().to_owned(),
            _ => return Err(PkiError::NoNames),
        };
        let mut params =
            leaf_params(&common_name, &key, rng, now, LEAF_LIFETIME, ExtendedKeyUsagePurpose::ServerAuth)?;
        params.subject_alt_names = sans;
        self.issue(params, key)
    }

    /// A client certificate for `key` named `common_name`: CA:FALSE,
    /// digitalSignature, clientAuth, no SAN (a client names no host); valid
    /// from an hour before `now` for 825 days. The chain is `[leaf, CA]`.
    pub fn issue_client(
        &self,
        key: Ed25519Key,
        common_name: &str,
        rng: &mut dyn Rng,
        now: u64,
    ) -> Result<CertifiedKey, PkiError> {
        let params =
            leaf_params(common_name, &key, rng, now, LEAF_LIFETIME, ExtendedKeyUsagePurpose::ClientAuth)?;
        self.issue(params, key)
    }

    fn issue(&self, mut params: CertificateParams, key: Ed25519Key) -> Result<CertifiedKey, PkiError> {
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::new(self.issuer.clone(), RcgenKey::new(&self.key));
        let der = params.signed_by(&RcgenKey::new(&key), &issuer)?.der().to_vec();
        self.check_issued(&der)?;
        CertifiedKey::new(key, vec![der, self.cert_der.clone()])
    }

    /// Checks that a certificate just issued names this CA byte for byte and
    /// carries its signature. rcgen rebuilds the issuer name from parsed
    /// parts; if a reloaded CA's name did not survive that, the certificate
    /// would never chain, and it is better to fail here than at every peer.
    fn check_issued(&self, der: &[u8]) -> Result<(), PkiError> {
        let (_, ca) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|_| CertError::BadEncoding { index: 1 })?;
        let (_, leaf) =
            x509_parser::parse_x509_certificate(der).map_err(|_| CertError::BadEncoding { index: 0 })?;
        let signed =
            ed25519_verify(&self.key.public_key(), leaf.tbs_certificate.as_ref(), &leaf.signature_value.data);
        if leaf.issuer().as_raw() == ca.subject().as_raw() && signed {
            Ok(())
        } else {
            Err(PkiError::UnsupportedCaName { subject: ca.subject().to_string() })
        }
    }
}

impl fmt::Debug for RoomCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomCa").field("key", &self.key).field("fingerprint", &self.fingerprint()).finish()
    }
}

/// A user's identity certificate when no CA is involved: self-signed, named
/// `common_name`, CA:FALSE, digitalSignature, clientAuth, valid from an hour
/// before `now` for ten years (the key, not the certificate, is what peers pin).
pub fn self_signed_client(
    key: Ed25519Key,
    common_name: &str,
    rng: &mut dyn Rng,
    now: u64,
) -> Result<CertifiedKey, PkiError> {
    let params =
        leaf_params(common_name, &key, rng, now, LONG_LIFETIME, ExtendedKeyUsagePurpose::ClientAuth)?;
    let der = params.self_signed(&RcgenKey::new(&key))?.der().to_vec();
    CertifiedKey::new(key, vec![der])
}

/// Loads a certificate chain (PEM, leaf first, as OpenSSL writes it; blocks
/// other than `CERTIFICATE` are skipped) and the leaf's PKCS#8 private key.
/// The leaf must carry an Ed25519 key, and the private key must be its own.
/// Trust is not decided here: that is the peer's job.
pub(crate) fn load_certified_key(chain_pem: &str, key_pem: &str) -> Result<CertifiedKey, PkiError> {
    let chain_der = cert::certificates_from_pem(chain_pem)?;
    let leaf = chain_der.first().ok_or(CertError::NoCertificates)?;
    let public_key = cert::parse_leaf(leaf)?.public_key;
    let key = Ed25519Key::from_pkcs8_pem(key_pem)?;
    if public_key != key.public_key() {
        return Err(PkiError::KeyMismatch);
    }
    CertifiedKey::new(key, chain_der)
}

/// A CA for "tlschat test CA" and a server certificate from it for
/// `localhost`, `127.0.0.1` and `::1`, both drawn from a seeded generator:
/// the same `seed` and `now` always give the same bytes. For tests only
/// (the crate's, and with the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub fn test_room_for_testing_only(seed: u64, now: u64) -> Result<(RoomCa, CertifiedKey), PkiError> {
    let mut rng = crate::tls::crypto::SeededRng::new_for_testing_only(seed);
    let ca = RoomCa::generate("tlschat test CA", &mut rng, now)?;
    let key = Ed25519Key::generate(&mut rng);
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    let server = ca.issue_server(key, &names, &mut rng, now)?;
    Ok((ca, server))
}

// ---------------------------------------------------------------------------
// rcgen glue

/// Our Ed25519 key as rcgen sees it: for Ed25519, rcgen's "public key DER" is
/// the raw 32-byte key (RFC 8410 §4 puts it directly in the BIT STRING).
pub(crate) struct RcgenKey<'k> {
    key: &'k Ed25519Key,
    public: [u8; 32],
}

impl<'k> RcgenKey<'k> {
    pub(crate) fn new(key: &'k Ed25519Key) -> Self {
        Self { key, public: key.public_key() }
    }
}

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// Parameters every tlschat certificate shares: the subject CN, a random
/// serial and the subjectKeyIdentifier. Without rcgen's `crypto` feature
/// neither a serial nor a key identifier is derived for us.
pub(crate) fn base_params(
    common_name: &str,
    key: &Ed25519Key,
    rng: &mut dyn Rng,
) -> Result<CertificateParams, PkiError> {
    if common_name.is_empty() {
        return Err(PkiError::EmptyCommonName);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.serial_number = Some(random_serial(rng));
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key));
    Ok(params)
}

/// An end-entity profile: CA:FALSE, digitalSignature, one extended key usage.
fn leaf_params(
    common_name: &str,
    key: &Ed25519Key,
    rng: &mut dyn Rng,
    now: u64,
    lifetime: u64,
    purpose: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = base_params(common_name, key, rng)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    set_validity(&mut params, now, lifetime)?;
    Ok(params)
}

/// Valid from [`BACKDATE`] before `now` until `lifetime` after it.
pub(crate) fn set_validity(params: &mut CertificateParams, now: u64, lifetime: u64) -> Result<(), PkiError> {
    let date = |secs: Option<u64>| {
        secs.and_then(|s| i64::try_from(s).ok())
            .and_then(|s| ASN1Time::from_timestamp(s).ok())
            .map(|t| t.to_datetime())
            .ok_or(PkiError::BadTime { now })
    };
    params.not_before = date(Some(now.saturating_sub(BACKDATE)))?;
    params.not_after = date(now.checked_add(lifetime))?;
    Ok(())
}

/// 16 random bytes, made positive and non-zero with a fixed length
/// (RFC 5280 §4.1.2.2: a positive integer of at most 20 octets).
fn random_serial(rng: &mut dyn Rng) -> SerialNumber {
    let mut serial = [0u8; 16];
    rng.fill(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&serial)
}

/// RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey bits.
fn key_identifier(key: &Ed25519Key) -> Vec<u8> {
    sha256(&key.public_key()).iter().take(20).copied().collect()
}

/// The SAN for one server name; see [`RoomCa::issue_server`].
fn san(name: &str) -> Result<SanType, PkiError> {
    let bad = || PkiError::BadName { name: name.to_owned() };
    let (wildcard, host) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    match ServerName::parse(host).map_err(|_| bad())? {
        ServerName::Ip(ip) if !wildcard => Ok(SanType::IpAddress(ip)),
        // `*.com` would be refused by every verifier, tlschat's included.
        ServerName::Dns(dns) if !wildcard || dns.contains('.') => {
            let dns = if wildcard { format!("*.{dns}") } else { dns };
            Ok(SanType::DnsName(dns.try_into().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// A parsed name as rcgen's [`DistinguishedName`], refusing what rcgen would
/// re-encode differently: multi-valued parts, a repeated attribute type
/// (rcgen keeps one value per type) and string types other than UTF8String,
/// PrintableString and IA5String.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, PkiError> {
    let unsupported = || PkiError::UnsupportedCaName { subject: name.to_string() };
    let mut dn = DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in name.iter_rdn() {
        let mut attributes = rdn.iter();
        let (Some(attribute), None) = (attributes.next(), attributes.next()) else {
            return Err(unsupported());
        };
        let oid: Vec<u64> = attribute.attr_type().iter().ok_or_else(unsupported)?.collect();
        let ty = DnType::from_oid(&oid);
        if seen.contains(&ty) {
            return Err(unsupported());
        }
        let text = attribute.as_str().map_err(|_| unsupported())?.to_owned();
        let value = match attribute.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text),
            Tag::PrintableString => DnValue::PrintableString(text.try_into().map_err(|_| unsupported())?),
            Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|_| unsupported())?),
            _ => return Err(unsupported()),
        };
        seen.push(ty.clone());
        dn.push(ty, value);
    }
    Ok(dn)
}

/// One certificate as PEM with LF line endings on every platform, so files
/// and tests do not depend on where they were written. (The PEM encoder of
/// the `der` crate comes in through ed25519-dalek's PKCS#8 support.)
fn certificate_pem(der: &[u8]) -> Result<String, PkiError> {
    use ed25519_dalek::pkcs8::spki::der::pem::{LineEnding, encode_string};
    encode_string("CERTIFICATE", LineEnding::LF, der).map_err(|_| PkiError::Pem)
}

impl From<CertifiedKey> for crate::tls::CertifiedKey {
    /// What the engine needs to serve the chain: the DER certificates and the key.
    fn from(ck: CertifiedKey) -> Self {
        Self { chain: ck.chain_der, key: ck.key }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::tls::cert::{RootStore, verify_client_chain, verify_server_chain};
    use crate::tls::crypto::{SeededRng, hex};

    /// 2025-06-15 15:06:40 UTC, for tests that do not involve OpenSSL.
    const NOW: u64 = 1_750_000_000;

    /// OpenSSL checks validity against the real clock, so certificates handed
    /// to it are made "now".
    fn wall_clock() -> u64 {
        crate::clock::unix_now()
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("tlschat-pki-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, contents: &str) -> &Self {
            std::fs::write(self.0.join(name), contents).unwrap();
            self
        }

        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.0.join(name)).unwrap()
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `openssl args...` in `dir` and returns stdout; fails the test
    /// with OpenSSL's own words if it exits non-zero.
    fn openssl(dir: &TempDir, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("the openssl binary is needed for these tests");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "openssl {} failed:\n{stdout}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn localhost_names() -> Vec<String> {
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
    }

    #[test]
    fn generated_ca_and_server_certificate_pass_openssl_verify() {
        let now = wall_clock();
        let mut rng = SeededRng::new_for_testing_only(1);
        let ca = RoomCa::generate("tlschat room CA", &mut rng, now).unwrap();
        let server =
            ca.issue_server(Ed25519Key::generate(&mut rng), &localhost_names(), &mut rng, now).unwrap();
        let leaf_pem = certificate_pem(&server.chain_der[0]).unwrap();
        let dir = TempDir::new("verify-server");
        dir.write("ca.pem", &ca.cert_pem).write("server.pem", &leaf_pem);
        let out = openssl(
            &dir,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                "sslserver",
                "-verify_hostname",
                "localhost",
                "-CAfile",
                "ca.pem",
                "server.pem",
            ],
        );
        assert_eq!(out.trim(), "server.pem: OK");
        openssl(
            &dir,
            &["verify", "-x509_strict", "-verify_ip", "127.0.0.1", "-CAfile", "ca.pem", "server.pem"],
        );
        openssl(&dir, &["verify", "-x509_strict", "-verify_ip", "::1", "-CAfile", "ca.pem", "server.pem"]);
    }

    #[test]
    fn openssl_refuses_a_server_certificate_from_another_ca() {
        // The check above must be able to fail.
        let now = wall_clock();
        let mut rng = SeededRng::new_for_testing_only(2);
        let ca = RoomCa::generate("tlschat room CA", &mut rng, now).unwrap();
        let other = RoomCa::generate("tlschat room CA", &mut rng, now).unwrap();
        let server =
            other.issue_server(Ed25519Key::generate(&mut rng), &localhost_names(), &mut rng, now).unwrap();
        let dir = TempDir::new("verify-other");
        dir.write("ca.pem", &ca.cert_pem)
            .write("server.pem", &certificate_pem(&server.chain_der[0]).unwrap());
        let status = Command::new("openssl")
            .args(["verify", "-CAfile", "ca.pem", "server.pem"])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status;
        assert!(!status.success());
    }

    #[test]
    fn generated_client_certificate_passes_openssl_verify_for_client_use() {
        let now = wall_clock();
        let mut rng = SeededRng::new_for_testing_only(3);
        let ca = RoomCa::generate("tlschat room CA", &mut rng, now).unwrap();
        let alice = ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, now).unwrap();
        let dir = TempDir::new("verify-client");
        dir.write("ca.pem", &ca.cert_pem).write("alice.pem", &certificate_pem(&alice.chain_der[0]).unwrap());
        openssl(&dir, &["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", "ca.pem", "alice.pem"]);
    }

    #[test]
    fn openssl_shows_the_sans_and_the_ca_constraints() {
        let (ca, server) = test_room_for_testing_only(4, NOW).unwrap();
        let dir = TempDir::new("text");
        dir.write("ca.pem", &ca.cert_pem).write("server.pem", &server.chain_pem);
        let text = openssl(&dir, &["x509", "-noout", "-text", "-in", "server.pem"]);
        assert!(text.contains("DNS:localhost"), "{text}");
        assert!(text.contains("IP Address:127.0.0.1"), "{text}");
        assert!(text.contains("IP Address:0:0:0:0:0:0:0:1"), "{text}");
        assert!(text.contains("Subject: CN = localhost"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains("Signature Algorithm: ED25519"), "{text}");
        assert!(text.contains("CA:FALSE"), "{text}");

        let text = openssl(&dir, &["x509", "-noout", "-text", "-in", "ca.pem"]);
        assert!(text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"), "{text}");
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            "{text}"
        );
        assert!(text.contains("Subject: CN = tlschat test CA"), "{text}");
    }

    #[test]
    fn key_pem_round_trips_through_openssl_and_back() {
        let mut rng = SeededRng::new_for_testing_only(5);
        let key = Ed25519Key::generate(&mut rng);
        let dir = TempDir::new("key");
        dir.write("key.pem", &key.to_pkcs8_pem());
        let readable = Command::new("openssl")
            .args(["pkey", "-in", "key.pem", "-noout"])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            readable,
            "OpenSSL cannot read the key file Ed25519Key::to_pkcs8_pem wrote: it is PKCS#8 v2 \
             (RFC 5958, public key included), which OpenSSL 3.0 rejects; write v1 (RFC 8410 §7)"
        );
        // OpenSSL rewrites the key in its own PKCS#8 form; we read that back.
        openssl(&dir, &["pkey", "-in", "key.pem", "-out", "again.pem"]);
        let again = Ed25519Key::from_pkcs8_pem(&dir.read("again.pem")).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(Ed25519Key::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap().public_key(), key.public_key());
    }

    #[test]
    fn load_certified_key_round_trips() {
        let (_, server) = test_room_for_testing_only(6, NOW).unwrap();
        let loaded = load_certified_key(&server.chain_pem, &server.key.to_pkcs8_pem()).unwrap();
        assert_eq!(loaded.chain_der, server.chain_der);
        assert_eq!(loaded.chain_pem, server.chain_pem);
        assert_eq!(loaded.key.public_key(), server.key.public_key());
    }

    #[test]
    fn load_certified_key_refuses_a_foreign_key_a_bad_key_and_no_certificate() {
        let (ca, server) = test_room_for_testing_only(7, NOW).unwrap();
        let foreign = ca.key.to_pkcs8_pem();
        assert!(matches!(load_certified_key(&server.chain_pem, &foreign), Err(PkiError::KeyMismatch)));
        assert!(matches!(load_certified_key(&server.chain_pem, "not a key"), Err(PkiError::Key(_))));
        assert!(matches!(
            load_certified_key(&server.key.to_pkcs8_pem(), &server.key.to_pkcs8_pem()),
            Err(PkiError::Certificate(CertError::NoCertificates))
        ));
    }

    #[test]
    fn certificate_and_key_made_by_openssl_load_and_verify() {
        let dir = TempDir::new("openssl-made");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ed25519",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-addext",
                "extendedKeyUsage=clientAuth",
            ],
        );
        let loaded = load_certified_key(&dir.read("cert.pem"), &dir.read("key.pem")).unwrap();
        assert_eq!(loaded.chain_der.len(), 1);
        let summary = crate::tls::cert::parse_leaf(&loaded.chain_der[0]).unwrap();
        assert_eq!(summary.names, ["localhost"]);
        assert_eq!(summary.fingerprint, loaded.fingerprint());
    }

    #[test]
    fn deterministic_with_seeded_rng() {
        let (ca1, server1) = test_room_for_testing_only(8, NOW).unwrap();
        let (ca2, server2) = test_room_for_testing_only(8, NOW).unwrap();
        assert_eq!(ca1.cert_der, ca2.cert_der);
        assert_eq!(server1.chain_der, server2.chain_der);
        assert_eq!(server1.key.public_key(), server2.key.public_key());

        let (ca3, server3) = test_room_for_testing_only(9, NOW).unwrap();
        assert_ne!(ca1.cert_der, ca3.cert_der);
        assert_ne!(server1.chain_der, server3.chain_der);
        let (ca4, _) = test_room_for_testing_only(8, NOW + 1).unwrap();
        assert_ne!(ca1.cert_der, ca4.cert_der, "the time is in the certificate");
    }

    #[test]
    fn validity_serial_and_key_identifiers_follow_the_profile() {
        let (ca, server) = test_room_for_testing_only(10, NOW).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&server.chain_der[0]).unwrap();
        let now = NOW as i64;
        assert_eq!(ca_cert.validity().not_before.timestamp(), now - 3600);
        assert_eq!(ca_cert.validity().not_after.timestamp(), now + 3653 * 86_400);
        assert_eq!(leaf.validity().not_before.timestamp(), now - 3600);
        assert_eq!(leaf.validity().not_after.timestamp(), now + 825 * 86_400);
        for cert in [&ca_cert, &leaf] {
            let serial = cert.raw_serial();
            assert_eq!(serial.len(), 16);
            assert_eq!(serial[0] & 0xc0, 0x40, "positive, no leading zero");
        }
        assert_ne!(ca_cert.raw_serial(), leaf.raw_serial());

        let ski = |c: &x509_parser::certificate::X509Certificate<'_>| {
            c.extensions().iter().find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
        };
        let aki = leaf.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        });
        assert_eq!(ski(&ca_cert), Some(key_identifier(&ca.key)));
        assert_eq!(ski(&leaf), Some(key_identifier(&server.key)));
        assert_eq!(aki, ski(&ca_cert));
        assert_eq!(key_identifier(&ca.key).len(), 20);
    }

    #[test]
    fn room_ca_reloads_from_pem_and_keeps_issuing_chaining_certificates() {
        let (ca, _) = test_room_for_testing_only(11, NOW).unwrap();
        let reloaded = RoomCa::from_pem(&ca.cert_pem, &ca.key.to_pkcs8_pem()).unwrap();
        assert_eq!(reloaded.cert_der, ca.cert_der);
        assert_eq!(reloaded.fingerprint(), ca.fingerprint());
        let mut rng = SeededRng::new_for_testing_only(12);
        let names = ["localhost".to_owned()];
        let server = reloaded.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
        let mut roots = RootStore::new();
        roots.add_der(&ca.cert_der).unwrap();
        let name = crate::tls::cert::ServerName::parse("localhost").unwrap();
        verify_server_chain(&server.chain_der, &roots, &name, NOW).unwrap();

        // The same parameters and randomness give the same certificate as
        // the CA before it was saved.
        let mut rng_a = SeededRng::new_for_testing_only(13);
        let mut rng_b = SeededRng::new_for_testing_only(13);
        let key = Ed25519Key::from_seed(&[7; 32]);
        let a = ca.issue_client(key.clone(), "bob", &mut rng_a, NOW).unwrap();
        let b = reloaded.issue_client(key, "bob", &mut rng_b, NOW).unwrap();
        assert_eq!(a.chain_der, b.chain_der);
    }

    #[test]
    fn room_ca_from_pem_refuses_a_foreign_key_and_a_non_ca() {
        let (ca, server) = test_room_for_testing_only(14, NOW).unwrap();
        assert!(matches!(
            RoomCa::from_pem(&ca.cert_pem, &server.key.to_pkcs8_pem()),
            Err(PkiError::KeyMismatch)
        ));
        assert!(matches!(
            RoomCa::from_pem(&server.chain_pem, &server.key.to_pkcs8_pem()),
            Err(PkiError::Certificate(CertError::NotCa { .. }))
        ));
    }

    #[test]
    fn ca_made_by_openssl_with_a_multi_part_name_can_issue() {
        let dir = TempDir::new("openssl-ca");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ed25519",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/C=DE/O=Example Org/CN=Example CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        // The clock read after openssl made the CA: its notBefore is the
        // second it was made, which a clock read before could precede.
        let now = wall_clock();
        let ca = RoomCa::from_pem(&dir.read("ca.pem"), &dir.read("ca.key")).unwrap();
        let mut rng = SeededRng::new_for_testing_only(15);
        let server =
            ca.issue_server(Ed25519Key::generate(&mut rng), &localhost_names(), &mut rng, now).unwrap();
        dir.write("server.pem", &certificate_pem(&server.chain_der[0]).unwrap());
        openssl(
            &dir,
            &["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "ca.pem", "server.pem"],
        );
        let roots = RootStore::from_pem(&dir.read("ca.pem")).unwrap();
        let name = crate::tls::cert::ServerName::parse("127.0.0.1").unwrap();
        let summary = verify_server_chain(&server.chain_der, &roots, &name, now).unwrap();
        assert_eq!(summary.issuer, "C=DE, O=Example Org, CN=Example CA");
    }

    #[test]
    fn self_signed_client_is_a_single_certificate_for_its_key() {
        let mut rng = SeededRng::new_for_testing_only(16);
        let alice = self_signed_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
        assert_eq!(alice.chain_der.len(), 1);
        let summary = crate::tls::cert::parse_leaf(&alice.chain_der[0]).unwrap();
        assert_eq!(summary.subject, "CN=alice");
        assert_eq!(summary.public_key, alice.key.public_key());
        assert_eq!(summary.not_after, NOW as i64 + 3653 * 86_400);
        // Only a trust decision is missing: with the certificate's own key
        // as issuer it is a well-formed client certificate.
        assert!(matches!(
            verify_client_chain(&alice.chain_der, &RootStore::new(), NOW),
            Err(CertError::UnknownIssuer { .. })
        ));
    }

    #[test]
    fn issue_server_turns_names_into_dns_and_ip_sans() {
        let (ca, _) = test_room_for_testing_only(17, NOW).unwrap();
        let mut rng = SeededRng::new_for_testing_only(18);
        let names = ["Chat.Example.com", "[::1]", "10.0.0.1", "*.lan.example"].map(String::from);
        let server = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
        let summary = crate::tls::cert::parse_leaf(&server.chain_der[0]).unwrap();
        assert_eq!(summary.names, ["chat.example.com", "::1", "10.0.0.1", "*.lan.example"]);
        assert_eq!(summary.subject, "CN=chat.example.com");
    }

    #[test]
    fn issue_server_refuses_bad_names_and_no_names() {
        let (ca, _) = test_room_for_testing_only(19, NOW).unwrap();
        let mut rng = SeededRng::new_for_testing_only(20);
        let key = Ed25519Key::generate(&mut rng);
        assert!(matches!(ca.issue_server(key.clone(), &[], &mut rng, NOW), Err(PkiError::NoNames)));
        for bad in ["", "a b", "*.com", "*.127.0.0.1", "a.*.example", "host:443", "é.example"] {
            let result = ca.issue_server(key.clone(), &[bad.to_owned()], &mut rng, NOW);
            assert!(matches!(&result, Err(PkiError::BadName { name }) if name == bad), "{bad:?}: {result:?}");
        }
        assert!(matches!(ca.issue_client(key.clone(), "", &mut rng, NOW), Err(PkiError::EmptyCommonName)));
        assert!(matches!(RoomCa::generate("x", &mut rng, u64::MAX), Err(PkiError::BadTime { .. })));
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let mut seed = [0u8; 32];
        SeededRng::new_for_testing_only(21).fill(&mut seed);
        let mut rng = SeededRng::new_for_testing_only(21);
        let key = Ed25519Key::generate(&mut rng);
        assert_eq!(key.public_key(), Ed25519Key::from_seed(&seed).public_key());
        let ca = RoomCa::generate("debug CA", &mut SeededRng::new_for_testing_only(22), NOW).unwrap();
        let names = ["localhost".to_owned()];
        let server = ca.issue_server(key, &names, &mut rng, NOW).unwrap();
        let pem = server.key.to_pkcs8_pem();
        let secret_body = pem.lines().nth(1).unwrap();
        for shown in [format!("{server:?}"), format!("{ca:?}"), format!("{server:#?}")] {
            assert!(!shown.contains(&hex(&seed)), "{shown}");
            assert!(!shown.contains(secret_body), "{shown}");
            assert!(shown.contains(&hex(&server.key.public_key())) || shown.contains("RoomCa"), "{shown}");
        }
    }

    #[test]
    fn error_messages_are_single_lines() {
        let errors = [
            PkiError::NoNames,
            PkiError::BadName { name: "a b".into() },
            PkiError::EmptyCommonName,
            PkiError::BadTime { now: u64::MAX },
            PkiError::Certificate(CertError::NoCertificates),
            PkiError::Key(KeyFormatError),
            PkiError::KeyMismatch,
            PkiError::UnsupportedCaName { subject: "CN=x".into() },
            PkiError::Pem,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
    }
}
