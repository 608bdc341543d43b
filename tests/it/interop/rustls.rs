//! tlschat's engine against rustls, the peer nobody here wrote.
//!
//! Each test joins a `tlschat::tls::Connection` and a `rustls::Connection`
//! in memory and [`Link::pump`]s bytes between them until both are quiet:
//! no sockets, no threads, no sleeps. rustls runs on its `ring` provider cut
//! down to one TLS 1.3 suite and X25519, and both sides read the same fixed
//! clock, so certificate validity never depends on when the tests run.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::TimeProvider;
use rustls::{HandshakeKind, RootCertStore, SupportedCipherSuite};

use tlschat::store::pki::{self, RoomCa};
use tlschat::tls::internal::cert::CertError;
use tlschat::tls::{
    self, AlertDescription, CipherSuite, ClientAuth, ClientConfig, ClientTrust, Connection, Direction,
    Ed25519Key, Error, Event, RootStore, SeededRng, ServerConfig, ServerName, ServerTrust, Summary,
};

/// When the test certificates are made (2026-11-01T00:00:00Z).
const MADE: u64 = 1_793_491_200;
/// The clock of both sides in every test: a minute after the certificates were made.
const NOW: u64 = MADE + 60;
/// More rounds than any exchange here needs; reaching it means a side is stuck.
const MAX_ROUNDS: usize = 100;
/// Largest TLSInnerPlaintext content (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 16384;

// ---------------------------------------------------------------------------
// Suites, clock and certificates

/// One TLS 1.3 suite, as each side names it.
#[derive(Debug, Clone, Copy)]
struct Suite {
    ours: CipherSuite,
    theirs: SupportedCipherSuite,
}

/// Both suites tlschat speaks, each run alone.
fn suites() -> [Suite; 2] {
    [
        Suite {
            ours: CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
            theirs: ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        },
        Suite {
            ours: CipherSuite::TLS_AES_128_GCM_SHA256,
            theirs: ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
        },
    ]
}

/// rustls' ring provider restricted to `suite` and X25519.
fn provider(suite: Suite) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![suite.theirs],
        kx_groups: vec![ring::kx_group::X25519],
        ..ring::default_provider()
    })
}

/// rustls' clock, stopped at [`NOW`].
#[derive(Debug)]
struct FixedClock;

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(NOW)))
    }
}

/// A room CA, a server certificate and a client certificate it issued.
struct Pki {
    ca: RoomCa,
    server: pki::CertifiedKey,
    client: pki::CertifiedKey,
}

/// The name of the CA most tests trust.
const CA_NAME: &str = "tlschat rustls-interop CA";

/// A CA named `ca_name`, a server certificate from it for `server_names`,
/// and a client certificate from it for "alice", all drawn from `seed`.
fn make_pki(seed: u64, ca_name: &str, server_names: &[&str]) -> Pki {
    let mut rng = SeededRng::new_for_testing_only(seed);
    let ca = RoomCa::generate(ca_name, &mut rng, MADE).expect("CA");
    let names: Vec<String> = server_names.iter().map(|n| n.to_string()).collect();
    let server =
        ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, MADE).expect("server certificate");
    let client =
        ca.issue_client(Ed25519Key::generate(&mut rng), "alice", &mut rng, MADE).expect("client certificate");
    Pki { ca, server, client }
}

/// The PKI of most tests: a server certificate for "localhost".
fn localhost_pki() -> Pki {
    make_pki(1, CA_NAME, &["localhost"])
}

fn our_roots(ca: &RoomCa) -> RootStore {
    let mut roots = RootStore::new();
    roots.add_der(&ca.cert_der).expect("our CA is a valid trust anchor");
    roots
}

fn our_cert(ck: &pki::CertifiedKey) -> tls::CertifiedKey {
    tls::CertifiedKey { chain: ck.chain_der.clone(), key: ck.key.clone() }
}

fn their_roots(ca: &RoomCa) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der.clone())).expect("rustls accepts our CA as a trust anchor");
    Arc::new(roots)
}

