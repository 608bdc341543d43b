//! End-to-end encryption on MLS (RFC 9420), through openmls.
//!
//! A member's MLS state: its key packages, the groups it is in, and what it
//! seals and opens in them. Sans-IO like the rest of [`crate::chat`]: bytes
//! in, bytes and findings out, no socket and no clock of its own. (openmls
//! draws its own randomness and reads the system clock for key package
//! lifetimes; nothing else here does either.)
//!
//! **One identity.** The MLS credential of a member is a basic credential
//! whose identity is its 32-byte Ed25519 identity key, the key it proves in
//! the TLS handshake and that contacts remember, and its MLS signature key
//! is that same key: the leaf signs with the identity key itself
//! (`Identity`). Every leaf that enters a group this member is in (a key
//! package it adds, the members a Welcome lists, the leaves a commit adds or
//! updates) is checked: its credential's identity must be 32 bytes equal to
//! its signature key, and where the caller knows whose it should be (the key
//! a key package was asked for, the key the relay says sent a Welcome or a
//! message, proved in TLS), equal to that key. A leaf that fails is refused
//! before anything it brings is used.
//!
//! The ciphersuite is 0x0003, MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
//! X25519, ChaCha20-Poly1305, SHA-256 and Ed25519, what tlschat's TLS uses.
//!
//! **Order.** A sender's messages are accepted in order only (openmls'
//! out-of-order tolerance is 0): a message older than one already opened
//! from the same sender, a replayed one and an altered one are refused
//! ([`E2eError::Rejected`]), never shown. A commit must be for the group's
//! current epoch: one replayed or delivered out of order is refused the
//! same way.
//!
//! Secrets live in openmls' memory storage (`openmls_memory_storage`, a
//! map of encoded entries), never printed: `Debug` shows the groups' ids
//! and epochs only. That storage does not zeroize: what openmls deletes
//! itself is freed as it was. So this wrapper wipes in place, before
//! openmls deletes them, the entries a forgotten group leaves (every entry
//! whose storage key holds the group's id: its epoch secrets, message
//! secrets, tree, own leaf and its HPKE keys of the current epoch), and
//! every entry when the state is dropped (`E2e::wipe`). What it cannot
//! reach: the HPKE keys of past epochs and the private keys of a key
//! package a Welcome used, which openmls deletes during a merge or a join
//! without wiping, and copies left behind when openmls' map or its entries
//! grew. Those bytes stay in freed memory until reused.

use std::collections::HashMap;

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::signatures::{Signer, SignerError};

use crate::tls::{Ed25519Key, Fingerprint};

/// MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 (0x0003).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// Key packages a member keeps published at the relay.
pub(crate) const KEY_PACKAGES: usize = 4;

/// Epochs back from the current one whose application messages can still
/// be opened (a message sent just before a commit it had not yet seen).
const PAST_EPOCHS: usize = 2;

/// Plaintexts are padded to a multiple of this many bytes, so that the
/// relay sees sizes in steps rather than each text's length.
const PADDING: usize = 32;

/// The most groups one member holds; past it the oldest is forgotten.
pub(crate) const MAX_GROUPS: usize = 1000;

/// MLS's wire formats (RFC 9420 §6), as the first bytes of an MLSMessage say.
pub(crate) mod wire {
    /// A PublicMessage (a commit in the clear to the group).
    pub(crate) const PUBLIC: u16 = 1;
    /// A PrivateMessage: an application message or an encrypted handshake.
    pub(crate) const PRIVATE: u16 = 2;
    /// A Welcome.
    pub(crate) const WELCOME: u16 = 3;
    /// A KeyPackage.
    pub(crate) const KEY_PACKAGE: u16 = 5;
}

/// The wire format of an MLSMessage, from its first four bytes (version 1,
/// mls10, then the format), without parsing the rest: what the relay may
/// know of a message it forwards. `None` for anything else.
pub(crate) fn wire_format(message: &[u8]) -> Option<u16> {
    let head: [u8; 4] = message.get(..4)?.try_into().ok()?;
    let version = u16::from_be_bytes([head[0], head[1]]);
    let format = u16::from_be_bytes([head[2], head[3]]);
    (version == 1 && (wire::PUBLIC..=wire::KEY_PACKAGE).contains(&format)).then_some(format)
}

/// The member's identity key as openmls' signer: the MLS signature key is
/// the identity key.
pub(crate) struct Identity<'a>(pub(crate) &'a Ed25519Key);

impl Signer for Identity<'_> {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.0.sign(payload).to_vec())
    }

    fn signature_scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// Why MLS input was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E2eError {
    /// The bytes are not the MLS message expected.
    #[error("not a valid MLS {what}: {why}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A credential is not the identity it must be.
    #[error("an MLS credential is not the key it must be: {0}")]
    WrongKey(String),
    /// A message for a group this member does not hold.
    #[error("for an end-to-end group this session does not hold")]
    NoGroup,
    /// openmls refused it: altered, replayed, out of order, from the
    /// wrong epoch, or not decryptable by this member.
    #[error("refused by MLS: {0}")]
    Rejected(String),
    /// Something to send could not be made.
    #[error("MLS could not {0}")]
    Failed(String),
}

fn failed(what: &str, e: impl std::fmt::Debug) -> E2eError {
    E2eError::Failed(format!("{what} ({e:?})"))
}

fn rejected(e: impl std::fmt::Debug) -> E2eError {
    E2eError::Rejected(format!("{e:?}"))
}

/// The identity key a leaf claims, once its credential and signature key
/// agree: a basic credential whose identity is the 32-byte key that also
/// signs for the leaf.
pub(crate) fn leaf_key(credential: &Credential, signature_key: &[u8]) -> Result<[u8; 32], E2eError> {
    if credential.credential_type() != CredentialType::Basic {
        return Err(E2eError::WrongKey("not a basic credential".into()));
    }
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|e| E2eError::WrongKey(format!("an unreadable credential ({e:?})")))?;
    let key: [u8; 32] = basic
        .identity()
        .try_into()
        .map_err(|_| E2eError::WrongKey("its identity is not a 32-byte Ed25519 key".into()))?;
    if signature_key != key {
        return Err(E2eError::WrongKey("its signature key is not its identity key".into()));
    }
    Ok(key)
}

fn expect_key(found: [u8; 32], expected: [u8; 32], whose: &str) -> Result<(), E2eError> {
    if found == expected {
        Ok(())
    } else {
        Err(E2eError::WrongKey(format!(
            "{whose} carries the key {}, not the key {} proved",
            Fingerprint::of_ed25519(&found),
            Fingerprint::of_ed25519(&expected)
        )))
    }
}

/// The clear header of an MLS message: what the relay can read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// [`wire`]: private or public.
    pub(crate) wire_format: u16,
    /// The group's id.
    pub(crate) group: Vec<u8>,
    /// The epoch it was sent in.
    pub(crate) epoch: u64,
}

/// A group this member joined from a Welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The group's id.
    pub group: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// The members' identity keys, in leaf order.
    pub members: Vec<[u8; 32]>,
}

