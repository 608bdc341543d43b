//! Pieces of the handshake that client and server share (RFC 8446 §4.4):
//! writing and checking Certificate, CertificateVerify and Finished, the
//! handshake-secret derivation, and the readable descriptions of messages
//! that the step events carry.

use super::conn::{Core, Message};
use super::crypto::{self, Ed25519Key, Secret, X25519Secret};
use super::error::Error;
use super::events::{Direction, Field};
use super::key_schedule::{self, HandshakeSecrets, SecretKind, TrafficSecret};
use super::messages::{
    self, Certificate, CertificateRequest, CertificateVerify, ClientHello, EncryptedExtensions,
    HandshakeType, ServerHello, SignatureScheme, TLS13,
};

/// Fails with unexpected_message unless `msg` is of type `want`.
pub(crate) fn expect(msg: &Message<'_>, want: HandshakeType, waiting_for: &str) -> Result<(), Error> {
    if msg.typ == want { Ok(()) } else { Err(Error::unexpected(msg.typ, waiting_for)) }
}

/// Adds a received message to the transcript and reports it.
pub(crate) fn received(
    core: &mut Core,
    msg: &Message<'_>,
    encrypted: bool,
    describe: impl FnOnce() -> (String, Vec<Field>),
) {
    core.transcript.update(msg.raw);
    core.message_step(Direction::Received, msg.raw, encrypted, true, describe);
}

/// Appends a message we send to `flight` and the transcript, and reports it.
pub(crate) fn sent(
    core: &mut Core,
    flight: &mut Vec<u8>,
    encrypted: bool,
    encode: impl FnOnce(&mut Vec<u8>),
    describe: impl FnOnce() -> (String, Vec<Field>),
) {
    let start = flight.len();
    encode(flight);
    let raw = &flight[start..];
    core.transcript.update(raw);
    core.message_step(Direction::Sent, raw, encrypted, true, describe);
}

/// After a HelloRetryRequest, ClientHello1 is replaced in the transcript by
/// the synthetic message_hash message holding its hash (§4.4.1).
pub(crate) fn replace_client_hello_with_its_hash(core: &mut Core) {
    let ch1 = core.transcript.current();
    core.transcript = crypto::TranscriptHash::default();
    core.transcript.update(&messages::message_hash(&ch1));
}

/// X25519 agreement with the peer's key share, refusing keys that are not
/// 32 bytes and low-order points (§7.4.2: an all-zero shared secret aborts).
pub(crate) fn agree(ours: &X25519Secret, peer: &[u8]) -> Result<Secret<32>, Error> {
    let peer: [u8; 32] =
        peer.try_into().map_err(|_| Error::IllegalParameter("an x25519 key share is not 32 bytes"))?;
    ours.agree(&peer).ok_or(Error::IllegalParameter("the x25519 key share is a low-order point"))
}

/// The key schedule up to the handshake traffic secrets, reporting each
/// secret. The transcript must end with ServerHello.
pub(crate) fn derive_handshake_secrets(core: &mut Core, shared: &Secret<32>) -> HandshakeSecrets {
    core.secret_step(SecretKind::SharedSecret);
    let hs = HandshakeSecrets::derive(shared, &core.transcript.current());
    core.secret_step(SecretKind::EarlySecret);
    core.secret_step(SecretKind::HandshakeSecret);
    core.secret(SecretKind::ClientHandshakeTraffic, &hs.client);
    core.secret(SecretKind::ServerHandshakeTraffic, &hs.server);
    hs
}

/// The content a CertificateVerify signs (§4.4.3): 64 spaces, the context
/// string, a zero byte, then the transcript hash.
fn signed_content(by_server: bool, transcript_hash: &[u8; 32]) -> Vec<u8> {
    let context: &[u8] =
        if by_server { b"TLS 1.3, server CertificateVerify" } else { b"TLS 1.3, client CertificateVerify" };
    let mut out = Vec::with_capacity(64 + context.len() + 1 + 32);
    out.resize(64, 0x20);
    out.extend_from_slice(context);
    out.push(0);
    out.extend_from_slice(transcript_hash);
    out
}

