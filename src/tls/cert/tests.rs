use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType,
};

use super::names::dns_name_matches;
use super::path::{PathSearch, certificates_from_pem};
use super::x509::{Cert, der_length, utc_date};
use super::*;
use crate::store::pki::{self, RcgenKey, RoomCa};
use crate::tls::crypto::{Ed25519Key, SeededRng, hex};

/// 2025-06-15 15:06:40 UTC: a fixed "now", so no test depends on the clock.
const NOW: u64 = 1_750_000_000;
const DAY: u64 = 24 * 60 * 60;

/// A P-256 certificate made by `openssl req -x509 -newkey ec -pkeyopt
/// ec_paramgen_curve:P-256` (CA:TRUE, SAN DNS:localhost, valid to 2126).
const P256_PEM: &str = include_str!("../../../tests/data/p256-self-signed.pem");

fn dns(name: &str) -> ServerName {
    ServerName::parse(name).unwrap()
}

fn roots_of(ca: &RoomCa) -> RootStore {
    let mut roots = RootStore::new();
    roots.add_der(&ca.cert_der).unwrap();
    roots
}

/// The test room (CA "tlschat test CA", server for localhost, 127.0.0.1, ::1).
fn room(seed: u64) -> (RoomCa, pki::CertifiedKey, RootStore) {
    let (ca, server) = pki::test_room_for_testing_only(seed, NOW).unwrap();
    let roots = roots_of(&ca);
    (ca, server, roots)
}

/// A certificate key and the rcgen parameters describing it, for building
/// chains that tlschat's own profiles never produce.
struct Made {
    key: Ed25519Key,
    params: CertificateParams,
    der: Vec<u8>,
}

/// Parameters for `cn`, valid for a year around NOW: a CA (CA:TRUE,
/// keyCertSign) or a server leaf (CA:FALSE, digitalSignature, serverAuth,
/// SAN localhost).
fn params(cn: &str, key: &Ed25519Key, rng: &mut SeededRng, ca: bool) -> CertificateParams {
    let mut params = pki::base_params(cn, key, rng).unwrap();
    pki::set_validity(&mut params, NOW, 365 * DAY).unwrap();
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.subject_alt_names = vec![SanType::DnsName("localhost".try_into().unwrap())];
    }
    params
}

/// Signs `params` for `key`, by `issuer` or by itself.
fn make(key: Ed25519Key, mut params: CertificateParams, issuer: Option<&Made>) -> Made {
    let der = match issuer {
        None => params.self_signed(&RcgenKey::new(&key)).unwrap(),
        Some(issuer) => {
            params.use_authority_key_identifier_extension = true;
            let signer = Issuer::from_params(&issuer.params, RcgenKey::new(&issuer.key));
            params.signed_by(&RcgenKey::new(&key), &signer).unwrap()
        }
    };
    Made { key, params, der: der.der().to_vec() }
}

fn ca(cn: &str, rng: &mut SeededRng, issuer: Option<&Made>) -> Made {
    let key = Ed25519Key::generate(rng);
    let params = params(cn, &key, rng, true);
    make(key, params, issuer)
}

fn leaf(rng: &mut SeededRng, issuer: &Made, edit: impl FnOnce(&mut CertificateParams)) -> Made {
    let key = Ed25519Key::generate(rng);
    let mut params = params("leaf", &key, rng, false);
    edit(&mut params);
    make(key, params, Some(issuer))
}

fn store(anchor: &Made) -> RootStore {
    let mut roots = RootStore::new();
    roots.add_der(&anchor.der).unwrap();
    roots
}

fn p256_der() -> Vec<u8> {
    certificates_from_pem(P256_PEM).unwrap().remove(0)
}

// --- happy paths -------------------------------------------------------

#[test]
fn server_chain_from_room_ca_verifies_for_localhost() {
    let (_, server, roots) = room(1);
    let summary = verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW).unwrap();
    assert_eq!(summary.subject, "CN=localhost");
    assert_eq!(summary.issuer, "CN=tlschat test CA");
    assert_eq!(summary.names, ["localhost", "127.0.0.1", "::1"]);
    assert_eq!(summary.public_key, server.key.public_key());
    assert_eq!(summary.fingerprint, server.fingerprint());
    assert!(summary.not_before < NOW as i64);
    assert!(summary.not_after > (NOW + 824 * DAY) as i64);
}

