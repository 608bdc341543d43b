//! RFC 8446 conformance of the engine, mostly as a server, one rule at a
//! time: each test sends what a careless or hostile peer might, as an engine
//! pair with a tamper hook or as a client written byte by byte, and checks
//! the answer the RFC names.

use std::sync::Arc;

use crate::engine_pair::*;
use tlschat::tls::internal::crypto::{TranscriptHash, X25519Secret};
use tlschat::tls::internal::key_schedule::{self, HandshakeSecrets, TrafficSecret};
use tlschat::tls::internal::messages::{self, ContentType, HandshakeType, ServerHello};
use tlschat::tls::internal::record::{self, Protection};
use tlschat::tls::{
    AlertDescription as A, CipherSuite, ClientAuth, ClientTrust, Connection, Direction, Error, Event,
    SeededRng, ServerConfig, Step, Suite,
};

const CHACHA: CipherSuite = CipherSuite::TLS_CHACHA20_POLY1305_SHA256;
const AES: CipherSuite = CipherSuite::TLS_AES_128_GCM_SHA256;

// ---------------------------------------------------------------------------
// A client written by hand.

/// Extension codes the hand-written hellos use (§4.2).
const SERVER_NAME: u16 = 0;
const SUPPORTED_GROUPS: u16 = 10;
const SIGNATURE_ALGORITHMS: u16 = 13;
const EARLY_DATA: u16 = 42;
const SUPPORTED_VERSIONS: u16 = 43;
const SIGNATURE_ALGORITHMS_CERT: u16 = 50;
const KEY_SHARE: u16 = 51;
const ED25519: u16 = 0x0807;
const X25519: u16 = 0x001d;

/// A list of `uint16` with its two-byte length.
fn u16_list(values: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let body: Vec<u8> = values.into_iter().flat_map(u16::to_be_bytes).collect();
    [&(body.len() as u16).to_be_bytes()[..], &body].concat()
}

/// A key_share extension with one x25519 share.
fn key_share(public: &[u8; 32]) -> Vec<u8> {
    [&[0, 36, 0, 0x1d, 0, 32][..], public].concat()
}

/// A server_name extension naming `host` (RFC 6066 §3).
fn server_name(host: &[u8]) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend_from_slice(&(host.len() as u16).to_be_bytes());
    entry.extend_from_slice(host);
    [&(entry.len() as u16).to_be_bytes()[..], &entry].concat()
}

/// A ClientHello message (header included) with exactly these fields and
/// extensions, in this order.
fn client_hello(legacy_version: u16, suites: &[CipherSuite], extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = legacy_version.to_be_bytes().to_vec();
    body.extend_from_slice(&[7; 32]);
    body.push(0); // no legacy_session_id
    body.extend(u16_list(suites.iter().map(|s| s.0)));
    body.extend_from_slice(&[1, 0]);
    let mut block = Vec::new();
    for (typ, data) in extensions {
        block.extend_from_slice(&typ.to_be_bytes());
        block.extend_from_slice(&(data.len() as u16).to_be_bytes());
        block.extend_from_slice(data);
    }
    body.extend_from_slice(&u16::try_from(block.len()).expect("extension block fits").to_be_bytes());
    body.extend(block);
    let mut msg = vec![HandshakeType::CLIENT_HELLO.0];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    msg
}

/// A client written by hand: it sends whatever hello and records a test
/// wants, and finishes the handshake with keys it derives itself through
/// the public key schedule (it never checks the server: that is not what
/// these tests are about).
struct RawClient {
    server: Connection,
    key: X25519Secret,
    transcript: TranscriptHash,
    /// The suite and the client handshake traffic secret, after the ServerHello.
    keys: Option<(CipherSuite, TrafficSecret)>,
    events: Vec<Event>,
}

impl RawClient {
    fn new(seed: u64) -> Self {
        Self::with_config(server_config(&pki(seed)), seed)
    }

    fn with_config(config: ServerConfig, seed: u64) -> Self {
        Self {
            server: Connection::server(Arc::new(config), Box::new(SeededRng::new_for_testing_only(seed))),
            key: X25519Secret::from_bytes_for_testing_only([seed as u8 | 0x40; 32]),
            transcript: TranscriptHash::default(),
            keys: None,
            events: Vec::new(),
        }
    }

