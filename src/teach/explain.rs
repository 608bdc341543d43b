//! Plain-language explanations of each handshake step, for the panel.
//!
//! The panel shows what happened (a message's fields and bytes, a secret's
//! label, a check's verdict); this module says why it matters: what a
//! message proves, what a secret is for, why a check exists, and where the
//! RFC says so. It is pure data, shared by every view that teaches, so the
//! same step is explained in the same words wherever it appears.

use crate::tls::key_schedule::SecretKind;

/// Why one step matters, in two short sentences and a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    /// What the step does or proves.
    pub(crate) what: &'static str,
    /// What the other side checks, or what the value is used for.
    pub(crate) then: &'static str,
    /// Where it is specified, e.g. "RFC 8446 §4.4.4".
    pub(crate) rfc: &'static str,
}

/// A handshake message, by the name the engine gives it in its events.
///
/// `None` for a name the engine does not send (the panel then shows no
/// explanation rather than a wrong one).
pub fn message(name: &str) -> Option<Explanation> {
    let (what, then, rfc) = match name {
        "ClientHello" => (
            "Opens the handshake: the client's random, the suites, groups and signature schemes it \
             supports, and its X25519 key share. Nothing here is secret, and all of it enters the \
             transcript that both Finished messages later vouch for.",
            "The server checks that TLS 1.3 is offered and picks one suite, group and scheme from \
             the lists; a malformed or impossible hello is answered with an alert.",
            "RFC 8446 §4.1.2",
        ),
        "HelloRetryRequest" => (
            "The server found no key share it can use and asks the client to try again with the \
             group it names. In the transcript the first ClientHello is replaced by its hash.",
            "The client checks that the group is one it offered and not one it already sent a \
             share for, then sends a second ClientHello.",
            "RFC 8446 §4.1.4",
        ),
        "ServerHello" => (
            "The server's choice of suite and its own key share. From here both sides can compute \
             the X25519 shared secret, and every handshake message after this one is encrypted.",
            "The client checks that the version is TLS 1.3, that suite and group are among those it \
             offered, and that the session id echoes its own.",
            "RFC 8446 §4.1.3",
        ),
        "ChangeCipherSpec" => (
            "A dummy record for middlebox compatibility: it makes the handshake look like a resumed \
             TLS 1.2 session to old network equipment. It has no cryptographic meaning.",
            "The receiver checks that it is the single byte 0x01, sent during the handshake only, \
             and otherwise ignores it.",
            "RFC 8446 Appendix D.4",
        ),
        "EncryptedExtensions" => (
            "The server's answers to extensions that are not needed to set up keys (here ALPN, the \
             application protocol), sent encrypted so an eavesdropper does not learn them.",
            "The client checks that each extension answers one it sent.",
            "RFC 8446 §4.3.1",
        ),
        "CertificateRequest" => (
            "The server asks the client to prove who it is too (mutual TLS), and names the \
             signature schemes it accepts.",
            "The client answers with its Certificate and CertificateVerify, or with an empty \
             Certificate if it has no key to show.",
            "RFC 8446 §4.3.2",
        ),
        "Certificate" => (
            "The sender's certificate: the public key it claims and who vouches for that key. On \
             its own it proves nothing, since anyone can copy a certificate.",
            "The receiver checks the chain up to a CA it trusts (or the key against its pin), the \
             validity dates, and that the certificate names the host that was dialled.",
            "RFC 8446 §4.4.2",
        ),
        "CertificateVerify" => (
            "A signature with the certificate's private key over the transcript so far: the sender \
             holds that key now, in this handshake, for exactly these messages.",
            "The receiver verifies the signature with the certificate's public key over a fixed \
             context string and the transcript hash.",
            "RFC 8446 §4.4.3",
        ),
        "Finished" => (
            "An HMAC over the whole transcript, keyed from the sender's handshake traffic secret: \
             the sender saw the same messages and derived the same keys.",
            "The receiver computes the HMAC itself and compares in constant time; any change to \
             any earlier message makes it differ (decrypt_error).",
            "RFC 8446 §4.4.4",
        ),
        "NewSessionTicket" => (
            "A ticket the server offers for resuming later without a full handshake.",
            "tlschat does not resume sessions: the client reads the ticket, bounds what it may \
             cost, and drops it.",
            "RFC 8446 §4.6.1",
        ),
        "KeyUpdate" => (
            "The sender moves to the next generation of its application traffic secret, which \
             limits how much data any one key protects.",
            "The receiver derives the same next secret itself and, when asked (update_requested), \
             updates its own sending keys too.",
            "RFC 8446 §4.6.3",
        ),
        _ => return None,
    };
    Some(Explanation { what, then, rfc })
}

