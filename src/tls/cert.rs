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
use x509_parser::objects::{oid2sn, oid_registry};
use x509_parser::oid_registry::{
    OID_SIG_ED25519, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE,
    OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
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
    #[error("the certificate chain is too long or too tangled to check (at most {MAX_PATH_LEN} certificates from leaf to CA)")]
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
fn is_dns_name(name: &str) -> bool {
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

    /// The first 16 hex digits in dashed groups (`abcd-ef01-2345-6789`): enough
    /// to recognise a peer at a glance, not to verify one.
    pub fn short(&self) -> String {
        let digits = hex(self.0.get(..8).unwrap_or_default());
        group(&digits, '-')
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
            // Two hex digits are below 256, so the cast cannot truncate.
            *byte = (hi * 16 + lo) as u8;
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
        let subject = self.x509.subject().to_string();
        if subject.is_empty() { format!("certificate {} (no subject name)", self.index) } else { subject }
    }

    fn subject_raw(&self) -> &'a [u8] {
        self.x509.subject().as_raw()
    }

    fn issuer_raw(&self) -> &'a [u8] {
        self.x509.issuer().as_raw()
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

    /// The certificate is signed with Ed25519, and says so consistently
    /// inside and outside the signed part (RFC 5280 §4.1.1.2).
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
        Ok(())
    }

    /// Whether `key` signed this certificate's TBSCertificate.
    fn is_signed_by(&self, key: &[u8; 32]) -> bool {
        let signature = &self.x509.signature_value;
        signature.unused_bits == 0
            && ed25519_verify(key, self.x509.tbs_certificate.as_ref(), &signature.data)
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
    fn check_issuer(&self, now: i64, intermediates_below: usize) -> Result<[u8; 32], CertError> {
        let key = self.check_common(now)?;
        let path_len = self.check_ca()?;
        check_path_len(&self.name(), path_len, intermediates_below)?;
        Ok(key)
    }

    /// basicConstraints CA:TRUE, and keyCertSign if keyUsage is present
    /// (RFC 5280 §4.2.1.9, §4.2.1.3). Returns the pathLenConstraint.
    fn check_ca(&self) -> Result<Option<u32>, CertError> {
        let constraints = self.x509.basic_constraints().map_err(|_| CertError::BadEncoding { index: self.index })?;
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
        let san = self
            .x509
            .subject_alternative_name()
            .map_err(|_| CertError::BadEncoding { index: self.index })?;
        let Some(san) = san else { return Ok(Vec::new()) };
        Ok(san.value.general_names.iter().filter_map(general_name_text).collect())
    }

    /// RFC 6125 §6.4 for DNS names, RFC 5280 §4.2.1.6 for IP addresses; the
    /// subject CN is never consulted (RFC 6125 §6.4.4 allows it only when
    /// there is no SAN, and modern clients refuse that too).
    fn check_name(&self, expected: &ServerName) -> Result<(), CertError> {
        let san = self
            .x509
            .subject_alternative_name()
            .map_err(|_| CertError::BadEncoding { index: self.index })?;
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
            subject: self.x509.subject().to_string(),
            issuer: self.x509.issuer().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            public_key,
            fingerprint: Fingerprint::of_spki(self.x509.public_key().raw),
            names: self.names()?,
        })
    }
}

fn general_name_text(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => Some(san_ip(bytes).map_or_else(|| format!("ip:{}", hex(bytes)), |ip| ip.to_string())),
        GeneralName::RFC822Name(email) => Some(format!("email:{email}")),
        GeneralName::URI(uri) => Some(format!("uri:{uri}")),
        _ => None,
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
            why: format!("its pathLenConstraint allows {max} intermediate CA(s) below it, the chain has {below}"),
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
        // Every certificate on the path except the leaf is an intermediate CA
        // below the issuer being looked for.
        let intermediates_below = len - 1;
        let mut best = None;

        // Anchors first: a copy of the root sent by the peer then costs nothing.
        let roots = self.roots;
        for anchor in roots.anchors.iter().filter(|a| a.subject_raw == issuer) {
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
            if self.in_path.get(i).copied().unwrap_or(true) || candidate.subject_raw() != issuer {
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
            Failure::at(len, CertError::UnknownIssuer { issuer: cert.x509.issuer().to_string() })
        }))
    }

    fn set_in_path(&mut self, i: usize, on: bool) {
        if let Some(slot) = self.in_path.get_mut(i) {
            *slot = on;
        }
    }
}
