//! The tamper lab: `/tamper CASE` breaks one thing on purpose (in `demo`,
//! and in `connect --lab`) and shows which check caught it, with the alert,
//! the RFC section and why the check exists; then the client reconnects.
//!
//! This module is the one table of cases (`Case::check`), what a case's
//! end means (`Report::outcome`), and the hooks that do the tampering,
//! which the driver calls only where one was given (everyone else has
//! none): a [`ConnectionHook`] makes a client's engine and seals its
//! lines (`ClientTamper`: a wrong Finished, then flip, replay, reorder
//! on the sealed records, see `tamper_records`), and a [`DeliveryHook`]
//! sees every frame a room delivers (`LyingRelay`: sig, see
//! `alter_delivery`). The client's side of the lab is in `cmd::lab`;
//! the demo gives the room its hook and names the bot that speaks.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::chat::Frame;
use crate::chat::frame::HEADER;
use crate::tls::{self, AlertDescription, ClientConfig, Connection, Rng, ServerName};

/// One thing to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// One bit of the next record's ciphertext is flipped.
    Flip,
    /// The next record is sent twice.
    Replay,
    /// The next line goes out as two records, sent in swapped order.
    Reorder,
    /// The client's next Finished is wrong.
    Finished,
    /// The server presents a certificate from another CA.
    CertCa,
    /// The server presents a certificate from the right CA for another name.
    CertName,
    /// A man in the middle with its own key.
    Mitm,
    /// A bot's next message arrives with a broken signature.
    Sig,
}

/// Which case the record-level hook applies (see `tamper_records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// Flip one bit of the first record's ciphertext.
    Flip,
    /// Send the first record twice.
    Replay,
    /// Swap the first two records.
    Reorder,
}

/// Where a case's check runs, and so who sends the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checker {
    /// The peer (the room's server) checks and sends the alert.
    Peer,
    /// This client checks and sends the alert.
    Us,
    /// This client's member checks, and marks the message.
    Member,
}

/// A case's row in the table: what catches it, and why that check exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    /// The check, in a few words.
    pub(crate) check: &'static str,
    /// The alert it sends (none for the signature: a mark in the pane).
    pub(crate) alert: Option<AlertDescription>,
    /// Where it is specified.
    pub(crate) section: &'static str,
    /// Who runs the check.
    pub(crate) checker: Checker,
    /// Why the check exists, in one sentence.
    pub(crate) why: &'static str,
}

/// Every case, in the order `/tamper` lists them.
pub(crate) const CASES: [Case; 8] = [
    Case::Flip,
    Case::Replay,
    Case::Reorder,
    Case::Finished,
    Case::CertCa,
    Case::CertName,
    Case::Mitm,
    Case::Sig,
];

impl Case {
    /// Reads `flip`, `replay`, `reorder`, `finished`, `cert` (another CA),
    /// `cert name`, `mitm`, `sig`.
    pub(crate) fn parse(words: &str) -> Option<Self> {
        let words: Vec<&str> = words.split_whitespace().collect();
        Some(match words.as_slice() {
            ["flip"] => Self::Flip,
            ["replay"] => Self::Replay,
            ["reorder"] => Self::Reorder,
            ["finished"] => Self::Finished,
            ["cert"] | ["cert", "ca"] => Self::CertCa,
            ["cert", "name"] => Self::CertName,
            ["mitm"] => Self::Mitm,
            ["sig"] => Self::Sig,
            _ => return None,
        })
    }