/// An MLS message opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// An application message: what a member sealed.
    Application {
        /// The group.
        group: Vec<u8>,
        /// Its epoch.
        epoch: u64,
        /// The sender's identity key (checked against the key the relay
        /// named).
        sender: [u8; 32],
        /// What it sealed.
        plaintext: Vec<u8>,
    },
    /// A commit, merged: the group is at a new epoch.
    Commit {
        /// The group.
        group: Vec<u8>,
        /// The new epoch.
        epoch: u64,
        /// Who committed.
        committer: [u8; 32],
        /// Keys added.
        added: Vec<[u8; 32]>,
        /// Keys removed.
        removed: Vec<[u8; 32]>,
        /// Whether this member was removed (the group is forgotten).
        removed_me: bool,
    },
}

/// What a commit this member made brings, for the caller to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The commit, for the group.
    pub commit: Vec<u8>,
    /// The Welcome for those added, if any.
    pub welcome: Option<Vec<u8>>,
}

/// A member's MLS state.
pub struct E2e {
    provider: OpenMlsRustCrypto,
    me: [u8; 32],
    credential: CredentialWithKey,
    groups: HashMap<Vec<u8>, MlsGroup>,
    /// Group ids in the order they were made or joined, to forget the oldest.
    order: Vec<Vec<u8>>,
}

impl std::fmt::Debug for E2e {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let epochs: Vec<(String, u64)> =
            self.groups.iter().map(|(id, g)| (crate::tls::crypto::hex(id), g.epoch().as_u64())).collect();
        f.debug_struct("E2e").field("groups", &epochs).finish_non_exhaustive()
    }
}

fn sender_ratchet() -> SenderRatchetConfiguration {
    // Tolerance 0: nothing older than what was opened from a sender.
    SenderRatchetConfiguration::new(0, 1000)
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .build()
}

fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .build()
}

fn bytes(message: &MlsMessageOut, what: &str) -> Result<Vec<u8>, E2eError> {
    message.to_bytes().map_err(|e| failed(what, e))
}

fn parse(message: &[u8], what: &'static str) -> Result<MlsMessageBodyIn, E2eError> {
    let mut rest = message;
    let parsed = MlsMessageIn::tls_deserialize(&mut rest)
        .map_err(|e| E2eError::Malformed { what, why: format!("{e:?}") })?;
    if !rest.is_empty() {
        return Err(E2eError::Malformed { what, why: "bytes after the message".into() });
    }
    Ok(parsed.extract())
}

/// What an end-to-end room's member expects an MLS message of its group to
/// be: a member's line, or a commit whose adds and removes the relay
/// declared (checked before it is merged).
pub(crate) enum Expect<'a> {
    /// An application message.
    Application,
    /// A commit, which must add exactly `adds` and remove exactly `removes`.
    Commit {
        /// The keys the relay says it adds.
        adds: &'a [[u8; 32]],
        /// The keys the relay says it removes.
        removes: &'a [[u8; 32]],
    },
}

// An end-to-end room's group (see `crate::chat::group`): opening with what
// is expected, so that a commit is checked before it is merged and never
// taken where a line was expected.
impl E2e {
    /// Opens a message of `group` that the relay says `from` sent, as
    /// `expect` says it must be. A commit that adds or removes other keys
    /// than declared, one where a line was expected, or a line where a
    /// commit was, is refused and nothing of it is merged.
    pub(crate) fn open_expected(
        &mut self,
        group: &[u8],
        message: &[u8],
        from: [u8; 32],
        expect: Expect<'_>,
    ) -> Result<Opened, E2eError> {
        self.open_as(message, from, Some((group, expect)))
    }
}

impl E2e {
    /// The MLS state of the member whose identity key is `me`.
    pub fn new(me: [u8; 32]) -> Self {
        let credential = CredentialWithKey {
            credential: BasicCredential::new(me.to_vec()).into(),
            signature_key: me.to_vec().into(),
        };
        Self {
            provider: OpenMlsRustCrypto::default(),
            me,
            credential,
            groups: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// A new key package, as an MLSMessage to publish; its private keys
    /// stay here until a Welcome uses them.
    pub fn key_package(&mut self, key: &Ed25519Key) -> Result<Vec<u8>, E2eError> {
        let bundle = KeyPackage::builder()
            .build(CIPHERSUITE, &self.provider, &Identity(key), self.credential.clone())
            .map_err(|e| failed("make a key package", e))?;
        bytes(&MlsMessageOut::from(bundle.key_package().clone()), "encode a key package")
    }

    /// Reads and checks a key package published for `expected`: its
    /// signature, lifetime and ciphersuite, and that its credential is
    /// `expected`'s identity key.
    pub(crate) fn check_key_package(
        &self,
        message: &[u8],
        expected: [u8; 32],
    ) -> Result<KeyPackage, E2eError> {
        let MlsMessageBodyIn::KeyPackage(package) = parse(message, "key package")? else {
            return Err(E2eError::Malformed {
                what: "key package",
                why: "another kind of MLS message".into(),
            });
        };
        let package = package
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| E2eError::Malformed { what: "key package", why: format!("{e:?}") })?;
        if package.ciphersuite() != CIPHERSUITE {
            return Err(E2eError::Malformed { what: "key package", why: "another ciphersuite".into() });
        }
        let leaf = package.leaf_node();
        let key = leaf_key(leaf.credential(), leaf.signature_key().as_slice())?;
        expect_key(key, expected, "the key package")?;
        Ok(package)
    }

    /// A new group with this member alone in it; returns its id.
    pub fn create(&mut self, key: &Ed25519Key) -> Result<Vec<u8>, E2eError> {
        let group = MlsGroup::new(&self.provider, &Identity(key), &create_config(), self.credential.clone())
            .map_err(|e| failed("create a group", e))?;
        let id = group.group_id().as_slice().to_vec();
        self.keep(id.clone(), group);
        Ok(id)
    }

    fn keep(&mut self, id: Vec<u8>, group: MlsGroup) {
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&id) && !self.order.is_empty() {
            let old = self.order.remove(0);
            self.forget(&old);
        }
        self.order.retain(|g| *g != id);
        self.order.push(id.clone());
        self.groups.insert(id, group);
    }

    /// Drops a group and its secrets.
    pub(crate) fn forget(&mut self, group: &[u8]) {
        if let Some(mut g) = self.groups.remove(group) {
            self.wipe(group);
            let _ = g.delete(self.provider.storage());
        }
        self.order.retain(|g| g != group);
    }

    /// Whether this member holds the group.
    #[cfg(test)]
    pub(crate) fn holds(&self, group: &[u8]) -> bool {
        self.groups.contains_key(group)
    }

    /// The group's epoch.
    pub fn epoch(&self, group: &[u8]) -> Option<u64> {
        self.groups.get(group).map(|g| g.epoch().as_u64())
    }

    /// The members' identity keys, in leaf order.
    pub(crate) fn members(&self, group: &[u8]) -> Vec<[u8; 32]> {
        self.groups
            .get(group)
            .map(|g| g.members().filter_map(|m| leaf_key(&m.credential, &m.signature_key).ok()).collect())
            .unwrap_or_default()
    }