#[test]
fn server_chain_from_room_ca_verifies_for_127_0_0_1() {
    let (_, server, roots) = room(1);
    verify_server_chain(&server.chain_der, &roots, &dns("127.0.0.1"), NOW).unwrap();
}

#[test]
fn server_chain_from_room_ca_verifies_for_ipv6_loopback_with_and_without_brackets() {
    let (_, server, roots) = room(1);
    verify_server_chain(&server.chain_der, &roots, &dns("::1"), NOW).unwrap();
    verify_server_chain(&server.chain_der, &roots, &dns("[::1]"), NOW).unwrap();
}

#[test]
fn server_chain_verifies_without_the_ca_copy_and_with_unrelated_extras() {
    let (_, server, roots) = room(1);
    let (other_ca, _, _) = room(2);
    let leaf_only = &server.chain_der[..1];
    verify_server_chain(leaf_only, &roots, &dns("localhost"), NOW).unwrap();
    let cluttered = vec![server.chain_der[0].clone(), other_ca.cert_der.clone(), server.chain_der[1].clone()];
    verify_server_chain(&cluttered, &roots, &dns("localhost"), NOW).unwrap();
}

#[test]
fn client_chain_with_client_auth_verifies() {
    let (ca, _, roots) = room(1);
    let mut rng = SeededRng::new_for_testing_only(7);
    let alice = ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
    let summary = verify_client_chain(&alice.chain_der, &roots, NOW).unwrap();
    assert_eq!(summary.subject, "CN=alice");
    assert!(summary.names.is_empty());
    assert_eq!(summary.fingerprint, alice.fingerprint());
}

#[test]
fn path_of_five_certificates_verifies_and_six_is_too_long() {
    let mut rng = SeededRng::new_for_testing_only(3);
    let root = ca("root", &mut rng, None);
    let i1 = ca("i1", &mut rng, Some(&root));
    let i2 = ca("i2", &mut rng, Some(&i1));
    let i3 = ca("i3", &mut rng, Some(&i2));
    let i4 = ca("i4", &mut rng, Some(&i3));
    let roots = store(&root);

    let five = leaf(&mut rng, &i3, |_| {});
    let chain = vec![five.der, i3.der.clone(), i2.der.clone(), i1.der.clone()];
    verify_server_chain(&chain, &roots, &dns("localhost"), NOW).unwrap();

    let six = leaf(&mut rng, &i4, |_| {});
    let chain = vec![six.der, i4.der, i3.der, i2.der, i1.der];
    assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));
}

#[test]
fn leaf_that_is_a_trust_anchor_is_accepted_only_if_it_passes_leaf_checks() {
    let mut rng = SeededRng::new_for_testing_only(4);
    // A self-signed CA that is also fit to be a server leaf.
    let key = Ed25519Key::generate(&mut rng);
    let mut p = params("self", &key, &mut rng, true);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.subject_alt_names = vec![SanType::DnsName("localhost".try_into().unwrap())];
    let both = make(key, p, None);
    let roots = store(&both);
    verify_server_chain(std::slice::from_ref(&both.der), &roots, &dns("localhost"), NOW).unwrap();
    assert!(matches!(
        verify_server_chain(std::slice::from_ref(&both.der), &roots, &dns("example.com"), NOW),
        Err(CertError::NameMismatch { .. })
    ));

    // The room CA itself lacks digitalSignature, so it is no leaf.
    let (ca, _, roots) = room(1);
    assert!(matches!(
        verify_client_chain(std::slice::from_ref(&ca.cert_der), &roots, NOW),
        Err(CertError::BadUsage { why, .. }) if why.contains("digitalSignature")
    ));
}

// --- names ---------------------------------------------------------------