    /// The name typed after `/tamper`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Flip => "flip",
            Self::Replay => "replay",
            Self::Reorder => "reorder",
            Self::Finished => "finished",
            Self::CertCa => "cert",
            Self::CertName => "cert name",
            Self::Mitm => "mitm",
            Self::Sig => "sig",
        }
    }

    /// What the case does, for `/tamper` alone.
    pub(crate) fn does(self) -> &'static str {
        match self {
            Self::Flip => "flips one bit of the record carrying your next line",
            Self::Replay => "sends the record carrying your next line twice",
            Self::Reorder => "sends your next line as two records, in swapped order",
            Self::Finished => "reconnects with a wrong Finished",
            Self::CertCa => "the demo's server presents a certificate from another CA (demo only)",
            Self::CertName => "the demo's server presents a certificate for another name (demo only)",
            Self::Mitm => "reconnects through a man in the middle with its own key",
            Self::Sig => "the demo's relay alters bob's next signed line on its way (demo only)",
        }
    }

    /// The record-level tamper, for the cases that act on the next line.
    pub(crate) fn wire(self) -> Option<Wire> {
        match self {
            Self::Flip => Some(Wire::Flip),
            Self::Replay => Some(Wire::Replay),
            Self::Reorder => Some(Wire::Reorder),
            _ => None,
        }
    }

    /// Whether the case needs `tlschat demo` (it changes the server or the
    /// relay, which a client cannot do to a real room).
    pub(crate) fn demo_only(self) -> bool {
        matches!(self, Self::CertCa | Self::CertName | Self::Sig)
    }

    /// The case's row of the table.
    pub(crate) fn check(self) -> Check {
        match self {
            Self::Flip => Check {
                check: "the AEAD tag of the record",
                alert: Some(AlertDescription::BAD_RECORD_MAC),
                section: "RFC 8446 §5.2",
                checker: Checker::Peer,
                why: "every record is authenticated, so a changed bit is refused rather than read: \
                      without the tag, flipping a ciphertext bit would flip the same bit of your text",
            },
            Self::Replay => Check {
                check: "the sequence number in the record nonce (IV XOR seq)",
                alert: Some(AlertDescription::BAD_RECORD_MAC),
                section: "RFC 8446 §5.3",
                checker: Checker::Peer,
                why: "each record is opened with the nonce of the next sequence number, so a record \
                      sent again no longer authenticates: nobody can replay a line within a connection",
            },
            Self::Reorder => Check {
                check: "the sequence number in the record nonce (IV XOR seq)",
                alert: Some(AlertDescription::BAD_RECORD_MAC),
                section: "RFC 8446 §5.3",
                checker: Checker::Peer,
                why: "records open only in the order they were sealed, so nobody can reorder \
                      (or drop) records without the receiver noticing",
            },
            Self::Finished => Check {
                check: "the Finished MAC over the handshake transcript",
                alert: Some(AlertDescription::DECRYPT_ERROR),
                section: "RFC 8446 §4.4.4",
                checker: Checker::Peer,
                why: "Finished proves both sides saw the same handshake and hold the same keys: \
                      without it a man in the middle could change the hellos (a weaker suite) unseen",
            },
            Self::CertCa => Check {
                check: "the certificate chain ends at a CA you trust",
                alert: Some(AlertDescription::UNKNOWN_CA),
                section: "RFC 8446 §4.4.2.4, §6.2",
                checker: Checker::Us,
                why: "anyone can make a certificate for any name: only the signature of a CA you \
                      trust ties the key to the server",
            },
            Self::CertName => Check {
                check: "the certificate names the server you asked for",
                alert: Some(AlertDescription::BAD_CERTIFICATE),
                section: "RFC 8446 §4.4.2.4, §6.2; names: RFC 6125 §6",
                checker: Checker::Us,
                why: "a valid certificate for another name proves nothing about this server: \
                      otherwise a certificate for any site would impersonate every site",
            },
            Self::Mitm => Check {
                check: "the server's key against the one you pinned (or your CA)",
                alert: Some(AlertDescription::BAD_CERTIFICATE),
                section: "RFC 8446 §4.4.2.4, §6.2; the pin: tlschat's trust, like SSH's known_hosts",
                checker: Checker::Us,
                why: "a man in the middle can complete a handshake with a key of its own: only \
                      comparing the key with the one you trust shows it is not the room",
            },
            Self::Sig => Check {
                check: "the author's Ed25519 signature over the message bytes",
                alert: None,
                section: "docs/PROTOCOL.md; Ed25519: RFC 8032 §5.1.7",
                checker: Checker::Member,
                why: "TLS protects each hop, but the relay decrypts every line: only the author's \
                      signature, checked by your own client, shows the relay did not change it",
            },
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `/tamper` alone shows: each case and what it does.
pub(crate) fn usage() -> Vec<String> {
    let mut lines =
        vec!["/tamper CASE breaks one thing on purpose and shows which check catches it:".to_owned()];
    lines.extend(CASES.iter().map(|c| format!("  /tamper {:<10} {}", c.name(), c.does())));
    lines
}

/// What the lab tells the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A case is set up; what happens next.
    Armed {
        /// The case.
        case: Case,
        /// What to do or expect, in one line.
        next: String,
    },
    /// The tampered connection ended: how.
    Ended {
        /// The case.
        case: Case,
        /// Who sent the alert, and which (none: it ended without one).
        alert: Option<(Checker, AlertDescription)>,
        /// The connection's own account of its end.
        error: String,
    },
    /// The room's signed message from `from` arrived: with its mark.
    Marked {
        /// Who signed it.
        from: String,
        /// Whether the signature verified.
        valid: bool,
    },
    /// A case that cannot run here, or a note.
    Note(String),
    /// A new connection, after a case.
    Reconnecting,
}

impl Report {
    /// Whether the expected check caught the case.
    pub(crate) fn caught(&self) -> bool {
        match self {
            Self::Ended { case, alert, .. } => {
                let expected = case.check();
                // A man in the middle meets whichever check the client
                // trusts by: the pin (bad_certificate) or a CA (unknown_ca).
                let ca = *case == Case::Mitm && alert == &Some((Checker::Us, AlertDescription::UNKNOWN_CA));
                ca || alert.is_some_and(|(by, a)| Some(a) == expected.alert && by == expected.checker)
            }
            Self::Marked { valid, .. } => !valid,
            _ => false,
        }
    }

    /// The outcome in one short line (an ended case's head and whether its
    /// check caught it), repeated once the lab has reconnected.
    pub(crate) fn summary(&self) -> Option<String> {
        let Self::Ended { case, alert, .. } = self else { return None };
        let who = match alert {
            Some((Checker::Peer, a)) => format!("the room sent alert {a}"),
            Some((_, a)) => format!("this client sent alert {a}"),
            None => "the connection ended without an alert".to_owned(),
        };
        let verdict = if self.caught() {
            format!("caught by {}", case.check().check)
        } else {
            "NOT the expected check".to_owned()
        };
        Some(format!("tamper {case} (above): {who} — {verdict}; connected again"))
    }

    /// The lines to show, each prefixed by the caller (`[lab]`).
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            Self::Armed { case, next } => vec![format!("tamper {case}: {next}")],
            Self::Note(note) => vec![note.clone()],
            Self::Reconnecting => vec!["reconnecting: a new handshake".to_owned()],
            Self::Ended { case, alert, error } => {
                let c = case.check();
                let head = match alert {
                    Some((Checker::Peer, a)) => format!("tamper {case}: the room sent alert {a}"),
                    Some((_, a)) => format!("tamper {case}: this client sent alert {a}"),
                    None => format!("tamper {case}: the connection ended without an alert"),
                };
                let verdict = if self.caught() {
                    format!("caught by {} ({}): {}", c.check, c.section, c.why)
                } else {
                    let wanted = c.alert.map_or_else(|| "a mark".to_owned(), |a| a.to_string());
                    format!("NOT the expected check ({wanted} from {}); it ended: {error}", c.check)
                };
                let mut lines = vec![format!("{head} — {verdict}")];
                if *case == Case::Replay && self.caught() {
                    lines.push(
                        "   (your line went once and was delivered; its copy, under a sequence number already \
                         used, failed the room's check and ended the connection)"
                            .to_owned(),
                    );
                }
                // A peer's alert says it all; our own check says what it saw.
                if !matches!(alert, Some((Checker::Peer, _))) {
                    lines.push(format!("   ({error})"));
                }
                lines
            }
            Self::Marked { from, valid: false } => {
                let c = Case::Sig.check();
                vec![format!(
                    "tamper sig: {from}'s line is marked \u{2717} INVALID — caught by {} ({}): {}",
                    c.check, c.section, c.why
                )]
            }
            Self::Marked { from, valid: true } => {
                vec![format!("tamper sig: {from}'s line verified: the alteration did not happen")]
            }
        }
    }

    /// The report as one JSON object (`--json`).
    pub(crate) fn json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Armed { case, next } => {
                json!({"type": "lab", "event": "armed", "case": case.name(), "text": next})
            }
            Self::Note(text) => json!({"type": "lab", "event": "note", "text": text}),
            Self::Reconnecting => json!({"type": "lab", "event": "reconnecting"}),
            Self::Ended { case, alert, error } => {
                let c = case.check();
                json!({
                    "type": "lab",
                    "event": "ended",
                    "case": case.name(),
                    "alert": alert.map(|(_, a)| a.to_string()),
                    "sent_by": alert.map(|(by, _)| match by { Checker::Peer => "peer", _ => "us" }),
                    "caught": self.caught(),
                    "check": c.check,
                    "section": c.section,
                    "why": c.why,
                    "error": error,
                })
            }
            Self::Marked { from, valid } => {
                let c = Case::Sig.check();
                json!({
                    "type": "lab", "event": "marked", "case": "sig", "from": from, "valid": valid,
                    "caught": self.caught(), "check": c.check, "section": c.section, "why": c.why,
                })
            }
        }
    }
}