    /// Commits the addition of these key packages (each checked for the key
    /// it was asked for): the commit for the group and the Welcome for them.
    /// The commit is pending until [`Self::confirm`] (once the relay has put
    /// it in order) or `Self::discard`.
    pub fn add(
        &mut self,
        key: &Ed25519Key,
        group: &[u8],
        packages: &[(&[u8], [u8; 32])],
    ) -> Result<Commit, E2eError> {
        let packages = packages
            .iter()
            .map(|(bytes, expected)| self.check_key_package(bytes, *expected))
            .collect::<Result<Vec<_>, _>>()?;
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        let (commit, welcome, _) =
            g.add_members(provider, &Identity(key), &packages).map_err(|e| failed("add members", e))?;
        Ok(Commit {
            commit: bytes(&commit, "encode a commit")?,
            welcome: Some(bytes(&welcome, "encode a Welcome")?),
        })
    }

    /// Commits the removal of these members (by identity key).
    pub(crate) fn remove(
        &mut self,
        key: &Ed25519Key,
        group: &[u8],
        who: &[[u8; 32]],
    ) -> Result<Commit, E2eError> {
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        let leaves: Vec<LeafNodeIndex> = g
            .members()
            .filter(|m| leaf_key(&m.credential, &m.signature_key).is_ok_and(|k| who.contains(&k)))
            .map(|m| m.index)
            .collect();
        if leaves.is_empty() {
            return Err(E2eError::Failed("remove: none of them is in the group".into()));
        }
        let (commit, welcome, _) =
            g.remove_members(provider, &Identity(key), &leaves).map_err(|e| failed("remove members", e))?;
        let welcome = welcome.map(|w| bytes(&w, "encode a Welcome")).transpose()?;
        Ok(Commit { commit: bytes(&commit, "encode a commit")?, welcome })
    }

    /// Commits a fresh leaf of our own (new HPKE key, new path secrets): what
    /// a member does now and then for post-compromise security.
    pub fn update(&mut self, key: &Ed25519Key, group: &[u8]) -> Result<Commit, E2eError> {
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        let bundle = g
            .self_update(provider, &Identity(key), LeafNodeParameters::default())
            .map_err(|e| failed("update our leaf", e))?;
        let (commit, welcome, _) = bundle.into_contents();
        let welcome = welcome
            .map(|w| bytes(&MlsMessageOut::from_welcome(w, ProtocolVersion::Mls10), "encode a Welcome"))
            .transpose()?;
        Ok(Commit { commit: bytes(&commit, "encode a commit")?, welcome })
    }

    /// Takes our pending commit into the group: a new epoch.
    pub fn confirm(&mut self, group: &[u8]) -> Result<u64, E2eError> {
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        g.merge_pending_commit(provider).map_err(|e| failed("merge our commit", e))?;
        Ok(g.epoch().as_u64())
    }

    /// Drops our pending commit (another was ordered first).
    pub(crate) fn discard(&mut self, group: &[u8]) -> Result<(), E2eError> {
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        g.clear_pending_commit(provider.storage()).map_err(|e| failed("drop our commit", e))
    }

    /// Joins a group from a Welcome that the relay says `from` sent. Every
    /// member's credential must be its signature key, the Welcome's signer
    /// must be `from`, and this member must be in it.
    pub fn join(&mut self, welcome: &[u8], from: [u8; 32]) -> Result<Joined, E2eError> {
        let MlsMessageBodyIn::Welcome(welcome) = parse(welcome, "Welcome")? else {
            return Err(E2eError::Malformed { what: "Welcome", why: "another kind of MLS message".into() });
        };
        let staged = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(rejected)?;
        let members = staged
            .members()
            .map(|m| leaf_key(&m.credential, &m.signature_key))
            .collect::<Result<Vec<_>, _>>()?;
        let sender = staged.welcome_sender().map_err(rejected)?;
        let sender = leaf_key(sender.credential(), sender.signature_key().as_slice())?;
        expect_key(sender, from, "the Welcome's signer")?;
        if !members.contains(&self.me) {
            return Err(E2eError::WrongKey("the Welcome's group does not hold our key".into()));
        }
        let group = staged.into_group(&self.provider).map_err(rejected)?;
        let id = group.group_id().as_slice().to_vec();
        let epoch = group.epoch().as_u64();
        // A Welcome into a group we hold replaces it (the sender started over).
        self.forget(&id);
        self.keep(id.clone(), group);
        Ok(Joined { group: id, epoch, members })
    }

    /// Seals `plaintext` for the group.
    pub fn seal(&mut self, key: &Ed25519Key, group: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
        let provider = &self.provider;
        let g = self.groups.get_mut(group).ok_or(E2eError::NoGroup)?;
        let message =
            g.create_message(provider, &Identity(key), plaintext).map_err(|e| failed("seal a message", e))?;
        bytes(&message, "encode a message")
    }

    /// What anyone who holds an MLS PrivateMessage or PublicMessage can read
    /// of it (the relay among them): its wire format, group and epoch.
    pub(crate) fn header(message: &[u8]) -> Option<Header> {
        let protocol = match parse(message, "message").ok()? {
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            _ => return None,
        };
        Some(Header {
            wire_format: wire_format(message)?,
            group: protocol.group_id().as_slice().to_vec(),
            epoch: protocol.epoch().as_u64(),
        })
    }

    /// The group an MLS PrivateMessage or PublicMessage is for, read from its
    /// header (which the relay sees too).
    #[cfg(test)]
    pub(crate) fn group_of(message: &[u8]) -> Option<Vec<u8>> {
        match parse(message, "message").ok()? {
            MlsMessageBodyIn::PrivateMessage(m) => {
                Some(ProtocolMessage::from(m).group_id().as_slice().to_vec())
            }
            MlsMessageBodyIn::PublicMessage(m) => {
                Some(ProtocolMessage::from(m).group_id().as_slice().to_vec())
            }
            _ => None,
        }
    }

    /// Opens a message of one of our groups that the relay says `from` sent:
    /// an application message, or a commit (checked, then merged).
    pub fn open(&mut self, message: &[u8], from: [u8; 32]) -> Result<Opened, E2eError> {
        self.open_as(message, from, None)
    }