#[test]
fn wrong_name_is_a_name_mismatch_listing_the_certificate_names() {
    let (_, server, roots) = room(1);
    let err = verify_server_chain(&server.chain_der, &roots, &dns("example.com"), NOW).unwrap_err();
    assert_eq!(
        err,
        CertError::NameMismatch {
            expected: "example.com".into(),
            names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    );
    assert_eq!(err.to_string(), "the certificate is for localhost, 127.0.0.1, ::1, not example.com");
    for other in ["127.0.0.2", "::2", "localhost.localdomain", "sub.localhost"] {
        assert!(
            matches!(
                verify_server_chain(&server.chain_der, &roots, &dns(other), NOW),
                Err(CertError::NameMismatch { .. })
            ),
            "{other}"
        );
    }
}

#[test]
fn certificate_without_subject_alt_name_matches_no_name_even_if_the_cn_does() {
    let mut rng = SeededRng::new_for_testing_only(5);
    let root = ca("root", &mut rng, None);
    let key = Ed25519Key::generate(&mut rng);
    let mut p = params("localhost", &key, &mut rng, false);
    p.subject_alt_names.clear();
    let no_san = make(key, p, Some(&root));
    let err = verify_server_chain(&[no_san.der], &store(&root), &dns("localhost"), NOW).unwrap_err();
    assert_eq!(err, CertError::NameMismatch { expected: "localhost".into(), names: vec![] });
    assert!(err.to_string().contains("no subjectAltName"));
}

#[test]
fn wildcard_covers_exactly_one_leftmost_label() {
    assert!(dns_name_matches("*.example.com", "chat.example.com"));
    assert!(dns_name_matches("*.Example.COM", "chat.example.com"));
    assert!(!dns_name_matches("*.example.com", "example.com"));
    assert!(!dns_name_matches("*.example.com", "a.b.example.com"));
    assert!(!dns_name_matches("*.example.com", ".example.com"));
    assert!(!dns_name_matches("*.com", "example.com"));
    assert!(!dns_name_matches("f*.example.com", "foo.example.com"));
    assert!(!dns_name_matches("*oo.example.com", "foo.example.com"));
    assert!(!dns_name_matches("chat.*.com", "chat.example.com"));
    assert!(!dns_name_matches("*.*.com", "a.b.com"));
    assert!(dns_name_matches("LocalHost", "localhost"));
    assert!(!dns_name_matches("localhost", "localhost2"));
}

#[test]
fn wildcard_certificate_from_room_ca_verifies_for_one_label_only() {
    let (ca, _, roots) = room(1);
    let mut rng = SeededRng::new_for_testing_only(8);
    let names = ["*.example.com".to_owned()];
    let server = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
    verify_server_chain(&server.chain_der, &roots, &dns("chat.example.com"), NOW).unwrap();
    verify_server_chain(&server.chain_der, &roots, &dns("CHAT.example.com."), NOW).unwrap();
    for refused in ["example.com", "a.chat.example.com"] {
        assert!(matches!(
            verify_server_chain(&server.chain_der, &roots, &dns(refused), NOW),
            Err(CertError::NameMismatch { .. })
        ));
    }
}

#[test]
fn server_names_parse_like_users_type_them() {
    assert_eq!(dns("LocalHost"), ServerName::Dns("localhost".into()));
    assert_eq!(dns("example.com."), ServerName::Dns("example.com".into()));
    assert_eq!(dns("127.0.0.1"), ServerName::Ip("127.0.0.1".parse().unwrap()));
    assert_eq!(dns("[::1]"), ServerName::Ip("::1".parse().unwrap()));
    assert_eq!(dns("::1"), ServerName::Ip("::1".parse().unwrap()));
    assert_eq!(dns("[::1]").to_string(), "::1");
    assert_eq!(dns("Chat.Example.com").to_string(), "chat.example.com");
    for bad in [
        "",
        ".",
        "a..b",
        "[::1",
        "[127.0.0.1]",
        "[example.com]",
        "a b",
        "*.example.com",
        "host:8443",
        "ex/ample",
        "é.com",
    ] {
        assert_eq!(ServerName::parse(bad), Err(CertError::BadName { name: bad.into() }), "{bad:?}");
    }
    assert!(ServerName::parse(&"a".repeat(64)).is_err());
    assert!(ServerName::parse(&"a".repeat(63)).is_ok());
    assert!(ServerName::parse(&["a"; 127].join(".")).is_ok(), "253 octets is the limit");
    assert!(ServerName::parse(&["a"; 128].join(".")).is_err());
}

// --- trust -----------------------------------------------------------------

#[test]
fn chain_from_another_ca_is_an_unknown_issuer() {
    let (_, _, roots) = room(1);
    let mut rng = SeededRng::new_for_testing_only(9);
    let other = RoomCa::generate("someone else's CA", &mut rng, NOW).unwrap();
    let names = ["localhost".to_owned()];
    let server = other.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, NOW).unwrap();
    let expected = CertError::UnknownIssuer { issuer: "CN=someone else's CA".into() };
    assert_eq!(verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW), Err(expected.clone()));
    assert_eq!(verify_server_chain(&server.chain_der[..1], &roots, &dns("localhost"), NOW), Err(expected));
}