    /// The usual extensions of a TLS 1.3 hello with an x25519 share.
    fn extensions(&self) -> Vec<(u16, Vec<u8>)> {
        vec![
            (SUPPORTED_VERSIONS, vec![2, 3, 4]),
            (SUPPORTED_GROUPS, u16_list([X25519])),
            (SIGNATURE_ALGORITHMS, u16_list([ED25519])),
            (KEY_SHARE, key_share(&self.key.public_key())),
        ]
    }

    /// Hands bytes to the server and keeps its events.
    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let result = self.server.handle_input(bytes, NOW);
        while let Some(e) = self.server.poll_event() {
            self.events.push(e);
        }
        result
    }

    /// Sends a ClientHello message in plaintext records of at most `chunk` bytes.
    fn send_hello(&mut self, msg: &[u8], chunk: usize) -> Result<(), Error> {
        self.transcript.update(msg);
        let mut out = Vec::new();
        for part in msg.chunks(chunk) {
            record::write_plaintext(ContentType::HANDSHAKE, part, false, &mut out);
        }
        self.send(&out)
    }

    /// Reads the server's answer to a hello: a HelloRetryRequest, or a
    /// ServerHello and the protected flight after it, whose keys it derives.
    fn read_flight(&mut self) -> ServerHello {
        let mut out = Vec::new();
        assert!(self.server.poll_transmit(&mut out), "the server wrote nothing");
        let mut recs = records(&out).into_iter();
        let (header, hello) = recs.next().expect("a record");
        assert_eq!(header[0], ContentType::HANDSHAKE.0, "the server answered {out:?}");
        let sh = ServerHello::decode(&hello[4..]).expect("a ServerHello");
        if sh.is_retry_request() {
            let ch1 = self.transcript.current();
            self.transcript = TranscriptHash::default();
            self.transcript.update(&messages::message_hash(&ch1));
            self.transcript.update(&hello);
            return sh;
        }
        self.transcript.update(&hello);
        let share: [u8; 32] = sh.key_share.as_ref().unwrap().key_exchange.clone().try_into().unwrap();
        let shared = self.key.agree(&share).unwrap();
        let secrets = HandshakeSecrets::derive(&shared, &self.transcript.current());
        let (key, iv) =
            key_schedule::traffic_keys(Suite::from_code(sh.cipher_suite).unwrap(), &secrets.server);
        let mut opener = Protection::new(key, iv);
        for (header, mut body) in recs.filter(|(h, _)| h[0] == ContentType::APPLICATION_DATA.0) {
            let (typ, len) = opener.open(&header, &mut body).expect("the server's flight opens");
            assert_eq!(typ, ContentType::HANDSHAKE);
            self.transcript.update(&body[..len]);
        }
        self.keys = Some((sh.cipher_suite, secrets.client.clone()));
        sh
    }

    /// Seals `inner` (a whole TLSInnerPlaintext) with the client handshake key as record `seq`.
    fn protected(&self, seq: u64, inner: &[u8]) -> Vec<u8> {
        let (suite, secret) = self.keys.as_ref().expect("the ServerHello came");
        seal_inner_by_hand(*suite, secret, seq, inner)
    }

    /// The client's Finished over the transcript so far, as record `seq`.
    fn finished(&self, seq: u64) -> Vec<u8> {
        let (_, secret) = self.keys.as_ref().expect("the ServerHello came");
        let mut msg = Vec::new();
        messages::encode_finished(&mut msg, &key_schedule::verify_data(secret, &self.transcript.current()));
        msg.push(ContentType::HANDSHAKE.0);
        self.protected(seq, &msg)
    }

    fn connected(&self) -> bool {
        Pair::connected(&self.events).is_some()
    }

    /// The alert the server sent last, read from its events.
    fn alert(&self) -> Option<A> {
        Pair::alerts_sent(&self.events).last().copied()
    }
}

/// Asserts that `result` failed with `alert` and that the alert was sent.
fn assert_alert(result: Result<(), Error>, events: &[Event], alert: A) {
    let err = result.expect_err("the server should refuse");
    assert_eq!(err.alert(), Some(alert), "{err}");
    assert_eq!(Pair::alerts_sent(events).last(), Some(&alert));
}

