//! Trust in a room's server, from the engine up to the command line: the
//! engine's `ServerTrust::AnyKey` (first contact) and `ClientTrust::Admit`
//! (the room's admission of proven keys), then `tlschat connect` pinning a
//! room on first contact, using the pin, refusing a changed key before
//! anything is sent, and `tlschat trust list`/`forget`.
//!
//! The engine's CA checks have their own tests in tests/it/engine/handshake.rs:
//! `an_untrusted_ca_is_unknown_ca`, `an_expired_certificate_is_certificate_expired`,
//! `a_certificate_for_another_name_is_bad_certificate` and
//! `a_pinned_fingerprint_accepts_its_key_and_refuses_another`; tests/it/cmd/cli.rs
//! has `connect_refuses_a_server_certificate_from_another_ca_and_the_server_hears_unknown_ca`
//! and `connect_refuses_a_server_whose_key_does_not_match_the_pinned_fingerprint`.
//! Here the other `--ca` refusals are checked at the command line too.
//!
//! Every `tlschat` here runs with TLSCHAT_HOME in a temporary directory.

use crate::engine_pair;
use crate::programs;

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::engine_pair::{MADE, Pair, Way, pki, rewrite_protected_handshake, server_config, to_tls};
use crate::programs::{HOME_ENV, Identity, Proc, Room, TempDir, single_error_line, tlschat};
use tlschat::store::names::NameBindings;
use tlschat::store::pki as certs;
use tlschat::tls::internal::messages::HandshakeType;
use tlschat::tls::{
    Admission, AlertDescription as A, CertSummary, CipherSuite, ClientAuth, ClientConfig, ClientTrust,
    Ed25519Key, Error, Event, Fingerprint, SeededRng, ServerTrust, Step,
};

// ---------------------------------------------------------------------------
// The engine: AnyKey

fn any_key_client() -> ClientConfig {
    ClientConfig::new(ServerTrust::AnyKey)
}

#[test]
fn any_key_connects_to_a_server_whatever_signed_it_and_reports_the_key_for_the_caller_to_decide() {
    let pki = pki(101);
    let mut p = Pair::new(any_key_client(), server_config(&pki), 101);
    p.drive();
    p.assert_connected();
    let peer = Pair::connected(&p.client_events).unwrap().peer.clone().expect("the server's certificate");
    assert_eq!(
        peer.fingerprint,
        tlschat::tls::internal::cert::parse_leaf(&pki.server.chain[0]).unwrap().fingerprint
    );
    // The panel says the key is not trusted yet.
    let check = p.client_events.iter().find_map(|e| match e {
        Event::Handshake(s) => match &s.step {
            Step::Check { what: "certificate chain", ok: true, detail } => Some(detail.clone()),
            _ => None,
        },
        _ => None,
    });
    let check = check.expect("a certificate check step");
    assert!(check.contains("not trusted until the user decides"), "{check}");
    // Even a name the certificate is not for: the decision is the caller's.
    let mut p = Pair::with_name(any_key_client(), server_config(&pki), 101, "example.com");
    p.drive();
    p.assert_connected();
}

#[test]
fn any_key_still_needs_certificate_verify_to_prove_the_key() {
    let pki = pki(102);
    let keys = Arc::new(engine_pair::CapturedKeys::default());
    let mut s = server_config(&pki);
    s.keylog = Some(keys.clone());
    let mut c = any_key_client();
    c.suites = vec![CipherSuite::TLS_CHACHA20_POLY1305_SHA256];
    let mut p = Pair::new(c, s, 102);
    let mut done = false;
    p.drive_with(move |way, flight| {
        if way == Way::ToClient && !done {
            done = true;
            let secret = keys.get("SERVER_HANDSHAKE_TRAFFIC_SECRET");
            rewrite_protected_handshake(flight, CipherSuite::TLS_CHACHA20_POLY1305_SHA256, &secret, |hs| {
                let msgs = engine_pair::handshake_messages(hs);
                hs.clear();
                for (t, mut m) in msgs {
                    if t == HandshakeType::CERTIFICATE_VERIFY.0 {
                        m[10] ^= 1;
                    }
                    hs.extend_from_slice(&m);
                }
            });
        }
    });
    assert_eq!(p.client_error.as_ref().and_then(Error::alert), Some(A::DECRYPT_ERROR));
    assert_eq!(p.server_error, Some(Error::AlertReceived(A::DECRYPT_ERROR)));
    assert!(Pair::connected(&p.client_events).is_none());
}