    /// Opens a message the relay says `from` sent: of any of our groups
    /// (a pair's: a private or a public message), or, with `room`, of
    /// that group only, as a private message, and what it must be.
    fn open_as(
        &mut self,
        message: &[u8],
        from: [u8; 32],
        room: Option<(&[u8], Expect<'_>)>,
    ) -> Result<Opened, E2eError> {
        let protocol = match parse(message, "message")? {
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PublicMessage(m) if room.is_none() => ProtocolMessage::from(m),
            _ => {
                let why = if room.is_some() {
                    "not a private message"
                } else {
                    "neither a private nor a public message"
                };
                return Err(E2eError::Malformed { what: "message", why: why.into() });
            }
        };
        let id = protocol.group_id().as_slice().to_vec();
        if room.as_ref().is_some_and(|(group, _)| *group != id.as_slice()) {
            return Err(E2eError::Rejected("for another group than the room's".into()));
        }
        let provider = &self.provider;
        let g = self.groups.get_mut(&id).ok_or(E2eError::NoGroup)?;
        let (processed, sender) = process_from(g, provider, protocol, from)?;
        let expect = room.map(|(_, expect)| expect);
        match (processed.into_content(), expect) {
            (ProcessedMessageContent::ApplicationMessage(app), None | Some(Expect::Application)) => {
                Ok(Opened::Application {
                    group: id,
                    epoch: g.epoch().as_u64(),
                    sender,
                    plaintext: app.into_bytes(),
                })
            }
            (ProcessedMessageContent::StagedCommitMessage(_), Some(Expect::Application)) => {
                Err(E2eError::Rejected("a commit where a member's line was expected (not merged)".into()))
            }
            (ProcessedMessageContent::StagedCommitMessage(staged), expect) => {
                let mut added = Vec::new();
                for add in staged.add_proposals() {
                    let leaf = add.add_proposal().key_package().leaf_node();
                    added.push(leaf_key(leaf.credential(), leaf.signature_key().as_slice())?);
                }
                for update in staged.update_proposals() {
                    let leaf = update.update_proposal().leaf_node();
                    leaf_key(leaf.credential(), leaf.signature_key().as_slice())?;
                }
                if let Some(leaf) = staged.update_path_leaf_node() {
                    expect_key(
                        leaf_key(leaf.credential(), leaf.signature_key().as_slice())?,
                        sender,
                        "the committer's new leaf",
                    )?;
                }
                let removed: Vec<[u8; 32]> = staged
                    .remove_proposals()
                    .filter_map(|r| g.member_at(r.remove_proposal().removed()))
                    .filter_map(|m| leaf_key(&m.credential, &m.signature_key).ok())
                    .collect();
                if let Some(Expect::Commit { adds, removes }) = expect {
                    let same = |a: &[[u8; 32]], b: &[[u8; 32]]| {
                        a.len() == b.len()
                            && a.iter().all(|k| b.contains(k))
                            && b.iter().all(|k| a.contains(k))
                    };
                    if !same(&added, adds) || !same(&removed, removes) {
                        return Err(E2eError::WrongKey(format!(
                            "the commit adds {} and removes {} member(s), not the {} and {} the relay declared",
                            added.len(),
                            removed.len(),
                            adds.len(),
                            removes.len()
                        )));
                    }
                }
                let removed_me = staged.self_removed();
                g.merge_staged_commit(provider, *staged).map_err(rejected)?;
                let epoch = g.epoch().as_u64();
                if removed_me {
                    self.forget(&id);
                }
                Ok(Opened::Commit { group: id, epoch, committer: sender, added, removed, removed_me })
            }
            (_, Some(Expect::Commit { .. })) => {
                Err(E2eError::Rejected("not a commit, where one was expected".into()))
            }
            _ => Err(E2eError::Rejected("a proposal on its own (only commits and messages are used)".into())),
        }
    }
}

/// Processes a message of group `g` (decrypts it, checks its signature and
/// epoch, stages a commit without merging it) and names its sender's
/// identity key, which must be `from`, the key the relay names.
fn process_from(
    g: &mut MlsGroup,
    provider: &OpenMlsRustCrypto,
    protocol: ProtocolMessage,
    from: [u8; 32],
) -> Result<(ProcessedMessage, [u8; 32]), E2eError> {
    let processed = g.process_message(provider, protocol).map_err(rejected)?;
    let sender = match processed.sender() {
        Sender::Member(index) => {
            g.member_at(*index).ok_or_else(|| E2eError::Rejected("from no member".into()))?
        }
        _ => return Err(E2eError::Rejected("not sent by a member of the group".into())),
    };
    let sender = leaf_key(&sender.credential, &sender.signature_key)?;
    expect_key(sender, from, "the message's sender")?;
    Ok((processed, sender))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::SeededRng;

    struct Person {
        key: Ed25519Key,
        mls: E2e,
    }

    fn person(seed: u8) -> Person {
        let key = Ed25519Key::from_seed(&[seed; 32]);
        let mls = E2e::new(key.public_key());
        Person { key, mls }
    }

    impl Person {
        fn pk(&self) -> [u8; 32] {
            self.key.public_key()
        }
        fn package(&mut self) -> Vec<u8> {
            self.mls.key_package(&self.key).unwrap()
        }
    }

    /// Alice makes a group and adds the others by their key packages.
    fn group_of(alice: &mut Person, others: &mut [&mut Person]) -> Vec<u8> {
        let group = alice.mls.create(&alice.key).unwrap();
        let packages: Vec<(Vec<u8>, [u8; 32])> = others.iter_mut().map(|p| (p.package(), p.pk())).collect();
        let refs: Vec<(&[u8], [u8; 32])> = packages.iter().map(|(b, k)| (b.as_slice(), *k)).collect();
        let commit = alice.mls.add(&alice.key, &group, &refs).unwrap();
        alice.mls.confirm(&group).unwrap();
        for p in others.iter_mut() {
            let joined = p.mls.join(commit.welcome.as_deref().unwrap(), alice.pk()).unwrap();
            assert_eq!(joined.group, group);
        }
        group
    }

    fn text(opened: Opened) -> Vec<u8> {
        match opened {
            Opened::Application { plaintext, .. } => plaintext,
            other => panic!("not an application message: {other:?}"),
        }
    }

    #[test]
    fn the_mls_signature_key_is_the_identity_key_and_the_suite_is_0x0003() {
        let mut alice = person(1);
        let package = alice.package();
        assert_eq!(wire_format(&package), Some(wire::KEY_PACKAGE));
        let checked = alice.mls.check_key_package(&package, alice.pk()).unwrap();
        assert_eq!(checked.leaf_node().signature_key().as_slice(), alice.pk());
        assert_eq!(u16::from(checked.ciphersuite()), 0x0003);
        // Asked for bob's key, a package of alice's is refused.
        let bob = person(2);
        assert!(matches!(alice.mls.check_key_package(&package, bob.pk()), Err(E2eError::WrongKey(_))));
    }

    #[test]
    fn a_credential_that_is_not_its_signature_key_is_refused() {
        // A leaf whose credential names alice but which signs with mallory's
        // key: openmls would accept it; tlschat does not.
        let mallory = Ed25519Key::from_seed(&[9; 32]);
        let alice = person(1);
        let provider = OpenMlsRustCrypto::default();
        let lying = CredentialWithKey {
            credential: BasicCredential::new(alice.pk().to_vec()).into(),
            signature_key: mallory.public_key().to_vec().into(),
        };
        let bundle = KeyPackage::builder().build(CIPHERSUITE, &provider, &Identity(&mallory), lying).unwrap();
        let bytes = MlsMessageOut::from(bundle.key_package().clone()).to_bytes().unwrap();
        let err = alice.mls.check_key_package(&bytes, alice.pk()).unwrap_err();
        assert!(matches!(err, E2eError::WrongKey(_)), "{err}");
    }

    #[test]
    fn members_read_each_other_and_a_welcome_from_another_key_is_refused() {
        let (mut alice, mut bob) = (person(1), person(2));
        let group = group_of(&mut alice, &mut [&mut bob]);
        let sealed = alice.mls.seal(&alice.key, &group, b"hello bob").unwrap();
        assert_eq!(wire_format(&sealed), Some(wire::PRIVATE));
        assert_eq!(E2e::group_of(&sealed), Some(group.clone()));
        let header = E2e::header(&sealed).unwrap();
        assert_eq!((header.wire_format, header.group, header.epoch), (wire::PRIVATE, group.clone(), 1));
        assert_eq!(text(bob.mls.open(&sealed, alice.pk()).unwrap()), b"hello bob");
        let back = bob.mls.seal(&bob.key, &group, b"hi alice").unwrap();
        assert_eq!(text(alice.mls.open(&back, bob.pk()).unwrap()), b"hi alice");
        // The relay names the wrong sender: refused.
        let again = alice.mls.seal(&alice.key, &group, b"who am I").unwrap();
        let carol = person(3);
        assert!(matches!(bob.mls.open(&again, carol.pk()), Err(E2eError::WrongKey(_))));

        // A Welcome the relay says carol sent, signed by alice: refused.
        let mut dave = person(4);
        let g2 = alice.mls.create(&alice.key).unwrap();
        let p = dave.package();
        let c = alice.mls.add(&alice.key, &g2, &[(&p, dave.pk())]).unwrap();
        let err = dave.mls.join(c.welcome.as_deref().unwrap(), carol.pk()).unwrap_err();
        assert!(matches!(err, E2eError::WrongKey(_)), "{err}");
    }

    #[test]
    fn a_removed_member_cannot_open_what_is_sent_after_its_removal() {
        let (mut alice, mut bob, mut carol) = (person(1), person(2), person(3));
        let group = group_of(&mut alice, &mut [&mut bob, &mut carol]);
        let before = alice.mls.seal(&alice.key, &group, b"all three").unwrap();
        // Carol keeps her copy of the state as it was, and the ciphertexts.
        assert_eq!(text(carol.mls.open(&before, alice.pk()).unwrap()), b"all three");
        let removal = alice.mls.remove(&alice.key, &group, &[carol.pk()]).unwrap();
        alice.mls.confirm(&group).unwrap();
        let Opened::Commit { removed, .. } = bob.mls.open(&removal.commit, alice.pk()).unwrap() else {
            panic!("a commit")
        };
        assert_eq!(removed, vec![carol.pk()]);
        let after = alice.mls.seal(&alice.key, &group, b"without carol").unwrap();
        assert_eq!(text(bob.mls.open(&after, alice.pk()).unwrap()), b"without carol");
        // Carol, holding the old epoch and never processing the removal,
        // cannot open the captured ciphertext.
        let err = carol.mls.open(&after, alice.pk()).unwrap_err();
        assert!(matches!(err, E2eError::Rejected(_)), "{err}");
        // Processing it, she learns she was removed and forgets the group:
        // still nothing to open with.
        let Opened::Commit { removed_me: true, .. } = carol.mls.open(&removal.commit, alice.pk()).unwrap()
        else {
            panic!("carol learns her removal")
        };
        assert!(!carol.mls.holds(&group));
        assert_eq!(carol.mls.open(&after, alice.pk()).unwrap_err(), E2eError::NoGroup);
    }

    #[test]
    fn a_joiner_cannot_open_what_was_sent_before_its_welcome() {
        let (mut alice, mut bob, mut carol) = (person(1), person(2), person(3));
        let group = group_of(&mut alice, &mut [&mut bob]);
        let early = alice.mls.seal(&alice.key, &group, b"before carol").unwrap();
        assert_eq!(text(bob.mls.open(&early, alice.pk()).unwrap()), b"before carol");
        let p = carol.package();
        let add = alice.mls.add(&alice.key, &group, &[(&p, carol.pk())]).unwrap();
        alice.mls.confirm(&group).unwrap();
        bob.mls.open(&add.commit, alice.pk()).unwrap();
        let joined = carol.mls.join(add.welcome.as_deref().unwrap(), alice.pk()).unwrap();
        assert_eq!(joined.epoch, 2);
        assert_eq!(joined.members, vec![alice.pk(), bob.pk(), carol.pk()]);
        let err = carol.mls.open(&early, alice.pk()).unwrap_err();
        assert!(matches!(err, E2eError::Rejected(_)), "{err}");
        let late = alice.mls.seal(&alice.key, &group, b"with carol").unwrap();
        assert_eq!(text(carol.mls.open(&late, alice.pk()).unwrap()), b"with carol");
    }

    #[test]
    fn altered_replayed_and_reordered_messages_are_refused() {
        let (mut alice, mut bob) = (person(1), person(2));
        let group = group_of(&mut alice, &mut [&mut bob]);
        let one = alice.mls.seal(&alice.key, &group, b"one").unwrap();
        let two = alice.mls.seal(&alice.key, &group, b"two").unwrap();
        let three = alice.mls.seal(&alice.key, &group, b"three").unwrap();
        // Altered: every byte after the header, one at a time, in turn.
        let mut rng = SeededRng::new_for_testing_only(7);
        for _ in 0..40 {
            let mut bad = one.clone();
            let mut pick = [0u8; 2];
            crate::tls::Rng::fill(&mut rng, &mut pick);
            let at = 4 + usize::from(u16::from_be_bytes(pick)) % (bad.len() - 4);
            bad[at] ^= 1 << (pick[0] % 8);
            assert!(bob.mls.open(&bad, alice.pk()).is_err(), "a flipped bit at {at} was accepted");
        }
        assert_eq!(text(bob.mls.open(&one, alice.pk()).unwrap()), b"one");
        // Replayed.
        assert!(matches!(bob.mls.open(&one, alice.pk()), Err(E2eError::Rejected(_))));
        // Reordered: three before two; two, arriving late, is refused.
        assert_eq!(text(bob.mls.open(&three, alice.pk()).unwrap()), b"three");
        assert!(matches!(bob.mls.open(&two, alice.pk()), Err(E2eError::Rejected(_))));
        // Truncated and extended.
        assert!(bob.mls.open(&one[..one.len() - 1], alice.pk()).is_err());
        let mut longer = one.clone();
        longer.push(0);
        assert!(matches!(bob.mls.open(&longer, alice.pk()), Err(E2eError::Malformed { .. })));
    }

    #[test]
    fn commits_replayed_or_out_of_order_are_refused() {
        let (mut alice, mut bob) = (person(1), person(2));
        let group = group_of(&mut alice, &mut [&mut bob]);
        let first = alice.mls.update(&alice.key, &group).unwrap();
        alice.mls.confirm(&group).unwrap();
        let second = alice.mls.update(&alice.key, &group).unwrap();
        alice.mls.confirm(&group).unwrap();
        // Out of order: the second before the first.
        assert!(matches!(bob.mls.open(&second.commit, alice.pk()), Err(E2eError::Rejected(_))));
        let Opened::Commit { epoch: 2, .. } = bob.mls.open(&first.commit, alice.pk()).unwrap() else {
            panic!("the first commit")
        };
        // Replayed.
        assert!(matches!(bob.mls.open(&first.commit, alice.pk()), Err(E2eError::Rejected(_))));
        let Opened::Commit { epoch: 3, .. } = bob.mls.open(&second.commit, alice.pk()).unwrap() else {
            panic!("the second commit")
        };
        let m = alice.mls.seal(&alice.key, &group, b"epoch three").unwrap();
        assert_eq!(text(bob.mls.open(&m, alice.pk()).unwrap()), b"epoch three");
    }

    #[test]
    fn garbage_never_panics() {
        let mut bob = person(2);
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 1) as u8).collect();
            assert!(bob.mls.open(&junk, [0; 32]).is_err());
            assert!(bob.mls.join(&junk, [0; 32]).is_err());
            assert!(bob.mls.check_key_package(&junk, [0; 32]).is_err());
        }
        assert_eq!(wire_format(&[0, 1, 0, 2]), Some(wire::PRIVATE));
        assert_eq!(wire_format(&[0, 2, 0, 2]), None);
        assert_eq!(wire_format(&[0, 1, 0, 9]), None);
        assert_eq!(wire_format(&[0, 1]), None);
    }
}