/// A connected pair's server, given one record sealed as the client's
/// first under its application key with `inner` as the inner plaintext:
/// its answer and its events.
fn server_given_application_record(seed: u64, inner: &[u8]) -> (Result<(), Error>, Vec<Event>) {
    let (mut p, keys) = pair_with_client_keys(seed);
    p.drive();
    p.assert_connected();
    let record = seal_inner_by_hand(CHACHA, &keys.get("CLIENT_TRAFFIC_SECRET_0"), 0, inner);
    let result = p.server.handle_input(&record, NOW);
    (result, std::iter::from_fn(|| p.server.poll_event()).collect())
}

/// A pair whose client logs its secrets, so a test can seal records as it.
fn pair_with_client_keys(seed: u64) -> (Pair, Arc<CapturedKeys>) {
    let pki = pki(seed);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.keylog = Some(keys.clone());
    c.suites = vec![CHACHA];
    (Pair::new(c, server_config(&pki), seed), keys)
}

/// Replaces the client's second flight (its Finished) with `flight(keys)`.
fn replace_client_finished(
    keys: &Arc<CapturedKeys>,
    flight: impl Fn(&TrafficSecret) -> Vec<u8> + 'static,
) -> impl FnMut(Way, &mut Vec<u8>) {
    let keys = keys.clone();
    let mut to_server = 0;
    move |way, bytes| {
        if way == Way::ToServer {
            to_server += 1;
            if to_server == 2 {
                *bytes = flight(&keys.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET"));
            }
        }
    }
}

fn server_refused(p: &Pair, alert: A) {
    let err = p.server_error.as_ref().unwrap_or_else(|| panic!("the server accepted; expected {alert}"));
    assert_eq!(err.alert(), Some(alert), "{err}");
    assert_eq!(Pair::alerts_sent(&p.server_events).last(), Some(&alert));
}

// ---------------------------------------------------------------------------
// 1. Empty alerts (§5.4: Alert records MUST NOT have a zero-length content).

#[test]
fn an_empty_protected_alert_is_unexpected_message_under_handshake_keys() {
    for inner in [vec![21], vec![21, 0, 0, 0, 0]] {
        let (mut p, keys) = pair_with_client_keys(101);
        p.drive_with(replace_client_finished(&keys, move |secret| {
            seal_inner_by_hand(CHACHA, secret, 0, &inner)
        }));
        server_refused(&p, A::UNEXPECTED_MESSAGE);
    }
}

#[test]
fn an_empty_protected_alert_is_unexpected_message_under_application_keys() {
    for inner in [vec![21], vec![21, 0, 0]] {
        let (result, events) = server_given_application_record(102, &inner);
        assert_alert(result, &events, A::UNEXPECTED_MESSAGE);
    }
}

#[test]
fn an_alert_of_one_or_three_bytes_is_decode_error() {
    for inner in [vec![2, 21], vec![2, 40, 0, 21]] {
        let (result, events) = server_given_application_record(103, &inner);
        assert_alert(result, &events, A::DECODE_ERROR);
    }
}

// ---------------------------------------------------------------------------
// 2. Finished of the wrong length (§4.4.4: verify_data is Hash.length bytes).

#[test]
fn a_finished_that_is_not_hash_length_is_decode_error() {
    type Edit = fn(&mut Vec<u8>);
    let edits: [(&str, Edit); 4] = [
        ("empty", |vd| vd.clear()),
        ("a byte before", |vd| vd.insert(0, 0)),
        ("a byte after", |vd| vd.push(0)),
        ("truncated", |vd| {
            vd.pop();
        }),
    ];
    for (what, edit) in edits {
        let (mut p, keys) = pair_with_client_keys(104);
        let k = keys.clone();
        let mut to_server = 0;
        p.drive_with(move |way, flight| {
            if way == Way::ToServer {
                to_server += 1;
                if to_server == 2 {
                    let secret = k.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET");
                    rewrite_protected_handshake(flight, CHACHA, &secret, |hs| {
                        assert_eq!(hs[0], HandshakeType::FINISHED.0);
                        let mut vd = hs[4..].to_vec();
                        edit(&mut vd);
                        *hs = vec![HandshakeType::FINISHED.0, 0, 0, vd.len() as u8];
                        hs.extend(vd);
                    });
                }
            }
        });
        let err = p.server_error.clone().unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(err.alert(), Some(A::DECODE_ERROR), "{what}: {err}");
    }
}

// ---------------------------------------------------------------------------
// 3. legacy_version at or below SSL 3.0 (§D.5).

#[test]
fn a_legacy_version_at_or_below_ssl3_is_protocol_version_even_with_tls13_offered() {
    for version in [0x0000, 0x0002, 0x0100, 0x0200, 0x0300] {
        let mut c = RawClient::new(105);
        let hello = client_hello(version, &[CHACHA], &c.extensions());
        let result = c.send_hello(&hello, 16_384);
        assert_eq!(result, Err(Error::ProtocolVersion), "legacy_version 0x{version:04x}");
        assert_eq!(c.alert(), Some(A::PROTOCOL_VERSION));
    }
    // TLS 1.0 in legacy_version is what some clients send: still fine.
    let mut c = RawClient::new(105);
    let hello = client_hello(0x0301, &[CHACHA], &c.extensions());
    c.send_hello(&hello, 16_384).unwrap();
}

// ---------------------------------------------------------------------------
// 4. signature_algorithms (§4.2.3: supported_signature_algorithms<2..2^16-2>).

#[test]
fn an_empty_signature_algorithms_list_is_decode_error() {
    for ext in [SIGNATURE_ALGORITHMS, SIGNATURE_ALGORITHMS_CERT] {
        let mut c = RawClient::new(106);
        let mut extensions = c.extensions();
        if ext == SIGNATURE_ALGORITHMS {
            extensions[2] = (ext, vec![0, 0]);
        } else {
            extensions.push((ext, vec![0, 0]));
        }
        let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384);
        let events = c.events.clone();
        assert_alert(result, &events, A::DECODE_ERROR);
    }
}

