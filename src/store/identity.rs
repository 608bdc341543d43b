//! The user's identity: an Ed25519 key and a display name.
//!
//! The key is what others recognise: `tlschat connect` answers a room's
//! CertificateRequest with a self-signed certificate for it whose common
//! name is the display name (see `Identity::certificate`), and the room
//! binds that name to the first key that uses it. The key lives in
//! `CONFIG/identity/key.pem` (PKCS#8 PEM, 0600, which OpenSSL reads) and
//! the name in `CONFIG/identity/name`; both are made on first use and
//! changed only when the user asks (`tlschat id --name`, `tlschat id --new`).
//!
//! Names follow the rules of [`crate::chat::name`]: one word of up to 32
//! letters, marks and digits of one script (and `.`, `_`, `-`), starting
//! with a letter or digit, prepared with the PRECIS Nickname profile and
//! compared without regard to case. Names are shown to people, and
//! look-alike letters from other scripts or invisible characters would let
//! one person pass for another. What is stored, and put in certificates,
//! is the prepared form.

use std::path::PathBuf;

use crate::chat::name;
use crate::store::home::{self, Access, FileError};
use crate::store::pki::{self, PkiError};
use crate::tls::crypto::{self, Ed25519Key, Rng};
use crate::tls::{CertSummary, Fingerprint};

pub(crate) use crate::chat::name::{MAX_NAME, NameError};

/// Why an identity could not be loaded, made or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum IdentityError {
    /// A file or directory problem.
    #[error(transparent)]
    File(#[from] FileError),
    /// The key file is there but is not an Ed25519 key.
    #[error(
        "{} is not a usable Ed25519 private key ({why}); nothing was changed: restore it from a backup, or make a new identity with `tlschat id --new`",
        .path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The key is there but the name file is not.
    #[error("{} is missing: set your display name with `tlschat id --name NAME`", .path.display())]
    NoName {
        /// The name file.
        path: PathBuf,
    },
    /// The name is there but the key is not.
    #[error(
        "{} is missing (your name is kept in {}): restore the key from a backup, or make a new one with `tlschat id --new`",
        .key.display(), .name.display()
    )]
    NoKey {
        /// The missing key file.
        key: PathBuf,
        /// The name file that is there.
        name: PathBuf,
    },
    /// The name file holds something that is not a valid name.
    #[error("{} does not hold a valid name ({why}): set one with `tlschat id --name NAME`", .path.display())]
    BadNameFile {
        /// The name file.
        path: PathBuf,
        /// Why the name is invalid.
        why: NameError,
    },
    /// A display name that breaks the rules.
    #[error("{name:?} cannot be a display name: {why}")]
    BadName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        why: NameError,
    },
    /// The certificate for the identity could not be made.
    #[error("cannot make the identity certificate: {0}")]
    Certificate(#[from] PkiError),
}

/// Checks a display name that must be in its prepared form (see
/// [`name::check`]): a certificate's, or one read back from a file.
pub(crate) fn check_name(name: &str) -> Result<(), NameError> {
    name::check(name).map(|_| ())
}

/// The name a new identity gets: the login name if it makes a valid name
/// (without the characters a name cannot hold), else `user`, followed by
/// four digits of the key's fingerprint so that two people with the same
/// login do not collide: hex digits, or decimal ones after a login in a
/// script other than Latin (`алиса-4660`), where Latin `a`–`f` would mix
/// scripts.
pub(crate) fn default_name(login: Option<&str>, fingerprint: &Fingerprint) -> String {
    let base: String = login
        .unwrap_or_default()
        .split_whitespace()
        .flat_map(str::chars)
        .filter(|&c| name::allowed_char(c))
        .take(MAX_NAME - 6)
        .collect();
    let base = name::prepare(&base).map_or_else(|_| "user".to_owned(), name::Name::into_string);
    let hex = format!("{base}-{}", crypto::hex(&fingerprint.0[..2]));
    if name::check(&hex).is_ok() {
        return hex;
    }
    let decimal = format!("{base}-{:05}", u16::from_be_bytes([fingerprint.0[0], fingerprint.0[1]]));
    if name::check(&decimal).is_ok() { decimal } else { format!("user-{}", crypto::hex(&fingerprint.0[..2])) }
}

