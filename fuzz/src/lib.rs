//! Fixtures shared by the fuzz targets and the seed generator
//! (`src/bin/seeds.rs`): the same seeded PKI, configurations and engines on
//! both sides, so that flights recorded from real sessions still decrypt
//! and verify when a target replays them. Nothing here draws OS randomness
//! or reads the clock.

use std::sync::{Arc, OnceLock};

use tlschat::store::pki;
use tlschat::tls::internal::messages::ContentType;
use tlschat::tls::{
    self, ALPN_HTTP11, ALPN_TLSCHAT, CertifiedKey, ClientAuth, ClientConfig, ClientTrust, Connection,
    RootStore, SeededRng, ServerConfig, ServerName, ServerTrust,
};

/// When the fixture certificates are made (2026-11-01T00:00:00Z).
pub const MADE: u64 = 1_793_491_200;
/// The clock every engine is given: a day later.
pub const NOW: u64 = MADE + 86_400;
/// The seed of the PKI; clients draw from `SEED`, servers from `SEED + 1`.
pub const SEED: u64 = 9;
/// The room every chat fixture is in.
pub const ROOM: [u8; 32] = [0x42; 32];

/// The room CA, the server's certificate and a client certificate from the
/// same CA, and the roots that trust it.
pub struct Pki {
    pub ca_der: Vec<u8>,
    pub server: CertifiedKey,
    pub client: CertifiedKey,
    pub roots: RootStore,
}

/// The fixture PKI, made once per process.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (ca, server) = pki::test_room_for_testing_only(SEED, MADE).expect("test PKI");
        let mut rng = SeededRng::new_for_testing_only(SEED + 2);
        let key = tls::Ed25519Key::generate(&mut rng);
        let client = ca.issue_client(key, "alice", &mut rng, MADE).expect("client certificate");
        let mut roots = RootStore::new();
        roots.add_der(&ca.cert_der).expect("CA certificate");
        let to_tls =
            |ck: &pki::CertifiedKey| CertifiedKey { chain: ck.chain_der.clone(), key: ck.key.clone() };
        Pki { ca_der: ca.cert_der.clone(), server: to_tls(&server), client: to_tls(&client), roots }
    })
}

/// The server: both suites, tlschat's and HTTP's ALPN, and an optional
/// client certificate checked against the room CA. Steps on, so the
/// fuzzed input also runs the code that describes each message.
pub fn server_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let pki = pki();
            let mut config = ServerConfig::new(pki.server.clone());
            config.alpn = vec![ALPN_TLSCHAT.to_vec(), ALPN_HTTP11.to_vec()];
            config.client_auth = ClientAuth::Optional(ClientTrust::Roots(pki.roots.clone()));
            Arc::new(config)
        })
        .clone()
}

/// A client of the fixture server; `with_cert` answers a CertificateRequest.
pub fn client_config(with_cert: bool) -> Arc<ClientConfig> {
    let pki = pki();
    let mut config = ClientConfig::new(ServerTrust::Roots(pki.roots.clone()));
    config.alpn = vec![ALPN_TLSCHAT.to_vec()];
    if with_cert {
        config.client_cert = Some(pki.client.clone());
    }
    Arc::new(config)
}

/// A fresh server engine, seeded.
pub fn server() -> Connection {
    Connection::server(server_config(), Box::new(SeededRng::new_for_testing_only(SEED + 1)))
}

/// A client engine for localhost, seeded; its ClientHello is waiting in
/// `poll_transmit`.
pub fn client(with_cert: bool) -> Connection {
    Connection::client(
        client_config(with_cert),
        ServerName::parse("localhost").expect("a valid name"),
        Box::new(SeededRng::new_for_testing_only(SEED)),
    )
    .expect("the client starts")
}

/// The ClientHello flight of [`client`] (the same bytes every time).
pub fn client_hello() -> &'static [u8] {
    static HELLO: OnceLock<Vec<u8>> = OnceLock::new();
    HELLO.get_or_init(|| {
        let mut c = client(false);
        let mut out = Vec::new();
        assert!(c.poll_transmit(&mut out), "a client speaks first");
        out
    })
}

/// Takes everything an engine has to say and hand over, as a driver would,
/// so that those paths run on fuzzed input too.
pub fn drain(conn: &mut Connection) {
    let mut out = Vec::new();
    let _ = conn.poll_transmit(&mut out);
    while conn.poll_event().is_some() {}
    while conn.recv_application_data().is_some() {}
    let _ = conn.is_closed();
    let _ = conn.waiting_for();
}

/// Handshake messages wrapped as plaintext handshake records, at most
/// 2^14 bytes each (RFC 8446 §5.1): how the first messages travel.
pub fn plaintext_handshake_records(messages: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.len() + 5 * (messages.len() / 16384 + 1));
    for chunk in messages.chunks(16384) {
        out.extend_from_slice(&[ContentType::HANDSHAKE.0, 3, 3]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A certificate chain as in a TLS Certificate message's list, without the
/// per-entry extensions: each certificate a 3-byte length and its DER.
/// Whatever does not fill a whole entry is the last certificate.
pub fn split_chain(data: &[u8]) -> Vec<Vec<u8>> {
    let mut chain = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && chain.len() < 8 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if len > rest.len() - 3 {
            break;
        }
        chain.push(rest[3..3 + len].to_vec());
        rest = &rest[3 + len..];
    }
    if !rest.is_empty() {
        chain.push(rest.to_vec());
    }
    chain
}

/// The inverse of [`split_chain`], for seeds.
pub fn join_chain(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for der in chain {
        let len = der.len();
        out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.extend_from_slice(der);
    }
    out
}

/// The member whose view the chat target takes: "alice" of [`ROOM`], with
/// the same key in the seed generator and in the target.
pub fn member() -> tlschat::chat::Member {
    let key = tls::Ed25519Key::generate(&mut SeededRng::new_for_testing_only(SEED + 3));
    tlschat::chat::Member::new(ROOM, key, &mut SeededRng::new_for_testing_only(SEED + 4))
}
