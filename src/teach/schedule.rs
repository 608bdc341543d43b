//! The key schedule of one connection as the key schedule view shows it
//! (RFC 8446 §7.1, §7.2, §7.3, §4.4.4, §5.3), and for each value a command
//! that recomputes it with standard tools (OpenSSL 3, `xxd`, a POSIX shell).
//!
//! A [`Schedule`] is fed the engine's events: its handshake steps give the
//! tree's shape, the labels derived so far and the transcript hashes (all
//! public); with `--reveal`, the engine's [`Revealed`] values fill it in.
//! [`Schedule::rows`] lays the tree out, from the early secret through the
//! handshake and master secrets to each traffic secret (every KeyUpdate
//! generation), its finished key, key and IV, and the records they
//! protected. Each row whose inputs are known carries a [`Proof`]: a
//! shell command and the value its output must equal. The view shows the
//! same commands that the test `tests/it/engine/reveal.rs` runs, through
//! [`Schedule::proofs`].
//!
//! The two "derived" salts are not reported by the engine: they are
//! computed here from the revealed early and handshake secrets, and the
//! next step (whose expected value is the engine's) checks them.

use std::collections::VecDeque;
use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::tls::codec::{self, LenPrefix, TooLong};
use crate::tls::crypto::{self, HASH_LEN};
use crate::tls::key_schedule::{self, SecretKind};
use crate::tls::{CipherSuite, Direction, HandshakeStep, Revealed, RevealedRecord, SecretBytes, Step};

/// Records kept per traffic secret and direction (the first ones), and in all.
const RECORDS_PER_SECRET: usize = 3;
const MAX_RECORDS: usize = 64;

/// A command that recomputes a value, and the value (lowercase hex) its
/// output must show; see [`normalize`] for how outputs are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// A POSIX shell command, lines joined by `\`-newline.
    pub command: Zeroizing<String>,
    /// The engine's value, lowercase hex.
    pub expected: Zeroizing<String>,
}

/// What a command printed, reduced to the hex it carries: the text after
/// the last `= ` if any (`openssl dgst`), without colons (`openssl kdf`)
/// or white space (`xxd -p`), in lowercase.
pub fn normalize(output: &str) -> String {
    let tail = output.rsplit_once("= ").map_or(output, |(_, t)| t);
    tail.chars().filter(|c| !c.is_whitespace() && *c != ':').flat_map(char::to_lowercase).collect()
}

/// How far the engine has come with a row's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not derived yet.
    Pending,
    /// Derived; its value is hidden (no `--reveal`).
    Derived,
    /// Derived, and its value is known here.
    Revealed,
}

/// One line of the tree (with what goes under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Indentation in the tree.
    pub(crate) depth: usize,
    /// The value's name, e.g. `c hs traffic`.
    pub name: String,
    /// How it is computed, in the RFC's terms.
    pub(crate) formula: String,
    /// How far the engine has come with it.
    pub state: State,
    /// Its value in hex, once revealed (or public, as verify_data).
    pub value: Option<Zeroizing<String>>,
    /// The transcript hash it was derived over: which messages, and the hash.
    pub over: Option<(&'static str, [u8; HASH_LEN])>,
    /// What it unlocks: which records can now be read.
    pub(crate) unlocks: Option<String>,
    /// Extra lines (inputs, how an info string is built).
    pub(crate) notes: Vec<String>,
    /// The command that recomputes it, when its inputs are known.
    pub proof: Option<Proof>,
}

impl Row {
    fn new(depth: usize, name: impl Into<String>, formula: impl Into<String>) -> Self {
        Self {
            depth,
            name: name.into(),
            formula: formula.into(),
            state: State::Pending,
            value: None,
            over: None,
            unlocks: None,
            notes: Vec::new(),
            proof: None,
        }
    }

    fn with_value(mut self, value: Option<&[u8]>, derived: bool) -> Self {
        self.state = match (value, derived) {
            (Some(_), _) => State::Revealed,
            (None, true) => State::Derived,
            (None, false) => State::Pending,
        };
        self.value = value.map(|v| Zeroizing::new(crypto::hex(v)));
        self
    }
}