/// A hello whose signature_algorithms holds 32,715 schemes, ed25519 last
/// after thousands of unknown and repeated ones; with `cert_schemes`, a
/// signature_algorithms_cert of that many schemes beside it.
fn huge_hello(c: &RawClient, cert_schemes: usize) -> Vec<u8> {
    let mut schemes: Vec<u16> = (0..32_714u16).map(|i| 0x0100 + i % 1000).collect();
    schemes.push(ED25519);
    let mut extensions = c.extensions();
    extensions[2] = (SIGNATURE_ALGORITHMS, u16_list(schemes));
    if cert_schemes > 0 {
        let cert = (0..cert_schemes as u16 - 1).map(|i| 0x0600 + i).chain([ED25519]);
        extensions.push((SIGNATURE_ALGORITHMS_CERT, u16_list(cert)));
    }
    client_hello(0x0303, &[CHACHA], &extensions)
}

#[test]
fn a_hello_with_32715_signature_schemes_over_several_records_completes() {
    for cert_schemes in [0, 18] {
        let mut c = RawClient::new(107);
        let hello = huge_hello(&c, cert_schemes);
        if cert_schemes == 18 {
            // The extension block is full: 65,535 bytes.
            assert_eq!(hello.len(), 4 + 2 + 32 + 1 + 4 + 2 + 2 + 65_535);
        }
        c.send_hello(&hello, 16_384).unwrap();
        c.read_flight();
        let finished = c.finished(0);
        c.send(&finished).unwrap();
        assert!(c.connected(), "with {cert_schemes} signature_algorithms_cert schemes");
    }
}

#[test]
fn a_hello_with_16300_extensions_is_read_and_a_duplicate_among_them_refused() {
    let mut c = RawClient::new(108);
    let mut extensions = c.extensions();
    extensions.extend((0..16_300u16).map(|i| (0x1000 + i, Vec::new())));
    c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384).unwrap();
    c.read_flight();

    let mut c = RawClient::new(108);
    let mut extensions = c.extensions();
    extensions.extend((0..16_300u16).map(|i| (0x1000 + i, Vec::new())));
    extensions.push((0x1000, Vec::new()));
    let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384);
    let events = c.events.clone();
    assert_alert(result, &events, A::ILLEGAL_PARAMETER);
}

