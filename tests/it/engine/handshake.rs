//! Client and server engines against each other in memory: full handshakes,
//! HelloRetryRequest, mutual TLS, KeyUpdate, close_notify, and tampering that
//! must end in exactly the alert RFC 8446 §6 names.

use std::sync::Arc;

use crate::engine_pair::*;
use tlschat::store::pki;
use tlschat::tls::internal::messages::{
    self, ClientHello, ContentType, HandshakeType, KeyShareEntry, NamedGroup,
};
use tlschat::tls::internal::record;
use tlschat::tls::{
    AlertDescription as A, CipherSuite, ClientAuth, ClientTrust, Direction, Error, Event, ServerTrust,
};

const CHACHA: CipherSuite = CipherSuite::TLS_CHACHA20_POLY1305_SHA256;
const AES: CipherSuite = CipherSuite::TLS_AES_128_GCM_SHA256;

fn pair_with(suites: &[CipherSuite], seed: u64) -> Pair {
    let pki = pki(seed);
    let mut c = client_config(&pki);
    c.suites = suites.to_vec();
    Pair::new(c, server_config(&pki), seed)
}

#[test]
fn full_handshake_with_each_suite_reports_every_step_and_carries_data() {
    for suite in [CHACHA, AES] {
        let mut p = pair_with(&[suite], 1);
        p.drive();
        p.assert_connected();
        assert_eq!(Pair::connected(&p.client_events).unwrap().suite, suite);
        assert_eq!(Pair::connected(&p.server_events).unwrap().suite, suite);
        assert_eq!(
            Pair::message_names(&p.client_events),
            [
                "-> ClientHello",
                "<- ServerHello",
                "<- ChangeCipherSpec",
                "<- EncryptedExtensions",
                "<- Certificate",
                "<- CertificateVerify",
                "<- Finished",
                "-> ChangeCipherSpec",
                "-> Finished"
            ]
        );
        assert_eq!(
            Pair::message_names(&p.server_events),
            [
                "<- ClientHello",
                "-> ServerHello",
                "-> ChangeCipherSpec",
                "-> EncryptedExtensions",
                "-> Certificate",
                "-> CertificateVerify",
                "-> Finished",
                "<- ChangeCipherSpec",
                "<- Finished"
            ]
        );
        p.client.send(b"hello server").unwrap();
        p.server.send(b"hello client").unwrap();
        p.drive();
        assert_eq!(p.server_data, [b"hello server".to_vec()]);
        assert_eq!(p.client_data, [b"hello client".to_vec()]);
    }
}

#[test]
fn server_writes_its_whole_first_flight_at_once() {
    let mut p = pair_with(&[CHACHA], 2);
    p.drive();
    // ClientHello; then ServerHello + CCS + one protected record; then CCS + Finished.
    let server_flights: Vec<_> = p.flights.iter().filter(|(w, _)| *w == Way::ToClient).collect();
    assert_eq!(server_flights.len(), 1);
    let recs = records(&server_flights[0].1);
    let types: Vec<u8> = recs.iter().map(|(h, _)| h[0]).collect();
    assert_eq!(types, [22, 20, 23]);
}

#[test]
fn same_seeds_give_the_same_bytes_on_the_wire() {
    let run = || {
        let mut p = pair_with(&[CHACHA], 3);
        p.drive();
        p.flights
    };
    assert_eq!(run(), run());
}

#[test]
fn events_never_contain_secret_values() {
    let pki = pki(4);
    let keys = Arc::new(CapturedKeys::default());
    let mut s = server_config(&pki);
    s.keylog = Some(keys.clone());
    let mut p = Pair::new(client_config(&pki), s, 4);
    p.drive();
    p.assert_connected();
    let all = format!("{:?}{:?}", p.client_events, p.server_events);
    for label in ["SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"] {
        let secret = keys.get(label);
        let hex: String = secret.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!all.contains(&hex), "{label} leaked into events");
        assert!(!all.contains(&format!("{:?}", secret.expose())));
    }
}