/// A Finished as the handshake steps showed it (all public).
#[derive(Debug, Clone)]
struct FinishedSeen {
    direction: Direction,
    /// Transcript-Hash of the messages before it.
    hash_before: [u8; HASH_LEN],
    verify_data: Vec<u8>,
}

/// One connection's key schedule, filled in as its events arrive.
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    /// Labels the engine reported derived (no values).
    derived: Vec<SecretKind>,
    /// Transcript-Hash(ClientHello..ServerHello), from the ServerHello step.
    hello_hash: Option<[u8; HASH_LEN]>,
    /// Transcript-Hash(ClientHello..server Finished).
    finished_hash: Option<[u8; HASH_LEN]>,
    /// The latest transcript hash of a message in the transcript.
    last_hash: Option<[u8; HASH_LEN]>,
    finished: Vec<FinishedSeen>,
    suite: Option<CipherSuite>,
    key_exchange: Option<(SecretBytes, [u8; 32], [u8; 32])>,
    secrets: Vec<(SecretKind, SecretBytes)>,
    finished_keys: Vec<(SecretKind, SecretBytes)>,
    keys: Vec<(SecretKind, SecretBytes, SecretBytes)>,
    records: VecDeque<RevealedRecord>,
}

impl Schedule {
    /// Takes in a handshake step: labels and transcript hashes.
    pub fn step(&mut self, step: &HandshakeStep) {
        match &step.step {
            Step::SecretDerived { kind } if !self.derived.contains(kind) => self.derived.push(*kind),
            Step::Message { name, transcript_hash: Some(hash), direction, bytes, .. } => {
                if *name == "ServerHello" {
                    self.hello_hash = Some(*hash);
                }
                if *name == "Finished" {
                    if let Some(before) = self.last_hash {
                        self.finished.push(FinishedSeen {
                            direction: *direction,
                            hash_before: before,
                            verify_data: bytes.get(4..).unwrap_or_default().to_vec(),
                        });
                    }
                    // The server's Finished comes first; the application
                    // secrets are derived over the transcript up to it.
                    if self.finished_hash.is_none() {
                        self.finished_hash = Some(*hash);
                    }
                }
                self.last_hash = Some(*hash);
            }
            _ => {}
        }
    }

    /// Takes in a value the engine revealed.
    pub fn reveal(&mut self, revealed: Revealed) {
        match revealed {
            Revealed::KeyExchange { private_key, public_key, peer_public_key } => {
                self.key_exchange = Some((private_key, public_key, peer_public_key));
            }
            Revealed::Secret { kind, value, transcript_hash } => {
                // The engine's hashes are the ones it used: they win.
                match (kind, transcript_hash) {
                    (SecretKind::ClientHandshakeTraffic | SecretKind::ServerHandshakeTraffic, Some(h)) => {
                        self.hello_hash = Some(h);
                    }
                    (
                        SecretKind::ClientApplicationTraffic(0) | SecretKind::ServerApplicationTraffic(0),
                        Some(h),
                    ) => {
                        self.finished_hash = Some(h);
                    }
                    _ => {}
                }
                if !self.derived.contains(&kind) {
                    self.derived.push(kind);
                }
                self.secrets.retain(|(k, _)| *k != kind);
                self.secrets.push((kind, value));
            }
            Revealed::Finished { base, finished_key, .. } => {
                self.finished_keys.retain(|(k, _)| *k != base);
                self.finished_keys.push((base, finished_key));
            }
            Revealed::TrafficKeys { secret, suite, key, iv, .. } => {
                self.suite = Some(suite);
                self.keys.retain(|(k, _, _)| *k != secret);
                self.keys.push((secret, key, iv));
            }
            Revealed::Record(record) => {
                let same = |r: &&RevealedRecord| r.secret == record.secret && r.direction == record.direction;
                if self.records.iter().filter(same).count() < RECORDS_PER_SECRET {
                    if self.records.len() == MAX_RECORDS {
                        self.records.pop_front();
                    }
                    self.records.push_back(record);
                }
            }
        }
    }

    /// The revealed value of a secret, if any.
    pub fn value(&self, kind: SecretKind) -> Option<&[u8]> {
        self.secrets.iter().find(|(k, _)| *k == kind).map(|(_, v)| v.expose())
    }

