//! Certificate checks for the engine: RFC 8446 §4.4.2 (Certificate), §4.4.2.2
//! (server certificate selection) and §4.4.2.4 (receiving a Certificate);
//! RFC 5280 §4.1, §4.2 and §6.1 (X.509 profile and path validation);
//! RFC 8410 §3–§4 (Ed25519 in X.509); RFC 6125 §6.4 (matching host names).
//!
//! tlschat signs with Ed25519 only, so every certificate on a path must carry
//! an Ed25519 key and an Ed25519 signature; anything else is refused with
//! [`CertError::UnsupportedAlgorithm`] rather than half-checked. DER is parsed
//! by `x509-parser`; every signature is checked here with
//! [`ed25519_verify`] over the exact TBSCertificate bytes that were signed.
//!
//! The engine has no clock, so every check takes `now` in unix seconds.
//!
//! Path building follows the peer's chain loosely, as RFC 8446 §4.4.2 allows:
//! `chain[0]` is the leaf, the rest is a bag of candidate intermediates in
//! which issuers are found by subject name and then proved by signature.
//! Search is bounded (path length, chain length and a signature-check budget)
//! so a hostile chain cannot make the check slow.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry::{
    OID_SIG_ED25519, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::pem::Pem;
use x509_parser::time::ASN1Time;
use x509_parser::x509::AlgorithmIdentifier;

use super::crypto::{ed25519_verify, hex};

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
// Server names

/// The name a client connects to, as a server certificate must match it
/// (RFC 6125 §6.4): a DNS host name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerName {
    /// A DNS name, lower-cased, without a trailing dot.
    Dns(String),
    /// An IP address, matched only against IP address SANs.
    Ip(IpAddr),
}

impl ServerName {
    /// Reads a host name or IP address as typed by a user: IPv6 may be in
    /// brackets (`[::1]`), DNS names are lower-cased and lose one trailing
    /// dot. Internationalized names must be given in their `xn--` form.
    pub fn parse(s: &str) -> Result<Self, CertError> {
        let bad = || CertError::BadName { name: s.to_owned() };
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            return inner.parse::<Ipv6Addr>().map(|ip| Self::Ip(IpAddr::V6(ip))).map_err(|_| bad());
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if is_dns_name(&name) { Ok(Self::Dns(name)) } else { Err(bad()) }
    }
}

impl std::str::FromStr for ServerName {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A usable reference host name: 1–253 octets of non-empty labels of at most
/// 63 letters, digits, `-` or `_` (the underscore appears in real service
/// names, so it is allowed; `*` is not, wildcards belong in certificates).
pub(crate) fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether the DNS SAN `pattern` covers `name` (already lower-case).
///
/// RFC 6125 §6.4.3 as browsers apply it: a wildcard is allowed only as the
/// whole leftmost label, stands for exactly one non-empty label, and needs at
/// least two labels after it, so `*.com` matches nothing.
fn dns_name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            if suffix.contains('*') || !suffix.contains('.') {
                return false;
            }
            match name.split_once('.') {
                Some((first, rest)) => !first.is_empty() && rest.eq_ignore_ascii_case(suffix),
                None => false,
            }
        }
        None => !pattern.contains('*') && pattern.eq_ignore_ascii_case(name),
    }
}

/// The address in an iPAddress SAN (RFC 5280 §4.2.1.6: 4 or 16 octets).
fn san_ip(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Fingerprints

/// BLAKE3 of a certificate's SubjectPublicKeyInfo DER: names a key, whichever
/// certificate carries it, so a re-issued certificate keeps its fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(*blake3::hash(spki_der).as_bytes())
    }

    /// The fingerprint of an Ed25519 public key: that of the
    /// SubjectPublicKeyInfo any certificate for it carries (RFC 8410 §4:
    /// `SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING key }`).
    pub fn of_ed25519(public_key: &[u8; 32]) -> Self {
        const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        let mut spki = [0u8; 44];
        spki[..12].copy_from_slice(&PREFIX);
        spki[12..].copy_from_slice(public_key);
        Self::of_spki(&spki)
    }

    /// The form people compare aloud, and the one tlschat shows wherever a
    /// key is named in short (CLI, invite, status bar, panel): thirty
    /// decimal digits in six groups of five, `01234 56789 …`. As in
    /// Signal's safety numbers, each group is five bytes of the fingerprint
    /// read as a big-endian number, modulo 100 000; the six groups carry
    /// about 99.6 bits, too many to find a second key that matches them.
    pub fn short(&self) -> String {
        let groups: Vec<String> = self
            .0
            .chunks_exact(5)
            .take(6)
            .map(|chunk| {
                let n = chunk.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
                format!("{:05}", n % 100_000)
            })
            .collect();
        groups.join(" ")
    }

    /// Reads 64 hex digits, in either case, optionally separated by spaces,
    /// dashes or colons (as printed by [`Display`](fmt::Display), or copied
    /// from elsewhere).
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        let mut digits = s.chars().filter(|c| !matches!(c, ' ' | '-' | ':'));
        for byte in &mut out {
            let hi = digits.next()?.to_digit(16)?;
            let lo = digits.next()?.to_digit(16)?;
            *byte = u8::try_from(hi * 16 + lo).ok()?;
        }
        digits.next().is_none().then_some(Self(out))
    }
}

/// `digits` in groups of four joined by `sep`.
fn group(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 4);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Fingerprint {
    /// Lower-case hex in space-separated groups of four.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&group(&hex(&self.0), ' '))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex(&self.0))
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
    pub issuer: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    /// BLAKE3 of the SubjectPublicKeyInfo.
    pub fingerprint: Fingerprint,
    /// Subject alternative names as text: DNS names and IP addresses as
    /// written, other kinds prefixed (`email:`, `uri:`).
    pub names: Vec<String>,
}

// ---------------------------------------------------------------------------
// One parsed certificate

/// A parsed certificate with its position in what the peer sent, for errors.
struct Cert<'a> {
    x509: X509Certificate<'a>,
    index: usize,
}

impl<'a> Cert<'a> {
    /// Parses exactly one DER certificate: trailing bytes, repeated
    /// extensions (RFC 5280 §4.2) and known extensions that fail to parse are
    /// all encoding errors. The last matters because x509-parser keeps a
    /// garbled extension as `ParseError`, which would otherwise read as
    /// "absent", turning e.g. a broken keyUsage into no restriction at all.
    fn parse(der: &'a [u8], index: usize) -> Result<Self, CertError> {
        let bad = CertError::BadEncoding { index };
        let (rest, x509) = x509_parser::parse_x509_certificate(der).map_err(|_| bad.clone())?;
        let broken_extension = x509.extensions().iter().any(|e| e.parsed_extension().error().is_some());
        if !rest.is_empty() || broken_extension || x509.extensions_map().is_err() {
            return Err(bad);
        }
        Ok(Self { x509, index })
    }

    /// The subject as text, for messages.
    fn name(&self) -> String {
        let subject = shown(self.x509.subject().to_string());
        if subject.is_empty() { format!("certificate {} (no subject name)", self.index) } else { subject }
    }