#[test]
fn chain_from_a_different_ca_with_the_same_name_is_an_unknown_issuer() {
    // Both rooms' CAs are called "tlschat test CA"; only the keys differ.
    let (_, _, roots) = room(1);
    let (_, other_server, _) = room(2);
    let expected = CertError::UnknownIssuer { issuer: "CN=tlschat test CA".into() };
    assert_eq!(
        verify_server_chain(&other_server.chain_der, &roots, &dns("localhost"), NOW),
        Err(expected.clone())
    );
    assert_eq!(
        verify_server_chain(&other_server.chain_der[..1], &roots, &dns("localhost"), NOW),
        Err(expected)
    );
}

#[test]
fn empty_root_store_trusts_nothing() {
    let (_, server, _) = room(1);
    assert!(RootStore::new().is_empty());
    assert!(matches!(
        verify_server_chain(&server.chain_der, &RootStore::new(), &dns("localhost"), NOW),
        Err(CertError::UnknownIssuer { .. })
    ));
}

#[test]
fn self_signed_client_is_an_unknown_issuer_but_parses_for_pinning() {
    let mut rng = SeededRng::new_for_testing_only(10);
    let alice = pki::self_signed_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
    let (_, _, roots) = room(1);
    assert_eq!(
        verify_client_chain(&alice.chain_der, &roots, NOW),
        Err(CertError::UnknownIssuer { issuer: "CN=alice".into() })
    );
    let summary = parse_leaf(&alice.chain_der[0]).unwrap();
    assert_eq!(summary.public_key, alice.key.public_key());
    assert_eq!(summary.fingerprint, alice.fingerprint());
    assert_eq!((summary.subject.as_str(), summary.issuer.as_str()), ("CN=alice", "CN=alice"));
}

#[test]
fn leaf_used_as_issuer_is_not_a_ca() {
    let (_, server, roots) = room(1);
    let mut rng = SeededRng::new_for_testing_only(11);
    // Sign a certificate with the server's key, naming the server as issuer.
    let server_as_issuer = Made {
        params: pki::base_params("localhost", &server.key, &mut rng).unwrap(),
        key: server.key.clone(),
        der: server.chain_der[0].clone(),
    };
    let forged = leaf(&mut rng, &server_as_issuer, |_| {});
    let chain = vec![forged.der, server.chain_der[0].clone(), server.chain_der[1].clone()];
    assert_eq!(
        verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
        Err(CertError::NotCa { subject: "CN=localhost".into() })
    );
}