/// Writes Certificate and, for a non-empty chain, CertificateVerify.
pub(crate) fn send_certificate(
    core: &mut Core,
    flight: &mut Vec<u8>,
    context: &[u8],
    cert: Option<(&[Vec<u8>], &Ed25519Key)>,
    by_server: bool,
) {
    let chain = cert.map(|(c, _)| c.to_vec()).unwrap_or_default();
    let msg = Certificate { context: context.to_vec(), chain };
    sent(core, flight, true, |out| msg.encode(out), || describe_certificate(&msg));
    let Some((_, key)) = cert else { return };
    let signature = key.sign(&signed_content(by_server, &core.transcript.current())).to_vec();
    let cv = CertificateVerify { scheme: SignatureScheme::ED25519, signature };
    sent(core, flight, true, |out| cv.encode(out), || describe_certificate_verify(&cv));
}

/// Checks a received CertificateVerify against the peer's key (§4.4.3).
pub(crate) fn check_certificate_verify(
    core: &mut Core,
    msg: &Message<'_>,
    peer_key: &[u8; 32],
    by_server: bool,
) -> Result<(), Error> {
    let cv = CertificateVerify::decode(msg.body)?;
    if cv.scheme != SignatureScheme::ED25519 {
        return Err(Error::IllegalParameter(
            "CertificateVerify uses a signature scheme that was not offered",
        ));
    }
    let content = signed_content(by_server, &core.transcript.current());
    let ok = crypto::ed25519_verify(peer_key, &content, &cv.signature);
    received(core, msg, true, || describe_certificate_verify(&cv));
    core.check("CertificateVerify", ok, || {
        if ok {
            "Ed25519 signature over the transcript is valid".into()
        } else {
            "Ed25519 signature does not verify".into()
        }
    });
    if ok { Ok(()) } else { Err(Error::DecryptError("CertificateVerify")) }
}

/// Writes Finished keyed by `base` over the transcript so far (§4.4.4).
pub(crate) fn send_finished(core: &mut Core, flight: &mut Vec<u8>, base: &TrafficSecret) {
    let verify_data = key_schedule::verify_data(base, &core.transcript.current());
    sent(
        core,
        flight,
        true,
        |out| messages::encode_finished(out, &verify_data),
        || {
            (
                "verify_data = HMAC(finished_key, transcript hash)".into(),
                vec![Field { name: "verify_data", value: crypto::hex(&verify_data) }],
            )
        },
    );
}

