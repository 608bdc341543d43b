//! One parsed X.509 certificate and the checks it gets on a path (RFC 5280
//! §4.1, §4.2; RFC 8410 for Ed25519).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry::{
    OID_SIG_ED25519, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::time::ASN1Time;
use x509_parser::x509::AlgorithmIdentifier;

use super::names::{ServerName, dns_name_matches, san_ip};
use super::{CertError, CertSummary, Fingerprint};
use crate::tls::crypto::{ed25519_verify, hex};

/// A parsed certificate with its position in what the peer sent, for errors.
pub(super) struct Cert<'a> {
    pub(super) x509: X509Certificate<'a>,
    index: usize,
}

impl<'a> Cert<'a> {
    /// Parses exactly one DER certificate: trailing bytes, repeated
    /// extensions (RFC 5280 §4.2) and known extensions that fail to parse are
    /// all encoding errors. The last matters because x509-parser keeps a
    /// garbled extension as `ParseError`, which would otherwise read as
    /// "absent", turning e.g. a broken keyUsage into no restriction at all.
    pub(super) fn parse(der: &'a [u8], index: usize) -> Result<Self, CertError> {
        let bad = CertError::BadEncoding { index };
        let (rest, x509) = x509_parser::parse_x509_certificate(der).map_err(|_| bad.clone())?;
        let broken_extension = x509.extensions().iter().any(|e| e.parsed_extension().error().is_some());
        if !rest.is_empty() || broken_extension || x509.extensions_map().is_err() {
            return Err(bad);
        }
        Ok(Self { x509, index })
    }

    /// The subject as text, for messages.
    pub(super) fn name(&self) -> String {
        let subject = shown(self.x509.subject().to_string());
        if subject.is_empty() { format!("certificate {} (no subject name)", self.index) } else { subject }
    }

    pub(super) fn subject_raw(&self) -> &'a [u8] {
        self.x509.tbs_certificate.subject.as_raw()
    }

    pub(super) fn issuer_raw(&self) -> &'a [u8] {
        self.x509.tbs_certificate.issuer.as_raw()
    }

    /// subjectKeyIdentifier (RFC 5280 §4.2.1.2).
    pub(super) fn subject_key_id(&self) -> Option<&'a [u8]> {
        self.x509.tbs_certificate.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
    }

    /// The keyIdentifier of authorityKeyIdentifier (RFC 5280 §4.2.1.1).
    pub(super) fn authority_key_id(&self) -> Option<&'a [u8]> {
        self.x509.tbs_certificate.extensions().iter().find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|id| id.0),
            _ => None,
        })
    }

    /// The Ed25519 key (RFC 8410 §4: id-Ed25519, parameters absent, 32 bytes).
    pub(super) fn public_key(&self) -> Result<[u8; 32], CertError> {
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
    pub(super) fn check_signature_algorithm(&self) -> Result<(), CertError> {
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
    pub(super) fn is_signed_by(&self, key: &[u8; 32]) -> bool {
        let signature = &self.x509.signature_value;
        signature.unused_bits == 0 && ed25519_verify(key, self.x509.tbs_certificate.as_ref(), &signature.data)
    }

    fn check_validity(&self, now: i64) -> Result<(), CertError> {
        let validity = self.x509.validity();
        check_validity(&self.name(), validity.not_before.timestamp(), validity.not_after.timestamp(), now)
    }

    /// RFC 5280 §4.2: a critical extension that is not processed must make
    /// the certificate fail. tlschat processes these four.
    pub(super) fn check_critical_extensions(&self) -> Result<(), CertError> {
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
    pub(super) fn check_common(&self, now: i64) -> Result<[u8; 32], CertError> {
        self.check_signature_algorithm()?;
        let key = self.public_key()?;
        self.check_critical_extensions()?;
        self.check_validity(now)?;
        Ok(key)
    }

    /// The checks for a certificate used to sign another one, with
    /// `intermediates_below` CA certificates between it and the leaf.
    pub(super) fn check_issuer(&self, now: i64, intermediates_below: usize) -> Result<(), CertError> {
        self.check_common(now)?;
        let path_len = self.check_ca()?;
        check_path_len(&self.name(), path_len, intermediates_below)
    }

    /// basicConstraints CA:TRUE, and keyCertSign if keyUsage is present
    /// (RFC 5280 §4.2.1.9, §4.2.1.3). Returns the pathLenConstraint.
    pub(super) fn check_ca(&self) -> Result<Option<u32>, CertError> {
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
    pub(super) fn check_leaf_usage(&self, role: Role) -> Result<(), CertError> {
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
    pub(super) fn check_name(&self, expected: &ServerName) -> Result<(), CertError> {
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

    pub(super) fn summary(&self, public_key: [u8; 32]) -> Result<CertSummary, CertError> {
        let validity = self.x509.validity();
        Ok(CertSummary {
            subject: shown(self.x509.subject().to_string()),
            issuer: shown(self.x509.issuer().to_string()),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            public_key,
            fingerprint: Fingerprint::of_ed25519(&public_key),
            names: self.names()?,
        })
    }
}

/// A name from a certificate as text for people: what the peer wrote, with
/// any control character or escape sequence shown escaped.
pub(super) fn shown(text: String) -> String {
    match crate::present::escape::printable(&text) {
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
pub(super) fn der_length(len: usize) -> Vec<u8> {
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

pub(super) fn check_validity(
    subject: &str,
    not_before: i64,
    not_after: i64,
    now: i64,
) -> Result<(), CertError> {
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
pub(super) fn check_path_len(subject: &str, path_len: Option<u32>, below: usize) -> Result<(), CertError> {
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
pub(super) fn utc_date(unix: i64) -> String {
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
pub(super) enum Role {
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