#[test]
fn a_tangle_of_look_alike_cas_exhausts_the_signature_budget() {
    // Nine self-signed CAs sharing one name and one key: each verifies
    // every other, so an unbounded search would try every ordering.
    let mut rng = SeededRng::new_for_testing_only(12);
    let key = Ed25519Key::generate(&mut rng);
    let tangle: Vec<Made> = (0..9)
        .map(|_| {
            let p = params("tangle", &key, &mut rng, true);
            make(key.clone(), p, None)
        })
        .collect();
    let victim = leaf(&mut rng, &tangle[0], |_| {});
    let mut chain = vec![victim.der.clone()];
    chain.extend(tangle.iter().map(|m| m.der.clone()));
    let (_, _, roots) = room(1);
    assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));

    // And it is the budget, not the path length, that stopped it.
    let certs: Vec<Cert<'_>> = chain.iter().enumerate().map(|(i, d)| Cert::parse(d, i).unwrap()).collect();
    let (leaf_cert, intermediates) = certs.split_first().unwrap();
    let mut search = PathSearch {
        roots: &roots,
        intermediates,
        in_path: vec![false; intermediates.len()],
        now: NOW as i64,
        budget: MAX_SIGNATURE_CHECKS,
    };
    let failure = search.extend(leaf_cert, 1).unwrap_err();
    assert!(failure.fatal);
    assert_eq!(search.budget, 0);
}

// --- time ------------------------------------------------------------------

#[test]
fn now_after_not_after_is_expired_and_the_boundaries_are_inclusive() {
    let (_, server, roots) = room(1);
    let summary = parse_leaf(&server.chain_der[0]).unwrap();
    let (not_before, not_after) = (summary.not_before as u64, summary.not_after as u64);
    verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_before).unwrap();
    verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_after).unwrap();
    let err = verify_server_chain(&server.chain_der, &roots, &dns("localhost"), not_after + 1).unwrap_err();
    assert_eq!(
        err,
        CertError::Expired { subject: "CN=localhost".into(), not_after: utc_date(not_after as i64) }
    );
    // NOW + 825 days
    assert_eq!(err.to_string(), "the certificate for CN=localhost expired on 2027-09-18 15:06:40 UTC");
}

#[test]
fn now_before_not_before_is_not_yet_valid() {
    let (_, server, roots) = room(1);
    let one_hour_and_a_second_early = NOW - 3601;
    assert_eq!(
        verify_server_chain(&server.chain_der, &roots, &dns("localhost"), one_hour_and_a_second_early),
        Err(CertError::NotYetValid {
            subject: "CN=localhost".into(),
            not_before: "2025-06-15 14:06:40 UTC".into()
        })
    );
}

#[test]
fn expired_ca_is_refused_even_when_the_leaf_is_still_valid() {
    let mut rng = SeededRng::new_for_testing_only(13);
    let ca = RoomCa::generate("old CA", &mut rng, NOW).unwrap();
    let ca_not_after = parse_leaf(&ca.cert_der).unwrap().not_after as u64;
    let late = ca_not_after - 10 * DAY;
    let names = ["localhost".to_owned()];
    let server = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, late).unwrap();
    assert!(matches!(
        verify_server_chain(&server.chain_der, &roots_of(&ca), &dns("localhost"), ca_not_after + 1),
        Err(CertError::Expired { subject, .. }) if subject == "CN=old CA"
    ));
}

// --- tampering and encoding --------------------------------------------------

#[test]
fn one_flipped_bit_in_the_leaf_signature_is_a_bad_signature() {
    let (_, server, roots) = room(1);
    let mut chain = server.chain_der.clone();
    // The signature BIT STRING ends the certificate: its last byte is
    // inside the 64-byte Ed25519 signature.
    *chain[0].last_mut().unwrap() ^= 0x01;
    assert_eq!(
        verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
        Err(CertError::BadSignature { subject: "CN=localhost".into() })
    );
}

#[test]
fn one_changed_letter_in_the_signed_part_is_a_bad_signature() {
    let (_, server, roots) = room(1);
    let mut chain = server.chain_der.clone();
    let at = chain[0].windows(9).position(|w| w == b"localhost").unwrap();
    chain[0][at] = b'L';
    assert_eq!(
        verify_server_chain(&chain, &roots, &dns("localhost"), NOW),
        Err(CertError::BadSignature { subject: "CN=Localhost".into() })
    );
}