#[test]
fn any_key_refuses_a_key_that_is_not_ed25519_with_unsupported_certificate() {
    let pki = pki(103);
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/p256-self-signed.pem"),
    )
    .unwrap();
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap().1.contents;
    let mut s = server_config(&pki);
    s.cert.chain = vec![der];
    let mut p = Pair::new(any_key_client(), s, 103);
    p.drive();
    assert_eq!(p.client_error.as_ref().and_then(Error::alert), Some(A::UNSUPPORTED_CERTIFICATE));
}

// ---------------------------------------------------------------------------
// The engine: AnyKey with hold_for_trust

/// An AnyKey client with identity `carol` that holds its flight for trust,
/// against a server that asks `doorman` about proven client keys.
fn holding(pki: &engine_pair::Pki, doorman: Arc<Doorman>, seed: u64) -> (Pair, certs::CertifiedKey) {
    let carol = identity_cert(seed * 10, "carol");
    let mut c = any_key_client();
    c.client_cert = Some(to_tls(&carol));
    c.hold_for_trust = true;
    let mut s = server_config(pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Admit(doorman));
    (Pair::new(c, s, seed), carol)
}

#[test]
fn hold_for_trust_stops_before_our_flight_with_the_proven_key_and_trusting_it_completes_the_handshake() {
    let pki = pki(111);
    let doorman = Arc::new(Doorman::default());
    let (mut p, carol) = holding(&pki, doorman.clone(), 111);
    p.drive();
    // The server's flight verified; ours is not even written.
    let key = p.client_events.iter().find_map(|e| match e {
        Event::ServerKey(cert) => Some(cert.fingerprint),
        _ => None,
    });
    let server_key = tlschat::tls::internal::cert::parse_leaf(&pki.server.chain[0]).unwrap().fingerprint;
    assert_eq!(key, Some(server_key));
    assert!(p.client.awaits_trust() && p.client.is_handshaking());
    assert_eq!(p.client.waiting_for(), Some("waiting for you to trust the server's key"));
    assert!(Pair::connected(&p.client_events).is_none() && Pair::connected(&p.server_events).is_none());
    assert!(
        !Pair::message_names(&p.client_events).iter().any(|m| m.starts_with("->") && m != "-> ClientHello")
    );
    assert!(doorman.asked.lock().unwrap().is_empty(), "the server must not know the client yet");
    assert_eq!(
        p.client.send(b"early"),
        Err(Error::Internal("application data before the handshake finished"))
    );

    p.client.trust_server().unwrap();
    p.drive();
    p.assert_connected();
    assert!(!p.client.awaits_trust());
    let names = Pair::message_names(&p.client_events);
    assert!(
        names.ends_with(&["-> Certificate".into(), "-> CertificateVerify".into(), "-> Finished".into()]),
        "{names:?}"
    );
    let asked = doorman.asked.lock().unwrap().clone();
    assert_eq!(asked.iter().map(|c| c.fingerprint).collect::<Vec<_>>(), [carol.fingerprint()]);
    // Trusting twice does nothing more.
    p.client.trust_server().unwrap();
}

