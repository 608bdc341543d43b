//! The room a `tlschat listen` serves: its keys and certificates on disk,
//! and the names its members have claimed.
//!
//! A room is made once, on first use, in `DATA/room/`: a CA (Ed25519,
//! rcgen) and a server key with a certificate from that CA for the names
//! and addresses clients use. The server key is what clients pin, so it is
//! kept for good; the certificate is issued again from the same CA, for the
//! same key, when a new name is needed or it nears its end, which changes
//! no fingerprint. `openssl verify -CAfile ca.pem server.pem` accepts what
//! is written here, and `openssl s_client -CAfile ca.pem` the server.
//!
//! The names its members claim are bound to their keys in
//! [`crate::store::names`].

use std::path::{Path, PathBuf};

use crate::store::home::{self, Access, FileError};
use crate::store::pki::{self, PkiError, RoomCa};
use crate::store::room_log::StoreError;
use crate::tls::cert::{self, CertError, RootStore, ServerName};
use crate::tls::{Ed25519Key, Rng};

/// A server certificate this close to its end is issued again.
const RENEW_BEFORE: u64 = 30 * 24 * 60 * 60;

/// Why the room could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// A file or directory problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// A key file that is not an Ed25519 key.
    #[error(
        "{} is not a usable Ed25519 private key ({why}); nothing was changed: restore the room from a backup, or move {} aside to start a new room (clients that pinned it will then refuse it)",
        .path.display(), .dir.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// The room directory.
        dir: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Some of the room's files are there and some are not.
    #[error(
        "the room in {} is incomplete ({} is missing): restore it from a backup, or move the directory aside to start a new room (clients that pinned this one will then refuse it)",
        .dir.display(), .missing.display()
    )]
    Incomplete {
        /// The room directory.
        dir: PathBuf,
        /// The first missing file.
        missing: PathBuf,
    },
    /// A certificate or key that does not fit the room.
    #[error(
        "{} cannot be used: {error}; restore the room from a backup, or move {} aside to start a new room",
        .path.display(), .dir.display()
    )]
    Unusable {
        /// The file.
        path: PathBuf,
        /// The room directory.
        dir: PathBuf,
        /// Why.
        error: PkiError,
    },
    /// A line of the members or banned file that does not read.
    #[error("{} line {line} is not `{expected}`: fix or delete that line", .path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What a line of that file is.
        expected: &'static str,
    },
    /// Making a certificate failed.
    #[error("cannot make the room's certificates: {0}")]
    Pki(#[from] PkiError),
    /// The room's store (its log and names) could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The room's keys, loaded or made.
#[derive(Debug)]
pub(crate) struct RoomKeys {
    /// The room CA.
    pub(crate) ca: RoomCa,
    /// The server's certificate chain (leaf, CA) and key.
    pub(crate) server: pki::CertifiedKey,
    /// The CA certificate file, what `--ca` takes.
    pub(crate) ca_path: PathBuf,
    /// The server chain file.
    pub(crate) server_path: PathBuf,
    /// What changed on disk while opening, one line each, for the user.
    pub(crate) notes: Vec<String>,
}

/// The room's directory (usually [`home::Home::room_dir`]).
#[derive(Debug, Clone)]
pub(crate) struct RoomStore {
    dir: PathBuf,
}

impl RoomStore {
    /// The room in `dir`.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self) -> [PathBuf; 4] {
        ["ca.key", "ca.pem", "server.key", "server.pem"].map(|f| self.dir.join(f))
    }

    /// Opens the room, making it on first use. The server certificate must
    /// cover every name in `names` (host names or IP addresses); if it does
    /// not, or ends within 30 days, or no longer chains to the CA, it is
    /// issued again for the same key (and the names it had).
    pub(crate) fn open_or_create(
        &self,
        names: &[String],
        rng: &mut dyn Rng,
        now: u64,
    ) -> Result<RoomKeys, RoomError> {
        home::private_dir(&self.dir)?;
        let [ca_key, ca_pem, server_key, server_pem] = self.files();
        let present: Vec<bool> = self.files().iter().map(|p| p.exists()).collect();
        if present.iter().all(|p| !p) {
            return self.create(names, rng, now);
        }
        if let Some(missing) = self.files().into_iter().zip(&present).find(|(_, p)| !**p).map(|(f, _)| f) {
            return Err(RoomError::Incomplete { dir: self.dir.clone(), missing });
        }
        let read_private = |path: &Path| -> Result<String, RoomError> {
            let text = home::read(path, Access::Private)?
                .ok_or_else(|| RoomError::Incomplete { dir: self.dir.clone(), missing: path.to_owned() })?;
            // Checked here so a damaged key is named as such, not as a mismatch.
            if let Err(e) = Ed25519Key::from_pkcs8_pem(&text) {
                let why = if text.trim().is_empty() { "the file is empty".to_owned() } else { e.to_string() };
                return Err(RoomError::BadKey { path: path.to_owned(), dir: self.dir.clone(), why });
            }
            Ok(text.to_string())
        };
        let read_public = |path: &Path| -> Result<String, RoomError> {
            Ok(home::read(path, Access::Public)?
                .ok_or_else(|| RoomError::Incomplete { dir: self.dir.clone(), missing: path.to_owned() })?
                .to_string())
        };
        let unusable = |path: &Path, error: PkiError| RoomError::Unusable {
            path: path.to_owned(),
            dir: self.dir.clone(),
            error,
        };
        let ca_key_pem = zeroize::Zeroizing::new(read_private(&ca_key)?);
        let ca = RoomCa::from_pem(&read_public(&ca_pem)?, &ca_key_pem).map_err(|e| unusable(&ca_pem, e))?;
        let key_pem = zeroize::Zeroizing::new(read_private(&server_key)?);
        let chain_pem = read_public(&server_pem)?;
        let server = pki::load_certified_key(&chain_pem, &key_pem).map_err(|e| unusable(&server_pem, e))?;
        let mut keys = RoomKeys { ca, server, ca_path: ca_pem, server_path: server_pem, notes: Vec::new() };
        if let Some(why) = renewal_reason(&keys, names, now) {
            let mut all = cert::parse_leaf(&keys.server.chain_der[0]).map(|s| s.names).unwrap_or_default();
            for name in names {
                if !all.contains(name) {
                    all.push(name.clone());
                }
            }
            let server = keys.ca.issue_server(keys.server.key.clone(), &all, rng, now)?;
            home::replace(&keys.server_path, server.chain_pem.as_bytes(), Access::Public)?;
            keys.notes.push(format!(
                "issued a new server certificate ({why}) for {}; same key, same fingerprint",
                all.join(", ")
            ));
            keys.server = server;
        }
        Ok(keys)
    }

    fn create(&self, names: &[String], rng: &mut dyn Rng, now: u64) -> Result<RoomKeys, RoomError> {
        let [ca_key, ca_pem, server_key, server_pem] = self.files();
        // A few random digits tell rooms' CAs apart in certificate viewers.
        let mut tag = [0u8; 3];
        rng.fill(&mut tag);
        let ca = RoomCa::generate(&format!("tlschat room CA {}", crate::tls::crypto::hex(&tag)), rng, now)?;
        let server = ca.issue_server(Ed25519Key::generate(rng), names, rng, now)?;
        // Keys first: certificates without their keys would be an incomplete room.
        home::create_new(&ca_key, ca.key.to_pkcs8_pem().as_bytes(), Access::Private)?;
        home::create_new(&server_key, server.key.to_pkcs8_pem().as_bytes(), Access::Private)?;
        home::create_new(&ca_pem, ca.cert_pem.as_bytes(), Access::Public)?;
        home::create_new(&server_pem, server.chain_pem.as_bytes(), Access::Public)?;
        let note = format!("made a new room in {}: CA, server key and certificate", self.dir.display());
        Ok(RoomKeys { ca, server, ca_path: ca_pem, server_path: server_pem, notes: vec![note] })
    }
}

/// Why the server certificate must be issued again, if it must.
fn renewal_reason(keys: &RoomKeys, names: &[String], now: u64) -> Option<String> {
    let Some(leaf) = keys.server.chain_der.first() else { return Some("it was empty".into()) };
    let summary = match cert::parse_leaf(leaf) {
        Ok(summary) => summary,
        Err(e) => return Some(e.to_string()),
    };
    if i64::try_from(now.saturating_add(RENEW_BEFORE)).is_ok_and(|soon| summary.not_after < soon) {
        return Some("the old one ends within 30 days".into());
    }
    let mut roots = RootStore::new();
    if roots.add_der(&keys.ca.cert_der).is_err() {
        return Some("the CA could not be read".into());
    }
    for name in names {
        let Ok(server_name) = ServerName::parse(name) else { continue };
        match cert::verify_server_chain(&keys.server.chain_der, &roots, &server_name, now) {
            Ok(_) => {}
            Err(CertError::NameMismatch { .. }) => return Some(format!("{name} was not in it")),
            Err(e) => return Some(e.to_string()),
        }
    }
    None
}