#[test]
fn garbage_and_trailing_bytes_are_bad_encoding() {
    let (_, server, roots) = room(1);
    let name = dns("localhost");
    let garbage = b"this is not a certificate".to_vec();
    assert_eq!(
        verify_server_chain(std::slice::from_ref(&garbage), &roots, &name, NOW),
        Err(CertError::BadEncoding { index: 0 })
    );
    assert_eq!(
        verify_server_chain(&[server.chain_der[0].clone(), garbage], &roots, &name, NOW),
        Err(CertError::BadEncoding { index: 1 })
    );
    let mut trailing = server.chain_der[0].clone();
    trailing.push(0);
    assert_eq!(
        verify_server_chain(&[trailing], &roots, &name, NOW),
        Err(CertError::BadEncoding { index: 0 })
    );
    assert_eq!(parse_leaf(&[]), Err(CertError::BadEncoding { index: 0 }));
    // Every truncation of a real certificate fails cleanly.
    for len in 0..server.chain_der[0].len() {
        assert!(verify_server_chain(&[server.chain_der[0][..len].to_vec()], &roots, &name, NOW).is_err());
    }
}

#[test]
fn every_single_byte_change_to_the_leaf_is_refused() {
    // Whatever a changed byte hits (a length, a tag, the signed part, the
    // algorithm, the signature), the chain must not verify, and nothing
    // may panic.
    let (_, server, roots) = room(1);
    let name = dns("localhost");
    for at in 0..server.chain_der[0].len() {
        for mask in [0x01, 0x80] {
            let mut chain = server.chain_der.clone();
            chain[0][at] ^= mask;
            assert!(
                verify_server_chain(&chain, &roots, &name, NOW).is_err(),
                "byte {at} ^ {mask:#04x} was accepted"
            );
        }
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_leaf(&bytes);
        let _ = RootStore::new().add_der(&bytes);
        let _ = RootStore::from_pem(&text);
        let _ = ServerName::parse(&text);
        let _ = Fingerprint::parse(&text);
        let roots = RootStore::new();
        let _ = verify_server_chain(&[bytes.clone(), bytes], &roots, &ServerName::Dns("a".into()), NOW);
    }

    #[test]
    fn arbitrary_pem_bodies_never_panic(body in "[A-Za-z0-9+/=\\n-]{0,400}") {
        let _ = RootStore::from_pem(&format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"));
    }
}

#[test]
fn empty_chain_is_refused() {
    let (_, _, roots) = room(1);
    assert_eq!(verify_server_chain(&[], &roots, &dns("localhost"), NOW), Err(CertError::Empty));
    assert_eq!(verify_client_chain(&[], &roots, NOW), Err(CertError::Empty));
}

#[test]
fn more_than_ten_certificates_are_refused_before_any_work() {
    let (_, server, roots) = room(1);
    let chain = vec![server.chain_der[0].clone(); 11];
    assert_eq!(verify_server_chain(&chain, &roots, &dns("localhost"), NOW), Err(CertError::ChainTooLong));
}

#[test]
fn non_ed25519_certificate_is_unsupported() {
    let der = p256_der();
    let (_, _, roots) = room(1);
    let err = verify_server_chain(std::slice::from_ref(&der), &roots, &dns("localhost"), NOW).unwrap_err();
    assert!(
        matches!(&err, CertError::UnsupportedAlgorithm { what } if what.contains("ecdsa-with-SHA256")),
        "{err}"
    );
    assert!(
        matches!(parse_leaf(&der), Err(CertError::UnsupportedAlgorithm { what }) if what.contains("id-ecPublicKey"))
    );
    assert!(matches!(RootStore::new().add_der(&der), Err(CertError::UnsupportedAlgorithm { .. })));
}

// --- usage -------------------------------------------------------------------

#[test]
fn server_certificate_used_as_client_is_bad_usage_and_vice_versa() {
    let (ca, server, roots) = room(1);
    assert_eq!(
        verify_client_chain(&server.chain_der, &roots, NOW),
        Err(CertError::BadUsage {
            subject: "CN=localhost".into(),
            why: "its extended key usage does not include clientAuth".into()
        })
    );
    let mut rng = SeededRng::new_for_testing_only(14);
    let alice = ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, NOW).unwrap();
    assert!(matches!(
        verify_server_chain(&alice.chain_der, &roots, &dns("localhost"), NOW),
        Err(CertError::BadUsage { why, .. }) if why.contains("serverAuth")
    ));
}