#[test]
fn closing_while_holding_for_trust_sends_user_canceled_and_close_notify_and_never_our_certificate() {
    let pki = pki(112);
    let doorman = Arc::new(Doorman::default());
    let (mut p, _carol) = holding(&pki, doorman.clone(), 112);
    p.drive();
    assert!(p.client.awaits_trust());
    p.client.close();
    p.drive();
    assert_eq!(Pair::alerts_sent(&p.client_events), [A::USER_CANCELED, A::CLOSE_NOTIFY]);
    // The server read both (sealed with our handshake keys) and answered the close.
    assert_eq!(p.server_error, None);
    assert!(p.server.is_closed());
    assert!(p.server_events.contains(&Event::PeerClosed), "{:?}", p.server_events);
    assert!(Pair::connected(&p.server_events).is_none());
    assert!(doorman.asked.lock().unwrap().is_empty());
    let received = Pair::message_names(&p.server_events);
    assert!(!received.iter().any(|m| m == "<- Certificate" || m == "<- Finished"), "{received:?}");
    // Nothing can be trusted after the cancel.
    p.client.trust_server().unwrap();
    p.drive();
    assert!(Pair::connected(&p.client_events).is_none());
}

#[test]
fn without_hold_for_trust_nothing_waits() {
    let pki = pki(113);
    let mut c = any_key_client();
    c.client_cert = Some(to_tls(&identity_cert(1130, "carol")));
    assert!(!c.hold_for_trust, "off by default");
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Admit(Arc::new(Doorman::default())));
    let mut p = Pair::new(c, s, 113);
    p.drive();
    p.assert_connected();
    assert!(!p.client_events.iter().any(|e| matches!(e, Event::ServerKey(_))));
}

// ---------------------------------------------------------------------------
// The engine: Admit

/// An admission policy that remembers whom it was asked about.
#[derive(Debug, Default)]
struct Doorman {
    refuse: bool,
    asked: Mutex<Vec<CertSummary>>,
}

impl Admission for Doorman {
    fn admit(&self, peer: &CertSummary) -> Result<(), String> {
        self.asked.lock().unwrap().push(peer.clone());
        if self.refuse { Err("not on the list".into()) } else { Ok(()) }
    }
}

fn identity_cert(seed: u64, name: &str) -> certs::CertifiedKey {
    let mut rng = SeededRng::new_for_testing_only(seed);
    certs::self_signed_client(Ed25519Key::generate(&mut rng), name, &mut rng, MADE).unwrap()
}

fn admitting(
    pki: &engine_pair::Pki,
    policy: Arc<dyn Admission>,
    client: Option<&certs::CertifiedKey>,
    seed: u64,
) -> Pair {
    let mut s = server_config(pki);
    s.client_auth = ClientAuth::Optional(ClientTrust::Admit(policy));
    let mut c = engine_pair::client_config(pki);
    c.client_cert = client.map(to_tls);
    Pair::new(c, s, seed)
}

#[test]
fn admission_is_asked_once_about_the_proven_key_and_lets_it_in() {
    let pki = pki(104);
    let doorman = Arc::new(Doorman::default());
    let alice = identity_cert(1040, "alice");
    let mut p = admitting(&pki, doorman.clone(), Some(&alice), 104);
    p.drive();
    p.assert_connected();
    let asked = doorman.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].fingerprint, alice.fingerprint());
    assert_eq!(asked[0].subject, "CN=alice");
    assert_eq!(
        Pair::connected(&p.server_events).unwrap().peer.as_ref().unwrap().fingerprint,
        alice.fingerprint()
    );
}

#[test]
fn admission_refuses_with_access_denied_and_the_server_takes_no_data() {
    let pki = pki(105);
    let doorman = Arc::new(Doorman { refuse: true, ..Doorman::default() });
    let alice = identity_cert(1050, "alice");
    let mut p = admitting(&pki, doorman, Some(&alice), 105);
    p.drive();
    assert_eq!(p.server_error, Some(Error::AccessDenied("not on the list".into())));
    assert_eq!(Pair::alerts_sent(&p.server_events), [A::ACCESS_DENIED]);
    // The client finished its side before the refusal reached it: what it
    // sends then is never read.
    let _ = p.client.send(b"let me in\n");
    p.drive();
    assert_eq!(p.client_error, Some(Error::AlertReceived(A::ACCESS_DENIED)));
    assert!(p.server_data.is_empty(), "{:?}", p.server_data);
    assert!(Pair::connected(&p.server_events).is_none());
}