/// The length of the TLS record at the start of `buf`, if a whole one is there.
fn record_len(buf: &[u8]) -> Option<usize> {
    let header = buf.get(..5)?;
    let len = 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
    (buf.len() >= len).then_some(len)
}

/// How long `/tamper replay` waits between a record and its copy: the
/// room has taken the first (delivered the line) when the copy comes.
pub(crate) const REPLAY_GAP: std::time::Duration = std::time::Duration::from_millis(300);

/// The first whole TLS record in `buf`, as the copy `/tamper replay` sends.
pub(crate) fn first_record(buf: &[u8]) -> Option<Vec<u8>> {
    record_len(buf).map(|len| buf[..len].to_vec())
}

/// Applies `wire` to the sealed records in `buf` (whole TLS records, as
/// the engine queues them): flips the lowest bit of the first record's
/// first ciphertext byte, sends the first record twice, or swaps the first
/// two. Returns false, leaving `buf` alone, when there are not enough
/// records for it.
pub(crate) fn tamper_records(buf: &mut Vec<u8>, wire: Wire) -> bool {
    let Some(first) = record_len(buf) else { return false };
    match wire {
        Wire::Flip => {
            if first <= 5 {
                return false;
            }
            buf[5] ^= 1;
        }
        Wire::Replay => {
            let copy = buf[..first].to_vec();
            buf.splice(first..first, copy);
        }
        Wire::Reorder => {
            let Some(second) = record_len(&buf[first..]) else { return false };
            buf[..first + second].rotate_left(first);
        }
    }
    true
}