    fn is_derived(&self, kind: SecretKind) -> bool {
        self.derived.contains(&kind)
    }

    fn secret32(&self, kind: SecretKind) -> Option<[u8; HASH_LEN]> {
        self.value(kind).and_then(|v| v.try_into().ok())
    }

    /// Every command the view offers, with the value it must print.
    pub fn proofs(&self) -> Vec<Proof> {
        self.rows().into_iter().filter_map(|r| r.proof).collect()
    }

    /// Every command with its row's name and where it sits in the tree
    /// (`c hs traffic / write key`), top to bottom.
    pub fn named_proofs(&self) -> Vec<(String, Proof)> {
        let mut path: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for row in self.rows() {
            path.truncate(row.depth);
            path.resize(row.depth, String::new());
            path.push(row.name.clone());
            if let Some(proof) = row.proof {
                let name = path.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join(" / ");
                out.push((name, proof));
            }
        }
        out
    }

    /// The commands as a POSIX shell script (`--reveal-script`): each
    /// preceded by its name and the engine's value as comments, run, and
    /// its output (read as [`normalize`] does) checked against that value.
    /// It prints `ok` or `FAIL` per command and exits non-zero if any
    /// failed. It holds the session's secrets.
    pub fn script(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::from(
            "#!/bin/sh\n\
             # The key schedule of one tlschat session (--reveal-script): each command\n\
             # recomputes a value with OpenSSL 3, xxd and sh, and is checked against\n\
             # the value the engine used. Run: sh THIS-FILE. It holds the session's\n\
             # secrets: anyone who reads it can decrypt the session.\n\
             \n\
             # A command's output reduced to its hex: the text after the last \"= \",\n\
             # without white space or colons, in lowercase.\n\
             norm() { tr -d '\\n' | sed 's/.*= //' | tr -d ' \\t\\r:' | tr 'A-F' 'a-f'; }\n\
             ok=0 failed=0\n\
             check() {\n\
             \x20 if [ \"$(printf '%s' \"$3\" | norm)\" = \"$2\" ]; then\n\
             \x20   ok=$((ok + 1)); echo \"ok   $1\"\n\
             \x20 else\n\
             \x20   failed=$((failed + 1)); echo \"FAIL $1: expected $2, got $3\"\n\
             \x20 fi\n\
             }\n",
        ));
        for (n, (name, proof)) in self.named_proofs().into_iter().enumerate() {
            let _ = write!(
                s,
                "\n# {}. {name}\n# expect: {}\ngot=$({}\n)\ncheck '{}. {}' {} \"$got\"\n",
                n + 1,
                proof.expected.as_str(),
                proof.command.as_str(),
                n + 1,
                name.replace('\'', ""),
                proof.expected.as_str(),
            );
        }
        s.push_str("\necho \"$ok ok, $failed failed\"\n[ \"$failed\" -eq 0 ]\n");
        s
    }

    /// The tree, top to bottom.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        self.exchange_rows(&mut rows);
        let zero = [0u8; HASH_LEN];

        // Early secret and its "derived" salt.
        let early = self.secret32(SecretKind::EarlySecret);
        let mut row = Row::new(0, "early secret", "HKDF-Extract(salt = 0, IKM = 0): no PSK")
            .with_value(early.as_ref().map(|v| &v[..]), self.is_derived(SecretKind::EarlySecret));
        if let Some(v) = early {
            row.proof = Some(proof(extract_command(&zero, &zero), &v));
        }
        rows.push(row);
        let early_derived = early
            .map(|e| *key_schedule::derive_secret(&e, key_schedule::Label::Derived, &empty_hash()).expose());
        rows.push(derived_row(
            early.as_ref(),
            early_derived.as_ref(),
            "early secret",
            self.is_derived(SecretKind::EarlySecret),
        ));

        // Handshake secret.
        let shared = self.value(SecretKind::SharedSecret).map(<[u8]>::to_vec);
        let hs = self.secret32(SecretKind::HandshakeSecret);
        let mut row =
            Row::new(0, "handshake secret", "HKDF-Extract(salt = derived, IKM = (EC)DHE shared secret)")
                .with_value(hs.as_ref().map(|v| &v[..]), self.is_derived(SecretKind::HandshakeSecret));
        if let (Some(salt), Some(ikm), Some(v)) = (early_derived, &shared, hs) {
            row.proof = Some(proof(extract_command(&salt, ikm), &v));
        }
        rows.push(row);
        for kind in [SecretKind::ClientHandshakeTraffic, SecretKind::ServerHandshakeTraffic] {
            self.traffic_rows(&mut rows, kind, hs.as_ref(), self.hello_hash, "ClientHello..ServerHello");
        }
        let hs_derived = hs
            .map(|h| *key_schedule::derive_secret(&h, key_schedule::Label::Derived, &empty_hash()).expose());
        rows.push(derived_row(
            hs.as_ref(),
            hs_derived.as_ref(),
            "handshake secret",
            self.is_derived(SecretKind::MasterSecret),
        ));

        // Master secret.
        let master = self.secret32(SecretKind::MasterSecret);
        let mut row = Row::new(0, "master secret", "HKDF-Extract(salt = derived, IKM = 0)")
            .with_value(master.as_ref().map(|v| &v[..]), self.is_derived(SecretKind::MasterSecret));
        if let (Some(salt), Some(v)) = (hs_derived, master) {
            row.proof = Some(proof(extract_command(&salt, &zero), &v));
        }
        rows.push(row);
        let over = "ClientHello..server Finished";
        for client in [true, false] {
            let mut generation = 0;
            loop {
                let kind = if client {
                    SecretKind::ClientApplicationTraffic(generation)
                } else {
                    SecretKind::ServerApplicationTraffic(generation)
                };
                if generation > 0 && !self.is_derived(kind) {
                    break;
                }
                let parent = if generation == 0 {
                    master
                } else {
                    let previous = if client {
                        SecretKind::ClientApplicationTraffic(generation - 1)
                    } else {
                        SecretKind::ServerApplicationTraffic(generation - 1)
                    };
                    self.secret32(previous)
                };
                self.traffic_rows(&mut rows, kind, parent.as_ref(), self.finished_hash, over);
                generation += 1;
            }
        }
        self.traffic_rows(&mut rows, SecretKind::ExporterMaster, master.as_ref(), self.finished_hash, over);
        self.record_rows(&mut rows);
        rows
    }

    fn exchange_rows(&self, rows: &mut Vec<Row>) {
        let shared = self.value(SecretKind::SharedSecret);
        let mut row =
            Row::new(0, "(EC)DHE shared secret", "X25519(our ephemeral private key, the peer's public key)")
                .with_value(shared, self.is_derived(SecretKind::SharedSecret));
        if let Some((private, public, peer)) = &self.key_exchange {
            row.notes.push(format!("our private key {}", crypto::hex(private.expose())));
            row.notes.push(format!("our public key  {}", crypto::hex(public)));
            row.notes.push(format!("peer public key {}", crypto::hex(peer)));
            if let Some(v) = shared {
                row.proof = Some(proof(x25519_command(private.expose(), peer), v));
            }
        }
        rows.push(row);
    }

    /// A traffic (or exporter) secret and what hangs from it.
    fn traffic_rows(
        &self,
        rows: &mut Vec<Row>,
        kind: SecretKind,
        parent: Option<&[u8; HASH_LEN]>,
        hash: Option<[u8; HASH_LEN]>,
        messages: &'static str,
    ) {
        let value = self.secret32(kind);
        let derived = self.is_derived(kind);
        let (name, parent_name): (String, &str) = match kind {
            SecretKind::ClientApplicationTraffic(n) => (format!("c ap traffic {n}"), "master secret"),
            SecretKind::ServerApplicationTraffic(n) => (format!("s ap traffic {n}"), "master secret"),
            SecretKind::ExporterMaster => ("exp master".into(), "master secret"),
            _ => (kind.label().into(), "handshake secret"),
        };
        let label = kind.label();
        let formula = if label == "traffic upd" {
            "HKDF-Expand-Label(generation before, \"traffic upd\", \"\", 32)".to_owned()
        } else {
            format!("Derive-Secret({parent_name}, \"{label}\", {messages})")
        };
        let mut row = Row::new(1, name, formula).with_value(value.as_ref().map(|v| &v[..]), derived);
        if label != "traffic upd" {
            row.over = hash.map(|h| (messages, h));
        }
        row.unlocks = unlocks(kind);
        let ctx: Vec<u8> =
            if label == "traffic upd" { Vec::new() } else { hash.map(|h| h.to_vec()).unwrap_or_default() };
        if let (Some(p), Some(v)) = (parent, value)
            && (label == "traffic upd" || hash.is_some())
        {
            row.notes.push(info_note(label, &ctx, HASH_LEN));
            row.proof = Some(proof(expand_command(p, label, &ctx, HASH_LEN), &v));
        }
        rows.push(row);
        if kind == SecretKind::ExporterMaster {
            return;
        }
        if matches!(kind, SecretKind::ClientHandshakeTraffic | SecretKind::ServerHandshakeTraffic) {
            self.finished_rows(rows, kind, value.as_ref(), derived);
        }
        let keys = self.keys.iter().find(|(k, _, _)| *k == kind);
        let key_len = keys.map(|(_, k, _)| k.expose().len());
        for (what, len, bytes) in [
            ("key", key_len, keys.map(|(_, k, _)| k.expose())),
            ("iv", Some(crypto::NONCE_LEN), keys.map(|(_, _, iv)| iv.expose())),
        ] {
            let len_text = len.map_or("key_length".to_owned(), |l| l.to_string());
            let formula = format!("HKDF-Expand-Label(secret, \"{what}\", \"\", {len_text})");
            let mut row = Row::new(2, format!("write {what}"), formula).with_value(bytes, derived);
            if let (Some(s), Some(b), Some(l)) = (value, bytes, len) {
                row.proof = Some(proof(expand_command(&s, what, b"", l), b));
            }
            rows.push(row);
        }
    }

    fn finished_rows(
        &self,
        rows: &mut Vec<Row>,
        base: SecretKind,
        secret: Option<&[u8; HASH_LEN]>,
        derived: bool,
    ) {
        let fk = self.finished_keys.iter().find(|(k, _)| *k == base).map(|(_, v)| v.expose());
        let mut row = Row::new(2, "finished_key", "HKDF-Expand-Label(secret, \"finished\", \"\", 32)")
            .with_value(fk, derived);
        if let (Some(s), Some(v)) = (secret, fk) {
            row.proof = Some(proof(expand_command(s, "finished", b"", HASH_LEN), v));
        }
        rows.push(row);
        // The server's Finished is the first, the client's the second.
        let index = usize::from(base == SecretKind::ClientHandshakeTraffic);
        let seen = self.finished.get(index);
        let (who, messages) = if index == 0 {
            ("server", "ClientHello..server CertificateVerify")
        } else {
            ("client", "ClientHello..server Finished[..client CertificateVerify]")
        };
        let mut row =
            Row::new(3, format!("{who} Finished verify_data"), "HMAC(finished_key, transcript hash)")
                .with_value(seen.map(|f| f.verify_data.as_slice()), false);
        row.over = seen.map(|f| (messages, f.hash_before));
        if let Some(f) = seen {
            row.notes.push(format!(
                "{} this Finished",
                if f.direction == Direction::Sent { "we sent" } else { "we received and checked" }
            ));
            if let Some(k) = fk {
                row.proof = Some(proof(hmac_command(k, &f.hash_before), &f.verify_data));
            }
        }
        rows.push(row);
    }

    fn record_rows(&self, rows: &mut Vec<Row>) {
        if self.records.is_empty() {
            return;
        }
        rows.push(Row {
            state: State::Revealed,
            ..Row::new(0, "records", "the first records under each traffic secret, decrypted by hand")
        });
        for r in &self.records {
            let Some((_, key, iv)) = self.keys.iter().find(|(k, _, _)| *k == r.secret) else { continue };
            let Ok(iv) = <[u8; crypto::NONCE_LEN]>::try_from(iv.expose()) else { continue };
            let way = if r.direction == Direction::Sent { "sent" } else { "received" };
            let name = format!("{way} record, seq {} under {}", r.sequence, r.secret.label());
            let mut row = Row::new(1, name, format!("{} bytes of encrypted_record", r.length));
            row.state = State::Revealed;
            let nonce = nonce_of(&iv, r.sequence);
            row.notes.push(format!("ciphertext starts {}", crypto::hex(&r.ciphertext)));
            row.notes.push(format!("nonce = iv XOR sequence = {}", crypto::hex(&nonce)));
            row.proof = Some(proof(nonce_command(&iv, r.sequence), &nonce));
            rows.push(row);
            let plain = r.plaintext.expose();
            let Some(suite) = self.suite else { continue };
            let mut row = Row::new(2, "plaintext start", "TLSInnerPlaintext: content, type byte, padding")
                .with_value(Some(plain), true);
            row.notes.push(format!(
                "as text: {}",
                crate::present::escape::printable(&String::from_utf8_lossy(plain))
            ));
            row.proof =
                Some(proof(decrypt_command(suite, key.expose(), &iv, r.sequence, &r.ciphertext), plain));
            rows.push(row);
        }
    }
}