#[test]
fn admission_is_not_asked_about_a_guest_without_a_certificate() {
    let pki = pki(106);
    let doorman = Arc::new(Doorman { refuse: true, ..Doorman::default() });
    let mut p = admitting(&pki, doorman.clone(), None, 106);
    p.drive();
    p.assert_connected();
    assert!(doorman.asked.lock().unwrap().is_empty());
    assert_eq!(Pair::connected(&p.server_events).unwrap().peer, None);

    // Required: the guest is refused before admission is asked.
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Required(ClientTrust::Admit(doorman.clone()));
    let mut p = Pair::new(engine_pair::client_config(&pki), s, 106);
    p.drive();
    assert_eq!(p.server_error, Some(Error::CertificateRequired));
    assert!(doorman.asked.lock().unwrap().is_empty());
}

#[test]
fn a_name_bound_to_the_first_key_is_refused_to_a_second_key_with_access_denied() {
    let dir = TempDir::new("members-engine");
    let room_members = Arc::new(NameBindings::in_memory(dir.path()).unwrap());
    let members: Arc<dyn Admission> = room_members.clone();
    let pki = pki(107);
    let first = identity_cert(1070, "alice");
    let second = identity_cert(1071, "alice");
    let mut p = admitting(&pki, members.clone(), Some(&first), 107);
    p.drive();
    p.assert_connected();
    // The room binds the name as the member takes its seat (net's Binder).
    room_members.claim("alice", &first.fingerprint()).unwrap();

    let mut p = admitting(&pki, members.clone(), Some(&second), 108);
    p.drive();
    let Some(Error::AccessDenied(why)) = &p.server_error else { panic!("{:?}", p.server_error) };
    assert!(
        why.contains("the name alice belongs to the key") && why.contains(&second.fingerprint().short()),
        "{why}"
    );
    assert_eq!(p.client_error, Some(Error::AlertReceived(A::ACCESS_DENIED)));

    // The first key keeps its name; another name is free for the second key.
    let mut p = admitting(&pki, members.clone(), Some(&first), 109);
    p.drive();
    p.assert_connected();
    let mut p = admitting(&pki, members, Some(&identity_cert(1071, "alice2")), 110);
    p.drive();
    p.assert_connected();
}

// ---------------------------------------------------------------------------
// The command line

/// A home directory for a client, kept across its runs.
fn client(home: &TempDir, name: &str, args: &[&str]) -> Proc {
    let mut cmd = tlschat(args);
    cmd.env(HOME_ENV, home.path());
    Proc::spawn(name, &mut cmd)
}

/// The hex form of a fingerprint as `listen` prints it (grouped).
fn hex(grouped: &str) -> String {
    grouped.replace(' ', "")
}

#[test]
fn first_contact_headless_without_trust_on_first_use_is_refused_showing_the_fingerprint_and_sends_nothing() {
    let dir = TempDir::new("first-contact-refused");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let mut c = client(&home, "connect", &["connect", &room.target()]);
    c.send_line("this line must not arrive");
    assert!(!c.wait().success(), "{}", c.output());
    let line = single_error_line(&c);
    let fp = Fingerprint::parse(&room.fingerprint).unwrap();
    assert!(line.contains(&format!("{} is not a known room", room.target())), "{line}");
    assert!(line.contains(&room.fingerprint) && line.contains(&fp.short()), "{line}");
    assert!(line.contains(&format!("--fingerprint {}", hex(&room.fingerprint))), "{line}");
    assert!(line.contains("--trust-on-first-use") && line.contains("Nothing was sent"), "{line}");
    // The client said goodbye politely and nothing else.
    room.proc.stdout.wait_for_text("left (close_notify)");
    assert!(!room.proc.stdout.contains("this line must not arrive"), "{}", room.proc.output());
    assert!(!home.join("known_rooms").exists(), "nothing may be pinned");
}