/// The text a lying relay puts in place of `text`.
pub(crate) fn altered_text(text: &str) -> String {
    if text.contains("noon") { text.replacen("noon", "midnight", 1) } else { format!("{text}!") }
}

/// What a lying relay sends instead of `frame` (one encoded frame): if it
/// delivers a message signed by `author`, the same frame with the
/// message's text changed and the author's signature kept, which no longer
/// verifies. `None` for any other frame.
pub(crate) fn alter_delivery(frame: &[u8], author: &str) -> Option<Vec<u8>> {
    let kind = *frame.first()?;
    let body = frame.get(HEADER..)?;
    let Ok(Frame::Deliver { room_seq, flags, author: from, signed }) = Frame::decode(kind, body) else {
        return None;
    };
    if from != author {
        return None;
    }
    let message = crate::chat::message::Signed::open(&signed).ok()?;
    let text = &message.fields().text;
    let layout = crate::chat::message::layout(text.len());
    let range = |name| layout.iter().find(|(n, _)| *n == name).map(|(_, r)| r.clone());
    let (len_at, sig_at) = (range("text_len")?, range("signature")?);
    let new_text = altered_text(text);
    let mut forged = signed[..len_at.start].to_vec();
    forged.extend_from_slice(&u16::try_from(new_text.len()).ok()?.to_be_bytes());
    forged.extend_from_slice(new_text.as_bytes());
    forged.extend_from_slice(&signed[sig_at]);
    Frame::Deliver { room_seq, flags, author: from, signed: forged }.encode().ok()
}