fn proof(command: String, expected: &[u8]) -> Proof {
    Proof { command: Zeroizing::new(command), expected: Zeroizing::new(crypto::hex(expected)) }
}

fn empty_hash() -> [u8; HASH_LEN] {
    crypto::sha256(b"")
}

fn derived_row(
    parent: Option<&[u8; HASH_LEN]>,
    value: Option<&[u8; HASH_LEN]>,
    parent_name: &str,
    derived: bool,
) -> Row {
    let formula = format!("Derive-Secret({parent_name}, \"derived\", \"\"): the next salt");
    let mut row = Row::new(1, "derived", formula).with_value(value.map(|v| &v[..]), derived);
    row.over = Some(("no messages: SHA-256(\"\")", empty_hash()));
    if let (Some(p), Some(v)) = (parent, value) {
        row.notes.push(info_note("derived", &empty_hash(), HASH_LEN));
        row.proof = Some(proof(expand_command(p, "derived", &empty_hash(), HASH_LEN), v));
    }
    row
}

/// What a traffic secret lets one read.
fn unlocks(kind: SecretKind) -> Option<String> {
    Some(match kind {
        SecretKind::ClientHandshakeTraffic => {
            "the client's handshake records: its Certificate, CertificateVerify, Finished".into()
        }
        SecretKind::ServerHandshakeTraffic => {
            "the server's handshake records: EncryptedExtensions to Finished".into()
        }
        SecretKind::ClientApplicationTraffic(n) => {
            format!("the client's application data and KeyUpdates, generation {n}")
        }
        SecretKind::ServerApplicationTraffic(n) => {
            format!("the server's application data and KeyUpdates, generation {n}")
        }
        SecretKind::ExporterMaster => "exported keys (RFC 8446 §7.5); tlschat exports none".into(),
        _ => return None,
    })
}