    fn subject_raw(&self) -> &'a [u8] {
        self.x509.tbs_certificate.subject.as_raw()
    }

    fn issuer_raw(&self) -> &'a [u8] {
        self.x509.tbs_certificate.issuer.as_raw()
    }

    /// subjectKeyIdentifier (RFC 5280 §4.2.1.2).
    fn subject_key_id(&self) -> Option<&'a [u8]> {
        self.x509.tbs_certificate.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
    }

    /// The keyIdentifier of authorityKeyIdentifier (RFC 5280 §4.2.1.1).
    fn authority_key_id(&self) -> Option<&'a [u8]> {
        self.x509.tbs_certificate.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|id| id.0),
            _ => None,
        })
    }

    /// The Ed25519 key (RFC 8410 §4: id-Ed25519, parameters absent, 32 bytes).
    fn public_key(&self) -> Result<[u8; 32], CertError> {
        let spki = self.x509.public_key();
        if !is_ed25519(&spki.algorithm) {
            return Err(CertError::UnsupportedAlgorithm {
                what: format!("the {} key of {}", algorithm_name(&spki.algorithm), self.name()),
            });
        }
        let bits = &spki.subject_public_key;
        if bits.unused_bits != 0 {
            return Err(CertError::BadEncoding { index: self.index });
        }
        <[u8; 32]>::try_from(bits.data.as_ref()).map_err(|_| CertError::BadEncoding { index: self.index })
    }

    /// The certificate is signed with Ed25519, says so consistently inside
    /// and outside the signed part (RFC 5280 §4.1.1.2), and is encoded
    /// around the signed part exactly as an Ed25519 certificate must be.
    ///
    /// That last check matters because the signature covers only the
    /// TBSCertificate, and x509-parser does not check the class of the outer
    /// tags (a SEQUENCE tag 0x30 changed to 0xB0 still parses): without it
    /// one certificate could be re-encoded in many ways that all verify.
    /// RFC 8410 §3 fixes the AlgorithmIdentifier, so the only valid
    /// encoding is rebuilt here and compared byte for byte.
    fn check_signature_algorithm(&self) -> Result<(), CertError> {
        let outer = &self.x509.signature_algorithm;
        if !is_ed25519(outer) {
            return Err(CertError::UnsupportedAlgorithm {
                what: format!("the {} signature on {}", algorithm_name(outer), self.name()),
            });
        }
        if self.x509.tbs_certificate.signature != *outer {
            return Err(CertError::BadEncoding { index: self.index });
        }

        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        const ED25519_ALGORITHM_IDENTIFIER: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
        let tbs = self.x509.tbs_certificate.as_ref();
        let signature = self.x509.signature_value.data.as_ref();
        let mut body = Vec::with_capacity(tbs.len() + ED25519_ALGORITHM_IDENTIFIER.len() + 70);
        body.extend_from_slice(tbs);
        body.extend_from_slice(&ED25519_ALGORITHM_IDENTIFIER);
        body.push(0x03); // BIT STRING, no unused bits
        body.extend(der_length(signature.len() + 1));
        body.push(0x00);
        body.extend_from_slice(signature);
        let mut canonical = vec![0x30];
        canonical.extend(der_length(body.len()));
        canonical.extend(body);
        if canonical == self.x509.as_raw() {
            Ok(())
        } else {
            Err(CertError::BadEncoding { index: self.index })
        }
    }

    /// Whether `key` signed this certificate's TBSCertificate.
    fn is_signed_by(&self, key: &[u8; 32]) -> bool {
        let signature = &self.x509.signature_value;
        signature.unused_bits == 0 && ed25519_verify(key, self.x509.tbs_certificate.as_ref(), &signature.data)
    }

    fn check_validity(&self, now: i64) -> Result<(), CertError> {
        let validity = self.x509.validity();
        check_validity(&self.name(), validity.not_before.timestamp(), validity.not_after.timestamp(), now)
    }

    /// RFC 5280 §4.2: a critical extension that is not processed must make
    /// the certificate fail. tlschat processes these four.
    fn check_critical_extensions(&self) -> Result<(), CertError> {
        let understood = [
            &OID_X509_EXT_BASIC_CONSTRAINTS,
            &OID_X509_EXT_KEY_USAGE,
            &OID_X509_EXT_EXTENDED_KEY_USAGE,
            &OID_X509_EXT_SUBJECT_ALT_NAME,
        ];
        match self.x509.extensions().iter().find(|e| e.critical && !understood.contains(&&e.oid)) {
            None => Ok(()),
            Some(e) => Err(CertError::BadUsage {
                subject: self.name(),
                why: format!(
                    "it has a critical {} extension, which tlschat does not process",
                    oid2sn(&e.oid, oid_registry()).map_or_else(|_| e.oid.to_id_string(), str::to_owned)
                ),
            }),
        }
    }

    /// The checks every certificate on a path gets.
    fn check_common(&self, now: i64) -> Result<[u8; 32], CertError> {
        self.check_signature_algorithm()?;
        let key = self.public_key()?;
        self.check_critical_extensions()?;
        self.check_validity(now)?;
        Ok(key)
    }

    /// The checks for a certificate used to sign another one, with
    /// `intermediates_below` CA certificates between it and the leaf.
    fn check_issuer(&self, now: i64, intermediates_below: usize) -> Result<(), CertError> {
        self.check_common(now)?;
        let path_len = self.check_ca()?;
        check_path_len(&self.name(), path_len, intermediates_below)
    }

    /// basicConstraints CA:TRUE, and keyCertSign if keyUsage is present
    /// (RFC 5280 §4.2.1.9, §4.2.1.3). Returns the pathLenConstraint.
    fn check_ca(&self) -> Result<Option<u32>, CertError> {
        let constraints =
            self.x509.basic_constraints().map_err(|_| CertError::BadEncoding { index: self.index })?;
        let Some(constraints) = constraints.filter(|c| c.value.ca) else {
            return Err(CertError::NotCa { subject: self.name() });
        };
        if let Some(usage) = self.key_usage()?
            && !usage.key_cert_sign()
        {
            return Err(CertError::BadUsage {
                subject: self.name(),
                why: "its key usage does not include keyCertSign".into(),
            });
        }
        Ok(constraints.value.path_len_constraint)
    }

    fn key_usage(&self) -> Result<Option<&x509_parser::extensions::KeyUsage>, CertError> {
        self.x509
            .key_usage()
            .map(|ku| ku.map(|ku| ku.value))
            .map_err(|_| CertError::BadEncoding { index: self.index })
    }

    /// keyUsage (if present) allows signing handshakes (RFC 8446 §4.4.2.2
    /// asks for digitalSignature), and extendedKeyUsage (if present) names
    /// the role. anyExtendedKeyUsage is not enough: like webpki, tlschat asks
    /// for the specific purpose.
    fn check_leaf_usage(&self, role: Role) -> Result<(), CertError> {
        if let Some(usage) = self.key_usage()?
            && !usage.digital_signature()
        {
            return Err(CertError::BadUsage {
                subject: self.name(),
                why: "its key usage does not include digitalSignature".into(),
            });
        }
        let eku = self.x509.extended_key_usage().map_err(|_| CertError::BadEncoding { index: self.index })?;
        if let Some(eku) = eku {
            let allowed = match role {
                Role::Server => eku.value.server_auth,
                Role::Client => eku.value.client_auth,
            };
            if !allowed {
                return Err(CertError::BadUsage {
                    subject: self.name(),
                    why: format!("its extended key usage does not include {}", role.eku_name()),
                });
            }
        }
        Ok(())
    }

    /// subjectAltName entries as text.
    fn names(&self) -> Result<Vec<String>, CertError> {
        let san =
            self.x509.subject_alternative_name().map_err(|_| CertError::BadEncoding { index: self.index })?;
        let Some(san) = san else { return Ok(Vec::new()) };
        Ok(san.value.general_names.iter().filter_map(general_name_text).collect())
    }

    /// RFC 6125 §6.4 for DNS names, RFC 5280 §4.2.1.6 for IP addresses; the
    /// subject CN is never consulted (RFC 6125 §6.4.4 allows it only when
    /// there is no SAN, and modern clients refuse that too).
    fn check_name(&self, expected: &ServerName) -> Result<(), CertError> {
        let san =
            self.x509.subject_alternative_name().map_err(|_| CertError::BadEncoding { index: self.index })?;
        let matches = san.is_some_and(|san| {
            san.value.general_names.iter().any(|gn| match (gn, expected) {
                (GeneralName::DNSName(pattern), ServerName::Dns(name)) => dns_name_matches(pattern, name),
                (GeneralName::IPAddress(bytes), ServerName::Ip(ip)) => san_ip(bytes) == Some(*ip),
                _ => false,
            })
        });
        if matches {
            Ok(())
        } else {
            Err(CertError::NameMismatch { expected: expected.to_string(), names: self.names()? })
        }
    }

    fn summary(&self, public_key: [u8; 32]) -> Result<CertSummary, CertError> {
        let validity = self.x509.validity();
        Ok(CertSummary {
            subject: shown(self.x509.subject().to_string()),
            issuer: shown(self.x509.issuer().to_string()),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            public_key,
            fingerprint: Fingerprint::of_spki(self.x509.public_key().raw),
            names: self.names()?,
        })
    }
}