#[test]
fn leaf_key_usage_must_allow_digital_signature() {
    let mut rng = SeededRng::new_for_testing_only(15);
    let root = ca("root", &mut rng, None);
    let encipher_only = leaf(&mut rng, &root, |p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]);
    assert!(matches!(
        verify_server_chain(&[encipher_only.der], &store(&root), &dns("localhost"), NOW),
        Err(CertError::BadUsage { why, .. }) if why.contains("digitalSignature")
    ));
}

#[test]
fn issuer_key_usage_must_allow_certificate_signing() {
    let mut rng = SeededRng::new_for_testing_only(16);
    let root = ca("root", &mut rng, None);
    let key = Ed25519Key::generate(&mut rng);
    let mut p = params("crl only", &key, &mut rng, true);
    p.key_usages = vec![KeyUsagePurpose::CrlSign];
    let crl_only = make(key, p, Some(&root));
    let victim = leaf(&mut rng, &crl_only, |_| {});
    let err = verify_server_chain(&[victim.der, crl_only.der.clone()], &store(&root), &dns("localhost"), NOW);
    assert!(matches!(err, Err(CertError::BadUsage { why, .. }) if why.contains("keyCertSign")));
    assert!(matches!(RootStore::new().add_der(&crl_only.der), Err(CertError::BadUsage { .. })));
}

#[test]
fn path_length_constraint_is_enforced() {
    let mut rng = SeededRng::new_for_testing_only(17);
    let key = Ed25519Key::generate(&mut rng);
    let mut p = params("strict root", &key, &mut rng, true);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = make(key, p, None);
    let intermediate = ca("intermediate", &mut rng, Some(&root));
    let direct = leaf(&mut rng, &root, |_| {});
    verify_server_chain(&[direct.der], &store(&root), &dns("localhost"), NOW).unwrap();
    let below = leaf(&mut rng, &intermediate, |_| {});
    assert!(matches!(
        verify_server_chain(&[below.der, intermediate.der], &store(&root), &dns("localhost"), NOW),
        Err(CertError::BadUsage { subject, why }) if subject == "CN=strict root" && why.contains("pathLenConstraint")
    ));
}

#[test]
fn unknown_critical_extension_is_refused() {
    let mut rng = SeededRng::new_for_testing_only(18);
    let root = ca("root", &mut rng, None);
    let strange = leaf(&mut rng, &root, |p| {
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    });
    assert!(matches!(
        verify_server_chain(&[strange.der], &store(&root), &dns("localhost"), NOW),
        Err(CertError::BadUsage { why, .. }) if why.contains("1.3.6.1.4.1.55555.1")
    ));
}

// --- root store --------------------------------------------------------------

#[test]
fn root_store_reads_every_certificate_block_and_skips_other_blocks() {
    let (ca1, server, _) = room(1);
    let (ca2, _, _) = room(2);
    let key_pem = ca1.key.to_pkcs8_pem();
    let pem = format!("# our CAs\n{}{}{}{}", ca1.cert_pem, key_pem.as_str(), ca2.cert_pem, ca1.cert_pem);
    let roots = RootStore::from_pem(&pem).unwrap();
    assert_eq!(roots.len(), 2, "the repeated CA is stored once");
    verify_server_chain(&server.chain_der, &roots, &dns("localhost"), NOW).unwrap();
    assert!(format!("{roots:?}").contains("CN=tlschat test CA"));
}

