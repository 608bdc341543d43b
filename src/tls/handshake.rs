//! Pieces of the handshake that client and server share (RFC 8446 §4.4):
//! writing and checking Certificate, CertificateVerify and Finished, the
//! handshake-secret derivation. How messages are described in the step
//! events is in `describe.rs`.

use super::codec::TooLong;
use super::crypto::{self, Ed25519Key, Secret, X25519Secret};
use super::describe;
use super::error::Error;
use super::events::{Direction, Field, Revealed, SecretBytes};
use super::key_schedule::{self, HandshakeSecrets, SecretKind, TrafficSecret};
use super::messages::{self, Certificate, CertificateVerify, HandshakeType, SignatureScheme};
use super::state::{Core, Message, Side};

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
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>,
    describe: impl FnOnce() -> (String, Vec<Field>),
) -> Result<(), Error> {
    let start = flight.len();
    encode(flight)?;
    let raw = &flight[start..];
    core.transcript.update(raw);
    core.message_step(Direction::Sent, raw, encrypted, true, describe);
    Ok(())
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
/// With `reveal`, reports both keys (the shared secret follows with the
/// schedule's other secrets).
pub(crate) fn agree(core: &mut Core, ours: &X25519Secret, peer: &[u8]) -> Result<Secret<32>, Error> {
    let peer: [u8; 32] =
        peer.try_into().map_err(|_| Error::IllegalParameter("an x25519 key share is not 32 bytes"))?;
    let shared =
        ours.agree(&peer).ok_or(Error::IllegalParameter("the x25519 key share is a low-order point"))?;
    core.reveal(|| Revealed::KeyExchange {
        private_key: SecretBytes::new(ours.expose_for_reveal().as_slice()),
        public_key: ours.public_key(),
        peer_public_key: peer,
    });
    Ok(shared)
}

/// The key schedule up to the handshake traffic secrets, reporting each
/// secret. The transcript must end with ServerHello.
pub(crate) fn derive_handshake_secrets(core: &mut Core, shared: &Secret<32>) -> HandshakeSecrets {
    core.secret_step(SecretKind::SharedSecret);
    let hs = HandshakeSecrets::derive(shared, &core.transcript.current());
    core.reveal_secret(SecretKind::SharedSecret, shared.expose(), None);
    core.reveal_secret(SecretKind::EarlySecret, key_schedule::early_secret().expose(), None);
    core.reveal_secret(SecretKind::HandshakeSecret, hs.handshake_secret().expose(), None);
    core.reveal_secret(SecretKind::ClientHandshakeTraffic, hs.client.expose(), Some(hs.hello_hash));
    core.reveal_secret(SecretKind::ServerHandshakeTraffic, hs.server.expose(), Some(hs.hello_hash));
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
) -> Result<(), Error> {
    let chain = cert.map(|(c, _)| c.to_vec()).unwrap_or_default();
    let msg = Certificate { context: context.to_vec(), chain };
    let mut raw = Vec::new();
    msg.encode(&mut raw)?;
    sent(
        core,
        flight,
        true,
        |out| {
            out.extend_from_slice(&raw);
            Ok(())
        },
        || describe::certificate(&msg, &raw),
    )?;
    let Some((_, key)) = cert else { return Ok(()) };
    let signature = key.sign(&signed_content(by_server, &core.transcript.current())).to_vec();
    let cv = CertificateVerify { scheme: SignatureScheme::ED25519, signature };
    sent(core, flight, true, |out| cv.encode(out), || describe::certificate_verify(&cv))
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
    received(core, msg, true, || describe::certificate_verify(&cv));
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
pub(crate) fn send_finished(
    core: &mut Core,
    flight: &mut Vec<u8>,
    base: &TrafficSecret,
) -> Result<(), Error> {
    let transcript_hash = core.transcript.current();
    let finished_key = key_schedule::finished_key(base);
    let verify_data = key_schedule::finished_mac(&finished_key, &transcript_hash);
    reveal_finished(core, Direction::Sent, &finished_key, transcript_hash, verify_data);
    sent(
        core,
        flight,
        true,
        |out| {
            messages::encode_finished(out, &verify_data);
            Ok(())
        },
        || describe::finished_sent(&verify_data),
    )
}

/// Checks a received Finished keyed by `base` in constant time (§4.4.4).
pub(crate) fn check_finished(core: &mut Core, msg: &Message<'_>, base: &TrafficSecret) -> Result<(), Error> {
    let transcript_hash = core.transcript.current();
    let finished_key = key_schedule::finished_key(base);
    let expected = Secret::new(key_schedule::finished_mac(&finished_key, &transcript_hash));
    reveal_finished(core, Direction::Received, &finished_key, transcript_hash, *expected.expose());
    received(core, msg, true, || describe::finished_received(msg.body));
    // `opaque verify_data[Hash.length]`: a body of another length does not
    // parse as a Finished at all (decode_error), whatever its bytes.
    let len = msg.body.len();
    if len != expected.expose().len() {
        core.check("Finished", false, || {
            format!("verify_data is {len} bytes, not {}", expected.expose().len())
        });
        return Err(Error::Decode(super::codec::InvalidMessage {
            what: "Finished",
            why: "verify_data is not the length of the hash",
        }));
    }
    let ok = crypto::ct_eq(msg.body, expected.expose());
    core.check("Finished", ok, || {
        if ok { "verify_data matches the transcript".into() } else { "verify_data does not match".into() }
    });
    if ok { Ok(()) } else { Err(Error::DecryptError("Finished")) }
}

/// With `reveal`, reports a Finished's key and what it was computed over:
/// ours when sent, and for a received one the value it had to match.
fn reveal_finished(
    core: &mut Core,
    direction: Direction,
    finished_key: &Secret<32>,
    transcript_hash: [u8; 32],
    verify_data: [u8; 32],
) {
    let client_side = (core.side == Side::Client) == (direction == Direction::Sent);
    let kind =
        if client_side { SecretKind::ClientHandshakeTraffic } else { SecretKind::ServerHandshakeTraffic };
    core.reveal(|| Revealed::Finished {
        direction,
        base: kind,
        finished_key: SecretBytes::new(finished_key.expose()),
        transcript_hash,
        verify_data,
    });
}