/// A name from a certificate as text for people: what the peer wrote, with
/// any control character or escape sequence shown escaped.
fn shown(text: String) -> String {
    match crate::escape::printable(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

fn general_name_text(name: &GeneralName<'_>) -> Option<String> {
    let text = match name {
        GeneralName::DNSName(dns) => (*dns).to_owned(),
        GeneralName::IPAddress(bytes) => {
            san_ip(bytes).map_or_else(|| format!("ip:{}", hex(bytes)), |ip| ip.to_string())
        }
        GeneralName::RFC822Name(email) => format!("email:{email}"),
        GeneralName::URI(uri) => format!("uri:{uri}"),
        _ => return None,
    };
    Some(shown(text))
}

/// DER length octets: short form below 128, else the minimal long form
/// (X.690 §8.1.3, §10.1).
fn der_length(len: usize) -> Vec<u8> {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => vec![short],
        _ => {
            let bytes = len.to_be_bytes();
            let significant: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
            // At most size_of::<usize>() octets, so the count fits in the low bits.
            let count = u8::try_from(significant.len()).unwrap_or(0x7f);
            let mut out = vec![0x80 | count];
            out.extend(significant);
            out
        }
    }
}

/// id-Ed25519 with absent parameters (RFC 8410 §3), for keys and signatures alike.
fn is_ed25519(alg: &AlgorithmIdentifier<'_>) -> bool {
    alg.algorithm == OID_SIG_ED25519 && alg.parameters.is_none()
}

fn algorithm_name(alg: &AlgorithmIdentifier<'_>) -> String {
    oid2sn(&alg.algorithm, oid_registry()).map_or_else(|_| alg.algorithm.to_id_string(), str::to_owned)
}

fn check_validity(subject: &str, not_before: i64, not_after: i64, now: i64) -> Result<(), CertError> {
    if now < not_before {
        Err(CertError::NotYetValid { subject: subject.to_owned(), not_before: utc_date(not_before) })
    } else if now > not_after {
        Err(CertError::Expired { subject: subject.to_owned(), not_after: utc_date(not_after) })
    } else {
        Ok(())
    }
}

/// RFC 5280 §4.2.1.9: at most `path_len` intermediate CAs below this one.
/// Self-issued intermediates are counted too, which only errs on the strict side.
fn check_path_len(subject: &str, path_len: Option<u32>, below: usize) -> Result<(), CertError> {
    match path_len {
        Some(max) if usize::try_from(max).is_ok_and(|max| below > max) => Err(CertError::BadUsage {
            subject: subject.to_owned(),
            why: format!(
                "its pathLenConstraint allows {max} intermediate CA(s) below it, the chain has {below}"
            ),
        }),
        _ => Ok(()),
    }
}

/// `2027-03-14 09:26:53 UTC`.
fn utc_date(unix: i64) -> String {
    match ASN1Time::from_timestamp(unix) {
        Ok(t) => {
            let t = t.to_datetime();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => format!("unix time {unix}"),
    }
}

/// Which end of the connection a leaf certificate must be good for.
#[derive(Debug, Clone, Copy)]
enum Role {
    Server,
    Client,
}

impl Role {
    fn eku_name(self) -> &'static str {
        match self {
            Self::Server => "serverAuth",
            Self::Client => "clientAuth",
        }
    }
}

// ---------------------------------------------------------------------------
// Trust anchors

/// What is kept of a trusted CA: it was checked once, on the way in.
#[derive(Clone)]
struct Anchor {
    der: Vec<u8>,
    subject_raw: Vec<u8>,
    subject: String,
    key_id: Option<Vec<u8>>,
    public_key: [u8; 32],
    not_before: i64,
    not_after: i64,
    path_len: Option<u32>,
}

impl Anchor {
    /// The checks an anchor gets on each use: those that depend on `now` and
    /// on the path below it.
    fn check_issuer(&self, now: i64, intermediates_below: usize) -> Result<(), CertError> {
        check_validity(&self.subject, self.not_before, self.not_after, now)?;
        check_path_len(&self.subject, self.path_len, intermediates_below)
    }
}

/// The CAs a peer's chain must lead to (Ed25519 CA certificates only).
#[derive(Clone, Default)]
pub struct RootStore {
    anchors: Vec<Anchor>,
}

impl RootStore {
    /// An empty store, which trusts nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one DER certificate as a trust anchor. It must be an Ed25519 CA
    /// certificate: basicConstraints CA:TRUE, keyCertSign if keyUsage is
    /// present, no critical extension tlschat does not process. Its validity
    /// period is checked each time it is used, not here. Adding the same
    /// certificate twice keeps one copy.
    pub fn add_der(&mut self, der: &[u8]) -> Result<(), CertError> {
        self.add_der_at(der, 0)
    }

    fn add_der_at(&mut self, der: &[u8], index: usize) -> Result<(), CertError> {
        let cert = Cert::parse(der, index)?;
        cert.check_signature_algorithm()?;
        let public_key = cert.public_key()?;
        cert.check_critical_extensions()?;
        let path_len = cert.check_ca()?;
        if self.anchors.iter().any(|a| a.der == der) {
            return Ok(());
        }
        let validity = cert.x509.validity();
        self.anchors.push(Anchor {
            der: der.to_vec(),
            subject_raw: cert.subject_raw().to_vec(),
            subject: cert.name(),
            key_id: cert.subject_key_id().map(<[u8]>::to_vec),
            public_key,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            path_len,
        });
        Ok(())
    }

    /// A store of every `CERTIFICATE` block in `pem` (other blocks are
    /// skipped). Fails if there is none, or if any of them is refused by
    /// [`add_der`](Self::add_der); `BadEncoding` then counts certificate blocks.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let mut store = Self::new();
        for (index, der) in certificates_from_pem(pem)?.iter().enumerate() {
            store.add_der_at(der, index)?;
        }
        Ok(store)
    }

    /// Whether the store trusts nothing.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// How many CAs the store holds.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }
}

impl fmt::Debug for RootStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootStore")
            .field("anchors", &self.anchors.iter().map(|a| a.subject.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

/// The DER of every `CERTIFICATE` block in `pem`, in order. A block that is
/// not base64 or not one X.509 certificate is `BadEncoding` with its number
/// among the certificate blocks; no block at all is `NoCertificates`.
pub(crate) fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let index = certs.len();
        let block = block.map_err(|_| CertError::BadEncoding { index })?;
        if block.label == "CERTIFICATE" {
            Cert::parse(&block.contents, index)?;
            certs.push(block.contents);
        }
    }
    if certs.is_empty() { Err(CertError::NoCertificates) } else { Ok(certs) }
}

// ---------------------------------------------------------------------------
// Verification

/// Parses a certificate and requires an Ed25519 key, without any trust
/// decision, validity or usage check: for pinning, where the key is the identity.
pub fn parse_leaf(der: &[u8]) -> Result<CertSummary, CertError> {
    let cert = Cert::parse(der, 0)?;
    let key = cert.public_key()?;
    cert.summary(key)
}