// ---------------------------------------------------------------------------
// What a learner sees of a group (the F5 panel), and pair groups' updates.
// ---------------------------------------------------------------------------

/// The label of the exporter secret the group panel shows (RFC 9420 §8.5):
/// both members of a group derive the same value from it in one epoch, and
/// nothing tlschat keys with it.
pub(crate) const EXPORTER_LABEL: &str = "tlschat group panel";

/// One node of a group's ratchet tree, in the tree's array order (RFC 9420
/// §4.1, Appendix C): leaves at even indices, parents at odd ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeNode {
    /// A leaf: a member's slot.
    Leaf {
        /// Its index in the array (twice the leaf index).
        node: u32,
        /// The member's identity key; `None` for a blank leaf.
        key: Option<[u8; 32]>,
        /// Whether it is this member's leaf.
        me: bool,
    },
    /// A parent node: filled when a commit's path gave it an HPKE key.
    Parent {
        /// Its index in the array.
        node: u32,
        /// Its HPKE public key; `None` for a blank node.
        key: Option<Vec<u8>>,
    },
}

impl TreeNode {}

/// Values of the current epoch that two members of a group derive alike,
/// for a learner to compare (`--reveal`). Wiped on drop, never in `Debug`.
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct EpochSecrets {
    /// The epoch authenticator (RFC 9420 §8.7).
    pub authenticator: Vec<u8>,
    /// `MLS-Exporter(EXPORTER_LABEL, "", 32)` (§8.5).
    pub exporter: Vec<u8>,
    /// The confirmation tag of the commit that began the epoch (§6.1):
    /// public in the commit, shown beside the secrets it proves.
    pub confirmation_tag: Vec<u8>,
}