/// The HkdfLabel of HKDF-Expand-Label (§7.1): length, "tls13 " + label,
/// context. A length over 65,535, a label over 249 bytes or a context over
/// 255 does not fit its field and is refused.
pub(crate) fn hkdf_label(label: &str, context: &[u8], len: usize) -> Result<Vec<u8>, TooLong> {
    let length = u16::try_from(len).map_err(|_| TooLong { prefix: LenPrefix::U16, len })?;
    let mut info = Vec::with_capacity(4 + 6 + label.len() + context.len());
    codec::put_u16(&mut info, length);
    codec::put_vec(&mut info, LenPrefix::U8, |out| {
        out.extend_from_slice(b"tls13 ");
        out.extend_from_slice(label.as_bytes());
        Ok(())
    })?;
    codec::put_bytes(&mut info, LenPrefix::U8, context)?;
    Ok(info)
}

fn info_note(label: &str, context: &[u8], len: usize) -> String {
    let context = if context.is_empty() {
        "00 (no context)".to_owned()
    } else {
        format!("{:02x} <hash>", context.len())
    };
    format!("info = {:04x} {:02x} \"tls13 {label}\" {context}", len, 6 + label.len())
}

fn expand_command(secret: &[u8], label: &str, context: &[u8], len: usize) -> String {
    match hkdf_label(label, context, len) {
        Ok(info) => format!(
            "openssl kdf -keylen {len} -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \\\n  -kdfopt hexkey:{} \\\n  -kdfopt hexinfo:{} HKDF",
            crypto::hex(secret),
            crypto::hex(&info)
        ),
        Err(e) => format!("# no HkdfLabel: {e}"),
    }
}