/// `name` prepared (see [`name::prepare`]), or why it cannot be a name.
fn prepared(name: &str) -> Result<String, IdentityError> {
    name::prepare(name)
        .map(name::Name::into_string)
        .map_err(|why| IdentityError::BadName { name: name.to_owned(), why })
}

/// A user's identity: key and display name.
#[derive(Clone)]
pub(crate) struct Identity {
    name: String,
    key: Ed25519Key,
}

impl std::fmt::Debug for Identity {
    /// The name and fingerprint; never the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl Identity {
    /// The display name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The key, which signs this identity's chat messages.
    pub(crate) fn key(&self) -> &Ed25519Key {
        &self.key
    }

    /// The fingerprint of the key, as rooms and peers see it.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_ed25519(&self.key.public_key())
    }

    /// A self-signed client certificate for the key, its common name the
    /// display name (see [`pki::self_signed_client`]), to answer a
    /// CertificateRequest with. Made afresh for each connection: the key,
    /// not the certificate, is what others remember.
    pub(crate) fn certificate(
        &self,
        rng: &mut dyn Rng,
        now: u64,
    ) -> Result<pki::CertifiedKey, IdentityError> {
        Ok(pki::self_signed_client(self.key.clone(), &self.name, rng, now)?)
    }
}

/// The display name in a tlschat identity certificate: its subject must be
/// exactly one common name that is a valid display name.
pub(crate) fn name_of(peer: &CertSummary) -> Option<&str> {
    let name = peer.subject.strip_prefix("CN=")?;
    check_name(name).ok().map(|()| name)
}

/// Where an identity is kept, and the operations on it.
#[derive(Debug, Clone)]
pub(crate) struct IdentityStore {
    dir: PathBuf,
}

/// What [`IdentityStore::load_or_create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// The identity was there.
    Existing,
    /// It was made just now.
    Created,
}

impl IdentityStore {
    /// The identity in `dir` (usually [`home::Home::identity_dir`]).
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The key file.
    pub(crate) fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The name file.
    pub(crate) fn name_path(&self) -> PathBuf {
        self.dir.join("name")
    }

    /// The identity if there is one; `None` if neither file exists. Half an
    /// identity (a key without a name or the other way round) is an error
    /// that says how to complete it.
    pub(crate) fn load(&self) -> Result<Option<Identity>, IdentityError> {
        if !self.dir.exists() {
            return Ok(None);
        }
        home::private_dir(&self.dir)?;
        let key = self.read_key()?;
        let name = self.read_name()?;
        match (key, name) {
            (None, None) => Ok(None),
            (Some(key), Some(name)) => Ok(Some(Identity { name, key })),
            (Some(_), None) => Err(IdentityError::NoName { path: self.name_path() }),
            (None, Some(_)) => Err(IdentityError::NoKey { key: self.key_path(), name: self.name_path() }),
        }
    }

    /// The identity, made on first use with a fresh key from `rng` and the
    /// [`default_name`] for `login` (or `name`, if given).
    pub(crate) fn load_or_create(
        &self,
        rng: &mut dyn Rng,
        login: Option<&str>,
        name: Option<&str>,
    ) -> Result<(Identity, Loaded), IdentityError> {
        if let Some(identity) = self.load()? {
            return Ok((identity, Loaded::Existing));
        }
        home::private_dir(&self.dir)?;
        let key = Ed25519Key::generate(rng);
        let name = match name {
            Some(name) => prepared(name)?,
            None => default_name(login, &Fingerprint::of_ed25519(&key.public_key())),
        };
        // The key first: a name without a key would be refused on the next load.
        home::create_new(&self.key_path(), key.to_pkcs8_pem().as_bytes(), Access::Private)?;
        home::create_new(&self.name_path(), format!("{name}\n").as_bytes(), Access::Private)?;
        Ok((Identity { name, key }, Loaded::Created))
    }