#[test]
fn two_key_shares_for_one_group_are_illegal_parameter_even_far_apart() {
    let mut c = RawClient::new(109);
    let mut shares = Vec::new();
    for group in (0x2000..0x2000 + 5_000u16).chain([0x2000]) {
        shares.extend_from_slice(&group.to_be_bytes());
        shares.extend_from_slice(&[0, 1, 9]);
    }
    let mut extensions = c.extensions();
    extensions[3] = (KEY_SHARE, [&(shares.len() as u16).to_be_bytes()[..], &shares].concat());
    let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384);
    let events = c.events.clone();
    assert_alert(result, &events, A::ILLEGAL_PARAMETER);
}

// ---------------------------------------------------------------------------
// 5. and 6. Records with no content type, and empty application data (§5.4).

#[test]
fn a_record_whose_inner_plaintext_is_all_zeros_is_unexpected_message() {
    for inner in [vec![], vec![0], vec![0; 40]] {
        let (result, events) = server_given_application_record(110, &inner);
        assert_alert(result, &events, A::UNEXPECTED_MESSAGE);
    }
}

#[test]
fn empty_application_data_is_accepted_delivers_nothing_and_is_not_answered() {
    let (mut p, keys) = pair_with_client_keys(111);
    p.drive();
    p.assert_connected();
    let secret = keys.get("CLIENT_TRAFFIC_SECRET_0");
    let mut flight = seal_inner_by_hand(CHACHA, &secret, 0, &[23]);
    flight.extend(seal_inner_by_hand(CHACHA, &secret, 1, &[23, 0, 0, 0, 0, 0]));
    flight.extend(seal_inner_by_hand(CHACHA, &secret, 2, b"after\x17"));
    p.server.handle_input(&flight, NOW).unwrap();
    assert_eq!(p.server.recv_application_data(), Some(b"after".to_vec()));
    assert_eq!(p.server.recv_application_data(), None);
    let mut out = Vec::new();
    assert!(!p.server.poll_transmit(&mut out), "nothing answers empty records");
}

// ---------------------------------------------------------------------------
// 7. Early data the server does not accept (§4.2.10).

/// An application-data record that no key opens.
fn junk_record(len: usize, fill: u8) -> Vec<u8> {
    let mut r = vec![23, 3, 3];
    r.extend_from_slice(&(len as u16).to_be_bytes());
    r.extend((0..len).map(|i| fill ^ (i as u8)));
    r
}

#[test]
fn early_data_that_fails_to_decrypt_is_skipped_and_the_handshake_carries_on() {
    let mut c = RawClient::new(112);
    let mut extensions = c.extensions();
    extensions.push((EARLY_DATA, Vec::new()));
    c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384).unwrap();
    // The 0-RTT records the client sends at once, before it sees our answer.
    let early: Vec<u8> = (0..4).flat_map(|i| junk_record(4_000, i)).collect();
    c.send(&early).unwrap();
    c.send(&[20, 3, 3, 0, 1, 1]).unwrap();
    c.read_flight();
    let finished = c.finished(0);
    c.send(&finished).unwrap();
    assert!(c.connected());
    // Once a record has opened, nothing more is skipped.
    let result = c.send(&junk_record(100, 9));
    let events = c.events.clone();
    assert_alert(result, &events, A::BAD_RECORD_MAC);
}

#[test]
fn too_much_early_data_is_unexpected_message() {
    let mut c = RawClient::new(113);
    let mut extensions = c.extensions();
    extensions.push((EARLY_DATA, Vec::new()));
    c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384).unwrap();
    let early: Vec<u8> = (0..5).flat_map(|i| junk_record(4_000, i)).collect();
    let result = c.send(&early);
    let events = c.events.clone();
    assert_alert(result, &events, A::UNEXPECTED_MESSAGE);
}

#[test]
fn without_the_early_data_extension_nothing_is_skipped() {
    let mut c = RawClient::new(114);
    let hello = client_hello(0x0303, &[CHACHA], &c.extensions());
    c.send_hello(&hello, 16_384).unwrap();
    let result = c.send(&junk_record(100, 1));
    let events = c.events.clone();
    assert_alert(result, &events, A::BAD_RECORD_MAC);
}

