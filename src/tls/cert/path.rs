//! Trust anchors and path building: from a peer's leaf through the
//! certificates it sent to a trusted CA (RFC 5280 §6.1, RFC 8446 §4.4.2).

use std::fmt;

use x509_parser::pem::Pem;

use super::x509::{Cert, Role, check_path_len, check_validity, shown};
use super::{CertError, CertSummary, MAX_CHAIN_LEN, MAX_PATH_LEN, MAX_SIGNATURE_CHECKS, ServerName};

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
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// How many CAs the store holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
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
pub(super) struct Failure {
    depth: usize,
    error: CertError,
    /// The search budget ran out: stop everything, no other branch is tried.
    pub(super) fatal: bool,
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
pub(super) struct PathSearch<'s, 'a> {
    pub(super) roots: &'s RootStore,
    pub(super) intermediates: &'s [Cert<'a>],
    /// Which intermediates are on the current path, so none is used twice.
    pub(super) in_path: Vec<bool>,
    pub(super) now: i64,
    pub(super) budget: u32,
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
    pub(super) fn extend(&mut self, cert: &Cert<'a>, len: usize) -> Result<(), Failure> {
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