impl std::fmt::Debug for EpochSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochSecrets(hidden)")
    }
}

/// A group as one member holds it now: epoch, ratchet tree, and the epoch
/// values `--reveal` shows. `Debug` never shows the values.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupView {
    /// The group's id.
    pub group: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// Its ratchet tree, in array order.
    pub tree: Vec<TreeNode>,
    /// This epoch's values to compare; `None` once dropped by a viewer
    /// that does not reveal them.
    pub secrets: Option<EpochSecrets>,
    /// A commit of ours waits for the other member's word.
    pub pending: bool,
}

impl std::fmt::Debug for GroupView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupView")
            .field("group", &crate::tls::crypto::hex(&self.group))
            .field("epoch", &self.epoch)
            .field("tree", &self.tree)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// What a key package says, for the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// Its ciphersuite's code (0x0003).
    pub(crate) suite: u16,
    /// The identity key its leaf carries (credential = signature key).
    pub(crate) leaf_key: [u8; 32],
    /// Its HPKE init key, that a Welcome is sealed to.
    pub(crate) init_key: Vec<u8>,
    /// Valid from, Unix seconds.
    pub(crate) not_before: u64,
    /// Valid until, Unix seconds.
    pub(crate) not_after: u64,
    /// Its size in bytes, as an MLSMessage.
    pub(crate) size: usize,
}

/// How an Update commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// Ours, sent: it waits for the other member to take it.
    Sent,
    /// Ours, taken by the other member: merged.
    Confirmed,
    /// Theirs, merged.
    Merged,
    /// Both updated in one epoch and ours won (the lower identity key's
    /// commit wins): theirs is dropped, they redo theirs.
    RivalWon,
    /// Both updated in one epoch and theirs won: ours is dropped, theirs
    /// merged, and ours is done again in the new epoch.
    RivalLost,
}

/// A step in the life of a group, for the panel (and `--json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Key packages made and published at the relay.
    Published {
        /// How many.
        count: usize,
        /// What the first says.
        first: PackageInfo,
    },
    /// A key package fetched from the relay and checked.
    Fetched(PackageInfo),
    /// Members proposed for adding (committed at once).
    Add {
        /// Their identity keys.
        added: Vec<[u8; 32]>,
    },
    /// A commit (ours, or merged from another member).
    Commit {
        /// The epoch before it.
        from: u64,
        /// The epoch after it.
        to: u64,
        /// The proposals it carries, by kind.
        proposals: Vec<&'static str>,
        /// Its size in bytes.
        size: usize,
        /// Ours (else another member's).
        mine: bool,
    },
    /// A Welcome, sent or taken.
    Welcome {
        /// Its size in bytes.
        size: usize,
        /// We sent it (else it added us).
        made: bool,
        /// Members in the group it opens.
        members: usize,
    },
    /// An Update commit: a member's fresh leaf and path.
    Update {
        /// The epoch it was made at.
        from: u64,
        /// The epoch it leads to.
        to: u64,
        /// Its size in bytes (0 where it was not seen again).
        size: usize,
        /// Whose: ours (else the other member's).
        mine: bool,
        /// How it stands.
        state: UpdateState,
    },
    /// Members removed.
    Remove {
        /// Their identity keys.
        removed: Vec<[u8; 32]>,
    },
}

impl Step {
    /// The MLS name of the step, as the panel heads it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Published { .. } | Self::Fetched(_) => "KeyPackage",
            Self::Add { .. } => "Add",
            Self::Commit { .. } => "Commit",
            Self::Welcome { .. } => "Welcome",
            Self::Update { .. } => "Update",
            Self::Remove { .. } => "Remove",
        }
    }
}

/// What a pair group's message brought ([`E2e::open_pair`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PairOpened {
    /// An application message (empty: the other member's word that it took
    /// our commit).
    Message(Opened),
    /// The other member's Update commit, merged.
    Updated {
        /// The group.
        group: Vec<u8>,
        /// The epoch it was made at.
        from: u64,
        /// The new epoch.
        epoch: u64,
        /// Ours, made at the same epoch, lost to it and was dropped.
        ours_dropped: bool,
    },
    /// The other member's Update commit, made at the epoch of ours, lost to
    /// ours (the lower identity key wins): not merged.
    RivalIgnored {
        /// The group.
        group: Vec<u8>,
        /// The epoch both were made at.
        epoch: u64,
    },
}

/// The first TLS-encoded variable-length vector of `bytes`.
fn first_vector(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut rest = bytes;
    let v = openmls::prelude::tls_codec::VLBytes::tls_deserialize(&mut rest).ok()?;
    Some(v.as_slice().to_vec())
}

fn encoded(value: &impl openmls::prelude::tls_codec::Serialize) -> Option<Vec<u8>> {
    value.tls_serialize_detached().ok()
}

impl E2e {
    /// What a key package says (after [`Self::check_key_package`]).
    pub(crate) fn package_info(package: &KeyPackage, size: usize) -> PackageInfo {
        let leaf = package.leaf_node();
        let mut leaf_key = [0; 32];
        if let Ok(k) = <[u8; 32]>::try_from(leaf.signature_key().as_slice()) {
            leaf_key = k;
        }
        PackageInfo {
            suite: u16::from(package.ciphersuite()),
            leaf_key,
            init_key: package.hpke_init_key().as_slice().to_vec(),
            not_before: package.life_time().not_before(),
            not_after: package.life_time().not_after(),
            size,
        }
    }

    /// Whether a commit of ours waits in the group.
    pub(crate) fn pending(&self, group: &[u8]) -> bool {
        self.groups.get(group).is_some_and(|g| g.pending_commit().is_some())
    }