#[test]
fn early_data_after_a_hello_retry_request_is_skipped_until_the_second_hello() {
    let mut c = RawClient::new(115);
    let mut first = c.extensions();
    first[3] = (KEY_SHARE, vec![0, 0]); // no key share: a HelloRetryRequest
    first.push((EARLY_DATA, Vec::new()));
    c.send_hello(&client_hello(0x0303, &[CHACHA], &first), 16_384).unwrap();
    assert!(c.read_flight().is_retry_request());
    let early: Vec<u8> = (0..3).flat_map(|i| junk_record(3_000, i)).collect();
    c.send(&early).unwrap();
    c.send(&[20, 3, 3, 0, 1, 1]).unwrap();
    c.send(&junk_record(500, 7)).unwrap();
    let second = client_hello(0x0303, &[CHACHA], &c.extensions());
    c.send_hello(&second, 16_384).unwrap();
    c.read_flight();
    let finished = c.finished(0);
    c.send(&finished).unwrap();
    assert!(c.connected());
}

#[test]
fn early_data_in_the_second_hello_is_illegal_parameter() {
    let mut c = RawClient::new(116);
    let mut first = c.extensions();
    first[3] = (KEY_SHARE, vec![0, 0]);
    first.push((EARLY_DATA, Vec::new()));
    c.send_hello(&client_hello(0x0303, &[CHACHA], &first), 16_384).unwrap();
    c.read_flight();
    let mut second = c.extensions();
    second.push((EARLY_DATA, Vec::new()));
    let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &second), 16_384);
    let events = c.events.clone();
    assert_alert(result, &events, A::ILLEGAL_PARAMETER);
}

// ---------------------------------------------------------------------------
// 8. The suite of a HelloRetryRequest is kept (§4.1.4).

#[test]
fn after_a_hello_retry_request_the_server_keeps_the_suite_it_chose() {
    let mut c = RawClient::new(117);
    let mut first = c.extensions();
    first[3] = (KEY_SHARE, vec![0, 0]);
    c.send_hello(&client_hello(0x0303, &[AES], &first), 16_384).unwrap();
    assert_eq!(c.read_flight().cipher_suite, AES);
    // The second hello offers our preferred suite too; the retry's must stay.
    let second = client_hello(0x0303, &[CHACHA, AES], &c.extensions());
    c.send_hello(&second, 16_384).unwrap();
    assert_eq!(c.read_flight().cipher_suite, AES);
    let finished = c.finished(0);
    c.send(&finished).unwrap();
    assert!(c.connected());
    assert_eq!(Pair::connected(&c.events).unwrap().suite, AES);
}

#[test]
fn a_second_hello_without_the_retry_suite_is_illegal_parameter() {
    let mut c = RawClient::new(118);
    let mut first = c.extensions();
    first[3] = (KEY_SHARE, vec![0, 0]);
    c.send_hello(&client_hello(0x0303, &[AES], &first), 16_384).unwrap();
    c.read_flight();
    let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &c.extensions()), 16_384);
    let events = c.events.clone();
    assert_alert(result, &events, A::ILLEGAL_PARAMETER);
}

// ---------------------------------------------------------------------------
// 9. Hostile peers.

#[test]
fn a_server_name_that_is_not_a_plain_host_name_is_illegal_parameter() {
    let bad: [&[u8]; 9] = [
        b"evil\x1b]0;owned\x07.example",
        b"\x1b[2Jclear",
        b"line\nbreak",
        b"with space.example",
        b"star*.example",
        b"trailing.dot.",
        b".leading",
        b"a..b",
        b"caf\xc3\xa9.example",
    ];
    for name in bad {
        let mut c = RawClient::new(119);
        let mut extensions = c.extensions();
        extensions.push((SERVER_NAME, server_name(name)));
        let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384);
        let events = c.events.clone();
        let err = result.clone().expect_err(&String::from_utf8_lossy(name));
        assert_eq!(err.alert(), Some(A::ILLEGAL_PARAMETER), "{:?}: {err}", String::from_utf8_lossy(name));
        assert_alert(result, &events, A::ILLEGAL_PARAMETER);
    }
    for name in [&b"chat.example-1.org"[..], b"localhost", b"my_host"] {
        let mut c = RawClient::new(119);
        let mut extensions = c.extensions();
        extensions.push((SERVER_NAME, server_name(name)));
        c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384).unwrap();
        c.read_flight();
        let finished = c.finished(0);
        c.send(&finished).unwrap();
        let summary = Pair::connected(&c.events).expect("connected").clone();
        assert_eq!(summary.server_name.as_deref().map(str::as_bytes), Some(name));
    }
}