    /// Sets the display name, prepared (see [`name::prepare`]: `Ｊｏｓé`
    /// is stored as `José`); makes the identity first if there is none,
    /// and completes one whose name file is missing.
    pub(crate) fn set_name(&self, rng: &mut dyn Rng, name: &str) -> Result<Identity, IdentityError> {
        let name = prepared(name)?;
        let name = name.as_str();
        match self.load() {
            Ok(None) => return self.load_or_create(rng, None, Some(name)).map(|(identity, _)| identity),
            Ok(Some(_)) | Err(IdentityError::NoName { .. }) => {}
            Err(e) => return Err(e),
        }
        let key = self
            .read_key()?
            .ok_or_else(|| IdentityError::NoKey { key: self.key_path(), name: self.name_path() })?;
        home::replace(&self.name_path(), format!("{name}\n").as_bytes(), Access::Private)?;
        Ok(Identity { name: name.to_owned(), key })
    }

    /// Replaces the key with a fresh one from `rng`, keeping the name (or
    /// taking the default name if there is none). Only for `tlschat id
    /// --new`, after the user confirmed: the old key is gone for good.
    pub(crate) fn replace_key(
        &self,
        rng: &mut dyn Rng,
        login: Option<&str>,
    ) -> Result<Identity, IdentityError> {
        home::private_dir(&self.dir)?;
        let name = match self.read_name() {
            Ok(name) => name,
            Err(IdentityError::BadNameFile { .. }) => None,
            Err(e) => return Err(e),
        };
        let key = Ed25519Key::generate(rng);
        let name = name.unwrap_or_else(|| default_name(login, &Fingerprint::of_ed25519(&key.public_key())));
        home::replace(&self.key_path(), key.to_pkcs8_pem().as_bytes(), Access::Private)?;
        home::replace(&self.name_path(), format!("{name}\n").as_bytes(), Access::Private)?;
        Ok(Identity { name, key })
    }

    fn read_key(&self) -> Result<Option<Ed25519Key>, IdentityError> {
        let path = self.key_path();
        let Some(pem) = home::read(&path, Access::Private)? else { return Ok(None) };
        if pem.trim().is_empty() {
            return Err(IdentityError::BadKey { path, why: "the file is empty".into() });
        }
        Ed25519Key::from_pkcs8_pem(&pem)
            .map(Some)
            .map_err(|e| IdentityError::BadKey { path, why: e.to_string() })
    }