/// A secret of the key schedule.
pub(crate) fn secret(kind: SecretKind) -> Explanation {
    let (what, then, rfc) = match kind {
        SecretKind::SharedSecret => (
            "X25519 of our private key with the peer's key share: the one input an eavesdropper, \
             who sees both public shares, cannot compute.",
            "Enters the schedule at the handshake secret.",
            "RFC 8446 §7.4.2",
        ),
        SecretKind::EarlySecret => (
            "HKDF-Extract(0, 0): with no pre-shared key this is a fixed value, the root the \
             schedule grows from.",
            "Derive-Secret(early, \"derived\", \"\") salts the next stage.",
            "RFC 8446 §7.1",
        ),
        SecretKind::HandshakeSecret => (
            "HKDF-Extract(derived from the early secret, shared secret): where the key exchange \
             enters the schedule.",
            "Both handshake traffic secrets are derived from it over the transcript up to \
             ServerHello.",
            "RFC 8446 §7.1",
        ),
        SecretKind::ClientHandshakeTraffic => (
            "Derive-Secret(handshake secret, \"c hs traffic\", ClientHello..ServerHello).",
            "Keys the client's encrypted handshake records and its Finished.",
            "RFC 8446 §7.1, §7.3",
        ),
        SecretKind::ServerHandshakeTraffic => (
            "Derive-Secret(handshake secret, \"s hs traffic\", ClientHello..ServerHello).",
            "Keys the server's encrypted handshake records (EncryptedExtensions to Finished) and \
             its Finished.",
            "RFC 8446 §7.1, §7.3",
        ),
        SecretKind::MasterSecret => (
            "HKDF-Extract(derived from the handshake secret, 0): the root of the application keys.",
            "The application traffic and exporter secrets are derived from it over the transcript \
             up to the server's Finished.",
            "RFC 8446 §7.1",
        ),
        SecretKind::ClientApplicationTraffic(0) => (
            "Derive-Secret(master secret, \"c ap traffic\", ClientHello..server Finished).",
            "Keys the client's chat records until its first KeyUpdate.",
            "RFC 8446 §7.1, §7.3",
        ),
        SecretKind::ServerApplicationTraffic(0) => (
            "Derive-Secret(master secret, \"s ap traffic\", ClientHello..server Finished).",
            "Keys the server's chat records until its first KeyUpdate.",
            "RFC 8446 §7.1, §7.3",
        ),
        SecretKind::ClientApplicationTraffic(_) => (
            "HKDF-Expand-Label(previous client generation, \"traffic upd\", \"\", 32), after a \
             KeyUpdate.",
            "Keys the client's records from its KeyUpdate on; the previous keys are wiped.",
            "RFC 8446 §7.2",
        ),
        SecretKind::ServerApplicationTraffic(_) => (
            "HKDF-Expand-Label(previous server generation, \"traffic upd\", \"\", 32), after a \
             KeyUpdate.",
            "Keys the server's records from its KeyUpdate on; the previous keys are wiped.",
            "RFC 8446 §7.2",
        ),
        SecretKind::ExporterMaster => (
            "Derive-Secret(master secret, \"exp master\", ClientHello..server Finished).",
            "For keying material used outside TLS (exporters); tlschat derives it and uses it for \
             nothing.",
            "RFC 8446 §7.5",
        ),
    };
    Explanation { what, then, rfc }
}

/// A check, by the name the engine gives it in its events (`Step::Check`'s
/// `what`). `None` for a name this module does not know.
pub fn check(what: &str) -> Option<Explanation> {
    let (what, then, rfc) = match what {
        "certificate chain" => (
            "Ties the server's key to a name the user trusts: a CA chain valid today that names the \
             host dialled, or the exact key pinned on first contact.",
            "Without it anyone could present a key and claim to be the room (unknown_ca, \
             bad_certificate, certificate_expired).",
            "RFC 8446 §4.4.2.4",
        ),
        "client certificate" => (
            "The client's key and certificate, when the server asks for one (mutual TLS).",
            "A room that requires members' keys refuses a client that sends none \
             (certificate_required).",
            "RFC 8446 §4.4.2.4",
        ),
        "CertificateVerify" => (
            "The signature over the transcript verifies with the certificate's key.",
            "Without it a copied certificate would be enough to impersonate its owner \
             (decrypt_error).",
            "RFC 8446 §4.4.3",
        ),
        "Finished" => (
            "verify_data = HMAC(finished_key, transcript hash) matches what we compute ourselves.",
            "Without it a change in transit to any handshake message (a downgraded suite, a \
             swapped key share) would go unnoticed (decrypt_error).",
            "RFC 8446 §4.4.4",
        ),
        "client admitted" => (
            "The room's own rule, after the handshake proved the client's key: may this key join \
             under the name it claims?",
            "Names are bound to keys, so a second key cannot take a member's name \
             (access_denied).",
            "docs/PROTOCOL.md (names and keys)",
        ),
        _ => return None,
    };
    Some(Explanation { what, then, rfc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::messages::HandshakeType;

    /// Every message the engine can name has an explanation, with a section.
    #[test]
    fn every_handshake_message_the_engine_sends_is_explained() {
        let names = [
            HandshakeType::CLIENT_HELLO,
            HandshakeType::SERVER_HELLO,
            HandshakeType::NEW_SESSION_TICKET,
            HandshakeType::ENCRYPTED_EXTENSIONS,
            HandshakeType::CERTIFICATE,
            HandshakeType::CERTIFICATE_REQUEST,
            HandshakeType::CERTIFICATE_VERIFY,
            HandshakeType::FINISHED,
            HandshakeType::KEY_UPDATE,
        ]
        .map(|t| t.name().expect("a known type has a name"));
        for name in names.into_iter().chain(["HelloRetryRequest", "ChangeCipherSpec"]) {
            let e = message(name).unwrap_or_else(|| panic!("{name} is not explained"));
            assert!(e.rfc.starts_with("RFC 8446"), "{name}: {}", e.rfc);
        }
        assert_eq!(message("NoSuchMessage"), None);
    }

    #[test]
    fn first_and_later_generations_are_explained_differently() {
        let first = secret(SecretKind::ClientApplicationTraffic(0));
        let later = secret(SecretKind::ClientApplicationTraffic(3));
        assert!(first.what.contains("c ap traffic"), "{first:?}");
        assert!(later.what.contains("traffic upd"), "{later:?}");
        assert_eq!(later.rfc, "RFC 8446 §7.2");
    }
}