/// What the lab may do to a client connection: given to a
/// `net::Dial` (its `hook`) by the lab, and absent everywhere else.
pub trait ConnectionHook: Send + Sync + fmt::Debug {
    /// The engine of a connection being made.
    fn engine(
        &self,
        config: Arc<ClientConfig>,
        server_name: ServerName,
        rng: Box<dyn Rng>,
    ) -> Result<Connection, tls::Error>;

    /// Seals `line` with `tls` and says what to write, when the hook
    /// tampers with it: each [`Write`] in turn, after its pause. `None`:
    /// the line is sealed and written as usual.
    fn seal_line(&self, tls: &mut Connection, line: &[u8]) -> Result<Option<Vec<Write>>, tls::Error>;
}

/// Bytes for the socket, after a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// How long to wait before writing them (after what came before).
    pub(crate) after: Duration,
    /// Whole TLS records, as tampered with.
    pub(crate) bytes: Vec<u8>,
}

/// What the lab may do to what a room delivers: given to the room's task
/// by the demo, and absent everywhere else.
pub trait DeliveryHook: Send + Sync + fmt::Debug {
    /// What to send a seat instead of `frame` (one encoded frame), if
    /// anything.
    fn deliver(&self, frame: &[u8]) -> Option<Vec<u8>>;
}

/// The client's side of the lab, armed by `/tamper` and acted on by the
/// connection: the next engine made sends a wrong Finished, or the next
/// line said is tampered with on the wire.
#[derive(Debug, Default)]
pub(crate) struct ClientTamper {
    armed: Mutex<Armed>,
}

/// What [`ClientTamper`] is armed with.
#[derive(Debug, Default)]
struct Armed {
    /// The next engine made sends a wrong Finished.
    wrong_finished: bool,
    /// The next line said goes out tampered with.
    wire: Option<Wire>,
}

impl ClientTamper {
    /// The next line said goes out with `wire` applied to its records.
    pub(crate) fn arm_wire(&self, wire: Wire) {
        self.armed.lock().unwrap_or_else(PoisonError::into_inner).wire = Some(wire);
    }

    /// The next connection made sends a wrong Finished.
    pub(crate) fn arm_finished(&self) {
        self.armed.lock().unwrap_or_else(PoisonError::into_inner).wrong_finished = true;
    }

    /// Forgets what is armed and unused (its connection ended first).
    pub(crate) fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = Armed::default();
    }
}

impl ConnectionHook for ClientTamper {
    fn engine(
        &self,
        config: Arc<ClientConfig>,
        server_name: ServerName,
        rng: Box<dyn Rng>,
    ) -> Result<Connection, tls::Error> {
        let wrong =
            std::mem::take(&mut self.armed.lock().unwrap_or_else(PoisonError::into_inner).wrong_finished);
        if wrong {
            Connection::client_with_wrong_finished(config, server_name, rng)
        } else {
            Connection::client(config, server_name, rng)
        }
    }

    fn seal_line(&self, tls: &mut Connection, line: &[u8]) -> Result<Option<Vec<Write>>, tls::Error> {
        let Some(wire) = self.armed.lock().unwrap_or_else(PoisonError::into_inner).wire.take() else {
            return Ok(None);
        };
        let mut sealed = Vec::new();
        if wire == Wire::Reorder && line.len() > 1 {
            // Two records, so that there are two to swap.
            let half = line.len() / 2;
            tls.send(&line[..half])?;
            tls.send(&line[half..])?;
        } else {
            tls.send(line)?;
        }
        let _ = tls.poll_transmit(&mut sealed);
        let now = |bytes| Write { after: Duration::ZERO, bytes };
        Ok(Some(match wire {
            // The record goes alone first, and the room takes it (the line
            // is delivered once, and acknowledged) before its copy.
            Wire::Replay => {
                let copy = first_record(&sealed);
                let mut writes = vec![now(sealed)];
                writes.extend(copy.map(|bytes| Write { after: REPLAY_GAP, bytes }));
                writes
            }
            Wire::Flip | Wire::Reorder => {
                tamper_records(&mut sealed, wire);
                vec![now(sealed)]
            }
        }))
    }
}