#[test]
fn root_store_refuses_pem_without_certificates_broken_blocks_and_non_cas() {
    let (_, server, _) = room(1);
    assert_eq!(RootStore::from_pem("").unwrap_err(), CertError::NoCertificates);
    assert_eq!(RootStore::from_pem("just text\n").unwrap_err(), CertError::NoCertificates);
    let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert_eq!(RootStore::from_pem(broken).unwrap_err(), CertError::BadEncoding { index: 0 });
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    assert_eq!(RootStore::from_pem(unterminated).unwrap_err(), CertError::BadEncoding { index: 0 });
    assert_eq!(
        RootStore::from_pem(&server.chain_pem).unwrap_err(),
        CertError::NotCa { subject: "CN=localhost".into() }
    );
    assert_eq!(RootStore::new().add_der(b"nope"), Err(CertError::BadEncoding { index: 0 }));
}

// --- fingerprints and messages --------------------------------------------------

#[test]
fn fingerprint_display_and_parse_round_trip() {
    let fp = Fingerprint(core::array::from_fn(|i| (i * 7 + 3) as u8));
    let shown = fp.to_string();
    assert_eq!(shown.len(), 64 + 15);
    assert!(shown.starts_with("030a 1118 1f26 2d34 "));
    assert_eq!(Fingerprint::parse(&shown), Some(fp));
    // Each group: five bytes big-endian, modulo 100 000 (0x030a11181f = 13053794335).
    assert_eq!(fp.short(), "94335 55010 15685 76360 37035 97710");
    assert_eq!(Fingerprint([0; 32]).short(), "00000 00000 00000 00000 00000 00000");
    assert_eq!(Fingerprint([0xff; 32]).short(), "27775 27775 27775 27775 27775 27775");
    let bare = hex(&fp.0);
    assert_eq!(Fingerprint::parse(&bare), Some(fp));
    assert_eq!(Fingerprint::parse(&bare.to_uppercase()), Some(fp));
    let colons = fp.0.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    assert_eq!(Fingerprint::parse(&colons), Some(fp));
    assert_eq!(Fingerprint::parse(&fp.short()), None, "a short form is not a fingerprint");
    assert_eq!(Fingerprint::parse(&format!("{bare}00")), None);
    assert_eq!(Fingerprint::parse(&bare[1..]), None);
    assert_eq!(Fingerprint::parse(&bare.replace('a', "g")), None);
    assert_eq!(Fingerprint::parse(""), None);
    assert_eq!(format!("{fp:?}"), format!("Fingerprint({bare})"));
}

#[test]
fn fingerprint_is_blake3_of_the_subject_public_key_info() {
    let (_, server, _) = room(1);
    // RFC 8410 §4: SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING key }.
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(&server.key.public_key());
    let expected = Fingerprint(*blake3::hash(&spki).as_bytes());
    assert_eq!(parse_leaf(&server.chain_der[0]).unwrap().fingerprint, expected);
    assert_eq!(Fingerprint::of_ed25519(&server.key.public_key()), expected);
}

#[test]
fn der_lengths_are_minimal() {
    assert_eq!(der_length(0), [0x00]);
    assert_eq!(der_length(0x7f), [0x7f]);
    assert_eq!(der_length(0x80), [0x81, 0x80]);
    assert_eq!(der_length(0xff), [0x81, 0xff]);
    assert_eq!(der_length(0x100), [0x82, 0x01, 0x00]);
    assert_eq!(der_length(0x01_0000), [0x83, 0x01, 0x00, 0x00]);
}

#[test]
fn error_messages_are_single_lines() {
    let errors = [
        CertError::Empty,
        CertError::BadEncoding { index: 1 },
        CertError::UnsupportedAlgorithm { what: "the RSA key of CN=x".into() },
        CertError::BadSignature { subject: "CN=x".into() },
        CertError::UnknownIssuer { issuer: "CN=x".into() },
        CertError::Expired { subject: "CN=x".into(), not_after: utc_date(0) },
        CertError::NotYetValid { subject: "CN=x".into(), not_before: utc_date(0) },
        CertError::NameMismatch { expected: "x".into(), names: vec![] },
        CertError::NotCa { subject: "CN=x".into() },
        CertError::BadUsage { subject: "CN=x".into(), why: "y".into() },
        CertError::ChainTooLong,
        CertError::BadName { name: "x y".into() },
        CertError::NoCertificates,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
    }
    assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
}