#[test]
fn key_updates_with_no_data_between_are_limited() {
    let mut p = connected_pair(120);
    // Data between KeyUpdates: any number is fine.
    for _ in 0..40 {
        p.client.key_update(false).unwrap();
        p.client.send(b"tick").unwrap();
        p.drive();
    }
    assert_eq!(p.server_error, None);
    assert_eq!(p.server_data.len(), 40);
    // A burst with nothing between is cut off.
    for _ in 0..40 {
        p.client.key_update(false).unwrap();
    }
    p.drive();
    server_refused(&p, A::UNEXPECTED_MESSAGE);
}

#[test]
fn requested_key_updates_received_while_silent_are_answered_once() {
    let mut p = connected_pair(121);
    for _ in 0..5 {
        p.client.key_update(true).unwrap();
    }
    p.drive();
    assert_eq!(p.server_error, None);
    let sent = |events: &[Event]| {
        events.iter().filter(|e| matches!(e, Event::KeyUpdated { direction: Direction::Sent, .. })).count()
    };
    assert_eq!(sent(&p.server_events), 1, "one answer while the server sent no data");
    p.server.send(b"now some data").unwrap();
    p.client.key_update(true).unwrap();
    p.client.send(b"and a reply").unwrap();
    p.drive();
    assert_eq!(sent(&p.server_events), 2);
    assert_eq!(p.client_data, [b"now some data".to_vec()]);
    assert_eq!(p.server_data, [b"and a reply".to_vec()]);
}

fn connected_pair(seed: u64) -> Pair {
    let mut p = Pair::new(client_config(&pki(seed)), server_config(&pki(seed)), seed);
    p.drive();
    p.assert_connected();
    p
}

#[test]
fn a_failed_handshake_still_delivers_its_events_and_the_failed_check() {
    for emit_steps in [true, false] {
        let keys = Arc::new(CapturedKeys::default());
        let pki = pki(122);
        let mut c = client_config(&pki);
        c.keylog = Some(keys.clone());
        c.suites = vec![CHACHA];
        let mut s = server_config(&pki);
        s.emit_steps = emit_steps;
        let mut p = Pair::new(c, s, 122);
        let k = keys.clone();
        let mut to_server = 0;
        // Flip a bit of the client's verify_data.
        p.drive_with(move |way, flight| {
            if way == Way::ToServer {
                to_server += 1;
                if to_server == 2 {
                    let secret = k.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET");
                    rewrite_protected_handshake(flight, CHACHA, &secret, |hs| *hs.last_mut().unwrap() ^= 1);
                }
            }
        });
        assert_eq!(p.server_error, Some(Error::DecryptError("Finished")));
        let failed = p.server_events.iter().position(|e| {
            matches!(e, Event::Handshake(s) if matches!(s.step, Step::Check { what: "Finished", ok: false, .. }))
        });
        let alert = p.server_events.iter().position(|e| *e == Event::AlertSent(A::DECRYPT_ERROR));
        assert!(failed.is_some() && alert.is_some(), "emit_steps {emit_steps}: {:?}", p.server_events);
        assert!(failed < alert, "the failed check comes before the alert");
        if emit_steps {
            assert!(Pair::message_names(&p.server_events).contains(&"<- ClientHello".to_string()));
        }
    }
}

#[test]
fn a_plaintext_alert_after_the_servers_keys_is_unexpected_message_at_the_client() {
    let pki = pki(123);
    let mut p = Pair::new(client_config(&pki), server_config(&pki), 123);
    // The ServerHello and ChangeCipherSpec pass; the protected flight is
    // replaced by a plaintext alert, after the client has its handshake keys.
    p.drive_with(once(Way::ToClient, |flight| {
        let recs: Vec<_> = records(flight).into_iter().filter(|(h, _)| h[0] != 23).collect();
        *flight = join(&recs);
        flight.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
    }));
    let err = p.client_error.clone().expect("the client refuses");
    assert_eq!(err.alert(), Some(A::UNEXPECTED_MESSAGE), "{err}");
}