/// Verifies a server's Certificate message (RFC 8446 §4.4.2.4): `chain[0]` is
/// the leaf and must be valid at `now`, good for serverAuth, lead to a CA in
/// `roots` and carry a subjectAltName matching `name`.
pub fn verify_server_chain(
    chain: &[Vec<u8>],
    roots: &RootStore,
    name: &ServerName,
    now: u64,
) -> Result<CertSummary, CertError> {
    verify_chain(chain, roots, now, Role::Server, Some(name))
}

/// Verifies a client's Certificate message (RFC 8446 §4.4.2.4): `chain[0]` is
/// the leaf and must be valid at `now`, good for clientAuth and lead to a CA
/// in `roots`. Client certificates name no host, so no name is matched.
pub fn verify_client_chain(chain: &[Vec<u8>], roots: &RootStore, now: u64) -> Result<CertSummary, CertError> {
    verify_chain(chain, roots, now, Role::Client, None)
}

fn verify_chain(
    chain: &[Vec<u8>],
    roots: &RootStore,
    now: u64,
    role: Role,
    name: Option<&ServerName>,
) -> Result<CertSummary, CertError> {
    let (leaf_der, rest) = chain.split_first().ok_or(CertError::Empty)?;
    if chain.len() > MAX_CHAIN_LEN {
        return Err(CertError::ChainTooLong);
    }
    // A time beyond i64 is beyond every notAfter, so saturating is exact.
    let now = i64::try_from(now).unwrap_or(i64::MAX);

    // Parse everything first: malformed DER anywhere in the message is the
    // peer's encoding error (decode_error), whether or not the path needs it.
    let leaf = Cert::parse(leaf_der, 0)?;
    let intermediates =
        rest.iter().enumerate().map(|(i, der)| Cert::parse(der, i + 1)).collect::<Result<Vec<_>, _>>()?;

    let key = leaf.check_common(now)?;
    leaf.check_leaf_usage(role)?;

    // A leaf that is itself a trusted certificate needs no path.
    if !roots.anchors.iter().any(|a| a.der == *leaf_der) {
        let mut search = PathSearch {
            roots,
            intermediates: &intermediates,
            in_path: vec![false; intermediates.len()],
            now,
            budget: MAX_SIGNATURE_CHECKS,
        };
        search.extend(&leaf, 1).map_err(|failure| failure.error)?;
    }

    if let Some(name) = name {
        leaf.check_name(name)?;
    }
    leaf.summary(key)
}

/// Whether a candidate can be the issuer as far as key identifiers tell
/// (RFC 5280 §4.2.1.1). They tell apart CAs that share a name, such as two
/// rooms' CAs both called "tlschat room CA": without this, a certificate from
/// the other one would be reported as a bad signature rather than an unknown
/// issuer. Only a hint: when either side has no identifier, the signature
/// alone decides, and it always has the last word.
fn key_ids_agree(authority_key_id: Option<&[u8]>, candidate_key_id: Option<&[u8]>) -> bool {
    match (authority_key_id, candidate_key_id) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Why one branch of the path search ended, and how far up it got: when every
/// branch fails, the one that got furthest says the most useful thing.
struct Failure {
    depth: usize,
    error: CertError,
    /// The search budget ran out: stop everything, no other branch is tried.
    fatal: bool,
}

impl Failure {
    fn at(depth: usize, error: CertError) -> Self {
        Self { depth, error, fatal: false }
    }
}

fn keep_deepest(best: &mut Option<Failure>, failure: Failure) {
    if best.as_ref().is_none_or(|b| failure.depth > b.depth) {
        *best = Some(failure);
    }
}

/// A depth-first search from the leaf to a trust anchor through the
/// certificates the peer sent (RFC 5280 §6.1 checks applied link by link).
struct PathSearch<'s, 'a> {
    roots: &'s RootStore,
    intermediates: &'s [Cert<'a>],
    /// Which intermediates are on the current path, so none is used twice.
    in_path: Vec<bool>,
    now: i64,
    budget: u32,
}