#[test]
fn a_headless_refusal_at_first_contact_cancels_before_our_certificate_so_the_room_never_meets_us() {
    let dir = TempDir::new("first-contact-unmet");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let carol = Identity::make(home.path(), "carol");
    let mut c = client(&home, "connect", &["connect", &room.target()]);
    c.send_line("this line must not arrive");
    assert!(!c.wait().success(), "{}", c.output());
    assert!(single_error_line(&c).contains("is not a known room"), "{}", c.output());
    // The room heard the goodbye, and nothing that says who the client is.
    room.proc.stdout.wait_for_text("left (close_notify)");
    room.assert_never_met(&carol);
    assert!(!room.proc.stdout.contains("this line must not arrive"), "{}", room.proc.output());
    // The client proved the server's key, then cancelled without its flight.
    let log = c.stdout.all();
    let at = |text: &str| log.iter().position(|l| l.contains(text));
    let proved = at("the server proved its key").expect("the server's key shown");
    let cancelled = at("[tls] sent alert user_canceled").expect("user_canceled sent");
    assert!(proved < cancelled, "{}", c.output());
    assert_eq!(
        log.get(cancelled + 1).map(String::as_str),
        Some("[tls] sent alert close_notify"),
        "{}",
        c.output()
    );
    for sent in ["-> Certificate", "-> CertificateVerify", "-> Finished", "[tls] connected"] {
        assert!(at(sent).is_none(), "{sent}: {}", c.output());
    }

    // Trusted the next time, the same client joins under its name and is bound.
    let mut c = client(&home, "tofu", &["connect", &room.target(), "--trust-on-first-use"]);
    room.proc.stdout.wait_for_text("carol joined");
    room.wait_for_binding("carol", &hex(&carol.fingerprint));
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
}

#[test]
fn first_contact_with_trust_on_first_use_pins_the_key_and_the_next_connection_uses_the_pin() {
    let dir = TempDir::new("tofu");
    let mut room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let target = room.target();
    let mut c = client(&home, "tofu", &["connect", &target, "--trust-on-first-use"]);
    c.send_line("held until trusted, then sent");
    room.proc.stdout.wait_for_text("] held until trusted, then sent");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());

    let pins = std::fs::read_to_string(home.join("known_rooms")).unwrap();
    assert_eq!(pins, format!("{target} {}\n", hex(&room.fingerprint)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("known_rooms")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Later, without any flag: the pin is the trust.
    let mut again = client(&home, "pinned", &["connect", &target]);
    again.stdout.wait_for_text("matches the pin");
    again.send_line("hello again");
    room.proc.stdout.wait_for_text("] hello again");
    room.proc.send_line("welcome back");
    again.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] welcome back"));
    again.close_stdin();
    assert!(again.wait().success(), "{}", again.output());

    let mut list = client(&home, "trust list", &["trust", "list"]);
    assert!(list.wait().success(), "{}", list.output());
    let fp = Fingerprint::parse(&room.fingerprint).unwrap();
    assert_eq!(list.stdout.all(), [format!("{target}  {}  {}", fp.short(), hex(&room.fingerprint))]);
}

#[test]
fn lines_piped_in_before_first_contact_go_out_once_the_key_is_trusted_and_then_connect_exits() {
    let dir = TempDir::new("tofu-pipe");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let mut c = client(&home, "piped", &["connect", &room.target(), "--trust-on-first-use"]);
    c.send_line("piped line");
    // Input ends before the handshake has even started.
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    room.proc.stdout.wait_for_text("] piped line");
    room.proc.stdout.wait_for_text("left (close_notify)");
}

#[test]
fn an_invite_with_fingerprint_pins_the_key_for_later_connections() {
    let dir = TempDir::new("invite");
    let room = Room::start(&dir, "listen", &[]);
    let invite = room.proc.stdout.wait_for_text("invite: tlschat connect ");
    assert_eq!(
        invite,
        format!(
            "invite: tlschat connect 127.0.0.1:{} --fingerprint {}",
            room.addr.port(),
            hex(&room.fingerprint)
        )
    );
    let home = TempDir::new("client-home");
    let args: Vec<&str> = invite["invite: tlschat ".len()..].split(' ').collect();
    let mut c = client(&home, "invited", &args);
    c.stdout.wait_for_text("[tls] connected: ");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    let mut again = client(&home, "pinned", &["connect", &format!("127.0.0.1:{}", room.addr.port())]);
    again.stdout.wait_for_text("matches the pin");
    again.close_stdin();
    assert!(again.wait().success(), "{}", again.output());
}