    fn read_name(&self) -> Result<Option<String>, IdentityError> {
        let path = self.name_path();
        let Some(text) = home::read(&path, Access::Private)? else { return Ok(None) };
        // A name written by hand is taken in its prepared form.
        let name = name::prepare(text.trim())
            .map_err(|why| IdentityError::BadNameFile { path: path.clone(), why })?;
        Ok(Some(name.into_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::SeededRng;

    #[test]
    fn names_are_short_words_of_one_script() {
        for good in ["alice", "Bob", "a", "x-1.y_2", &"a".repeat(32), "José", "józef", "Алиса", "李雷"]
        {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(&"a".repeat(33)), Err(NameError::TooLong));
        assert_eq!(check_name("-a"), Err(NameError::BadStart));
        assert_eq!(check_name("a b"), Err(NameError::Space));
        // Cyrillic а looks like Latin a; a zero-width space looks like nothing.
        assert_eq!(check_name("\u{430}lice"), Err(NameError::MixedScripts("Cyrillic and Latin".into())));
        assert_eq!(check_name("al\u{200b}ice"), Err(NameError::BadChar('\u{200b}')));
        assert_eq!(check_name("a]b"), Err(NameError::BadChar(']')));
        // A certificate carries the prepared form, not a look of it.
        assert_eq!(check_name("Ｊｏｓé"), Err(NameError::NotPrepared("José".into())));
    }

    #[test]
    fn the_default_name_is_the_login_and_four_digits_of_the_key() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(default_name(Some("alice"), &fp), "alice-abab");
        assert_eq!(default_name(Some("józef"), &fp), "józef-abab");
        assert_eq!(default_name(Some("jörg smith"), &fp), "jörgsmith-abab");
        // Hex digits are Latin letters: after Cyrillic, decimal ones.
        assert_eq!(default_name(Some("алиса"), &fp), "алиса-43947");
        assert_eq!(default_name(Some("さくら"), &fp), "さくら-abab");
        assert_eq!(default_name(Some("_"), &fp), "user-abab");
        assert_eq!(default_name(Some("a\u{1b}[2J"), &fp), "a2J-abab");
        assert_eq!(default_name(None, &fp), "user-abab");
        for login in
            [&"x".repeat(100), &"李".repeat(100), "\u{430}lice", "e\u{301}\u{301}\u{301}\u{301}\u{301}"]
        {
            let name = default_name(Some(login), &fp);
            assert_eq!(check_name(&name), Ok(()), "{login}: {name}");
        }
    }

    #[test]
    fn a_name_is_stored_in_its_prepared_form() {
        let dir = std::env::temp_dir().join(format!("tlschat-identity-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = IdentityStore::new(dir.join("identity"));
        let mut rng = SeededRng::new_for_testing_only(4);
        let identity = store.set_name(&mut rng, " Ｊｏｓé ").unwrap();
        assert_eq!(identity.name(), "José");
        assert_eq!(std::fs::read_to_string(store.name_path()).unwrap(), "José\n");
        assert_eq!(store.load().unwrap().unwrap().name(), "José");
        let refused = store.set_name(&mut rng, "\u{430}lice").unwrap_err().to_string();
        assert!(refused.contains("mixes Cyrillic and Latin"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_fingerprint_of_a_key_is_the_one_its_certificates_show() {
        let mut rng = SeededRng::new_for_testing_only(1);
        let key = Ed25519Key::generate(&mut rng);
        let cert = pki::self_signed_client(key.clone(), "alice", &mut rng, 1_800_000_000).unwrap();
        assert_eq!(Fingerprint::of_ed25519(&key.public_key()), cert.fingerprint());
        let summary = crate::tls::cert::parse_leaf(&cert.chain_der[0]).unwrap();
        assert_eq!(summary.fingerprint, Fingerprint::of_ed25519(&key.public_key()));
        assert_eq!(name_of(&summary), Some("alice"));
    }

    #[test]
    fn a_name_in_another_script_travels_in_the_certificate_as_written() {
        let mut rng = SeededRng::new_for_testing_only(5);
        for name in ["José", "Алиса", "李雷", "محمد"] {
            let cert = pki::self_signed_client(Ed25519Key::generate(&mut rng), name, &mut rng, 1_800_000_000)
                .unwrap();
            let summary = crate::tls::cert::parse_leaf(&cert.chain_der[0]).unwrap();
            assert_eq!(name_of(&summary), Some(name));
        }
    }

    #[test]
    fn only_a_subject_of_one_valid_common_name_names_a_member() {
        let mut rng = SeededRng::new_for_testing_only(2);
        let cert =
            pki::self_signed_client(Ed25519Key::generate(&mut rng), "bob", &mut rng, 1_800_000_000).unwrap();
        let mut summary = crate::tls::cert::parse_leaf(&cert.chain_der[0]).unwrap();
        for subject in ["CN=bob, O=x", "O=x", "CN=b b", "CN=", "cn=bob"] {
            summary.subject = subject.into();
            assert_eq!(name_of(&summary), None, "{subject}");
        }
    }

    #[test]
    fn debug_shows_the_name_and_fingerprint_but_not_the_key() {
        let mut rng = SeededRng::new_for_testing_only(3);
        let key = Ed25519Key::generate(&mut rng);
        let pem = key.to_pkcs8_pem();
        let identity = Identity { name: "alice".into(), key };
        let shown = format!("{identity:?}");
        assert!(shown.contains("alice") && shown.contains("Fingerprint("), "{shown}");
        let body = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(body), "{shown}");
    }
}
