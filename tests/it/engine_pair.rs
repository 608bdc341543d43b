//! In-memory engine pairs: a client and a server [`Connection`] pumped
//! against each other with no sockets, a seeded RNG and a fixed clock, plus a
//! tamper hook on every flight and a key log that lets a test act as a
//! man in the middle who knows the keys.
use std::sync::{Arc, Mutex};

use tlschat::store::pki::{self, RoomCa};
use tlschat::tls::internal::key_schedule::{self, TrafficSecret};
use tlschat::tls::internal::messages::ContentType;
use tlschat::tls::internal::record::{self, HEADER_LEN, Protection};
use tlschat::tls::{
    self, CertifiedKey, CipherSuite, ClientConfig, Connection, Error, Event, KeyLog, RootStore, SeededRng,
    ServerConfig, ServerName, ServerTrust, Suite, internal::crypto::Secret,
};

/// When the test certificates are made (2026-11-01T00:00:00Z).
pub const MADE: u64 = 1_793_491_200;
/// The clock of every test: a day after the certificates were made.
pub const NOW: u64 = MADE + 86_400;

/// A room CA and a server certificate for localhost from it.
pub struct Pki {
    pub ca: RoomCa,
    pub server: CertifiedKey,
    pub roots: RootStore,
}

pub fn to_tls(ck: &pki::CertifiedKey) -> CertifiedKey {
    CertifiedKey { chain: ck.chain_der.clone(), key: ck.key.clone() }
}

/// The test PKI for `seed`.
pub fn pki(seed: u64) -> Pki {
    let (ca, server) = pki::test_room_for_testing_only(seed, MADE).expect("test PKI");
    let mut roots = RootStore::new();
    roots.add_der(&ca.cert_der).expect("CA certificate");
    Pki { server: to_tls(&server), ca, roots }
}

pub fn client_config(pki: &Pki) -> ClientConfig {
    ClientConfig::new(ServerTrust::Roots(pki.roots.clone()))
}

pub fn server_config(pki: &Pki) -> ServerConfig {
    ServerConfig::new(pki.server.clone())
}

/// A key log that keeps every line, so a test can decrypt what it sees.
#[derive(Default)]
pub struct CapturedKeys(Mutex<Vec<(String, Vec<u8>)>>);

impl KeyLog for CapturedKeys {
    fn log(&self, label: &str, _client_random: &[u8; 32], secret: &[u8]) {
        self.0.lock().unwrap().push((label.to_string(), secret.to_vec()));
    }
}

impl CapturedKeys {
    pub fn get(&self, label: &str) -> TrafficSecret {
        let lines = self.0.lock().unwrap();
        let (_, s) = lines.iter().find(|(l, _)| l == label).unwrap_or_else(|| panic!("no {label} logged"));
        Secret::new(s.as_slice().try_into().unwrap())
    }
}

/// Which way bytes are travelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    ToServer,
    ToClient,
}

/// A client and a server engine and everything they have said.
pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    pub client_error: Option<Error>,
    pub server_error: Option<Error>,
    pub client_data: Vec<Vec<u8>>,
    pub server_data: Vec<Vec<u8>>,
    /// Every flight as it was sent, before any tampering.
    pub flights: Vec<(Way, Vec<u8>)>,
    pub now: u64,
}

impl Pair {
    pub fn new(client: ClientConfig, server: ServerConfig, seed: u64) -> Self {
        Self::with_name(client, server, seed, "localhost")
    }

    pub fn with_name(client: ClientConfig, server: ServerConfig, seed: u64, name: &str) -> Self {
        let client = Connection::client(
            Arc::new(client),
            ServerName::parse(name).unwrap(),
            Box::new(SeededRng::new_for_testing_only(seed)),
        )
        .expect("client starts");
        let server =
            Connection::server(Arc::new(server), Box::new(SeededRng::new_for_testing_only(seed + 1)));
        Self {
            client,
            server,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_error: None,
            server_error: None,
            client_data: Vec::new(),
            server_data: Vec::new(),
            flights: Vec::new(),
            now: NOW,
        }
    }

    /// Pumps until neither side has anything to send, passing each flight
    /// through `tamper` on its way.
    pub fn drive_with(&mut self, mut tamper: impl FnMut(Way, &mut Vec<u8>)) {
        for _ in 0..100 {
            let mut moved = false;
            let mut buf = Vec::new();
            if self.client.poll_transmit(&mut buf) {
                moved = true;
                self.flights.push((Way::ToServer, buf.clone()));
                tamper(Way::ToServer, &mut buf);
                if self.server_error.is_none()
                    && let Err(e) = self.server.handle_input(&buf, self.now)
                {
                    self.server_error = Some(e);
                }
            }
            let mut buf = Vec::new();
            if self.server.poll_transmit(&mut buf) {
                moved = true;
                self.flights.push((Way::ToClient, buf.clone()));
                tamper(Way::ToClient, &mut buf);
                if self.client_error.is_none()
                    && let Err(e) = self.client.handle_input(&buf, self.now)
                {
                    self.client_error = Some(e);
                }
            }
            self.collect();
            if !moved {
                return;
            }
        }
        panic!("the pair did not settle in 100 rounds");
    }

    pub fn drive(&mut self) {
        self.drive_with(|_, _| {});
    }