/// A pins file for `room` with another key than the server's.
fn pin_other_key(home: &TempDir, room: &str) -> Fingerprint {
    let other = Fingerprint([0x5a; 32]);
    std::fs::write(
        home.join("known_rooms"),
        format!("{room} {}\n", tlschat::tls::internal::crypto::hex(&other.0)),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.join("known_rooms"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    other
}

#[test]
fn a_changed_key_is_refused_before_anything_is_sent_showing_both_fingerprints_and_the_forget_command() {
    let dir = TempDir::new("changed");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let target = room.target();
    let pinned = pin_other_key(&home, &target);
    // Even with --trust-on-first-use: a changed key is never first contact.
    let mut c = client(&home, "connect", &["connect", &target, "--trust-on-first-use"]);
    c.send_line("secret plans");
    assert!(!c.wait().success(), "{}", c.output());
    let line = single_error_line(&c);
    let presented = Fingerprint::parse(&room.fingerprint).unwrap();
    assert!(line.contains(&format!("the key of {target} has CHANGED")), "{line}");
    for shown in [pinned.to_string(), pinned.short(), presented.to_string(), presented.short()] {
        assert!(line.contains(&shown), "{shown} missing: {line}");
    }
    assert!(
        line.contains(&format!("`tlschat trust forget {target}`")) && line.contains("Nothing was sent"),
        "{line}"
    );
    // Refused inside the handshake: the room saw bad_certificate and no line.
    room.proc.stdout.wait_for_text("handshake failed: the peer sent alert bad_certificate");
    assert!(!room.proc.stdout.contains("secret plans"), "{}", room.proc.output());
    assert!(!room.proc.stdout.contains("joined"), "{}", room.proc.output());
    // The pin is untouched.
    assert!(
        std::fs::read_to_string(home.join("known_rooms"))
            .unwrap()
            .contains(&tlschat::tls::internal::crypto::hex(&pinned.0))
    );

    // The command it printed works, and then first contact can pin the new key.
    let mut forget = client(&home, "forget", &["trust", "forget", &target]);
    assert!(forget.wait().success(), "{}", forget.output());
    assert!(forget.stdout.text().contains(&format!("forgot the key of {target}")), "{}", forget.output());
    let mut c = client(&home, "connect again", &["connect", &target, "--trust-on-first-use"]);
    c.stdout.wait_for_text("[tls] connected: ");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    let pins = std::fs::read_to_string(home.join("known_rooms")).unwrap();
    assert_eq!(pins, format!("{target} {}\n", hex(&room.fingerprint)));
}

#[test]
fn a_fingerprint_that_contradicts_the_pin_is_refused_before_connecting() {
    let home = TempDir::new("client-home");
    let pinned = pin_other_key(&home, "localhost:9");
    let given = "ab".repeat(32);
    let mut c = client(&home, "connect", &["connect", "localhost:9", "--fingerprint", &given]);
    assert!(!c.wait().success());
    let line = single_error_line(&c);
    assert!(line.contains("localhost:9 is pinned to the key") && line.contains(&pinned.short()), "{line}");
    assert!(line.contains("tlschat trust forget localhost:9"), "{line}");
}

#[test]
fn a_fingerprint_mismatch_is_refused_with_bad_certificate_and_nothing_is_pinned() {
    let dir = TempDir::new("fp-mismatch");
    let room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let wrong = "0".repeat(64);
    let mut c = client(&home, "connect", &["connect", &room.target(), "--fingerprint", &wrong]);
    c.send_line("must not arrive");
    assert!(!c.wait().success());
    let line = single_error_line(&c);
    assert!(line.contains("does not match the expected"), "{line}");
    room.proc.stdout.wait_for_text("handshake failed: the peer sent alert bad_certificate");
    assert!(!room.proc.stdout.contains("must not arrive"));
    assert!(!home.join("known_rooms").exists());
}

#[test]
fn ca_trust_accepts_the_rooms_chain_and_refuses_a_wrong_name_with_bad_certificate() {
    let dir = TempDir::new("ca-name");
    let room = Room::start(&dir, "listen", &[]);
    let ca = room.ca.to_str().unwrap();
    let target = format!("127.0.0.1:{}", room.addr.port());
    // The room's certificate is for localhost, 127.0.0.1 and ::1.
    let mut good = Proc::spawn("good", &mut tlschat(&["connect", &target, "--ca", ca]));
    good.stdout.wait_for_text("issued by CN=tlschat room CA");
    good.close_stdin();
    assert!(good.wait().success(), "{}", good.output());

    let mut bad = Proc::spawn(
        "wrong name",
        &mut tlschat(&["connect", &target, "--ca", ca, "--server-name", "chat.example.org"]),
    );
    assert!(!bad.wait().success());
    let line = single_error_line(&bad);
    assert!(line.contains("not chat.example.org"), "{line}");
    room.proc.stdout.wait_for_text("handshake failed: the peer sent alert bad_certificate");
}

#[test]
fn ca_trust_refuses_an_expired_server_certificate_with_certificate_expired() {
    let dir = TempDir::new("ca-expired");
    // A room made three years ago: its 825-day server certificate has expired.
    let now = tlschat::clock::unix_now();
    let (ca, server) = certs::test_room_for_testing_only(109, now - 3 * 365 * 86_400).unwrap();
    programs::write_room_files(&dir, &ca, &server, 0o600);
    let d = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let room = Proc::spawn(
        "listen",
        &mut tlschat(&["listen", "127.0.0.1:0", "--cert", &d("server.pem"), "--key", &d("server.key")]),
    );
    let listening = room.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
    let port = listening.rsplit(':').next().unwrap().to_owned();
    let mut c = Proc::spawn(
        "connect",
        &mut tlschat(&["connect", &format!("localhost:{port}"), "--ca", &d("ca.pem")]),
    );
    assert!(!c.wait().success());
    let line = single_error_line(&c);
    assert!(line.contains("expired"), "{line}");
    room.stdout.wait_for_text("handshake failed: the peer sent alert certificate_expired");
}

#[test]
fn trust_list_and_forget_report_what_there_is() {
    let home = TempDir::new("client-home");
    let mut list = client(&home, "list", &["trust", "list"]);
    assert!(list.wait().success());
    assert!(list.stdout.text().starts_with("no pinned rooms yet"), "{}", list.output());
    let mut forget = client(&home, "forget", &["trust", "forget", "localhost:8443"]);
    assert!(!forget.wait().success());
    assert!(single_error_line(&forget).contains("localhost:8443 is not pinned"));
    let mut bad = client(&home, "forget", &["trust", "forget", "no port"]);
    assert!(!bad.wait().success());
    assert!(single_error_line(&bad).contains("is not HOST:PORT"));

    // Names are compared as connect writes them: case and brackets do not matter.
    pin_other_key(&home, "localhost:8443");
    let mut forget = client(&home, "forget", &["trust", "forget", "LocalHost:8443"]);
    assert!(forget.wait().success(), "{}", forget.output());
    assert_eq!(std::fs::read_to_string(home.join("known_rooms")).unwrap(), "");
}

#[test]
fn a_damaged_or_unsafe_pins_file_stops_connect_with_the_file_and_the_fix() {
    let home = TempDir::new("client-home");
    let pins = home.join("known_rooms");
    std::fs::write(&pins, "localhost:8443 not-a-fingerprint\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut c = client(&home, "connect", &["connect", "localhost:9"]);
    assert!(!c.wait().success());
    let line = single_error_line(&c);
    assert!(line.contains(&format!("{} line 1 is not `HOST:PORT FINGERPRINT`", pins.display())), "{line}");
    // Nothing was rewritten.
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), "localhost:8443 not-a-fingerprint\n");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&pins, "").unwrap();
        std::fs::set_permissions(&pins, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut c = client(&home, "connect", &["connect", "localhost:9"]);
        assert!(!c.wait().success());
        let line = single_error_line(&c);
        assert!(line.contains(&format!("chmod 600 {}", pins.display())), "{line}");
    }

    // A directory where the file should be: named, with what to do.
    std::fs::remove_file(&pins).unwrap();
    std::fs::create_dir(&pins).unwrap();
    let mut c = client(&home, "connect", &["connect", "localhost:9"]);
    assert!(!c.wait().success());
    let line = single_error_line(&c);
    assert!(line.contains(&format!("cannot read {}", pins.display())), "{line}");
}