fn extract_command(salt: &[u8], ikm: &[u8]) -> String {
    format!(
        "openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY \\\n  -kdfopt hexsalt:{} \\\n  -kdfopt hexkey:{} HKDF",
        crypto::hex(salt),
        crypto::hex(ikm)
    )
}

/// PKCS#8 and SubjectPublicKeyInfo headers of an X25519 key (RFC 8410).
const X25519_PKCS8: &str = "302e020100300506032b656e04220420";
const X25519_SPKI: &str = "302a300506032b656e032100";

fn x25519_command(private: &[u8], peer: &[u8]) -> String {
    format!(
        "d=$(mktemp -d) && \\\n  echo {X25519_PKCS8}{} | xxd -r -p > $d/k && \\\n  echo {X25519_SPKI}{} | xxd -r -p > $d/p && \\\n  openssl pkeyutl -derive -keyform DER -inkey $d/k -peerform DER -peerkey $d/p | xxd -p -c 32; rm -r $d",
        crypto::hex(private),
        crypto::hex(peer)
    )
}

fn hmac_command(key: &[u8], hash: &[u8]) -> String {
    format!(
        "echo {} | xxd -r -p | \\\n  openssl dgst -sha256 -mac HMAC -macopt hexkey:{}",
        crypto::hex(hash),
        crypto::hex(key)
    )
}