fn their_chain(ck: &pki::CertifiedKey) -> Vec<CertificateDer<'static>> {
    ck.chain_der.iter().map(|der| CertificateDer::from(der.clone())).collect()
}

fn their_key(ck: &pki::CertifiedKey) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(ck.key.to_pkcs8_pem().as_bytes()).expect("rustls reads our PKCS#8 PEM key")
}

// ---------------------------------------------------------------------------
// Configurations

/// A rustls client trusting `ca`, presenting `client_cert` if asked.
fn rustls_client(
    suite: Suite,
    ca: &RoomCa,
    client_cert: Option<&pki::CertifiedKey>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_details(provider(suite), Arc::new(FixedClock))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 with this provider")
        .with_root_certificates(their_roots(ca));
    let config = match client_cert {
        Some(ck) => {
            builder.with_client_auth_cert(their_chain(ck), their_key(ck)).expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A rustls server with `server_cert`, requiring a client certificate from
/// `client_ca` if one is given.
fn rustls_server(
    suite: Suite,
    server_cert: &pki::CertifiedKey,
    client_ca: Option<&RoomCa>,
) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_details(provider(suite), Arc::new(FixedClock))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 with this provider");
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(their_roots(ca), provider(suite))
                .build()
                .expect("client verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(their_chain(server_cert), their_key(server_cert))
        .expect("server certificate");
    Arc::new(config)
}

/// Our client, offering only `suite`, trusting `ca`.
fn our_client(suite: Suite, ca: &RoomCa) -> ClientConfig {
    ClientConfig { suites: vec![suite.ours], ..ClientConfig::new(ServerTrust::Roots(our_roots(ca))) }
}

/// Our server with the PKI's server certificate, accepting only `suite`.
fn our_server(suite: Suite, pki: &Pki) -> ServerConfig {
    ServerConfig { suites: vec![suite.ours], ..ServerConfig::new(our_cert(&pki.server)) }
}

// ---------------------------------------------------------------------------
// The in-memory link

/// Our engine and a rustls connection joined in memory, with everything each
/// has delivered.
struct Link {
    ours: Connection,
    theirs: rustls::Connection,
    /// Every event our engine emitted.
    our_events: Vec<Event>,
    /// The error that ended our side, if any.
    our_error: Option<Error>,
    /// The error rustls reported, if any.
    their_error: Option<rustls::Error>,
    /// Application data our engine received.
    received_by_us: Vec<u8>,
    /// The length of each piece of it, one per record.
    our_chunks: Vec<usize>,
    /// Application data rustls received.
    received_by_them: Vec<u8>,
    /// Whether rustls' reader reported a clean end (close_notify received).
    they_saw_close: bool,
    /// (content type, length) of each record our engine wrote.
    our_records: Vec<(u8, usize)>,
}

impl Link {
    fn new(ours: Connection, mut theirs: rustls::Connection) -> Self {
        // Let one `write_all` queue a whole test payload.
        theirs.set_buffer_limit(None);
        Self {
            ours,
            theirs,
            our_events: Vec::new(),
            our_error: None,
            their_error: None,
            received_by_us: Vec::new(),
            our_chunks: Vec::new(),
            received_by_them: Vec::new(),
            they_saw_close: false,
            our_records: Vec::new(),
        }
    }

    /// A rustls client connecting to "localhost" on our server.
    fn rustls_client_to_our_server(
        client: Arc<rustls::ClientConfig>,
        server: ServerConfig,
        seed: u64,
    ) -> Self {
        let ours = Connection::server(Arc::new(server), Box::new(SeededRng::new_for_testing_only(seed)));
        let theirs = rustls::ClientConnection::new(client, "localhost".try_into().expect("a DNS name"))
            .expect("rustls client starts");
        Self::new(ours, theirs.into())
    }

    /// Our client connecting to `name` on a rustls server.
    fn our_client_to_rustls_server(
        client: ClientConfig,
        name: &str,
        server: Arc<rustls::ServerConfig>,
        seed: u64,
    ) -> Self {
        let ours = Connection::client(
            Arc::new(client),
            ServerName::parse(name).expect("a server name"),
            Box::new(SeededRng::new_for_testing_only(seed)),
        )
        .expect("our client starts");
        let theirs = rustls::ServerConnection::new(server).expect("rustls server starts");
        Self::new(ours, theirs.into())
    }

    /// Moves bytes both ways until neither side has anything to send,
    /// collecting what each delivers. Panics if that takes more than
    /// [`MAX_ROUNDS`] round trips, so a livelock fails instead of hanging.
    fn pump(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;

            let mut ours_to_theirs = Vec::new();
            if self.ours.poll_transmit(&mut ours_to_theirs) {
                moved = true;
                self.note_our_records(&ours_to_theirs);
                self.feed_theirs(&ours_to_theirs);
            }
            self.drain_ours();

            let mut theirs_to_ours = Vec::new();
            while self.theirs.wants_write() {
                self.theirs.write_tls(&mut theirs_to_ours).expect("writing to a Vec cannot fail");
            }
            if !theirs_to_ours.is_empty() {
                moved = true;
                self.feed_ours(&theirs_to_ours);
            }

            if !moved {
                return;
            }
        }
        panic!("the link was still busy after {MAX_ROUNDS} rounds");
    }

    /// Hands bytes to rustls, reading its plaintext as it goes (rustls caps
    /// how much it buffers), and stops at its first error.
    fn feed_theirs(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.their_error.is_none() {
            self.theirs.read_tls(&mut bytes).expect("reading from a slice cannot fail");
            if let Err(e) = self.theirs.process_new_packets() {
                self.their_error = Some(e);
            }
            self.drain_theirs();
        }
    }

    fn drain_theirs(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.theirs.reader().read(&mut buf) {
                Ok(0) => {
                    self.they_saw_close = true;
                    return;
                }
                Ok(n) => self.received_by_them.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => panic!("rustls' reader failed: {e}"),
            }
        }
    }

    /// Hands bytes to our engine unless it has already failed.
    fn feed_ours(&mut self, bytes: &[u8]) {
        if self.our_error.is_none()
            && let Err(e) = self.ours.handle_input(bytes, NOW)
        {
            self.our_error = Some(e);
        }
        self.drain_ours();
    }

    fn drain_ours(&mut self) {
        while let Some(event) = self.ours.poll_event() {
            self.our_events.push(event);
        }
        while let Some(data) = self.ours.recv_application_data() {
            self.our_chunks.push(data.len());
            self.received_by_us.extend_from_slice(&data);
        }
    }

    /// Records the type and length of each record in `bytes` (whole records,
    /// as `poll_transmit` always yields).
    fn note_our_records(&mut self, mut bytes: &[u8]) {
        while let [typ, _, _, hi, lo, rest @ ..] = bytes {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            self.our_records.push((*typ, len));
            bytes = rest.get(len..).expect("our engine wrote a partial record");
        }
        assert!(bytes.is_empty(), "our engine wrote a partial record");
    }

    /// Runs the handshake and checks that both sides finished it cleanly;
    /// `what` names the case in failure messages.
    fn handshake(&mut self, what: &str) {
        self.pump();
        assert_eq!(self.our_error, None, "{what}: our side failed");
        assert_eq!(self.their_error, None, "{what}: rustls failed");
        assert!(!self.ours.is_handshaking(), "{what}: our side is still handshaking");
        assert!(!self.theirs.is_handshaking(), "{what}: rustls is still handshaking");
    }

    /// What our side reported in `Event::Connected`.
    fn summary(&self) -> &Summary {
        let mut connected = self.our_events.iter().filter_map(|e| match e {
            Event::Connected(summary) => Some(summary),
            _ => None,
        });
        let summary = connected.next().expect("our side reported Connected");
        assert!(connected.next().is_none(), "our side reported Connected twice");
        summary
    }

    /// Our KeyUpdated events, in order.
    fn our_key_updates(&self) -> Vec<Event> {
        self.our_events.iter().filter(|e| matches!(e, Event::KeyUpdated { .. })).cloned().collect()
    }

    /// The alerts our side sent, in order.
    fn our_alerts(&self) -> Vec<AlertDescription> {
        self.our_events
            .iter()
            .filter_map(|e| match e {
                Event::AlertSent(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    /// Sends `data` from our side to rustls and checks it arrives whole.
    fn send_ours_to_theirs(&mut self, data: &[u8]) {
        self.received_by_them.clear();
        self.ours.send(data).expect("our side sends");
        self.pump();
        assert_eq!(self.their_error, None, "rustls failed");
        assert!(
            self.received_by_them == data,
            "rustls received {} of {} bytes",
            self.received_by_them.len(),
            data.len()
        );
    }

    /// Sends `data` from rustls to our side and checks it arrives whole.
    fn send_theirs_to_ours(&mut self, data: &[u8]) {
        self.received_by_us.clear();
        self.our_chunks.clear();
        self.theirs.writer().write_all(data).expect("rustls sends");
        self.pump();
        assert_eq!(self.our_error, None, "our side failed");
        assert!(
            self.received_by_us == data,
            "we received {} of {} bytes",
            self.received_by_us.len(),
            data.len()
        );
    }
}

/// `len` recognisable bytes (a count modulo a prime, so records that were
/// swapped or repeated would not line up).
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The application data sizes every exchange test sends: nothing, one byte,
/// exactly one full record, and enough for several records.
const SIZES: [usize; 4] = [0, 1, MAX_FRAGMENT, 100_000];

fn rustls_client_link(suite: Suite, pki: &Pki) -> Link {
    Link::rustls_client_to_our_server(rustls_client(suite, &pki.ca, None), our_server(suite, pki), 10)
}

fn rustls_server_link(suite: Suite, pki: &Pki) -> Link {
    Link::our_client_to_rustls_server(
        our_client(suite, &pki.ca),
        "localhost",
        rustls_server(suite, &pki.server, None),
        20,
    )
}

/// A link of each role for each suite, handshake done: (description, link).
fn every_connected_link() -> Vec<(String, Link)> {
    let pki = localhost_pki();
    let mut links = Vec::new();
    for suite in suites() {
        for (role, mut link) in [
            ("rustls client, our server", rustls_client_link(suite, &pki)),
            ("our client, rustls server", rustls_server_link(suite, &pki)),
        ] {
            let what = format!("{role}, {}", suite.ours);
            link.handshake(&what);
            links.push((what, link));
        }
    }
    links
}

// ---------------------------------------------------------------------------
// Handshakes

#[test]
fn rustls_client_completes_a_handshake_with_our_server_in_each_suite() {
    let pki = localhost_pki();
    for suite in suites() {
        let mut link = rustls_client_link(suite, &pki);
        link.handshake(&suite.ours.to_string());
        let summary = link.summary();
        assert_eq!(summary.suite, suite.ours);
        assert_eq!(link.theirs.negotiated_cipher_suite(), Some(suite.theirs));
        assert_eq!(summary.group, tls::NamedGroup::X25519);
        assert_eq!(summary.server_name.as_deref(), Some("localhost"), "rustls sent SNI");
        assert_eq!(summary.peer, None, "no client certificate was asked for");
        assert!(!summary.retried);
        assert_eq!(link.theirs.handshake_kind(), Some(HandshakeKind::Full));
        let their_view_of_us = link.theirs.peer_certificates().expect("rustls saw our chain");
        assert_eq!(their_view_of_us[0].as_ref(), pki.server.chain_der[0].as_slice());
    }
}

#[test]
fn our_client_completes_a_handshake_with_rustls_server_in_each_suite() {
    let pki = localhost_pki();
    for suite in suites() {
        let mut link = rustls_server_link(suite, &pki);
        link.handshake(&suite.ours.to_string());
        let summary = link.summary();
        assert_eq!(summary.suite, suite.ours);
        assert_eq!(link.theirs.negotiated_cipher_suite(), Some(suite.theirs));
        assert_eq!(summary.group, tls::NamedGroup::X25519);
        assert_eq!(summary.signature_scheme, tls::SignatureScheme::ED25519);
        assert!(!summary.retried);
        assert_eq!(link.theirs.handshake_kind(), Some(HandshakeKind::Full));
        let peer = summary.peer.as_ref().expect("our client reports the server's certificate");
        assert_eq!(peer.public_key, pki.server.key.public_key());
        assert_eq!(peer.names, ["localhost"]);
    }
}

#[test]
fn our_client_retries_with_a_key_share_when_rustls_asks_for_one() {
    let pki = localhost_pki();
    for suite in suites() {
        let client = ClientConfig { key_share_in_first_hello: false, ..our_client(suite, &pki.ca) };
        let mut link = Link::our_client_to_rustls_server(
            client,
            "localhost",
            rustls_server(suite, &pki.server, None),
            30,
        );
        link.handshake(&suite.ours.to_string());
        assert!(link.summary().retried, "{}: our side saw no HelloRetryRequest", suite.ours);
        assert_eq!(link.theirs.handshake_kind(), Some(HandshakeKind::FullWithHelloRetryRequest));
        assert_eq!(link.summary().suite, suite.ours);
        link.send_ours_to_theirs(b"after a retry");
        link.send_theirs_to_ours(b"still talking");
    }
}

// ---------------------------------------------------------------------------
// Application data

#[test]
fn application_data_of_every_size_crosses_both_ways() {
    for (what, mut link) in every_connected_link() {
        for size in SIZES {
            let data = payload(size);
            link.our_records.clear();
            link.send_ours_to_theirs(&data);
            assert_eq!(
                link.our_records.len(),
                size.div_ceil(MAX_FRAGMENT),
                "{what}: records for {size} bytes"
            );
            link.send_theirs_to_ours(&data);
            assert!(
                link.our_chunks.iter().all(|&n| n <= MAX_FRAGMENT),
                "{what}: a record of {size} bytes' worth held more than 2^14"
            );
        }
    }
}

#[test]
fn large_writes_are_split_into_full_records() {
    for (what, mut link) in every_connected_link() {
        link.our_records.clear();
        link.send_ours_to_theirs(&payload(100_000));
        // 100000 = 6 * 16384 + 1696: six full records and one short one,
        // each with a content-type byte and a 16-byte tag (RFC 8446 §5.2).
        let lengths: Vec<usize> = link.our_records.iter().map(|&(_, len)| len).collect();
        assert_eq!(lengths, [16401, 16401, 16401, 16401, 16401, 16401, 1713], "{what}");
        assert!(link.our_records.iter().all(|&(typ, _)| typ == 23), "{what}: outer type is application_data");

        link.send_theirs_to_ours(&payload(100_000));
        assert!(
            link.our_chunks.len() >= 7,
            "{what}: rustls sent {} records for 100000 bytes",
            link.our_chunks.len()
        );
    }
}

// ---------------------------------------------------------------------------
// KeyUpdate

#[test]
fn our_key_update_is_answered_by_rustls_and_data_still_flows() {
    for (what, mut link) in every_connected_link() {
        link.ours.key_update(true).expect("our side sends KeyUpdate");
        link.send_ours_to_theirs(b"under our new keys");
        // rustls queues its answering KeyUpdate in front of the next record it sends.
        link.send_theirs_to_ours(b"under rustls' new keys");
        assert_eq!(
            link.our_key_updates(),
            [
                Event::KeyUpdated { direction: Direction::Sent, update_requested: true, generation: 1 },
                Event::KeyUpdated { direction: Direction::Received, update_requested: false, generation: 1 },
            ],
            "{what}"
        );
    }
}

#[test]
fn rustls_key_update_is_followed_by_our_engine_and_data_still_flows() {
    for (what, mut link) in every_connected_link() {
        for generation in 1..=2 {
            link.theirs.refresh_traffic_keys().expect("rustls sends KeyUpdate");
            link.send_theirs_to_ours(b"under rustls' new keys");
            link.send_ours_to_theirs(b"under our new keys");
            let updates = link.our_key_updates();
            assert_eq!(
                updates[updates.len() - 2..],
                [
                    Event::KeyUpdated { direction: Direction::Received, update_requested: true, generation },
                    Event::KeyUpdated { direction: Direction::Sent, update_requested: false, generation },
                ],
                "{what}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// close_notify

#[test]
fn our_close_notify_ends_rustls_reading_cleanly_and_rustls_closes_too() {
    for (what, mut link) in every_connected_link() {
        link.ours.close();
        link.pump();
        assert!(link.they_saw_close, "{what}: rustls' reader did not return Ok(0)");
        assert_eq!(link.their_error, None, "{what}");
        assert!(link.ours.send(b"too late").is_err(), "{what}: sending after close must fail");

        link.theirs.send_close_notify();
        link.pump();
        assert!(link.our_events.contains(&Event::PeerClosed), "{what}");
        assert!(link.ours.is_closed(), "{what}");
        assert_eq!(link.our_error, None, "{what}");
        assert_eq!(
            link.our_alerts(),
            [AlertDescription::CLOSE_NOTIFY],
            "{what}: one close_notify, no other alert"
        );
    }
}

#[test]
fn rustls_close_notify_is_answered_with_ours() {
    for (what, mut link) in every_connected_link() {
        link.send_theirs_to_ours(b"last words");
        link.theirs.send_close_notify();
        link.pump();
        assert!(link.our_events.contains(&Event::PeerClosed), "{what}");
        assert!(link.ours.is_closed(), "{what}");
        assert_eq!(link.our_error, None, "{what}");
        assert_eq!(
            link.our_alerts(),
            [AlertDescription::CLOSE_NOTIFY],
            "{what}: we answer close_notify (RFC 8446 §6.1)"
        );
        assert!(link.they_saw_close, "{what}: rustls' reader did not return Ok(0)");
        assert_eq!(link.their_error, None, "{what}");
    }
}

// ---------------------------------------------------------------------------
// Mutual TLS

#[test]
fn rustls_client_certificate_is_verified_by_our_server() {
    let pki = localhost_pki();
    for suite in suites() {
        let server = ServerConfig {
            client_auth: ClientAuth::Required(ClientTrust::Roots(our_roots(&pki.ca))),
            ..our_server(suite, &pki)
        };
        let mut link =
            Link::rustls_client_to_our_server(rustls_client(suite, &pki.ca, Some(&pki.client)), server, 40);
        link.handshake(&suite.ours.to_string());
        let peer = link.summary().peer.as_ref().expect("our server reports the client's certificate");
        assert_eq!(peer.public_key, pki.client.key.public_key(), "{}", suite.ours);
        assert!(peer.subject.contains("alice"), "{}: subject {}", suite.ours, peer.subject);
        link.send_theirs_to_ours(b"hello from alice");
        link.send_ours_to_theirs(b"hello alice");
    }
}

#[test]
fn our_client_certificate_is_verified_by_rustls_server() {
    let pki = localhost_pki();
    for suite in suites() {
        let client = ClientConfig { client_cert: Some(our_cert(&pki.client)), ..our_client(suite, &pki.ca) };
        let server = rustls_server(suite, &pki.server, Some(&pki.ca));
        let mut link = Link::our_client_to_rustls_server(client, "localhost", server, 50);
        link.handshake(&suite.ours.to_string());
        let their_view_of_us = link.theirs.peer_certificates().expect("rustls verified a client certificate");
        assert_eq!(their_view_of_us[0].as_ref(), pki.client.chain_der[0].as_slice(), "{}", suite.ours);
        let peer = link.summary().peer.as_ref().expect("our client reports the server's certificate");
        assert_eq!(peer.public_key, pki.server.key.public_key(), "{}", suite.ours);
        link.send_ours_to_theirs(b"hello from alice");
        link.send_theirs_to_ours(b"hello alice");
    }
}

#[test]
fn our_server_refuses_a_rustls_client_without_a_certificate() {
    let pki = localhost_pki();
    let suite = suites()[0];
    let server = ServerConfig {
        client_auth: ClientAuth::Required(ClientTrust::Roots(our_roots(&pki.ca))),
        ..our_server(suite, &pki)
    };
    let mut link = Link::rustls_client_to_our_server(rustls_client(suite, &pki.ca, None), server, 60);
    link.pump();
    assert_eq!(link.our_error, Some(Error::CertificateRequired));
    assert_eq!(link.our_alerts(), [AlertDescription::CERTIFICATE_REQUIRED]);
    assert_eq!(
        link.their_error,
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired))
    );
}

#[test]
fn rustls_server_refuses_our_client_without_a_certificate() {
    let pki = localhost_pki();
    let suite = suites()[0];
    let server = rustls_server(suite, &pki.server, Some(&pki.ca));
    let mut link = Link::our_client_to_rustls_server(our_client(suite, &pki.ca), "localhost", server, 70);
    link.pump();
    assert_eq!(link.their_error, Some(rustls::Error::NoCertificatesPresented));
    assert_eq!(link.our_error, Some(Error::AlertReceived(AlertDescription::CERTIFICATE_REQUIRED)));
}

// ---------------------------------------------------------------------------
// Refusals

#[test]
fn rustls_client_trusting_another_ca_is_refused_and_our_server_hears_why() {
    let stranger = make_pki(2, "some other CA", &["localhost"]);
    let ours = localhost_pki();
    for suite in suites() {
        let mut link = Link::rustls_client_to_our_server(
            rustls_client(suite, &stranger.ca, None),
            our_server(suite, &ours),
            80,
        );
        link.pump();
        assert_eq!(
            link.their_error,
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
            "{}",
            suite.ours
        );
        assert_eq!(
            link.our_error,
            Some(Error::AlertReceived(AlertDescription::UNKNOWN_CA)),
            "{}",
            suite.ours
        );
        assert!(link.ours.is_closed(), "{}", suite.ours);
    }
}

#[test]
fn our_client_refuses_a_rustls_server_certified_for_another_name_and_rustls_hears_why() {
    let pki = make_pki(3, CA_NAME, &["elsewhere.example"]);
    for suite in suites() {
        let mut link = Link::our_client_to_rustls_server(
            our_client(suite, &pki.ca),
            "localhost",
            rustls_server(suite, &pki.server, None),
            90,
        );
        link.pump();
        assert!(
            matches!(&link.our_error, Some(Error::Certificate(CertError::NameMismatch { expected, .. })) if expected == "localhost"),
            "{}: {:?}",
            suite.ours,
            link.our_error
        );
        assert_eq!(link.our_alerts(), [AlertDescription::BAD_CERTIFICATE], "{}", suite.ours);
        assert_eq!(
            link.their_error,
            Some(rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate)),
            "{}",
            suite.ours
        );
    }
}

#[test]
fn rustls_client_refuses_our_server_certified_by_an_impostor_ca_of_the_same_name() {
    // Same CA name, different key: rustls finds the issuer by name, and the
    // signature on our certificate does not verify under the key it trusts.
    let impostor = make_pki(4, CA_NAME, &["localhost"]);
    let trusted = localhost_pki();
    let suite = suites()[0];
    let mut link = Link::rustls_client_to_our_server(
        rustls_client(suite, &trusted.ca, None),
        our_server(suite, &impostor),
        100,
    );
    link.pump();
    assert_eq!(
        link.their_error,
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
    );
    assert_eq!(link.our_error, Some(Error::AlertReceived(AlertDescription::DECRYPT_ERROR)));
}

#[test]
fn our_client_refuses_a_rustls_server_from_an_unknown_ca_and_rustls_hears_why() {
    let stranger = make_pki(5, "some other CA", &["localhost"]);
    let trusted = localhost_pki();
    let suite = suites()[1];
    let mut link = Link::our_client_to_rustls_server(
        our_client(suite, &trusted.ca),
        "localhost",
        rustls_server(suite, &stranger.server, None),
        110,
    );
    link.pump();
    assert!(
        matches!(&link.our_error, Some(Error::Certificate(CertError::UnknownIssuer { .. }))),
        "{:?}",
        link.our_error
    );
    assert_eq!(link.our_alerts(), [AlertDescription::UNKNOWN_CA]);
    assert_eq!(link.their_error, Some(rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)));
}