    /// The group as this member holds it: epoch, ratchet tree and the
    /// epoch values to compare.
    pub(crate) fn view(&self, group: &[u8]) -> Option<GroupView> {
        let g = self.groups.get(group)?;
        let tree = g.treesync();
        let mut nodes = Vec::new();
        let own = g.own_leaf_index().u32();
        let leaves = tree.leaves();
        let width = leaves.len().saturating_mul(2).saturating_sub(1);
        let mut parents: HashMap<u32, Option<Vec<u8>>> = HashMap::new();
        for (index, parent) in tree.full_parents() {
            parents.insert(index.u32(), encoded(parent).and_then(|b| first_vector(&b)));
        }
        for i in 0..width {
            let node = u32::try_from(i).unwrap_or(u32::MAX);
            if i % 2 == 0 {
                let leaf = leaves.get(i / 2).copied().flatten();
                let key = leaf.and_then(|l| leaf_key(l.credential(), l.signature_key().as_slice()).ok());
                nodes.push(TreeNode::Leaf { node, key, me: node / 2 == own && leaf.is_some() });
            } else {
                let key = parents.remove(&(node / 2)).flatten();
                nodes.push(TreeNode::Parent { node, key });
            }
        }
        let crypto = self.provider.crypto();
        let exporter = g.export_secret(crypto, EXPORTER_LABEL, &[], 32).unwrap_or_default();
        let tag = encoded(g.confirmation_tag()).and_then(|b| first_vector(&b)).unwrap_or_default();
        Some(GroupView {
            group: group.to_vec(),
            epoch: g.epoch().as_u64(),
            tree: nodes,
            secrets: Some(EpochSecrets {
                authenticator: g.epoch_authenticator().as_slice().to_vec(),
                exporter,
                confirmation_tag: tag,
            }),
            pending: g.pending_commit().is_some(),
        })
    }

    /// Opens a message of a two-member group that the relay says `from`
    /// sent: an application message, or the other member's Update commit.
    /// A commit that adds or removes anyone is refused (only its maker
    /// changes a pair's group, once, with the Welcome). Where both members
    /// updated at the same epoch, the lower identity key's commit wins: if
    /// it is theirs, ours is dropped and theirs merged; if ours, theirs is
    /// left unmerged ([`PairOpened::RivalIgnored`]).
    pub(crate) fn open_pair(&mut self, message: &[u8], from: [u8; 32]) -> Result<PairOpened, E2eError> {
        let protocol = match parse(message, "message")? {
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            _ => return Err(E2eError::Malformed { what: "message", why: "not a private message".into() }),
        };
        let id = protocol.group_id().as_slice().to_vec();
        let me = self.me;
        let provider = &self.provider;
        let sent_in = protocol.epoch().as_u64();
        let g = self.groups.get_mut(&id).ok_or(E2eError::NoGroup)?;
        let before = g.epoch().as_u64();
        let (processed, sender) = process_from(g, provider, protocol, from)?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                Ok(PairOpened::Message(Opened::Application {
                    group: id,
                    epoch: sent_in,
                    sender,
                    plaintext: app.into_bytes(),
                }))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                if staged.add_proposals().next().is_some()
                    || staged.remove_proposals().next().is_some()
                    || staged.update_proposals().next().is_some()
                    || staged.psk_proposals().next().is_some()
                {
                    return Err(E2eError::Rejected(
                        "a commit that changes who is in a two-member group".into(),
                    ));
                }
                let Some(leaf) = staged.update_path_leaf_node() else {
                    return Err(E2eError::Rejected("a commit without a new leaf".into()));
                };
                expect_key(
                    leaf_key(leaf.credential(), leaf.signature_key().as_slice())?,
                    sender,
                    "the committer's new leaf",
                )?;
                let ours = g.pending_commit().is_some();
                if ours && me < sender {
                    return Ok(PairOpened::RivalIgnored { group: id, epoch: before });
                }
                // Merging theirs drops ours, if any.
                g.merge_staged_commit(provider, *staged).map_err(rejected)?;
                Ok(PairOpened::Updated {
                    group: id,
                    from: before,
                    epoch: g.epoch().as_u64(),
                    ours_dropped: ours,
                })
            }
            _ => Err(E2eError::Rejected("a proposal on its own (only commits and messages are used)".into())),
        }
    }
}

impl E2e {
    /// Wipes in place the storage entries of `group` (those whose key
    /// holds its id), before they are deleted.
    fn wipe(&self, group: &[u8]) {
        use zeroize::Zeroize as _;
        let Some(needle) = storage_needle(group) else { return };
        if let Ok(mut values) = self.provider.storage().values.write() {
            for (key, value) in values.iter_mut() {
                if key.windows(needle.len()).any(|w| w == needle) {
                    value.zeroize();
                }
            }
        }
    }

    /// How many storage entries hold `group`'s id in their key (tests).
    #[cfg(test)]
    fn stored_for(&self, group: &[u8]) -> usize {
        let Some(needle) = storage_needle(group) else { return 0 };
        self.provider
            .storage()
            .values
            .read()
            .map(|v| v.keys().filter(|k| k.windows(needle.len()).any(|w| w == needle)).count())
            .unwrap_or(0)
    }
}

/// How a group's id appears in the memory storage's keys (openmls encodes
/// them as JSON).
fn storage_needle(group: &[u8]) -> Option<Vec<u8>> {
    serde_json::to_vec(&GroupId::from_slice(group)).ok().filter(|n| !n.is_empty() && !group.is_empty())
}