/// Checks a received Finished keyed by `base` in constant time (§4.4.4).
pub(crate) fn check_finished(core: &mut Core, msg: &Message<'_>, base: &TrafficSecret) -> Result<(), Error> {
    let expected = Secret::new(key_schedule::verify_data(base, &core.transcript.current()));
    let ok = crypto::ct_eq(msg.body, expected.expose());
    received(core, msg, true, || {
        ("verify_data".into(), vec![Field { name: "verify_data", value: crypto::hex(msg.body) }])
    });
    core.check("Finished", ok, || {
        if ok { "verify_data matches the transcript".into() } else { "verify_data does not match".into() }
    });
    if ok { Ok(()) } else { Err(Error::DecryptError("Finished")) }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn alpn_text(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn field(name: &'static str, value: impl Into<String>) -> Field {
    Field { name, value: value.into() }
}

/// Summary and fields of a ClientHello.
pub(crate) fn describe_client_hello(ch: &ClientHello) -> (String, Vec<Field>) {
    let groups: Vec<String> = ch.key_shares.iter().flatten().map(|s| s.group.to_string()).collect();
    let summary = format!(
        "{} suites, key share {}{}",
        ch.cipher_suites.len(),
        if groups.is_empty() { "none".to_string() } else { groups.join(", ") },
        ch.server_name.as_ref().map(|n| format!(", SNI {n}")).unwrap_or_default()
    );
    let mut fields = vec![
        field("legacy_version", format!("0x{:04x}", ch.legacy_version)),
        field("random", crypto::hex(&ch.random)),
        field("legacy_session_id", crypto::hex(&ch.session_id)),
        field("cipher_suites", list(&ch.cipher_suites)),
        field("extensions", list(&ch.extension_order)),
    ];
    if let Some(v) = &ch.supported_versions {
        fields.push(field(
            "supported_versions",
            v.iter().map(|v| format!("0x{v:04x}")).collect::<Vec<_>>().join(", "),
        ));
    }
    if let Some(g) = &ch.supported_groups {
        fields.push(field("supported_groups", list(g)));
    }
    if let Some(s) = &ch.signature_algorithms {
        fields.push(field("signature_algorithms", list(s)));
    }
    for share in ch.key_shares.iter().flatten() {
        fields.push(field("key_share", format!("{} {}", share.group, crypto::hex(&share.key_exchange))));
    }
    if let Some(n) = &ch.server_name {
        fields.push(field("server_name", n.clone()));
    }
    if let Some(a) = &ch.alpn {
        fields.push(field("alpn", a.iter().map(|p| alpn_text(p)).collect::<Vec<_>>().join(", ")));
    }
    (summary, fields)
}

/// Summary and fields of a ServerHello or HelloRetryRequest.
pub(crate) fn describe_server_hello(sh: &ServerHello) -> (String, Vec<Field>) {
    let summary = if sh.is_retry_request() {
        format!(
            "HelloRetryRequest: {}, send a {} key share",
            sh.cipher_suite,
            sh.hrr_group.map(|g| g.to_string()).unwrap_or_default()
        )
    } else {
        format!(
            "{}, {}",
            sh.cipher_suite,
            sh.key_share.as_ref().map(|s| s.group.to_string()).unwrap_or_default()
        )
    };
    let mut fields = vec![
        field("random", crypto::hex(&sh.random)),
        field("legacy_session_id_echo", crypto::hex(&sh.session_id)),
        field("cipher_suite", sh.cipher_suite.to_string()),
        field("supported_versions", if sh.selected_version == Some(TLS13) { "TLS 1.3" } else { "?" }),
    ];
    if let Some(s) = &sh.key_share {
        fields.push(field("key_share", format!("{} {}", s.group, crypto::hex(&s.key_exchange))));
    }
    if let Some(g) = sh.hrr_group {
        fields.push(field("selected_group", g.to_string()));
    }
    (summary, fields)
}

/// Summary and fields of EncryptedExtensions.
pub(crate) fn describe_encrypted_extensions(ee: &EncryptedExtensions) -> (String, Vec<Field>) {
    match &ee.alpn {
        Some(p) => (format!("ALPN {}", alpn_text(p)), vec![field("alpn", alpn_text(p))]),
        None => ("no ALPN".into(), Vec::new()),
    }
}

/// Summary and fields of CertificateRequest.
pub(crate) fn describe_certificate_request(cr: &CertificateRequest) -> (String, Vec<Field>) {
    (
        "the server asks for a client certificate".into(),
        vec![field("signature_algorithms", list(&cr.signature_algorithms))],
    )
}

/// Summary and fields of Certificate.
pub(crate) fn describe_certificate(c: &Certificate) -> (String, Vec<Field>) {
    let summary = match c.chain.len() {
        0 => "no certificate".to_string(),
        1 => "1 certificate".to_string(),
        n => format!("{n} certificates"),
    };
    let mut fields = Vec::new();
    for (i, der) in c.chain.iter().enumerate() {
        let text = match super::cert::parse_leaf(der) {
            Ok(s) => format!("{} (issuer {}), {} bytes", s.subject, s.issuer, der.len()),
            Err(_) => format!("{} bytes", der.len()),
        };
        fields.push(field(if i == 0 { "leaf" } else { "chain" }, text));
    }
    (summary, fields)
}

/// Summary and fields of CertificateVerify.
pub(crate) fn describe_certificate_verify(cv: &CertificateVerify) -> (String, Vec<Field>) {
    (
        cv.scheme.to_string(),
        vec![field("algorithm", cv.scheme.to_string()), field("signature", crypto::hex(&cv.signature))],
    )
}