#[test]
fn a_plaintext_alert_after_a_protected_record_from_the_client_is_unexpected_message() {
    let pki = pki(124);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.keylog = Some(keys.clone());
    c.suites = vec![CHACHA];
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
    let mut p = Pair::new(c, s, 124);
    // The client's (empty) Certificate arrives protected, then a plaintext alert.
    p.drive_with(replace_client_finished(&keys, |secret| {
        let mut flight = Vec::new();
        let mut msg = Vec::new();
        tlschat::tls::internal::messages::Certificate { context: Vec::new(), chain: Vec::new() }
            .encode(&mut msg)
            .unwrap();
        msg.push(ContentType::HANDSHAKE.0);
        flight.extend(seal_inner_by_hand(CHACHA, secret, 0, &msg));
        flight.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        flight
    }));
    server_refused(&p, A::UNEXPECTED_MESSAGE);
}

#[test]
fn a_plaintext_alert_right_after_the_server_hello_is_still_heard() {
    // A client that fails on our ServerHello has no keys to protect its alert.
    let (mut p, keys) = pair_with_client_keys(125);
    p.drive_with(replace_client_finished(&keys, |_| vec![21, 3, 3, 0, 2, 2, 40]));
    assert_eq!(p.server_error, Some(Error::AlertReceived(A::HANDSHAKE_FAILURE)));
}

#[test]
fn the_sender_updates_its_key_before_the_record_limit_of_a_key() {
    let mut p = connected_pair(126);
    p.client.set_key_update_interval_for_testing_only(3);
    for i in 0..10u8 {
        p.client.send(&[i]).unwrap();
    }
    p.drive();
    assert_eq!(p.server_error, None);
    assert_eq!(p.server_data, (0..10u8).map(|i| vec![i]).collect::<Vec<_>>());
    let generations: Vec<u64> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::KeyUpdated { generation, update_requested: false, .. } => Some(*generation),
            _ => None,
        })
        .collect();
    // Each key protects three records: two of data, then the KeyUpdate.
    assert_eq!(generations, [1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------
// 10. Suites are a closed set: a configured code the engine does not
// implement is never negotiated (it used to be keyed as ChaCha20).

#[test]
fn a_configured_suite_the_engine_does_not_implement_is_never_chosen() {
    let pki = pki(127);
    let mut s = server_config(&pki);
    s.suites = vec![CipherSuite::TLS_AES_256_GCM_SHA384, CHACHA];
    let mut c = RawClient::with_config(s, 127);
    let hello = client_hello(0x0303, &[CipherSuite::TLS_AES_256_GCM_SHA384, CHACHA], &c.extensions());
    c.send_hello(&hello, 16_384).unwrap();
    assert_eq!(c.read_flight().cipher_suite, CHACHA);
    let finished = c.finished(0);
    c.send(&finished).unwrap();
    assert!(c.connected());

    // Our own client does not offer it either, and still connects.
    let mut cc = client_config(&pki);
    cc.suites = vec![CipherSuite::TLS_AES_256_GCM_SHA384, AES];
    let mut p = Pair::new(cc, server_config(&pki), 127);
    p.drive();
    p.assert_connected();
    let hello = &p.flights[0].1[5..];
    let ch = messages::ClientHello::decode(&hello[4..]).unwrap();
    assert_eq!(ch.cipher_suites, [AES]);
    assert_eq!(Pair::connected(&p.server_events).unwrap().suite, AES);
}

#[test]
fn empty_alpn_and_server_name_lists_are_decode_error() {
    // protocol_name_list<2..2^16-1> and server_name_list<1..2^16-1>.
    for ext in [(16, vec![0, 0]), (SERVER_NAME, vec![0, 0])] {
        let mut c = RawClient::new(128);
        let mut extensions = c.extensions();
        extensions.push(ext);
        let result = c.send_hello(&client_hello(0x0303, &[CHACHA], &extensions), 16_384);
        let events = c.events.clone();
        assert_alert(result, &events, A::DECODE_ERROR);
    }
}