/// The demo's relay told to lie (`/tamper sig`): once armed, it alters the
/// next message from its author on its way to every seat, after the room
/// checked it, and keeps the author's signature, which then fails every
/// member's own check. Never given to `tlschat listen`'s room.
#[derive(Debug)]
pub(crate) struct LyingRelay {
    /// Whose message to alter.
    author: String,
    state: Mutex<Lie>,
}

/// Where a [`LyingRelay`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// Delivers as the room decided.
    Honest,
    /// Alters the author's next message.
    Armed,
    /// Alters this message (its `room_seq`) to every seat it goes to.
    Altering(u64),
}

impl LyingRelay {
    /// A relay that will lie about what `author` says.
    pub(crate) fn new(author: impl Into<String>) -> Self {
        Self { author: author.into(), state: Mutex::new(Lie::Honest) }
    }

    /// Whose message it alters.
    pub(crate) fn author(&self) -> &str {
        &self.author
    }

    /// Alters the author's next message.
    pub(crate) fn arm(&self) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Lie::Armed;
    }
}

impl DeliveryHook for LyingRelay {
    fn deliver(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if *state == Lie::Honest {
            return None;
        }
        let kind = *frame.first()?;
        let Ok(Frame::Deliver { room_seq, flags, .. }) = Frame::decode(kind, frame.get(HEADER..)?) else {
            return None;
        };
        // History (a member's rejoin) is never altered: the lie is about
        // one message, as it is fanned out.
        if flags & crate::chat::frame::flags::HISTORY != 0 {
            return None;
        }
        match *state {
            Lie::Altering(seq) if seq != room_seq => {
                // Another message: the altered one went to every seat.
                *state = Lie::Honest;
                None
            }
            Lie::Altering(_) => alter_delivery(frame, &self.author),
            _ => {
                let forged = alter_delivery(frame, &self.author)?;
                *state = Lie::Altering(room_seq);
                Some(forged)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &[u8]) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn every_case_parses_from_its_own_name_and_the_table_names_an_alert_for_each_tls_case() {
        for case in CASES {
            assert_eq!(Case::parse(case.name()), Some(case));
            let check = case.check();
            assert_eq!(check.alert.is_none(), case == Case::Sig, "{case}");
            assert!(check.section.starts_with("RFC 8446") || case == Case::Sig);
        }
        assert_eq!(Case::parse("cert ca"), Some(Case::CertCa));
        assert_eq!(Case::parse("explode"), None);
        assert_eq!(Case::parse(""), None);
    }

    #[test]
    fn flip_changes_one_bit_of_the_first_record_and_nothing_else() {
        let (a, b) = (record(b"abc"), record(b"xyz"));
        let mut buf = [a.clone(), b.clone()].concat();
        assert!(tamper_records(&mut buf, Wire::Flip));
        let diff: Vec<usize> =
            (0..buf.len()).filter(|&i| buf[i] != [a.clone(), b.clone()].concat()[i]).collect();
        assert_eq!(diff, vec![5]);
        assert_eq!(buf[5] ^ a[5], 1);
    }

    #[test]
    fn replay_sends_the_first_record_twice_and_reorder_swaps_the_first_two() {
        let (a, b, c) = (record(b"one"), record(b"second"), record(b"3"));
        let mut buf = [a.clone(), b.clone(), c.clone()].concat();
        assert!(tamper_records(&mut buf, Wire::Replay));
        assert_eq!(buf, [a.clone(), a.clone(), b.clone(), c.clone()].concat());
        let mut buf = [a.clone(), b.clone(), c.clone()].concat();
        assert!(tamper_records(&mut buf, Wire::Reorder));
        assert_eq!(buf, [b, a.clone(), c].concat());
        let mut one = a.clone();
        assert!(!tamper_records(&mut one, Wire::Reorder), "one record cannot be reordered");
        assert_eq!(one, a);
        assert!(!tamper_records(&mut Vec::new(), Wire::Flip));
    }

    #[test]
    fn an_ended_case_is_caught_only_by_the_expected_alert_from_the_expected_side() {
        let ended = |alert| Report::Ended { case: Case::Flip, alert, error: "x".into() };
        assert!(ended(Some((Checker::Peer, AlertDescription::BAD_RECORD_MAC))).caught());
        assert!(!ended(Some((Checker::Us, AlertDescription::BAD_RECORD_MAC))).caught());
        assert!(!ended(Some((Checker::Peer, AlertDescription::DECODE_ERROR))).caught());
        assert!(!ended(None).caught());
        let line = &ended(Some((Checker::Peer, AlertDescription::BAD_RECORD_MAC))).lines()[0];
        assert!(
            line.contains("the room sent alert bad_record_mac") && line.contains("RFC 8446 §5.2"),
            "{line}"
        );
    }

    #[test]
    fn a_lying_relay_changes_the_text_and_keeps_the_signature_which_then_fails() {
        use crate::chat::message::{Signed, tests::fields};
        use crate::tls::{Ed25519Key, OsRng};
        let key = Ed25519Key::generate(&mut OsRng);
        let fields = fields(&key, "meet me at noon");
        let signed = fields.sign(&key).unwrap();
        let frame = Frame::Deliver { room_seq: 4, flags: 0, author: "bob".into(), signed }.encode().unwrap();
        assert_eq!(alter_delivery(&frame, "alice"), None);
        let forged = alter_delivery(&frame, "bob").unwrap();
        let Ok(Frame::Deliver { author, signed, .. }) = Frame::decode(forged[0], &forged[HEADER..]) else {
            panic!("not a Deliver frame")
        };
        assert_eq!(author, "bob");
        let opened = Signed::open(&signed).unwrap();
        assert_eq!(opened.fields().text, "meet me at midnight");
        assert!(!opened.valid());
    }

    /// A client engine made by `hook` and a server, pumped until neither
    /// sends more: the client, the server, and how the server ended.
    fn handshake(hook: &ClientTamper) -> (Connection, Connection, Result<(), tls::Error>) {
        use crate::tls::{CertifiedKey, RootStore, SeededRng, ServerConfig, ServerTrust};
        let now = 1_793_491_200;
        let (ca, server) = crate::store::pki::test_room_for_testing_only(31, now).unwrap();
        let mut roots = RootStore::new();
        roots.add_der(&ca.cert_der).unwrap();
        let server = CertifiedKey { chain: server.chain_der.clone(), key: server.key.clone() };
        let mut client = hook
            .engine(
                Arc::new(ClientConfig::new(ServerTrust::Roots(roots))),
                ServerName::parse("localhost").unwrap(),
                Box::new(SeededRng::new_for_testing_only(1)),
            )
            .unwrap();
        let mut srv = Connection::server(
            Arc::new(ServerConfig::new(server)),
            Box::new(SeededRng::new_for_testing_only(2)),
        );
        let mut ended = Ok(());
        for _ in 0..20 {
            let mut buf = Vec::new();
            if client.poll_transmit(&mut buf) && ended.is_ok() {
                ended = srv.handle_input(&buf, now + 86_400).map(|_| ());
            }
            let mut buf = Vec::new();
            if srv.poll_transmit(&mut buf) {
                let _ = client.handle_input(&buf, now + 86_400);
            }
        }
        (client, srv, ended)
    }

    #[test]
    fn an_armed_client_hook_makes_one_engine_with_a_wrong_finished_and_then_ordinary_ones() {
        let hook = ClientTamper::default();
        let (_, srv, ended) = handshake(&hook);
        assert!(ended.is_ok() && !srv.is_handshaking(), "unarmed: an ordinary handshake");
        hook.arm_finished();
        let (_, _, ended) = handshake(&hook);
        assert_eq!(ended.unwrap_err().alert(), Some(AlertDescription::DECRYPT_ERROR));
        let (_, srv, ended) = handshake(&hook);
        assert!(ended.is_ok() && !srv.is_handshaking(), "armed once, used once");
    }

    #[test]
    fn the_client_hook_seals_nothing_unless_armed_and_then_only_the_next_line() {
        let hook = ClientTamper::default();
        let (mut client, mut srv, ended) = handshake(&hook);
        ended.unwrap();
        let now = 1_793_491_200 + 86_400;
        // Unarmed, or disarmed: the hook seals nothing, and the driver
        // seals the line as usual.
        assert_eq!(hook.seal_line(&mut client, b"untouched\n").unwrap(), None);
        hook.arm_wire(Wire::Replay);
        hook.disarm();
        assert_eq!(hook.seal_line(&mut client, b"untouched\n").unwrap(), None, "disarmed");
        let mut ordinary = Vec::new();
        assert!(!client.poll_transmit(&mut ordinary), "nothing sealed by the hook");
        client.send(b"untouched\n").unwrap();
        assert!(client.poll_transmit(&mut ordinary));
        srv.handle_input(&ordinary, now).unwrap();

        hook.arm_wire(Wire::Replay);
        let writes = hook.seal_line(&mut client, b"said twice\n").unwrap().unwrap();
        assert_eq!(writes.len(), 2);
        assert_eq!((writes[0].after, writes[1].after), (Duration::ZERO, REPLAY_GAP));
        assert_eq!(writes[0].bytes, writes[1].bytes, "one record, then its copy");
        assert_eq!(hook.seal_line(&mut client, b"next\n").unwrap(), None, "armed for one line");
        srv.handle_input(&writes[0].bytes, now).unwrap();
        let copy = srv.handle_input(&writes[1].bytes, now).unwrap_err();
        assert_eq!(copy.alert(), Some(AlertDescription::BAD_RECORD_MAC));

        let (mut client, mut srv, _) = handshake(&hook);
        hook.arm_wire(Wire::Reorder);
        let writes = hook.seal_line(&mut client, b"two records, swapped\n").unwrap().unwrap();
        assert_eq!(writes.len(), 1);
        let error = srv.handle_input(&writes[0].bytes, now).unwrap_err();
        assert_eq!(error.alert(), Some(AlertDescription::BAD_RECORD_MAC));
    }

    fn deliver(room_seq: u64, flags: u8, author: &str, key: &crate::tls::Ed25519Key) -> Vec<u8> {
        use crate::chat::message::tests::fields;
        let signed = fields(key, "meet me at noon").sign(key).unwrap();
        Frame::Deliver { room_seq, flags, author: author.into(), signed }
            .encode()
            .expect("a small frame fits")
    }

    #[test]
    fn a_lying_relay_alters_exactly_the_next_message_of_its_author_to_every_seat_and_nothing_else() {
        use crate::chat::frame::flags::HISTORY;
        use crate::tls::{Ed25519Key, OsRng};
        let key = Ed25519Key::generate(&mut OsRng);
        let relay = LyingRelay::new("bob");
        assert_eq!(relay.author(), "bob");
        let (bob4, bob5, alice6) =
            (deliver(4, 0, "bob", &key), deliver(5, 0, "bob", &key), deliver(6, 0, "alice", &key));
        // Not armed: everything as the room decided.
        assert_eq!(relay.deliver(&bob4), None);
        relay.arm();
        assert_eq!(relay.deliver(&alice6), None, "another author");
        assert_eq!(relay.deliver(&deliver(3, HISTORY, "bob", &key)), None, "history");
        let forged = relay.deliver(&bob4).expect("the next message of bob is altered");
        assert_eq!(Some(forged.clone()), alter_delivery(&bob4, "bob"));
        assert_eq!(relay.deliver(&bob4), Some(forged), "to every seat it goes to");
        assert_eq!(relay.deliver(&bob5), None, "bob's next message goes as he signed it");
        assert_eq!(relay.deliver(&bob4), None, "and the lie is over");
    }
}

#[cfg(test)]
mod command_tests {
    use super::Case;
    use crate::tui::app::Command;

    #[test]
    fn tamper_commands_parse_to_their_case_and_an_unknown_case_is_refused_with_its_name_escaped() {
        assert_eq!(Command::parse("/tamper flip"), Command::Tamper(Case::Flip));
        assert_eq!(Command::parse("/tamper cert name"), Command::Tamper(Case::CertName));
        assert_eq!(Command::parse("/tamper"), Command::TamperHelp);
        let Command::Wrong(why) = Command::parse("/tamper \u{1b}[2Jboom") else { panic!("not refused") };
        assert!(why.contains("\\u{1b}") && !why.contains('\u{1b}'), "{why}");
    }
}