impl Drop for E2e {
    /// Wipes every entry of the storage: the groups' secrets, the key
    /// packages' private keys.
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Ok(mut values) = self.provider.storage().values.write() {
            for value in values.values_mut() {
                value.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod teach_tests {
    use super::*;

    fn person(seed: u8) -> (Ed25519Key, E2e) {
        let key = Ed25519Key::from_seed(&[seed; 32]);
        let mls = E2e::new(key.public_key());
        (key, mls)
    }

    /// A pair's group, made by `a` with `b`.
    fn pair(a: &mut (Ed25519Key, E2e), b: &mut (Ed25519Key, E2e)) -> Vec<u8> {
        let group = a.1.create(&a.0).unwrap();
        let package = b.1.key_package(&b.0).unwrap();
        let commit = a.1.add(&a.0, &group, &[(&package, b.0.public_key())]).unwrap();
        a.1.confirm(&group).unwrap();
        b.1.join(commit.welcome.as_deref().unwrap(), a.0.public_key()).unwrap();
        group
    }

    fn secrets(mls: &E2e, group: &[u8]) -> EpochSecrets {
        mls.view(group).unwrap().secrets.unwrap()
    }

    #[test]
    fn the_tree_shows_both_leaves_and_the_parent_the_commit_filled() {
        let (mut a, mut b) = (person(1), person(2));
        let group = pair(&mut a, &mut b);
        for (mls, me) in [(&a.1, a.0.public_key()), (&b.1, b.0.public_key())] {
            let view = mls.view(&group).unwrap();
            assert_eq!(view.epoch, 1);
            let [
                TreeNode::Leaf { node: 0, key: Some(k0), me: m0 },
                TreeNode::Parent { node: 1, key: Some(parent) },
                TreeNode::Leaf { node: 2, key: Some(k2), me: m2 },
            ] = view.tree.as_slice()
            else {
                panic!("{:?}", view.tree)
            };
            assert_eq!((*k0, *k2), (a.0.public_key(), b.0.public_key()));
            assert_eq!((*m0, *m2), (*k0 == me, *k2 == me));
            assert_eq!(parent.len(), 32, "an X25519 HPKE key");
        }
        // Both derive the same epoch values, and the exporter is not the
        // authenticator.
        let (sa, sb) = (secrets(&a.1, &group), secrets(&b.1, &group));
        assert_eq!(sa, sb);
        assert_eq!(sa.authenticator.len(), 32);
        assert_eq!(sa.exporter.len(), 32);
        assert_eq!(sa.confirmation_tag.len(), 32);
        assert_ne!(sa.authenticator, sa.exporter);
    }

    #[test]
    fn after_an_update_both_members_share_the_new_epoch_and_the_parent_key_changed() {
        let (mut a, mut b) = (person(1), person(2));
        let group = pair(&mut a, &mut b);
        let before = secrets(&a.1, &group);
        let parent_before = a.1.view(&group).unwrap().tree[1].clone();
        let commit = b.1.update(&b.0, &group).unwrap();
        assert!(b.1.pending(&group));
        // A message sealed while the commit waits is still of epoch 1.
        let waiting = b.1.seal(&b.0, &group, b"sealed while it waits").unwrap();
        let PairOpened::Updated { from: 1, epoch: 2, ours_dropped: false, .. } =
            a.1.open_pair(&commit.commit, b.0.public_key()).unwrap()
        else {
            panic!("merged")
        };
        // Still opened: one epoch back.
        let PairOpened::Message(Opened::Application { plaintext, epoch: 1, .. }) =
            a.1.open_pair(&waiting, b.0.public_key()).unwrap()
        else {
            panic!("the waiting message")
        };
        assert_eq!(plaintext, b"sealed while it waits");
        // A's word, in the new epoch: B merges its commit, then opens it.
        let word = a.1.seal(&a.0, &group, &[]).unwrap();
        assert_eq!(E2e::header(&word).unwrap().epoch, 2);
        // What the relay sees of an update: two sizes, the commit's and the word's.
        assert_eq!((commit.commit.len(), word.len()), (542, 158));
        assert_eq!(b.1.confirm(&group).unwrap(), 2);
        let PairOpened::Message(Opened::Application { plaintext, .. }) =
            b.1.open_pair(&word, a.0.public_key()).unwrap()
        else {
            panic!("the word")
        };
        assert!(plaintext.is_empty());
        let (sa, sb) = (secrets(&a.1, &group), secrets(&b.1, &group));
        assert_eq!(sa, sb, "the same epoch authenticator, exporter and tag");
        assert_ne!(sa.authenticator, before.authenticator);
        assert_ne!(a.1.view(&group).unwrap().tree[1], parent_before, "the path's parent key is new");
        // The old epoch's commit, replayed: refused.
        assert!(matches!(a.1.open_pair(&commit.commit, b.0.public_key()), Err(E2eError::Rejected(_))));
    }

    #[test]
    fn rival_updates_in_one_epoch_end_with_the_lower_keys_commit_and_one_group() {
        let (mut a, mut b) = (person(1), person(2));
        let group = pair(&mut a, &mut b);
        let (low, high) = if a.0.public_key() < b.0.public_key() { (a, b) } else { (b, a) };
        let (mut low, mut high) = (low, high);
        let from_low = low.1.update(&low.0, &group).unwrap();
        let from_high = high.1.update(&high.0, &group).unwrap();
        // Each gets the other's commit, in either order: the low one keeps
        // its own and leaves the rival unmerged; the high one drops its own.
        let PairOpened::RivalIgnored { epoch: 1, .. } =
            low.1.open_pair(&from_high.commit, high.0.public_key()).unwrap()
        else {
            panic!("the low key's commit wins")
        };
        assert!(low.1.pending(&group));
        let PairOpened::Updated { epoch: 2, ours_dropped: true, .. } =
            high.1.open_pair(&from_low.commit, low.0.public_key()).unwrap()
        else {
            panic!("the high key merges the low key's commit")
        };
        assert!(!high.1.pending(&group));
        // The high one's word; the low one merges its own.
        let word = high.1.seal(&high.0, &group, &[]).unwrap();
        low.1.confirm(&group).unwrap();
        low.1.open_pair(&word, high.0.public_key()).unwrap();
        assert_eq!(secrets(&low.1, &group), secrets(&high.1, &group));
        // The high one redoes its update in the new epoch: taken.
        let again = high.1.update(&high.0, &group).unwrap();
        let PairOpened::Updated { from: 2, epoch: 3, ours_dropped: false, .. } =
            low.1.open_pair(&again.commit, high.0.public_key()).unwrap()
        else {
            panic!("the redone update")
        };
        high.1.confirm(&group).unwrap();
        assert_eq!(secrets(&low.1, &group), secrets(&high.1, &group));
        let m = high.1.seal(&high.0, &group, b"epoch three").unwrap();
        let PairOpened::Message(Opened::Application { plaintext, epoch: 3, .. }) =
            low.1.open_pair(&m, high.0.public_key()).unwrap()
        else {
            panic!("a message")
        };
        assert_eq!(plaintext, b"epoch three");
    }

    #[test]
    fn a_pair_commit_that_adds_someone_is_refused() {
        let (mut a, mut b, mut c) = (person(1), person(2), person(3));
        let group = pair(&mut a, &mut b);
        let package = c.1.key_package(&c.0).unwrap();
        let add = a.1.add(&a.0, &group, &[(&package, c.0.public_key())]).unwrap();
        let err = b.1.open_pair(&add.commit, a.0.public_key()).unwrap_err();
        assert!(matches!(err, E2eError::Rejected(_)), "{err}");
        assert_eq!(b.1.epoch(&group), Some(1));
    }

    #[test]
    fn secrets_are_never_in_debug_and_a_forgotten_group_leaves_nothing_stored() {
        let (mut a, mut b) = (person(1), person(2));
        let group = pair(&mut a, &mut b);
        let view = a.1.view(&group).unwrap();
        let s = view.secrets.clone().unwrap();
        let shown = format!("{view:?} {s:?} {:?}", a.1);
        for value in [&s.authenticator, &s.exporter, &s.confirmation_tag] {
            let hex = crate::tls::crypto::hex(value);
            assert!(!shown.contains(&hex), "{shown}");
            assert!(!shown.contains(&hex[..16]), "{shown}");
        }
        assert!(shown.contains("hidden"));
        assert!(a.1.stored_for(&group) > 0);
        a.1.forget(&group);
        assert_eq!(a.1.stored_for(&group), 0);
        assert!(a.1.view(&group).is_none());
    }

    #[test]
    fn a_key_package_says_its_suite_key_lifetime_and_size() {
        let (key, mut mls) = person(4);
        let bytes = mls.key_package(&key).unwrap();
        let checked = mls.check_key_package(&bytes, key.public_key()).unwrap();
        let info = E2e::package_info(&checked, bytes.len());
        assert_eq!(info.suite, 0x0003);
        assert_eq!(info.leaf_key, key.public_key());
        assert_eq!(info.init_key.len(), 32);
        assert!(info.not_after > info.not_before);
        assert_eq!(info.size, bytes.len());
    }
}