impl<'a> PathSearch<'_, 'a> {
    fn signed_by(&mut self, cert: &Cert<'a>, key: &[u8; 32]) -> Result<bool, Failure> {
        if self.budget == 0 {
            return Err(Failure { depth: usize::MAX, error: CertError::ChainTooLong, fatal: true });
        }
        self.budget -= 1;
        Ok(cert.is_signed_by(key))
    }

    /// Finds a chain of issuers above `cert`, which is certificate number
    /// `len` of the path (the leaf is 1), ending at a trust anchor.
    fn extend(&mut self, cert: &Cert<'a>, len: usize) -> Result<(), Failure> {
        if len >= MAX_PATH_LEN {
            return Err(Failure::at(len + 1, CertError::ChainTooLong));
        }
        let issuer = cert.issuer_raw();
        let authority_key_id = cert.authority_key_id();
        // Every certificate on the path except the leaf is an intermediate CA
        // below the issuer being looked for.
        let intermediates_below = len.saturating_sub(1);
        let mut best = None;

        // Anchors first: a copy of the root sent by the peer then costs nothing.
        let roots = self.roots;
        let anchors = roots
            .anchors
            .iter()
            .filter(|a| a.subject_raw == issuer && key_ids_agree(authority_key_id, a.key_id.as_deref()));
        for anchor in anchors {
            if !self.signed_by(cert, &anchor.public_key)? {
                keep_deepest(&mut best, Failure::at(len, CertError::BadSignature { subject: cert.name() }));
                continue;
            }
            match anchor.check_issuer(self.now, intermediates_below) {
                Ok(()) => return Ok(()),
                Err(e) => keep_deepest(&mut best, Failure::at(len + 1, e)),
            }
        }

        let intermediates = self.intermediates;
        for (i, candidate) in intermediates.iter().enumerate() {
            if self.in_path.get(i).copied().unwrap_or(true)
                || candidate.subject_raw() != issuer
                || !key_ids_agree(authority_key_id, candidate.subject_key_id())
            {
                continue;
            }
            let key = match candidate.public_key() {
                Ok(key) => key,
                Err(e) => {
                    keep_deepest(&mut best, Failure::at(len + 1, e));
                    continue;
                }
            };
            if !self.signed_by(cert, &key)? {
                keep_deepest(&mut best, Failure::at(len, CertError::BadSignature { subject: cert.name() }));
                continue;
            }
            if let Err(e) = candidate.check_issuer(self.now, intermediates_below) {
                keep_deepest(&mut best, Failure::at(len + 1, e));
                continue;
            }
            self.set_in_path(i, true);
            let result = self.extend(candidate, len + 1);
            self.set_in_path(i, false);
            match result {
                Ok(()) => return Ok(()),
                Err(f) if f.fatal => return Err(f),
                Err(f) => keep_deepest(&mut best, f),
            }
        }

        // A dead end. If `cert` is a self-signed root that is not trusted,
        // say so: any same-named CA that failed above is a different CA, and
        // "bad signature" would send the user looking for tampering.
        if cert.subject_raw() == issuer
            && let Ok(own_key) = cert.public_key()
            && self.signed_by(cert, &own_key)?
        {
            return Err(Failure::at(len + 1, CertError::UnknownIssuer { issuer: cert.name() }));
        }
        Err(best.unwrap_or_else(|| {
            Failure::at(len, CertError::UnknownIssuer { issuer: shown(cert.x509.issuer().to_string()) })
        }))
    }

    fn set_in_path(&mut self, i: usize, on: bool) {
        if let Some(slot) = self.in_path.get_mut(i) {
            *slot = on;
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyUsagePurpose, SanType,
    };

    use super::*;
    use crate::pki::{self, RcgenKey, RoomCa};
    use crate::tls::crypto::{Ed25519Key, SeededRng};

    /// 2025-06-15 15:06:40 UTC: a fixed "now", so no test depends on the clock.
    const NOW: u64 = 1_750_000_000;
    const DAY: u64 = 24 * 60 * 60;

    /// A P-256 certificate made by `openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:P-256` (CA:TRUE, SAN DNS:localhost, valid to 2126).
    const P256_PEM: &str = include_str!("../../tests/data/p256-self-signed.pem");

    fn dns(name: &str) -> ServerName {
        ServerName::parse(name).unwrap()
    }

    fn roots_of(ca: &RoomCa) -> RootStore {
        let mut roots = RootStore::new();
        roots.add_der(&ca.cert_der).unwrap();
        roots
    }

    /// The test room (CA "tlschat test CA", server for localhost, 127.0.0.1, ::1).
    fn room(seed: u64) -> (RoomCa, pki::CertifiedKey, RootStore) {
        let (ca, server) = pki::test_room_for_testing_only(seed, NOW).unwrap();
        let roots = roots_of(&ca);
        (ca, server, roots)
    }

    /// A certificate key and the rcgen parameters describing it, for building
    /// chains that tlschat's own profiles never produce.
    struct Made {
        key: Ed25519Key,
        params: CertificateParams,
        der: Vec<u8>,
    }

    /// Parameters for `cn`, valid for a year around NOW: a CA (CA:TRUE,
    /// keyCertSign) or a server leaf (CA:FALSE, digitalSignature, serverAuth,
    /// SAN localhost).
    fn params(cn: &str, key: &Ed25519Key, rng: &mut SeededRng, ca: bool) -> CertificateParams {
        let mut params = pki::base_params(cn, key, rng).unwrap();
        pki::set_validity(&mut params, NOW, 365 * DAY).unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.subject_alt_names = vec![SanType::DnsName("localhost".try_into().unwrap())];
        }
        params
    }

    /// Signs `params` for `key`, by `issuer` or by itself.
    fn make(key: Ed25519Key, mut params: CertificateParams, issuer: Option<&Made>) -> Made {
        let der = match issuer {
            None => params.self_signed(&RcgenKey::new(&key)).unwrap(),
            Some(issuer) => {
                params.use_authority_key_identifier_extension = true;
                let signer = Issuer::from_params(&issuer.params, RcgenKey::new(&issuer.key));
                params.signed_by(&RcgenKey::new(&key), &signer).unwrap()
            }
        };
        Made { key, params, der: der.der().to_vec() }
    }

    fn ca(cn: &str, rng: &mut SeededRng, issuer: Option<&Made>) -> Made {
        let key = Ed25519Key::generate(rng);
        let params = params(cn, &key, rng, true);
        make(key, params, issuer)
    }

    fn leaf(rng: &mut SeededRng, issuer: &Made, edit: impl FnOnce(&mut CertificateParams)) -> Made {
        let key = Ed25519Key::generate(rng);
        let mut params = params("leaf", &key, rng, false);
        edit(&mut params);
        make(key, params, Some(issuer))
    }

    fn store(anchor: &Made) -> RootStore {
        let mut roots = RootStore::new();
        roots.add_der(&anchor.der).unwrap();
        roots
    }

    fn p256_der() -> Vec<u8> {
        certificates_from_pem(P256_PEM).unwrap().remove(0)
    }

    // --- happy paths -------------------------------------------------------

    #[test]
    fn server_chain_from_room_ca_verifies_for_localhost() {
        let (_, server, roots) = room(1);
        let summary = verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW).unwrap();
        assert_eq!(summary.subject, "CN=localhost");
        assert_eq!(summary.issuer, "CN=tlschat test CA");
        assert_eq!(summary.names, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(summary.public_key, server.key.public_key());
        assert_eq!(summary.fingerprint, server.fingerprint());
        assert!(summary.not_before < NOW as i64);
        assert!(summary.not_after > (NOW + 824 * DAY) as i64);
    }

    #[test]
    fn server_chain_from_room_ca_verifies_for_127_0_0_1() {
        let (_, server, roots) = room(1);
        verify_server_chain(&server.chain_der, &roots, &dns("127.0.0.1"), NOW).unwrap();
    }

    #[test]
    fn server_chain_from_room_ca_verifies_for_ipv6_loopback_with_and_without_brackets() {
        let (_, server, roots) = room(1);
        verify_server_chain(&server.chain_der, &roots, &dns("::1"), NOW).unwrap();
        verify_server_chain(&server.chain_der, &roots, &dns("[::1]"), NOW).unwrap();
    }

    #[test]
    fn server_chain_verifies_without_the_ca_copy_and_with_unrelated_extras() {
        let (_, server, roots) = room(1);
        let (other_ca, _, _) = room(2);
        let leaf_only = &server.chain_der[..1];
        verify_server_chain(leaf_only, &roots, &dns("localhost"), NOW).unwrap();
        let cluttered =
            vec![server.chain_der[0].clone(), other_ca.cert_der.clone(), server.chain_der[1].clone()];
        verify_server_chain(&cluttered, &roots, &dns("localhost"), NOW).unwrap();
    }

    #[test]
    fn client_chain_with_client_auth_verifies() {
        let (ca, _, roots) = room(1);
        let mut rng = SeededRng::new_for_testing_only(7);
        let alice = ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
        let summary = verify_client_chain(&alice.chain_der, &roots, NOW).unwrap();
        assert_eq!(summary.subject, "CN=alice");
        assert!(summary.names.is_empty());
        assert_eq!(summary.fingerprint, alice.fingerprint());
    }

    #[test]
    fn path_of_five_certificates_verifies_and_six_is_too_long() {
        let mut rng = SeededRng::new_for_testing_only(3);
        let root = ca("root", &mut rng, None);
        let i1 = ca("i1", &mut rng, Some(&root));
        let i2 = ca("i2", &mut rng, Some(&i1));
        let i3 = ca("i3", &mut rng, Some(&i2));
        let i4 = ca("i4", &mut rng, Some(&i3));
        let roots = store(&root);

        let five = leaf(&mut rng, &i3, |_| {});
        let chain = vec![five.der, i3.der.clone(), i2.der.clone(), i1.der.clone()];
        verify_server_chain(&chain, &roots, &dns("localhost"), NOW).unwrap();

        let six = leaf(&mut rng, &i4, |_| {});
        let chain = vec![six.der, i4.der, i3.der, i2.der, i1.der];
        assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));
    }

    #[test]
    fn leaf_that_is_a_trust_anchor_is_accepted_only_if_it_passes_leaf_checks() {
        let mut rng = SeededRng::new_for_testing_only(4);
        // A self-signed CA that is also fit to be a server leaf.
        let key = Ed25519Key::generate(&mut rng);
        let mut p = params("self", &key, &mut rng, true);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.subject_alt_names = vec![SanType::DnsName("localhost".try_into().unwrap())];
        let both = make(key, p, None);
        let roots = store(&both);
        verify_server_chain(std::slice::from_ref(&both.der), &roots, &dns("localhost"), NOW).unwrap();
        assert!(matches!(
            verify_server_chain(std::slice::from_ref(&both.der), &roots, &dns("example.com"), NOW),
            Err(CertError::NameMismatch { .. })
        ));

        // The room CA itself lacks digitalSignature, so it is no leaf.
        let (ca, _, roots) = room(1);
        assert!(matches!(
            verify_client_chain(std::slice::from_ref(&ca.cert_der), &roots, NOW),
            Err(CertError::BadUsage { why, .. }) if why.contains("digitalSignature")
        ));
    }

    // --- names ---------------------------------------------------------------

    #[test]
    fn wrong_name_is_a_name_mismatch_listing_the_certificate_names() {
        let (_, server, roots) = room(1);
        let err = verify_server_chain(&server.chain_der, &roots, &dns("example.com"), NOW).unwrap_err();
        assert_eq!(
            err,
            CertError::NameMismatch {
                expected: "example.com".into(),
                names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            }
        );
        assert_eq!(err.to_string(), "the certificate is for localhost, 127.0.0.1, ::1, not example.com");
        for other in ["127.0.0.2", "::2", "localhost.localdomain", "sub.localhost"] {
            assert!(
                matches!(
                    verify_server_chain(&server.chain_der, &roots, &dns(other), NOW),
                    Err(CertError::NameMismatch { .. })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn certificate_without_subject_alt_name_matches_no_name_even_if_the_cn_does() {
        let mut rng = SeededRng::new_for_testing_only(5);
        let root = ca("root", &mut rng, None);
        let key = Ed25519Key::generate(&mut rng);
        let mut p = params("localhost", &key, &mut rng, false);
        p.subject_alt_names.clear();
        let no_san = make(key, p, Some(&root));
        let err = verify_server_chain(&[no_san.der], &store(&root), &dns("localhost"), NOW).unwrap_err();
        assert_eq!(err, CertError::NameMismatch { expected: "localhost".into(), names: vec![] });
        assert!(err.to_string().contains("no subjectAltName"));
    }

    #[test]
    fn wildcard_covers_exactly_one_leftmost_label() {
        assert!(dns_name_matches("*.example.com", "chat.example.com"));
        assert!(dns_name_matches("*.Example.COM", "chat.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_name_matches("*.example.com", ".example.com"));
        assert!(!dns_name_matches("*.com", "example.com"));
        assert!(!dns_name_matches("f*.example.com", "foo.example.com"));
        assert!(!dns_name_matches("*oo.example.com", "foo.example.com"));
        assert!(!dns_name_matches("chat.*.com", "chat.example.com"));
        assert!(!dns_name_matches("*.*.com", "a.b.com"));
        assert!(dns_name_matches("LocalHost", "localhost"));
        assert!(!dns_name_matches("localhost", "localhost2"));
    }

    #[test]
    fn wildcard_certificate_from_room_ca_verifies_for_one_label_only() {
        let (ca, _, roots) = room(1);
        let mut rng = SeededRng::new_for_testing_only(8);
        let names = ["*.example.com".to_owned()];
        let server = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
        verify_server_chain(&server.chain_der, &roots, &dns("chat.example.com"), NOW).unwrap();
        verify_server_chain(&server.chain_der, &roots, &dns("CHAT.example.com."), NOW).unwrap();
        for refused in ["example.com", "a.chat.example.com"] {
            assert!(matches!(
                verify_server_chain(&server.chain_der, &roots, &dns(refused), NOW),
                Err(CertError::NameMismatch { .. })
            ));
        }
    }

    #[test]
    fn server_names_parse_like_users_type_them() {
        assert_eq!(dns("LocalHost"), ServerName::Dns("localhost".into()));
        assert_eq!(dns("example.com."), ServerName::Dns("example.com".into()));
        assert_eq!(dns("127.0.0.1"), ServerName::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(dns("[::1]"), ServerName::Ip("::1".parse().unwrap()));
        assert_eq!(dns("::1"), ServerName::Ip("::1".parse().unwrap()));
        assert_eq!(dns("[::1]").to_string(), "::1");
        assert_eq!(dns("Chat.Example.com").to_string(), "chat.example.com");
        for bad in [
            "",
            ".",
            "a..b",
            "[::1",
            "[127.0.0.1]",
            "[example.com]",
            "a b",
            "*.example.com",
            "host:8443",
            "ex/ample",
            "é.com",
        ] {
            assert_eq!(ServerName::parse(bad), Err(CertError::BadName { name: bad.into() }), "{bad:?}");
        }
        assert!(ServerName::parse(&"a".repeat(64)).is_err());
        assert!(ServerName::parse(&"a".repeat(63)).is_ok());
        assert!(ServerName::parse(&["a"; 127].join(".")).is_ok(), "253 octets is the limit");
        assert!(ServerName::parse(&["a"; 128].join(".")).is_err());
    }

    // --- trust -----------------------------------------------------------------

    #[test]
    fn chain_from_another_ca_is_an_unknown_issuer() {
        let (_, _, roots) = room(1);
        let mut rng = SeededRng::new_for_testing_only(9);
        let other = RoomCa::generate("someone else's CA", &mut rng, NOW).unwrap();
        let names = ["localhost".to_owned()];
        let server = other.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
        let expected = CertError::UnknownIssuer { issuer: "CN=someone else's CA".into() };
        assert_eq!(
            verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW),
            Err(expected.clone())
        );
        assert_eq!(
            verify_server_chain(&server.chain_der[..1], &roots, &dns("localhost"), NOW),
            Err(expected)
        );
    }

    #[test]
    fn chain_from_a_different_ca_with_the_same_name_is_an_unknown_issuer() {
        // Both rooms' CAs are called "tlschat test CA"; only the keys differ.
        let (_, _, roots) = room(1);
        let (_, other_server, _) = room(2);
        let expected = CertError::UnknownIssuer { issuer: "CN=tlschat test CA".into() };
        assert_eq!(
            verify_server_chain(&other_server.chain_der, &roots, &dns("localhost"), NOW),
            Err(expected.clone())
        );
        assert_eq!(
            verify_server_chain(&other_server.chain_der[..1], &roots, &dns("localhost"), NOW),
            Err(expected)
        );
    }

    #[test]
    fn empty_root_store_trusts_nothing() {
        let (_, server, _) = room(1);
        assert!(RootStore::new().is_empty());
        assert!(matches!(
            verify_server_chain(&server.chain_der, &RootStore::new(), &dns("localhost"), NOW),
            Err(CertError::UnknownIssuer { .. })
        ));
    }

    #[test]
    fn self_signed_client_is_an_unknown_issuer_but_parses_for_pinning() {
        let mut rng = SeededRng::new_for_testing_only(10);
        let alice = pki::self_signed_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
        let (_, _, roots) = room(1);
        assert_eq!(
            verify_client_chain(&alice.chain_der, &roots, NOW),
            Err(CertError::UnknownIssuer { issuer: "CN=alice".into() })
        );
        let summary = parse_leaf(&alice.chain_der[0]).unwrap();
        assert_eq!(summary.public_key, alice.key.public_key());
        assert_eq!(summary.fingerprint, alice.fingerprint());
        assert_eq!((summary.subject.as_str(), summary.issuer.as_str()), ("CN=alice", "CN=alice"));
    }

    #[test]
    fn leaf_used_as_issuer_is_not_a_ca() {
        let (_, server, roots) = room(1);
        let mut rng = SeededRng::new_for_testing_only(11);
        // Sign a certificate with the server's key, naming the server as issuer.
        let server_as_issuer = Made {
            params: pki::base_params("localhost", &server.key, &mut rng).unwrap(),
            key: server.key.clone(),
            der: server.chain_der[0].clone(),
        };
        let forged = leaf(&mut rng, &server_as_issuer, |_| {});
        let chain = vec![forged.der, server.chain_der[0].clone(), server.chain_der[1].clone()];
        assert_eq!(
            verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
            Err(CertError::NotCa { subject: "CN=localhost".into() })
        );
    }

    #[test]
    fn a_tangle_of_look_alike_cas_exhausts_the_signature_budget() {
        // Nine self-signed CAs sharing one name and one key: each verifies
        // every other, so an unbounded search would try every ordering.
        let mut rng = SeededRng::new_for_testing_only(12);
        let key = Ed25519Key::generate(&mut rng);
        let tangle: Vec<Made> = (0..9)
            .map(|_| {
                let p = params("tangle", &key, &mut rng, true);
                make(key.clone(), p, None)
            })
            .collect();
        let victim = leaf(&mut rng, &tangle[0], |_| {});
        let mut chain = vec![victim.der.clone()];
        chain.extend(tangle.iter().map(|m| m.der.clone()));
        let (_, _, roots) = room(1);
        assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));

        // And it is the budget, not the path length, that stopped it.
        let certs: Vec<Cert<'_>> =
            chain.iter().enumerate().map(|(i, d)| Cert::parse(d, i).unwrap()).collect();
        let (leaf_cert, intermediates) = certs.split_first().unwrap();
        let mut search = PathSearch {
            roots: &roots,
            intermediates,
            in_path: vec![false; intermediates.len()],
            now: NOW as i64,
            budget: MAX_SIGNATURE_CHECKS,
        };
        let failure = search.extend(leaf_cert, 1).unwrap_err();
        assert!(failure.fatal);
        assert_eq!(search.budget, 0);
    }

    // --- time ------------------------------------------------------------------

    #[test]
    fn now_after_not_after_is_expired_and_the_boundaries_are_inclusive() {
        let (_, server, roots) = room(1);
        let summary = parse_leaf(&server.chain_der[0]).unwrap();
        let (not_before, not_after) = (summary.not_before as u64, summary.not_after as u64);
        verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_before).unwrap();
        verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_after).unwrap();
        let err =
            verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_after + 1).unwrap_err();
        assert_eq!(
            err,
            CertError::Expired { subject: "CN=localhost".into(), not_after: utc_date(not_after as i64) }
        );
        // NOW + 825 days
        assert_eq!(err.to_string(), "the certificate for CN=localhost expired on 2027-09-18 15:06:40 UTC");
    }

    #[test]
    fn now_before_not_before_is_not_yet_valid() {
        let (_, server, roots) = room(1);
        let one_hour_and_a_second_early = NOW - 3601;
        assert_eq!(
            verify_server_chain(&server.chain_der, &roots, &dns("localhost"), one_hour_and_a_second_early),
            Err(CertError::NotYetValid {
                subject: "CN=localhost".into(),
                not_before: "2025-06-15 14:06:40 UTC".into()
            })
        );
    }

    #[test]
    fn expired_ca_is_refused_even_when_the_leaf_is_still_valid() {
        let mut rng = SeededRng::new_for_testing_only(13);
        let ca = RoomCa::generate("old CA", &mut rng, NOW).unwrap();
        let ca_not_after = parse_leaf(&ca.cert_der).unwrap().not_after as u64;
        let late = ca_not_after - 10 * DAY;
        let names = ["localhost".to_owned()];
        let server = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, late).unwrap();
        assert!(matches!(
            verify_server_chain(&server.chain_der, &roots_of(&ca), &dns("localhost"), ca_not_after + 1),
            Err(CertError::Expired { subject, .. }) if subject == "CN=old CA"
        ));
    }

    // --- tampering and encoding --------------------------------------------------

    #[test]
    fn one_flipped_bit_in_the_leaf_signature_is_a_bad_signature() {
        let (_, server, roots) = room(1);
        let mut chain = server.chain_der.clone();
        // The signature BIT STRING ends the certificate: its last byte is
        // inside the 64-byte Ed25519 signature.
        *chain[0].last_mut().unwrap() ^= 0x01;
        assert_eq!(
            verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
            Err(CertError::BadSignature { subject: "CN=localhost".into() })
        );
    }

    #[test]
    fn one_changed_letter_in_the_signed_part_is_a_bad_signature() {
        let (_, server, roots) = room(1);
        let mut chain = server.chain_der.clone();
        let at = chain[0].windows(9).position(|w| w == b"localhost").unwrap();
        chain[0][at] = b'L';
        assert_eq!(
            verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
            Err(CertError::BadSignature { subject: "CN=Localhost".into() })
        );
    }

    #[test]
    fn garbage_and_trailing_bytes_are_bad_encoding() {
        let (_, server, roots) = room(1);
        let name = dns("localhost");
        let garbage = b"this is not a certificate".to_vec();
        assert_eq!(
            verify_server_chain(std::slice::from_ref(&garbage), &roots, &name, NOW),
            Err(CertError::BadEncoding { index: 0 })
        );
        assert_eq!(
            verify_server_chain(&[server.chain_der[0].clone(), garbage], &roots, &name, NOW),
            Err(CertError::BadEncoding { index: 1 })
        );
        let mut trailing = server.chain_der[0].clone();
        trailing.push(0);
        assert_eq!(
            verify_server_chain(&[trailing], &roots, &name, NOW),
            Err(CertError::BadEncoding { index: 0 })
        );
        assert_eq!(parse_leaf(&[]), Err(CertError::BadEncoding { index: 0 }));
        // Every truncation of a real certificate fails cleanly.
        for len in 0..server.chain_der[0].len() {
            assert!(verify_server_chain(&[server.chain_der[0][..len].to_vec()], &roots, &name, NOW).is_err());
        }
    }

    #[test]
    fn every_single_byte_change_to_the_leaf_is_refused() {
        // Whatever a changed byte hits (a length, a tag, the signed part, the
        // algorithm, the signature), the chain must not verify, and nothing
        // may panic.
        let (_, server, roots) = room(1);
        let name = dns("localhost");
        for at in 0..server.chain_der[0].len() {
            for mask in [0x01, 0x80] {
                let mut chain = server.chain_der.clone();
                chain[0][at] ^= mask;
                assert!(
                    verify_server_chain(&chain, &roots, &name, NOW).is_err(),
                    "byte {at} ^ {mask:#04x} was accepted"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_leaf(&bytes);
            let _ = RootStore::new().add_der(&bytes);
            let _ = RootStore::from_pem(&text);
            let _ = ServerName::parse(&text);
            let _ = Fingerprint::parse(&text);
            let roots = RootStore::new();
            let _ = verify_server_chain(&[bytes.clone(), bytes], &roots, &ServerName::Dns("a".into()), NOW);
        }

        #[test]
        fn arbitrary_pem_bodies_never_panic(body in "[A-Za-z0-9+/=\\n-]{0,400}") {
            let _ = RootStore::from_pem(&format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"));
        }
    }

    #[test]
    fn empty_chain_is_refused() {
        let (_, _, roots) = room(1);
        assert_eq!(verify_server_chain(&[], &roots, &dns("localhost"), NOW), Err(CertError::Empty));
        assert_eq!(verify_client_chain(&[], &roots, NOW), Err(CertError::Empty));
    }

    #[test]
    fn more_than_ten_certificates_are_refused_before_any_work() {
        let (_, server, roots) = room(1);
        let chain = vec![server.chain_der[0].clone(); 11];
        assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));
    }

    #[test]
    fn non_ed25519_certificate_is_unsupported() {
        let der = p256_der();
        let (_, _, roots) = room(1);
        let err =
            verify_server_chain(std::slice::from_ref(&der), &roots, &dns("localhost"), NOW).unwrap_err();
        assert!(
            matches!(&err, CertError::UnsupportedAlgorithm { what } if what.contains("ecdsa-with-SHA256")),
            "{err}"
        );
        assert!(
            matches!(parse_leaf(&der), Err(CertError::UnsupportedAlgorithm { what }) if what.contains("id-ecPublicKey"))
        );
        assert!(matches!(RootStore::new().add_der(&der), Err(CertError::UnsupportedAlgorithm { .. })));
    }

    // --- usage -------------------------------------------------------------------

    #[test]
    fn server_certificate_used_as_client_is_bad_usage_and_vice_versa() {
        let (ca, server, roots) = room(1);
        assert_eq!(
            verify_client_chain(&server.chain_der, &roots, NOW),
            Err(CertError::BadUsage {
                subject: "CN=localhost".into(),
                why: "its extended key usage does not include clientAuth".into()
            })
        );
        let mut rng = SeededRng::new_for_testing_only(14);
        let alice = ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
        assert!(matches!(
            verify_server_chain(&alice.chain_der, &roots, &dns("localhost"), NOW),
            Err(CertError::BadUsage { why, .. }) if why.contains("serverAuth")
        ));
    }

    #[test]
    fn leaf_key_usage_must_allow_digital_signature() {
        let mut rng = SeededRng::new_for_testing_only(15);
        let root = ca("root", &mut rng, None);
        let encipher_only = leaf(&mut rng, &root, |p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]);
        assert!(matches!(
            verify_server_chain(&[encipher_only.der], &store(&root), &dns("localhost"), NOW),
            Err(CertError::BadUsage { why, .. }) if why.contains("digitalSignature")
        ));
    }

    #[test]
    fn issuer_key_usage_must_allow_certificate_signing() {
        let mut rng = SeededRng::new_for_testing_only(16);
        let root = ca("root", &mut rng, None);
        let key = Ed25519Key::generate(&mut rng);
        let mut p = params("crl only", &key, &mut rng, true);
        p.key_usages = vec![KeyUsagePurpose::CrlSign];
        let crl_only = make(key, p, Some(&root));
        let victim = leaf(&mut rng, &crl_only, |_| {});
        let err =
            verify_server_chain(&[victim.der, crl_only.der.clone()], &store(&root), &dns("localhost"), NOW);
        assert!(matches!(err, Err(CertError::BadUsage { why, .. }) if why.contains("keyCertSign")));
        assert!(matches!(RootStore::new().add_der(&crl_only.der), Err(CertError::BadUsage { .. })));
    }

    #[test]
    fn path_length_constraint_is_enforced() {
        let mut rng = SeededRng::new_for_testing_only(17);
        let key = Ed25519Key::generate(&mut rng);
        let mut p = params("strict root", &key, &mut rng, true);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let root = make(key, p, None);
        let intermediate = ca("intermediate", &mut rng, Some(&root));
        let direct = leaf(&mut rng, &root, |_| {});
        verify_server_chain(&[direct.der], &store(&root), &dns("localhost"), NOW).unwrap();
        let below = leaf(&mut rng, &intermediate, |_| {});
        assert!(matches!(
            verify_server_chain(&[below.der, intermediate.der], &store(&root), &dns("localhost"), NOW),
            Err(CertError::BadUsage { subject, why }) if subject == "CN=strict root" && why.contains("pathLenConstraint")
        ));
    }

    #[test]
    fn unknown_critical_extension_is_refused() {
        let mut rng = SeededRng::new_for_testing_only(18);
        let root = ca("root", &mut rng, None);
        let strange = leaf(&mut rng, &root, |p| {
            let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        });
        assert!(matches!(
            verify_server_chain(&[strange.der], &store(&root), &dns("localhost"), NOW),
            Err(CertError::BadUsage { why, .. }) if why.contains("1.3.6.1.4.1.55555.1")
        ));
    }

    // --- root store --------------------------------------------------------------

    #[test]
    fn root_store_reads_every_certificate_block_and_skips_other_blocks() {
        let (ca1, server, _) = room(1);
        let (ca2, _, _) = room(2);
        let key_pem = ca1.key.to_pkcs8_pem();
        let pem = format!("# our CAs\n{}{}{}{}", ca1.cert_pem, key_pem.as_str(), ca2.cert_pem, ca1.cert_pem);
        let roots = RootStore::from_pem(&pem).unwrap();
        assert_eq!(roots.len(), 2, "the repeated CA is stored once");
        verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW).unwrap();
        assert!(format!("{roots:?}").contains("CN=tlschat test CA"));
    }

    #[test]
    fn root_store_refuses_pem_without_certificates_broken_blocks_and_non_cas() {
        let (_, server, _) = room(1);
        assert_eq!(RootStore::from_pem("").unwrap_err(), CertError::NoCertificates);
        assert_eq!(RootStore::from_pem("just text\n").unwrap_err(), CertError::NoCertificates);
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(RootStore::from_pem(broken).unwrap_err(), CertError::BadEncoding { index: 0 });
        let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert_eq!(RootStore::from_pem(unterminated).unwrap_err(), CertError::BadEncoding { index: 0 });
        assert_eq!(
            RootStore::from_pem(&server.chain_pem).unwrap_err(),
            CertError::NotCa { subject: "CN=localhost".into() }
        );
        assert_eq!(RootStore::new().add_der(b"nope"), Err(CertError::BadEncoding { index: 0 }));
    }

    // --- fingerprints and messages --------------------------------------------------

    #[test]
    fn fingerprint_display_and_parse_round_trip() {
        let fp = Fingerprint(core::array::from_fn(|i| (i * 7 + 3) as u8));
        let shown = fp.to_string();
        assert_eq!(shown.len(), 64 + 15);
        assert!(shown.starts_with("030a 1118 1f26 2d34 "));
        assert_eq!(Fingerprint::parse(&shown), Some(fp));
        // Each group: five bytes big-endian, modulo 100 000 (0x030a11181f = 13053794335).
        assert_eq!(fp.short(), "94335 55010 15685 76360 37035 97710");
        assert_eq!(Fingerprint([0; 32]).short(), "00000 00000 00000 00000 00000 00000");
        assert_eq!(Fingerprint([0xff; 32]).short(), "27775 27775 27775 27775 27775 27775");
        let bare = hex(&fp.0);
        assert_eq!(Fingerprint::parse(&bare), Some(fp));
        assert_eq!(Fingerprint::parse(&bare.to_uppercase()), Some(fp));
        let colons = fp.0.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        assert_eq!(Fingerprint::parse(&colons), Some(fp));
        assert_eq!(Fingerprint::parse(&fp.short()), None, "a short form is not a fingerprint");
        assert_eq!(Fingerprint::parse(&format!("{bare}00")), None);
        assert_eq!(Fingerprint::parse(&bare[1..]), None);
        assert_eq!(Fingerprint::parse(&bare.replace('a', "g")), None);
        assert_eq!(Fingerprint::parse(""), None);
        assert_eq!(format!("{fp:?}"), format!("Fingerprint({bare})"));
    }

    #[test]
    fn fingerprint_is_blake3_of_the_subject_public_key_info() {
        let (_, server, _) = room(1);
        // RFC 8410 §4: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING key }.
        let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend_from_slice(&server.key.public_key());
        let expected = Fingerprint(*blake3::hash(&spki).as_bytes());
        assert_eq!(parse_leaf(&server.chain_der[0]).unwrap().fingerprint, expected);
        assert_eq!(Fingerprint::of_ed25519(&server.key.public_key()), expected);
    }

    #[test]
    fn der_lengths_are_minimal() {
        assert_eq!(der_length(0), [0x00]);
        assert_eq!(der_length(0x7f), [0x7f]);
        assert_eq!(der_length(0x80), [0x81, 0x80]);
        assert_eq!(der_length(0xff), [0x81, 0xff]);
        assert_eq!(der_length(0x100), [0x82, 0x01, 0x00]);
        assert_eq!(der_length(0x01_0000), [0x83, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn error_messages_are_single_lines() {
        let errors = [
            CertError::Empty,
            CertError::BadEncoding { index: 1 },
            CertError::UnsupportedAlgorithm { what: "the RSA key of CN=x".into() },
            CertError::BadSignature { subject: "CN=x".into() },
            CertError::UnknownIssuer { issuer: "CN=x".into() },
            CertError::Expired { subject: "CN=x".into(), not_after: utc_date(0) },
            CertError::NotYetValid { subject: "CN=x".into(), not_before: utc_date(0) },
            CertError::NameMismatch { expected: "x".into(), names: vec![] },
            CertError::NotCa { subject: "CN=x".into() },
            CertError::BadUsage { subject: "CN=x".into(), why: "y".into() },
            CertError::ChainTooLong,
            CertError::BadName { name: "x y".into() },
            CertError::NoCertificates,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
    }
}