/// The JSON message event whose text is `text`, from a `--json` client.
fn message_event(c: &Proc, text: &str) -> serde_json::Value {
    let line = c.stdout.wait_for(text, |l| l.contains("\"type\":\"message\"") && l.contains(text));
    serde_json::from_str(&line).unwrap()
}

#[test]
fn a_member_remembers_the_keys_it_verified_across_sessions_and_trust_lists_and_verifies_them() {
    let dir = TempDir::new("contacts");
    let mut room = Room::start(&dir, "listen", &[]);
    let home = TempDir::new("client-home");
    let target = room.target();

    // First session: the host's line is signed by a key first seen now.
    let mut c = client(&home, "first", &["connect", &target, "--trust-on-first-use", "--json"]);
    c.stdout.wait_for_text("\"type\":\"welcome\"");
    room.proc.send_line("hello, first time");
    let m = message_event(&c, "hello, first time");
    assert_eq!((m["sig"].as_str(), m["author"].as_str()), (Some("valid"), Some("first-seen")), "{m}");
    let host = m["from"].as_str().unwrap().to_owned();
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());

    // The binding is in the home, learned from the signature.
    let mut list = client(&home, "trust list room", &["trust", "list", &target]);
    assert!(list.wait().success(), "{}", list.output());
    let listed = list.stdout.all();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with(&format!("{host}  ")) && listed[0].ends_with("  seen"), "{listed:?}");

    // A later session: the same key under the same name is known.
    let mut again = client(&home, "again", &["connect", &target, "--json"]);
    again.stdout.wait_for_text("\"type\":\"welcome\"");
    room.proc.send_line("hello again");
    let m = message_event(&again, "hello again");
    assert_eq!(m["author"].as_str(), Some("known"), "{m}");
    again.close_stdin();
    assert!(again.wait().success(), "{}", again.output());

    // Verified out of band: the next session says so.
    let mut verify = client(&home, "verify", &["trust", "verify", &target, &host]);
    assert!(verify.wait().success(), "{}", verify.output());
    assert!(verify.stdout.text().contains(&format!("{host}'s safety number: ")), "{}", verify.output());
    let mut third = client(&home, "third", &["connect", &target, "--json"]);
    third.stdout.wait_for_text("\"type\":\"welcome\"");
    room.proc.send_line("verified now");
    assert_eq!(message_event(&third, "verified now")["author"].as_str(), Some("verified"));
    third.close_stdin();
    assert!(third.wait().success(), "{}", third.output());

    // Accepting needs a change; forgetting makes the next key new.
    let mut accept = client(&home, "accept", &["trust", "accept", &target, &host]);
    assert!(!accept.wait().success());
    assert!(single_error_line(&accept).contains("has not changed"), "{}", accept.output());
    let mut forget = client(&home, "forget", &["trust", "forget", &target, &host]);
    assert!(forget.wait().success(), "{}", forget.output());
    let mut list = client(&home, "trust list room", &["trust", "list", &target]);
    assert!(list.wait().success());
    assert!(list.stdout.text().starts_with("no members known"), "{}", list.output());
}