    fn collect(&mut self) {
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        while let Some(d) = self.client.recv_application_data() {
            self.client_data.push(d);
        }
        while let Some(d) = self.server.recv_application_data() {
            self.server_data.push(d);
        }
    }

    pub fn connected(events: &[Event]) -> Option<&tls::Summary> {
        events.iter().find_map(|e| match e {
            Event::Connected(s) => Some(s),
            _ => None,
        })
    }

    /// Names of the handshake messages one side reported, with arrows.
    pub fn message_names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Handshake(tls::HandshakeStep {
                    step: tls::Step::Message { direction, name, .. },
                    ..
                }) => Some(format!("{} {name}", direction.arrow())),
                _ => None,
            })
            .collect()
    }

    pub fn alerts_sent(events: &[Event]) -> Vec<tls::AlertDescription> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::AlertSent(a) => Some(*a),
                _ => None,
            })
            .collect()
    }

    /// Asserts a completed handshake on both sides.
    pub fn assert_connected(&self) {
        assert_eq!(self.client_error, None, "client failed");
        assert_eq!(self.server_error, None, "server failed");
        assert!(Self::connected(&self.client_events).is_some(), "client did not connect");
        assert!(Self::connected(&self.server_events).is_some(), "server did not connect");
    }
}

/// Splits bytes into records: (header, body).
pub fn records(bytes: &[u8]) -> Vec<([u8; HEADER_LEN], Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let header: [u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().unwrap();
        out.push((header, rest[HEADER_LEN..HEADER_LEN + len].to_vec()));
        rest = &rest[HEADER_LEN + len..];
    }
    assert!(rest.is_empty(), "a partial record in a flight");
    out
}

pub fn join(records: &[([u8; HEADER_LEN], Vec<u8>)]) -> Vec<u8> {
    records.iter().flat_map(|(h, b)| h.iter().chain(b.iter()).copied()).collect()
}

/// Decrypts the protected handshake records of a flight with `secret`,
/// lets `edit` change the handshake bytes, and re-encrypts them as one
/// record with the same keys and sequence numbers, as an attacker who knew
/// the keys could. Unprotected records before them pass unchanged.
pub fn rewrite_protected_handshake(
    flight: &mut Vec<u8>,
    suite: CipherSuite,
    secret: &TrafficSecret,
    edit: impl FnOnce(&mut Vec<u8>),
) {
    let (key, iv) =
        key_schedule::traffic_keys(Suite::from_code(suite).expect("a suite tlschat speaks"), secret);
    let mut opener = Protection::new(key, iv);
    let mut plain = Vec::new();
    let mut out = Vec::new();
    for (header, mut body) in records(flight) {
        if header[0] != ContentType::APPLICATION_DATA.0 {
            out.extend_from_slice(&header);
            out.extend_from_slice(&body);
            continue;
        }
        let (typ, len) = opener.open(&header, &mut body).expect("our own keys open our own records");
        assert_eq!(typ, ContentType::HANDSHAKE);
        plain.extend_from_slice(&body[..len]);
    }
    edit(&mut plain);
    let (key, iv) =
        key_schedule::traffic_keys(Suite::from_code(suite).expect("a suite tlschat speaks"), secret);
    let mut sealer = Protection::new(key, iv);
    for chunk in plain.chunks(record::MAX_PLAINTEXT) {
        sealer.seal(ContentType::HANDSHAKE, chunk, &mut out).unwrap();
    }
    *flight = out;
}

/// Splits concatenated handshake messages: (type, whole message).
pub fn handshake_messages(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        out.push((rest[0], rest[..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    out
}

/// Seals one record by hand, as an attacker holding `secret` could, with no
/// size limit: `seq` is the record's sequence number under that secret.
pub fn seal_by_hand(
    suite: CipherSuite,
    secret: &TrafficSecret,
    seq: u64,
    typ: ContentType,
    payload: &[u8],
) -> Vec<u8> {
    let mut inner = payload.to_vec();
    inner.push(typ.0);
    seal_inner_by_hand(suite, secret, seq, &inner)
}

/// Seals `inner` as the whole TLSInnerPlaintext of one record (content,
/// content type and padding as the caller wrote them, or none of them), as
/// an attacker holding `secret` could: `seq` is the record's sequence number.
pub fn seal_inner_by_hand(suite: CipherSuite, secret: &TrafficSecret, seq: u64, inner: &[u8]) -> Vec<u8> {
    let (key, iv) =
        key_schedule::traffic_keys(Suite::from_code(suite).expect("a suite tlschat speaks"), secret);
    let mut nonce = *iv.expose();
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let len = inner.len() + 16;
    let mut out = vec![23, 3, 3];
    out.extend_from_slice(&(len as u16).to_be_bytes());
    let header: [u8; 5] = out[..5].try_into().unwrap();
    out.extend_from_slice(inner);
    let tag = key.seal(&nonce, &header, &mut out[5..]);
    out.extend_from_slice(&tag);
    out
}

/// A tamper hook that changes only the first flight going `way` and lets
/// everything after it (the alert that answers, say) through untouched.
pub fn once(way: Way, edit: impl FnOnce(&mut Vec<u8>)) -> impl FnMut(Way, &mut Vec<u8>) {
    let mut edit = Some(edit);
    move |w, flight| {
        if w == way
            && let Some(edit) = edit.take()
        {
            edit(flight);
        }
    }
}