#[test]
fn client_without_a_key_share_gets_a_hello_retry_request_and_connects() {
    let pki = pki(5);
    let mut c = client_config(&pki);
    c.key_share_in_first_hello = false;
    let mut p = Pair::new(c, server_config(&pki), 5);
    p.drive();
    p.assert_connected();
    assert!(Pair::connected(&p.client_events).unwrap().retried);
    assert!(Pair::connected(&p.server_events).unwrap().retried);
    let names = Pair::message_names(&p.client_events);
    assert_eq!(
        &names[..5],
        [
            "-> ClientHello",
            "<- HelloRetryRequest",
            "-> ChangeCipherSpec",
            "-> ClientHello",
            "<- ChangeCipherSpec"
        ]
    );
    p.client.send(b"after retry").unwrap();
    p.drive();
    assert_eq!(p.server_data, [b"after retry".to_vec()]);
}

fn client_cert(pki: &Pki, seed: u64) -> tlschat::tls::CertifiedKey {
    let mut rng = tlschat::tls::SeededRng::new_for_testing_only(seed);
    let key = tlschat::tls::Ed25519Key::generate(&mut rng);
    to_tls(&pki.ca.issue_client(key, "alice", &mut rng, MADE).unwrap())
}

#[test]
fn mutual_tls_gives_the_server_the_verified_client() {
    let pki = pki(6);
    let mut c = client_config(&pki);
    c.client_cert = Some(client_cert(&pki, 60));
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Roots(pki.roots.clone()));
    let mut p = Pair::new(c, s, 6);
    p.drive();
    p.assert_connected();
    let peer = Pair::connected(&p.server_events).unwrap().peer.clone().expect("client certificate");
    assert!(peer.subject.contains("alice"), "{}", peer.subject);
    assert!(Pair::message_names(&p.client_events).contains(&"<- CertificateRequest".to_string()));
}

#[test]
fn required_client_certificate_missing_is_refused_with_certificate_required() {
    let pki = pki(7);
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Roots(pki.roots.clone()));
    let mut p = Pair::new(client_config(&pki), s, 7);
    p.drive();
    assert_eq!(p.server_error, Some(Error::CertificateRequired));
    assert_eq!(p.client_error, Some(Error::AlertReceived(A::CERTIFICATE_REQUIRED)));
}

#[test]
fn optional_client_certificate_may_be_absent_and_any_key_accepts_self_signed() {
    let pki = pki(8);
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
    let mut p = Pair::new(client_config(&pki), s.clone(), 8);
    p.drive();
    p.assert_connected();
    assert_eq!(Pair::connected(&p.server_events).unwrap().peer, None);

    let mut rng = tlschat::tls::SeededRng::new_for_testing_only(80);
    let key = tlschat::tls::Ed25519Key::generate(&mut rng);
    let own = pki::self_signed_client(key, "bob", &mut rng, MADE).unwrap();
    let mut c = client_config(&pki);
    c.client_cert = Some(to_tls(&own));
    let mut p = Pair::new(c, s, 8);
    p.drive();
    p.assert_connected();
    let peer = Pair::connected(&p.server_events).unwrap().peer.clone().unwrap();
    assert_eq!(peer.fingerprint, own.fingerprint());
}