/// The per-record nonce (§5.3): the sequence number, left-padded to 12
/// bytes, XOR the IV.
pub(crate) fn nonce_of(iv: &[u8; crypto::NONCE_LEN], sequence: u64) -> [u8; crypto::NONCE_LEN] {
    let mut nonce = *iv;
    for (n, s) in nonce[4..].iter_mut().zip(sequence.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// The nonce in shell arithmetic, 32 bits at a time (shells have 64-bit
/// signed integers, too few for 96 bits).
fn nonce_shell(iv: &[u8; crypto::NONCE_LEN], sequence: u64) -> String {
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    format!(
        "$(printf '%s%08x%08x' {} $((0x{:08x} ^ {})) $((0x{:08x} ^ {})))",
        crypto::hex(&iv[..4]),
        word(&iv[4..8]),
        sequence >> 32,
        word(&iv[8..]),
        sequence & 0xffff_ffff
    )
}

fn nonce_command(iv: &[u8; crypto::NONCE_LEN], sequence: u64) -> String {
    let shell = nonce_shell(iv, sequence);
    // `$(...)` without its wrapper, so the nonce is printed.
    let inner = &shell[2..shell.len() - 1];
    format!("{inner}; echo")
}

fn decrypt_command(
    suite: CipherSuite,
    key: &[u8],
    iv: &[u8; crypto::NONCE_LEN],
    sequence: u64,
    ciphertext: &[u8],
) -> String {
    let nonce = nonce_shell(iv, sequence);
    // ChaCha20-Poly1305 encrypts from block counter 1 (RFC 8439 §2.8), a
    // 4-byte little-endian counter before the nonce; AES-GCM from counter
    // 2 (NIST SP 800-38D: J0 = nonce || 1 makes the tag), after the nonce.
    let (cipher, iv_arg) = if suite == CipherSuite::TLS_AES_128_GCM_SHA256 {
        ("-aes-128-ctr", format!("{nonce}00000002"))
    } else {
        ("-chacha20", format!("01000000{nonce}"))
    };
    let mut command = String::new();
    let _ = write!(
        command,
        "echo {} | xxd -r -p | \\\n  openssl enc -d {cipher} -K {} \\\n  -iv {iv_arg} | xxd -p -c 64",
        crypto::hex(ciphertext),
        crypto::hex(key)
    );
    command
}

/// A command cut into lines of at most `width` characters that a shell
/// still reads as the same command: each cut ends its line with `\`, a
/// line continuation, which POSIX shells remove wherever it stands (even
/// inside a word), except within single quotes, where no cut is made. So
/// the lines can be copied from a narrow panel as they are.
pub(crate) fn wrap_command(command: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut out = Vec::new();
    for line in command.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut start = 0;
        while chars.len() - start > width {
            // Room for the `\` that ends the piece.
            let mut cut = start + width - 1;
            // Never inside single quotes: back up to before the quote.
            let quotes = chars[..cut].iter().filter(|&&c| c == '\'').count();
            if quotes % 2 == 1
                && let Some(q) = chars[start..cut].iter().rposition(|&c| c == '\'')
            {
                cut = start + q;
            }
            // Never right after a backslash of the command's own (that
            // would turn its meaning), nor an empty piece.
            while cut > start + 1 && chars[cut - 1] == '\\' {
                cut -= 1;
            }
            if cut <= start {
                break;
            }
            let mut piece: String = chars[start..cut].iter().collect();
            piece.push('\\');
            out.push(piece);
            start = cut;
        }
        out.push(chars[start..].iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_reads_each_tools_output() {
        assert_eq!(normalize("AB:CD:0E\n"), "abcd0e");
        assert_eq!(normalize("SHA2-256(stdin)= abcd\n"), "abcd");
        assert_eq!(normalize("abcd\nef01\n"), "abcdef01");
    }

    #[test]
    fn the_nonce_is_the_iv_xor_the_sequence_number() {
        let iv = [0xff; 12];
        assert_eq!(crypto::hex(&nonce_of(&iv, 1)), "fffffffffffffffffffffffe");
        assert!(nonce_shell(&iv, 1).contains("$((0xffffffff ^ 1))"));
    }

    #[test]
    fn wrapped_commands_keep_their_pieces_within_the_width_and_quotes_whole() {
        let command = "printf '%s%08x' 0a0b $((0xffffffff ^ 1)) | xxd -p -c 64 \\\n  -next line";
        for width in [10, 16, 30, 200] {
            let lines = wrap_command(command, width);
            assert!(lines.iter().all(|l| l.chars().count() <= width.max(8) + 1), "{lines:?}");
            let joined = lines.join("\n").replace("\\\n", "");
            assert_eq!(joined, command.replace("\\\n", ""), "width {width}");
            assert!(lines.iter().all(|l| l.matches('\'').count() % 2 == 0 || l.ends_with('\\')));
        }
    }

    #[test]
    fn hkdf_label_is_laid_out_as_section_7_1_says() {
        // RFC 8448 §3: the "key" label of a 16-byte key.
        assert_eq!(crypto::hex(&hkdf_label("key", b"", 16).unwrap()), "001009746c733133206b657900");
    }

    #[test]
    fn hkdf_label_takes_each_field_to_its_maximum_and_refuses_one_more() {
        let info = hkdf_label("k", &[7; 255], 16).unwrap();
        assert_eq!(info[2..4], [7, b't']);
        assert_eq!(info[10], 255);
        assert_eq!(info.len(), 2 + 1 + 7 + 1 + 255);
        assert_eq!(hkdf_label("k", &[7; 256], 16), Err(TooLong { prefix: LenPrefix::U8, len: 256 }));

        let label = "l".repeat(249);
        assert_eq!(hkdf_label(&label, b"", 16).unwrap()[2], 255);
        let label = "l".repeat(250);
        assert_eq!(hkdf_label(&label, b"", 16), Err(TooLong { prefix: LenPrefix::U8, len: 256 }));

        assert_eq!(hkdf_label("key", b"", 65_535).unwrap()[..2], [0xff, 0xff]);
        assert_eq!(hkdf_label("key", b"", 65_536), Err(TooLong { prefix: LenPrefix::U16, len: 65_536 }));
        assert!(expand_command(&[1; 32], "key", &[7; 256], 16).starts_with("# no HkdfLabel: "));
    }

    #[test]
    fn without_values_the_tree_has_labels_and_hashes_but_no_values_or_commands() {
        let mut s = Schedule::default();
        s.step(&HandshakeStep {
            number: 2,
            expected: 7,
            step: Step::SecretDerived { kind: SecretKind::HandshakeSecret },
        });
        let rows = s.rows();
        assert!(rows.iter().all(|r| r.value.is_none() && r.proof.is_none()));
        let hs = rows.iter().find(|r| r.name == "handshake secret").unwrap();
        assert_eq!(hs.state, State::Derived);
        assert!(s.proofs().is_empty());
    }
}