fn key_updates(events: &[Event]) -> Vec<(Direction, bool, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::KeyUpdated { direction, update_requested, generation } => {
                Some((*direction, *update_requested, *generation))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn key_update_works_in_both_directions_and_answers_a_request() {
    let mut p = pair_with(&[CHACHA, AES], 9);
    p.drive();
    p.client.key_update(true).unwrap();
    p.client.send(b"after client update").unwrap();
    p.drive();
    assert_eq!(key_updates(&p.client_events), [(Direction::Sent, true, 1), (Direction::Received, false, 1)]);
    assert_eq!(key_updates(&p.server_events), [(Direction::Received, true, 1), (Direction::Sent, false, 1)]);
    p.server.key_update(false).unwrap();
    p.server.send(b"after server update").unwrap();
    p.client.send(b"still fine").unwrap();
    p.drive();
    assert_eq!(p.server_data, [b"after client update".to_vec(), b"still fine".to_vec()]);
    assert_eq!(p.client_data, [b"after server update".to_vec()]);
    assert_eq!(key_updates(&p.client_events).last(), Some(&(Direction::Received, false, 2)));
}

#[test]
fn close_notify_is_answered_with_close_notify() {
    let mut p = pair_with(&[CHACHA], 10);
    p.drive();
    p.client.send(b"last words").unwrap();
    p.client.close();
    p.drive();
    assert_eq!(p.server_data, [b"last words".to_vec()]);
    assert!(p.server_events.contains(&Event::PeerClosed));
    assert!(p.client_events.contains(&Event::PeerClosed));
    assert_eq!(Pair::alerts_sent(&p.server_events), [A::CLOSE_NOTIFY]);
    assert!(p.client.is_closed() && p.server.is_closed());
    assert_eq!(p.client.send(b"too late"), Err(Error::Closed));
}

// ---------------------------------------------------------------------------
// Tampering: each case must end in the alert §6 names.

/// Asserts that `side` refused with `alert` and the other side was told.
fn assert_refused(p: &Pair, by_client: bool, alert: A) {
    let (err, events, other_err) = if by_client {
        (&p.client_error, &p.client_events, &p.server_error)
    } else {
        (&p.server_error, &p.server_events, &p.client_error)
    };
    let err = err.as_ref().unwrap_or_else(|| panic!("no error; expected {alert}"));
    assert_eq!(err.alert(), Some(alert), "{err}");
    assert_eq!(Pair::alerts_sent(events).last(), Some(&alert));
    assert_eq!(other_err, &Some(Error::AlertReceived(alert)), "the peer did not see {alert}");
}

/// A whole session: handshake, data both ways, KeyUpdate both ways, close.
/// `tamper` sees every flight.
fn scripted_session(tamper: impl FnMut(Way, &mut Vec<u8>)) -> Pair {
    let mut p = pair_with(&[CHACHA], 11);
    let mut tamper = tamper;
    p.drive_with(&mut tamper);
    if p.client_error.is_none() && p.server_error.is_none() {
        let _ = p.client.send(b"from the client");
        let _ = p.server.send(b"from the server");
        let _ = p.client.key_update(true);
        p.drive_with(&mut tamper);
        let _ = p.server.key_update(false);
        let _ = p.server.send(b"after the server's update");
        p.drive_with(&mut tamper);
        p.client.close();
        p.drive_with(&mut tamper);
    }
    p
}

#[test]
fn a_flipped_bit_in_any_protected_record_is_bad_record_mac() {
    // Count the protected records each way in an untouched session.
    let clean = scripted_session(|_, _| {});
    let count = |way| {
        clean
            .flights
            .iter()
            .filter(|(w, _)| *w == way)
            .map(|(_, f)| records(f).iter().filter(|(h, _)| h[0] == 23).count())
            .sum::<usize>()
    };
    for way in [Way::ToServer, Way::ToClient] {
        let total = count(way);
        assert!(total >= 4, "the session has protected records going {way:?}");
        for target in 0..total {
            // Flip one bit of the target record, in the ciphertext or the tag.
            let mut seen = 0;
            let p = scripted_session(|w, flight| {
                if w != way {
                    return;
                }
                let mut recs = records(flight);
                for (_, body) in recs.iter_mut().filter(|(h, _)| h[0] == 23) {
                    if seen == target {
                        let at = (target * 7) % body.len();
                        body[at] ^= 0x10;
                    }
                    seen += 1;
                }
                *flight = join(&recs);
            });
            let by_client = way == Way::ToClient;
            let (err, other) = if by_client {
                (&p.client_error, &p.server_error)
            } else {
                (&p.server_error, &p.client_error)
            };
            assert_eq!(err, &Some(Error::BadRecordMac), "record {target} going {way:?}");
            // The alert reaches the peer unless the peer had already closed its side.
            if let Some(other) = other {
                assert_eq!(other, &Error::AlertReceived(A::BAD_RECORD_MAC));
            }
        }
    }
}

#[test]
fn a_flipped_bit_in_application_data_is_bad_record_mac() {
    let mut p = pair_with(&[AES], 12);
    p.drive();
    p.client.send(b"tamper with me").unwrap();
    p.drive_with(once(Way::ToServer, |flight| flight[10] ^= 0x80));
    assert_refused(&p, false, A::BAD_RECORD_MAC);
    assert!(p.server_data.is_empty());
}

fn connected_pair(seed: u64) -> Pair {
    let mut p = pair_with(&[CHACHA], seed);
    p.drive();
    p.assert_connected();
    p
}

#[test]
fn a_replayed_record_is_bad_record_mac() {
    let mut p = connected_pair(13);
    p.client.send(b"once").unwrap();
    p.drive_with(once(Way::ToServer, |flight| {
        let copy = flight.clone();
        flight.extend_from_slice(&copy);
    }));
    assert_eq!(p.server_data, [b"once".to_vec()], "the first copy is accepted and kept");
    assert_refused(&p, false, A::BAD_RECORD_MAC);
}

#[test]
fn reordered_records_are_bad_record_mac() {
    let mut p = connected_pair(14);
    p.client.send(b"first").unwrap();
    p.client.send(b"second").unwrap();
    p.drive_with(once(Way::ToServer, |flight| {
        let mut recs = records(flight);
        recs.swap(0, 1);
        *flight = join(&recs);
    }));
    assert_refused(&p, false, A::BAD_RECORD_MAC);
    assert!(p.server_data.is_empty());
}

#[test]
fn a_truncated_record_is_bad_record_mac() {
    let mut p = connected_pair(15);
    p.client.send(b"cut short").unwrap();
    p.drive_with(once(Way::ToServer, |flight| {
        let mut recs = records(flight);
        let (h, body) = &mut recs[0];
        body.truncate(body.len() - 3);
        h[3..5].copy_from_slice(&(body.len() as u16).to_be_bytes());
        *flight = join(&recs);
    }));
    assert_refused(&p, false, A::BAD_RECORD_MAC);
}

#[test]
fn a_record_shorter_than_a_tag_is_bad_record_mac() {
    let mut p = connected_pair(16);
    p.client.send(b"x").unwrap();
    p.drive_with(once(Way::ToServer, |flight| *flight = vec![23, 3, 3, 0, 4, 1, 2, 3, 4]));
    assert_refused(&p, false, A::BAD_RECORD_MAC);
}

#[test]
fn oversized_records_are_record_overflow() {
    // A protected record longer than 2^14 + 256.
    let mut p = connected_pair(17);
    p.client.send(b"x").unwrap();
    p.drive_with(once(Way::ToServer, |flight| {
        *flight = vec![23, 3, 3];
        flight.extend_from_slice(&((record::MAX_CIPHERTEXT + 1) as u16).to_be_bytes());
    }));
    assert_refused(&p, false, A::RECORD_OVERFLOW);

    // A plaintext handshake record longer than 2^14.
    let mut p = pair_with(&[CHACHA], 18);
    p.drive_with(once(Way::ToServer, |flight| *flight = vec![22, 3, 1, 0x40, 0x01]));
    assert_refused(&p, false, A::RECORD_OVERFLOW);
}

#[test]
fn a_protected_record_with_too_much_plaintext_is_record_overflow() {
    let pki = pki(19);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.keylog = Some(keys.clone());
    let mut p = Pair::new(c, server_config(&pki), 19);
    p.drive();
    p.assert_connected();
    // The attacker knows the client's keys and seals 2^14 + 1 bytes in one record.
    let secret = keys.get("CLIENT_TRAFFIC_SECRET_0");
    let payload = vec![b'a'; record::MAX_PLAINTEXT + 1];
    let flight = seal_by_hand(CHACHA, &secret, 0, ContentType::APPLICATION_DATA, &payload);
    let err = p.server.handle_input(&flight, NOW).unwrap_err();
    assert_eq!(err.alert(), Some(A::RECORD_OVERFLOW));
}

fn flight_rewriter(
    keys: Arc<CapturedKeys>,
    edit: impl Fn(&mut Vec<u8>) + 'static,
) -> impl FnMut(Way, &mut Vec<u8>) {
    let mut done = false;
    move |way, flight| {
        if way == Way::ToClient && !done {
            done = true;
            let secret = keys.get("SERVER_HANDSHAKE_TRAFFIC_SECRET");
            rewrite_protected_handshake(flight, CHACHA, &secret, &edit);
        }
    }
}

fn pair_with_server_keys(seed: u64) -> (Pair, Arc<CapturedKeys>) {
    let pki = pki(seed);
    let keys = Arc::new(CapturedKeys::default());
    let mut s = server_config(&pki);
    s.keylog = Some(keys.clone());
    let mut c = client_config(&pki);
    c.suites = vec![CHACHA];
    (Pair::new(c, s, seed), keys)
}

/// Finds the message of type `typ` in handshake bytes and applies `f` to it.
fn edit_message(bytes: &mut Vec<u8>, typ: HandshakeType, f: impl Fn(&mut Vec<u8>)) {
    let msgs = handshake_messages(bytes);
    bytes.clear();
    for (t, mut m) in msgs {
        if t == typ.0 {
            f(&mut m);
        }
        bytes.extend_from_slice(&m);
    }
}

#[test]
fn a_wrong_server_finished_is_decrypt_error() {
    let (mut p, keys) = pair_with_server_keys(20);
    p.drive_with(flight_rewriter(keys, |hs| {
        edit_message(hs, HandshakeType::FINISHED, |m| *m.last_mut().unwrap() ^= 1)
    }));
    assert_refused(&p, true, A::DECRYPT_ERROR);
}

#[test]
fn a_client_made_to_send_a_wrong_finished_is_refused_by_the_server_with_decrypt_error() {
    // The tamper lab's `/tamper finished`: a constructor of its own, not
    // a configuration field, flips a bit of the client's verify_data.
    let pki = pki(23);
    let mut p = Pair::new(client_config(&pki), server_config(&pki), 23);
    p.client = tlschat::tls::Connection::client_with_wrong_finished(
        Arc::new(client_config(&pki)),
        tlschat::tls::ServerName::parse("localhost").unwrap(),
        Box::new(tlschat::tls::SeededRng::new_for_testing_only(23)),
    )
    .unwrap();
    p.drive();
    assert_refused(&p, false, A::DECRYPT_ERROR);
    // The same configuration through the ordinary constructor connects.
    let mut ordinary = Pair::new(client_config(&pki), server_config(&pki), 23);
    ordinary.drive();
    ordinary.assert_connected();
}

#[test]
fn a_bad_certificate_verify_is_decrypt_error() {
    let (mut p, keys) = pair_with_server_keys(21);
    p.drive_with(flight_rewriter(keys, |hs| {
        edit_message(hs, HandshakeType::CERTIFICATE_VERIFY, |m| m[10] ^= 1)
    }));
    assert_refused(&p, true, A::DECRYPT_ERROR);
}

#[test]
fn a_message_in_the_wrong_state_is_unexpected_message() {
    // The server's Certificate removed: CertificateVerify arrives in its place.
    let (mut p, keys) = pair_with_server_keys(22);
    p.drive_with(flight_rewriter(keys, |hs| {
        let msgs = handshake_messages(hs);
        *hs = msgs
            .into_iter()
            .filter(|(t, _)| *t != HandshakeType::CERTIFICATE.0)
            .flat_map(|(_, m)| m)
            .collect();
    }));
    assert_refused(&p, true, A::UNEXPECTED_MESSAGE);

    // Application data, properly protected with the client's handshake keys,
    // in place of the client's Finished.
    let pki = pki(23);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.keylog = Some(keys.clone());
    c.suites = vec![CHACHA];
    let mut p = Pair::new(c, server_config(&pki), 23);
    let mut flights = 0;
    let k = keys.clone();
    p.drive_with(move |w, flight| {
        if w == Way::ToServer {
            flights += 1;
            if flights == 2 {
                let secret = k.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET");
                *flight = seal_by_hand(CHACHA, &secret, 0, ContentType::APPLICATION_DATA, b"too early");
            }
        }
    });
    assert_refused(&p, false, A::UNEXPECTED_MESSAGE);

    // A second ClientHello after the first.
    let mut p = pair_with(&[CHACHA], 24);
    p.drive_with(once(Way::ToServer, |flight| {
        let copy = flight.clone();
        flight.extend_from_slice(&copy);
    }));
    assert_refused(&p, false, A::UNEXPECTED_MESSAGE);
}

#[test]
fn an_untrusted_ca_is_unknown_ca() {
    let server_pki = pki(25);
    let other = pki(26);
    let mut p = Pair::new(client_config(&other), server_config(&server_pki), 25);
    p.drive();
    assert_refused(&p, true, A::UNKNOWN_CA);
}

#[test]
fn an_expired_certificate_is_certificate_expired() {
    let mut p = pair_with(&[CHACHA], 27);
    p.now = MADE + 900 * 86_400;
    p.drive();
    assert_refused(&p, true, A::CERTIFICATE_EXPIRED);
}

#[test]
fn a_certificate_for_another_name_is_bad_certificate() {
    let pki = pki(28);
    let mut p = Pair::with_name(client_config(&pki), server_config(&pki), 28, "example.com");
    p.drive();
    assert_refused(&p, true, A::BAD_CERTIFICATE);
    assert!(matches!(p.client_error, Some(Error::Certificate(_))));
}

#[test]
fn a_pinned_fingerprint_accepts_its_key_and_refuses_another() {
    let pki = pki(29);
    let fp = tlschat::tls::internal::cert::parse_leaf(&pki.server.chain[0]).unwrap().fingerprint;
    let mut p =
        Pair::new(tlschat::tls::ClientConfig::new(ServerTrust::Fingerprint(fp)), server_config(&pki), 29);
    p.drive();
    p.assert_connected();

    let other = tlschat::tls::Fingerprint([7; 32]);
    let mut p =
        Pair::new(tlschat::tls::ClientConfig::new(ServerTrust::Fingerprint(other)), server_config(&pki), 29);
    p.drive();
    assert_refused(&p, true, A::BAD_CERTIFICATE);
}

#[test]
fn no_common_suite_is_handshake_failure() {
    let pki = pki(30);
    let mut c = client_config(&pki);
    c.suites = vec![AES];
    let mut s = server_config(&pki);
    s.suites = vec![CHACHA];
    let mut p = Pair::new(c, s, 30);
    p.drive();
    assert_refused(&p, false, A::HANDSHAKE_FAILURE);
}

/// A ClientHello the way another implementation might write it.
fn foreign_hello(edit: impl FnOnce(&mut ClientHello)) -> Vec<u8> {
    let mut ch = ClientHello {
        legacy_version: messages::TLS12,
        random: [1; 32],
        session_id: vec![2; 32],
        cipher_suites: vec![CipherSuite(0x00ff), CHACHA],
        compression_methods: vec![0],
        supported_versions: Some(vec![messages::TLS13]),
        supported_groups: Some(vec![NamedGroup::X25519]),
        signature_algorithms: Some(vec![tlschat::tls::SignatureScheme::ED25519]),
        key_shares: Some(vec![KeyShareEntry { group: NamedGroup::X25519, key_exchange: vec![9; 32] }]),
        ..ClientHello::default()
    };
    edit(&mut ch);
    let mut msg = Vec::new();
    ch.encode(&mut msg).unwrap();
    let mut out = Vec::new();
    record::write_plaintext(ContentType::HANDSHAKE, &msg, true, &mut out);
    out
}

fn server_answer(hello: &[u8]) -> (Result<(), Error>, Vec<u8>) {
    let pki = pki(31);
    let mut server = tlschat::tls::Connection::server(
        Arc::new(server_config(&pki)),
        Box::new(tlschat::tls::SeededRng::new_for_testing_only(31)),
    );
    let result = server.handle_input(hello, NOW);
    let mut out = Vec::new();
    let _ = server.poll_transmit(&mut out);
    (result, out)
}

#[test]
fn no_common_group_is_handshake_failure() {
    let (result, out) = server_answer(&foreign_hello(|ch| {
        ch.supported_groups = Some(vec![NamedGroup::SECP256R1]);
        ch.key_shares = Some(vec![KeyShareEntry { group: NamedGroup::SECP256R1, key_exchange: vec![4; 65] }]);
    }));
    assert_eq!(result.unwrap_err().alert(), Some(A::HANDSHAKE_FAILURE));
    assert_eq!(out, [21, 3, 3, 0, 2, 2, 40], "a plaintext fatal handshake_failure alert");
}

#[test]
fn a_tls12_only_client_is_protocol_version() {
    let (result, out) = server_answer(&foreign_hello(|ch| ch.supported_versions = None));
    assert_eq!(result, Err(Error::ProtocolVersion));
    assert_eq!(out, [21, 3, 3, 0, 2, 2, 70]);
}

#[test]
fn a_hello_with_an_unknown_suite_and_session_id_is_answered_in_compatibility_mode() {
    let (result, out) = server_answer(&foreign_hello(|_| {}));
    result.unwrap();
    let recs = records(&out);
    assert_eq!(recs[0].0[0], 22, "ServerHello first");
    assert_eq!(recs[1], ([20, 3, 3, 0, 1], vec![1]), "then the dummy ChangeCipherSpec");
    let sh = messages::ServerHello::decode(&recs[0].1[4..]).unwrap();
    assert_eq!(sh.session_id, vec![2; 32], "legacy_session_id echoed");
    assert_eq!(sh.cipher_suite, CHACHA);
}

#[test]
fn missing_extensions_and_bad_parameters_get_their_alerts() {
    type Edit = Box<dyn FnOnce(&mut ClientHello)>;
    let cases: Vec<(Edit, A)> = vec![
        (Box::new(|ch| ch.signature_algorithms = None), A::MISSING_EXTENSION),
        (Box::new(|ch| ch.key_shares = None), A::MISSING_EXTENSION),
        (Box::new(|ch| ch.compression_methods = vec![1, 0]), A::ILLEGAL_PARAMETER),
        (Box::new(|ch| ch.key_shares.as_mut().unwrap()[0].key_exchange = vec![0; 32]), A::ILLEGAL_PARAMETER),
        (Box::new(|ch| ch.key_shares.as_mut().unwrap()[0].key_exchange = vec![5; 31]), A::ILLEGAL_PARAMETER),
        (
            Box::new(|ch| {
                ch.signature_algorithms = Some(vec![tlschat::tls::SignatureScheme::RSA_PSS_RSAE_SHA256])
            }),
            A::HANDSHAKE_FAILURE,
        ),
    ];
    for (edit, alert) in cases {
        let (result, _) = server_answer(&foreign_hello(edit));
        assert_eq!(result.unwrap_err().alert(), Some(alert));
    }
}

#[test]
fn a_fragmented_client_hello_is_reassembled() {
    let hello = foreign_hello(|_| {});
    // Re-frame the message as many one-byte... three-byte records.
    let msg = &hello[5..];
    let mut fragmented = Vec::new();
    for chunk in msg.chunks(3) {
        record::write_plaintext(ContentType::HANDSHAKE, chunk, false, &mut fragmented);
    }
    let (result, out) = server_answer(&fragmented);
    result.unwrap();
    assert_eq!(records(&out)[0].0[0], 22);
}

#[test]
fn a_stray_change_cipher_spec_after_the_handshake_is_unexpected_message() {
    let mut p = connected_pair(32);
    p.client.send(b"x").unwrap();
    p.drive_with(once(Way::ToServer, |flight| *flight = vec![20, 3, 3, 0, 1, 1]));
    assert_refused(&p, false, A::UNEXPECTED_MESSAGE);
}

#[test]
fn a_received_fatal_alert_ends_the_connection_without_an_answer() {
    let pki = pki(33);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.keylog = Some(keys.clone());
    let mut p = Pair::new(c, server_config(&pki), 33);
    p.drive();
    let alert = seal_by_hand(CHACHA, &keys.get("CLIENT_TRAFFIC_SECRET_0"), 0, ContentType::ALERT, &[2, 80]);
    assert_eq!(p.server.handle_input(&alert, NOW), Err(Error::AlertReceived(A::INTERNAL_ERROR)));
    let mut out = Vec::new();
    assert!(!p.server.poll_transmit(&mut out), "no alert answers a fatal alert");
}

#[test]
fn a_plaintext_alert_after_the_handshake_is_unexpected_message() {
    let mut p = connected_pair(34);
    p.client.send(b"x").unwrap();
    p.drive_with(once(Way::ToServer, |flight| *flight = vec![21, 3, 3, 0, 2, 2, 80]));
    assert_refused(&p, false, A::UNEXPECTED_MESSAGE);
}

#[test]
fn records_not_yet_taken_survive_further_input_in_order() {
    let mut p = connected_pair(35);
    for (i, word) in [&b"first"[..], b"second", b"third"].iter().enumerate() {
        p.client.send(word).unwrap();
        let mut out = Vec::new();
        assert!(p.client.poll_transmit(&mut out));
        if i == 2 {
            // The zero-copy path: read straight into the engine's buffer.
            let buf = p.server.input_buffer(out.len());
            buf[..out.len()].copy_from_slice(&out);
            p.server.handle_read(out.len(), NOW).unwrap();
        } else {
            p.server.handle_input(&out, NOW).unwrap();
        }
    }
    let mut got = Vec::new();
    assert!(p.server.recv_application_data_into(&mut got));
    assert_eq!(got, b"first");
    assert_eq!(p.server.recv_application_data().unwrap(), b"second");
    got.clear();
    assert!(p.server.recv_application_data_into(&mut got));
    assert_eq!(got, b"third");
    assert!(!p.server.recv_application_data_into(&mut got));
}

#[test]
fn a_low_order_key_share_is_refused_before_any_server_hello_is_written() {
    let (result, out) =
        server_answer(&foreign_hello(|ch| ch.key_shares.as_mut().unwrap()[0].key_exchange = vec![0; 32]));
    assert_eq!(result, Err(Error::IllegalParameter("the x25519 key share is a low-order point")));
    assert_eq!(out, [21, 3, 3, 0, 2, 2, 47], "only the illegal_parameter alert");
}

#[test]
fn every_message_and_check_of_a_mutual_handshake_has_a_plain_explanation() {
    let pki = pki(8);
    let mut c = client_config(&pki);
    c.client_cert = Some(client_cert(&pki, 80));
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Roots(pki.roots.clone()));
    let mut p = Pair::new(c, s, 8);
    p.drive();
    p.assert_connected();
    let mut checks = Vec::new();
    for event in p.client_events.iter().chain(&p.server_events) {
        let Event::Handshake(step) = event else { continue };
        match &step.step {
            tlschat::tls::Step::Message { name, .. } => {
                assert!(tlschat::teach::explain::message(name).is_some(), "{name} has no explanation");
            }
            tlschat::tls::Step::Check { what, .. } => {
                assert!(tlschat::teach::explain::check(what).is_some(), "check {what} has no explanation");
                checks.push(*what);
            }
            tlschat::tls::Step::SecretDerived { .. } => {}
        }
    }
    for want in ["certificate chain", "client certificate", "CertificateVerify", "Finished"] {
        assert!(checks.contains(&want), "{want} not among {checks:?}");
    }
}

#[test]
fn an_idle_connection_gives_back_every_buffer_after_a_handshake_and_data() {
    let mut p = connected_pair(14);
    p.client.send(&[7; 3000]).unwrap();
    p.server.send(b"welcome").unwrap();
    p.drive();
    for conn in [&mut p.client, &mut p.server] {
        // The handshake filled them: a certificate chain, whole flights.
        assert!(conn.buffered() > 0);
        conn.release_buffers();
        assert_eq!(conn.buffered(), 0, "an idle connection holds no buffer");
    }
    // They grow again when bytes come.
    p.client.send(b"again").unwrap();
    p.drive();
    assert_eq!(p.server_data.last().map(Vec::as_slice), Some(&b"again"[..]));
}
