//! The server handshake (RFC 8446 §4.1–§4.4, §2 figures 1 and 2).
//!
//! ```text
//! ExpectClientHello ─(no x25519 share: HelloRetryRequest)─▶ ExpectClientHello
//!        │ ClientHello ─▶ ServerHello, {EncryptedExtensions, [CertificateRequest],
//!        ▼                               Certificate, CertificateVerify, Finished}
//! [ExpectClientCertificate ─▶ ExpectClientCertificateVerify] ─▶ ExpectClientFinished ─▶ traffic
//! ```

use std::sync::Arc;

use super::cert::{self, CertSummary};
use super::codec::CodeSet;
use super::conn::Connection;
use super::crypto::Rng;
use super::crypto::X25519Secret;
use super::describe;
use super::error::Error;
use super::events::{Event, Summary};
use super::handshake::{self, expect, received};
use super::key_schedule::{SecretKind, TrafficSecret};
use super::messages::{
    Certificate, CertificateRequest, ClientHello, EncryptedExtensions, HRR_RANDOM, HandshakeType,
    KeyShareEntry, NamedGroup, ServerHello, SignatureScheme, TLS12, TLS13,
};
use super::state::{AppSecrets, Core, MAX_EARLY_DATA_SKIPPED, Message, Next, Side, SkipEarlyData, State};
use super::suites::Suite;
use super::{ClientAuth, ClientTrust, ServerConfig};

/// `ProtocolVersion` of SSL 3.0: no hello may carry it or anything older (§D.5).
const SSL3: u16 = 0x0300;

impl Connection {
    /// A server connection waiting for a ClientHello.
    pub fn server(config: Arc<ServerConfig>, rng: Box<dyn Rng>) -> Self {
        let core = Core::new(Side::Server, rng, config.keylog.clone(), config.emit_steps, config.reveal);
        Self::handshaking(core, Box::new(ExpectClientHello { config, retry: None }))
    }
}

/// What a HelloRetryRequest fixed, which the second ClientHello must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Retry {
    suite: Suite,
    session_id: Vec<u8>,
}

/// What the server chose for a ClientHello: everything its answer depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chosen<'a> {
    suite: Suite,
    group: NamedGroup,
    /// The scheme of our CertificateVerify.
    scheme: SignatureScheme,
    alpn: Option<Vec<u8>>,
    /// The client's key share for `group`, or none: a HelloRetryRequest
    /// asks for one.
    share: Option<&'a [u8]>,
}

/// Chooses the server's parameters for `ch`, or refuses it: the rules of
/// §4.1.1–§4.1.4 and §4.2 with no side effect, so that they can be tested
/// on their own. `retry` is what our HelloRetryRequest fixed, if `ch` is
/// the second hello.
fn negotiate<'a>(
    ch: &'a ClientHello,
    config: &ServerConfig,
    retry: Option<&Retry>,
) -> Result<Chosen<'a>, Error> {
    // §D.5: "Any endpoint receiving a Hello message with
    // ClientHello.legacy_version [...] set to 0x0300 MUST abort the
    // handshake with a "protocol_version" alert", and anything older is
    // not even SSL 3.0: refused before supported_versions is looked at.
    if ch.legacy_version <= SSL3 {
        return Err(Error::ProtocolVersion);
    }
    if !ch.supported_versions.as_ref().is_some_and(|v| v.contains(&TLS13)) {
        return Err(Error::ProtocolVersion);
    }
    if ch.compression_methods != [0] {
        return Err(Error::IllegalParameter("legacy_compression_methods must be exactly null"));
    }
    // §4.2.10: "A client MUST NOT include the "early_data" extension in
    // its followup ClientHello".
    if retry.is_some() && ch.offered_early_data {
        return Err(Error::IllegalParameter("early_data in the ClientHello after a HelloRetryRequest"));
    }
    if let Some(retry) = retry
        && (ch.session_id != retry.session_id || !ch.cipher_suites.contains(&retry.suite.code()))
    {
        return Err(Error::IllegalParameter("the second ClientHello differs from the first"));
    }
    // The server's preference decides (§4.1.1); unknown suites such as
    // 0x00ff are skipped. After a HelloRetryRequest the suite is the one
    // it named, which the second hello still offers (checked above): the
    // ServerHello must agree with it (§4.1.4), even if the client now
    // offers a suite we prefer.
    let suite = match retry {
        Some(retry) => retry.suite,
        // Configured codes the engine does not implement are skipped too.
        None => config
            .suites
            .iter()
            .filter_map(|&code| Suite::from_code(code))
            .find(|s| ch.cipher_suites.contains(&s.code()))
            .ok_or(Error::HandshakeFailure("no cipher suite in common"))?,
    };
    let schemes = ch.signature_algorithms.as_ref().ok_or(Error::MissingExtension("signature_algorithms"))?;
    if !schemes.contains(&SignatureScheme::ED25519) {
        return Err(Error::HandshakeFailure("the client does not accept Ed25519 signatures"));
    }
    // §9.2: without a PSK, supported_groups and key_share are both required.
    let groups = ch.supported_groups.as_ref().ok_or(Error::MissingExtension("supported_groups"))?;
    let shares = ch.key_shares.as_ref().ok_or(Error::MissingExtension("key_share"))?;
    let mut offered = CodeSet::new();
    groups.iter().for_each(|g| {
        offered.insert(g.0);
    });
    if shares.iter().any(|s| !offered.contains(s.group.0)) {
        return Err(Error::IllegalParameter("a key share for a group not in supported_groups"));
    }
    if !groups.contains(&NamedGroup::X25519) {
        return Err(Error::HandshakeFailure("no key exchange group in common (tlschat speaks x25519)"));
    }
    let alpn = choose_alpn(config, ch.alpn.as_deref())?;
    let share = shares.iter().find(|s| s.group == NamedGroup::X25519).map(|s| s.key_exchange.as_slice());
    if share.is_none() && retry.is_some() {
        return Err(Error::IllegalParameter("the second ClientHello still has no x25519 key share"));
    }
    Ok(Chosen { suite, group: NamedGroup::X25519, scheme: SignatureScheme::ED25519, alpn, share })
}

struct ExpectClientHello {
    config: Arc<ServerConfig>,
    retry: Option<Retry>,
}

impl State for ExpectClientHello {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::CLIENT_HELLO, self.waiting_for())?;
        let ch = ClientHello::decode(msg.body)?;
        let chosen = negotiate(&ch, &self.config, self.retry.as_ref())?;
        if self.retry.is_some() {
            // The second hello ends the skipping of early data.
            core.skip_early_data = SkipEarlyData::No;
        } else {
            core.client_random = ch.random;
        }
        received(core, &msg, false, || describe::client_hello(&ch));
        core.ccs_allowed = true;
        let Some(share) = chosen.share else { return (*self).retry(core, &ch, &chosen) };
        let sent = send_flight(core, &self.config, &ch, &chosen, share)?;
        let n = Negotiated {
            config: self.config,
            client_hs: sent.client_hs,
            app: sent.app,
            alpn: chosen.alpn,
            group: chosen.group,
            scheme: chosen.scheme,
            retried: self.retry.is_some(),
            server_name: ch.server_name,
        };
        Ok(Next::State(if sent.requested_certificate {
            Box::new(ExpectClientCertificate(n))
        } else {
            Box::new(ExpectClientFinished { n, peer: None })
        }))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for ClientHello"
    }
}

/// What writing the server's flight leaves for the states after it.
struct FlightSent {
    /// The client's handshake traffic secret, which keys its Finished.
    client_hs: TrafficSecret,
    app: Box<AppSecrets>,
    /// Whether a CertificateRequest went out.
    requested_certificate: bool,
}

/// Writes the server's flight answering `ch` (§4.1.3, §4.3, §4.4):
/// ServerHello, then protected with the handshake keys EncryptedExtensions,
/// [CertificateRequest], Certificate, CertificateVerify and Finished; and
/// derives the application secrets, writing with ours from now on.
fn send_flight(
    core: &mut Core,
    config: &ServerConfig,
    ch: &ClientHello,
    chosen: &Chosen<'_>,
    share: &[u8],
) -> Result<FlightSent, Error> {
    let key = X25519Secret::generate(core.rng.as_mut());
    // Refuse a bad key share before anything is written.
    let shared = handshake::agree(core, &key, share)?;
    let mut random = [0u8; 32];
    core.rng.fill(&mut random);
    let sh = ServerHello {
        key_share: Some(KeyShareEntry { group: chosen.group, key_exchange: key.public_key().to_vec() }),
        ..answer(ch, random, chosen.suite)
    };
    send_server_hello(core, ch, &sh)?;
    let secrets = handshake::derive_handshake_secrets(core, &shared);
    core.set_write_key(chosen.suite, SecretKind::ServerHandshakeTraffic, &secrets.server);
    core.set_read_key(chosen.suite, SecretKind::ClientHandshakeTraffic, &secrets.client)?;
    if ch.offered_early_data {
        // Declined, by sending no early_data in EncryptedExtensions: the
        // client's 0-RTT records, which do not open with its handshake
        // key, are skipped until its second flight (§4.2.10).
        core.skip_early_data = SkipEarlyData::Undecryptable(MAX_EARLY_DATA_SKIPPED);
    }

    let mut flight = Vec::with_capacity(2048);
    let ee = EncryptedExtensions { alpn: chosen.alpn.clone(), ..EncryptedExtensions::default() };
    handshake::sent(core, &mut flight, true, |out| ee.encode(out), || describe::encrypted_extensions(&ee))?;
    let requested = !matches!(config.client_auth, ClientAuth::None);
    if requested {
        let cr =
            CertificateRequest { context: Vec::new(), signature_algorithms: vec![SignatureScheme::ED25519] };
        handshake::sent(
            core,
            &mut flight,
            true,
            |out| cr.encode(out),
            || describe::certificate_request(&cr),
        )?;
        core.expected_messages += 3;
    }
    handshake::send_certificate(core, &mut flight, &[], Some((&config.cert.chain, &config.cert.key)), true)?;
    handshake::send_finished(core, &mut flight, &secrets.server)?;
    core.write_handshake(&flight)?;

    let client_hs = secrets.client.clone();
    let traffic = secrets.into_traffic(&core.transcript.current());
    core.secret_step(SecretKind::MasterSecret);
    core.app_secrets_derived(&traffic);
    core.set_write_key(chosen.suite, SecretKind::ServerApplicationTraffic(0), &traffic.server);
    let app = AppSecrets::new(Side::Server, chosen.suite, traffic);

    Ok(FlightSent { client_hs, app, requested_certificate: requested })
}

impl ExpectClientHello {
    /// Asks for a key share of the chosen group with a HelloRetryRequest (§4.1.4).
    fn retry(self, core: &mut Core, ch: &ClientHello, chosen: &Chosen<'_>) -> Result<Next, Error> {
        handshake::replace_client_hello_with_its_hash(core);
        if ch.offered_early_data {
            // §4.2.10: after a HelloRetryRequest the server "ignores early
            // data by skipping all records with an external content type of
            // "application_data"" until the second ClientHello.
            core.skip_early_data = SkipEarlyData::AllProtected(MAX_EARLY_DATA_SKIPPED);
        }
        let hrr = ServerHello { hrr_group: Some(chosen.group), ..answer(ch, HRR_RANDOM, chosen.suite) };
        send_server_hello(core, ch, &hrr)?;
        core.expected_messages += 2;
        Ok(Next::State(Box::new(ExpectClientHello {
            config: self.config,
            retry: Some(Retry { suite: chosen.suite, session_id: ch.session_id.clone() }),
        })))
    }
}

/// The fields every ServerHello and HelloRetryRequest answering `ch` share.
fn answer(ch: &ClientHello, random: [u8; 32], suite: Suite) -> ServerHello {
    ServerHello {
        legacy_version: TLS12,
        random,
        // §D.4: echoed, whatever the client sent.
        session_id: ch.session_id.clone(),
        cipher_suite: suite.code(),
        compression_method: 0,
        selected_version: Some(TLS13),
        ..ServerHello::default()
    }
}

/// Writes a ServerHello or HelloRetryRequest, then, in middlebox
/// compatibility mode, the dummy ChangeCipherSpec that follows the server's
/// first handshake message (§D.4).
fn send_server_hello(core: &mut Core, ch: &ClientHello, sh: &ServerHello) -> Result<(), Error> {
    let mut hello = Vec::with_capacity(128);
    handshake::sent(core, &mut hello, false, |out| sh.encode(out), || describe::server_hello(sh))?;
    core.write_handshake(&hello)?;
    if !ch.session_id.is_empty() {
        core.write_ccs();
    }
    Ok(())
}

/// Picks the ALPN protocol: ours in our order of preference, among the
/// client's. A client that offers ALPN but nothing we speak is refused
/// (RFC 7301 §3.2); a server configured without ALPN ignores the extension.
fn choose_alpn(config: &ServerConfig, offered: Option<&[Vec<u8>]>) -> Result<Option<Vec<u8>>, Error> {
    match offered {
        Some(offered) if !config.alpn.is_empty() => config
            .alpn
            .iter()
            .find(|p| offered.contains(p))
            .cloned()
            .map(Some)
            .ok_or(Error::NoApplicationProtocol),
        _ => Ok(None),
    }
}

/// What the handshake carries from the server's flight to the client's Finished.
struct Negotiated {
    config: Arc<ServerConfig>,
    client_hs: TrafficSecret,
    /// The application secrets, kept for the traffic phase (we already
    /// write with ours, from our Finished on).
    app: Box<AppSecrets>,
    alpn: Option<Vec<u8>>,
    group: NamedGroup,
    scheme: SignatureScheme,
    retried: bool,
    server_name: Option<String>,
}

struct ExpectClientCertificate(Negotiated);

impl State for ExpectClientCertificate {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::CERTIFICATE, self.waiting_for())?;
        let cert = Certificate::decode(msg.body)?;
        if !cert.context.is_empty() {
            return Err(Error::IllegalParameter("certificate_request_context does not match the request"));
        }
        received(core, &msg, true, || describe::certificate(&cert, msg.raw));
        let (required, trust) = match &self.0.config.client_auth {
            ClientAuth::Required(t) => (true, t),
            ClientAuth::Optional(t) => (false, t),
            ClientAuth::None => return Err(Error::Internal("client certificate without a request")),
        };
        if cert.chain.is_empty() {
            core.check("client certificate", !required, || "the client sent none".into());
            if required {
                return Err(Error::CertificateRequired);
            }
            core.expected_messages -= 1;
            return Ok(Next::State(Box::new(ExpectClientFinished { n: self.0, peer: None })));
        }
        let verdict = match trust {
            ClientTrust::Roots(roots) => cert::verify_client_chain(&cert.chain, roots, now),
            ClientTrust::AnyKey | ClientTrust::Admit(_) => cert::parse_leaf(&cert.chain[0]),
        };
        match &verdict {
            Ok(peer) => core.check("client certificate", true, || {
                format!("{} (key safety number {})", peer.subject, peer.fingerprint.short())
            }),
            Err(e) => core.check("client certificate", false, || e.to_string()),
        }
        let peer = verdict?;
        Ok(Next::State(Box::new(ExpectClientCertificateVerify { n: self.0, peer })))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for the client's Certificate"
    }
}

struct ExpectClientCertificateVerify {
    n: Negotiated,
    peer: CertSummary,
}

impl State for ExpectClientCertificateVerify {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::CERTIFICATE_VERIFY, self.waiting_for())?;
        handshake::check_certificate_verify(core, &msg, &self.peer.public_key, false)?;
        Ok(Next::State(Box::new(ExpectClientFinished { n: self.n, peer: Some(self.peer) })))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for the client's CertificateVerify"
    }
}

struct ExpectClientFinished {
    n: Negotiated,
    peer: Option<CertSummary>,
}

impl State for ExpectClientFinished {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::FINISHED, self.waiting_for())?;
        handshake::check_finished(core, &msg, &self.n.client_hs)?;
        // Only now is everything about the client verified: its key (by
        // CertificateVerify) and the whole handshake (by Finished).
        if let (
            Some(peer),
            ClientAuth::Optional(ClientTrust::Admit(admission))
            | ClientAuth::Required(ClientTrust::Admit(admission)),
        ) = (&self.peer, &self.n.config.client_auth)
        {
            let verdict = admission.admit(peer);
            match &verdict {
                Ok(()) => core.check("client admitted", true, || format!("{} may join", peer.subject)),
                Err(why) => core.check("client admitted", false, || why.clone()),
            }
            verdict.map_err(Error::AccessDenied)?;
        }
        core.set_read_key(self.n.app.suite, SecretKind::ClientApplicationTraffic(0), &self.n.app.theirs)?;
        core.ccs_allowed = false;
        core.event(Event::Connected(Summary {
            suite: self.n.app.suite.code(),
            group: self.n.group,
            signature_scheme: self.n.scheme,
            alpn: self.n.alpn,
            peer: self.peer,
            retried: self.n.retried,
            server_name: self.n.server_name,
        }));
        Ok(Next::Traffic(self.n.app))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for the client's Finished"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::crypto::Ed25519Key;
    use crate::tls::messages::CipherSuite;
    use crate::tls::{ALPN_HTTP11, ALPN_TLSCHAT, CertifiedKey};

    const CHACHA: CipherSuite = CipherSuite::TLS_CHACHA20_POLY1305_SHA256;
    const AES: CipherSuite = CipherSuite::TLS_AES_128_GCM_SHA256;

    /// A server that prefers `suites` in this order and serves `alpn`.
    fn config(suites: &[CipherSuite], alpn: &[&[u8]]) -> ServerConfig {
        let cert = CertifiedKey { chain: Vec::new(), key: Ed25519Key::from_seed(&[7; 32]) };
        ServerConfig {
            suites: suites.to_vec(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            ..ServerConfig::new(cert)
        }
    }

    /// A hello as tlschat's client writes it: both suites, x25519 with a share, Ed25519.
    fn hello() -> ClientHello {
        ClientHello {
            legacy_version: TLS12,
            session_id: vec![9; 32],
            cipher_suites: vec![CHACHA, AES],
            compression_methods: vec![0],
            supported_versions: Some(vec![TLS13]),
            supported_groups: Some(vec![NamedGroup::X25519]),
            signature_algorithms: Some(vec![SignatureScheme::ED25519]),
            key_shares: Some(vec![KeyShareEntry { group: NamedGroup::X25519, key_exchange: vec![5; 32] }]),
            ..ClientHello::default()
        }
    }

    fn without_share(mut ch: ClientHello) -> ClientHello {
        ch.key_shares = Some(Vec::new());
        ch
    }

    #[test]
    fn a_full_hello_gets_the_servers_suite_x25519_ed25519_and_its_share() {
        let ch = hello();
        let chosen = negotiate(&ch, &config(&[AES, CHACHA], &[]), None).unwrap();
        assert_eq!(
            chosen,
            Chosen {
                suite: Suite::Aes128GcmSha256,
                group: NamedGroup::X25519,
                scheme: SignatureScheme::ED25519,
                alpn: None,
                share: Some(&[5; 32][..]),
            }
        );
        let chosen = negotiate(&ch, &config(&[CHACHA, AES], &[]), None).unwrap();
        assert_eq!(chosen.suite, Suite::ChaCha20Poly1305Sha256);
    }

    #[test]
    fn unknown_and_unimplemented_suites_are_skipped_and_none_in_common_is_handshake_failure() {
        let mut ch = hello();
        ch.cipher_suites = vec![CipherSuite(0x00ff), CipherSuite::TLS_AES_256_GCM_SHA384, AES];
        let server = config(&[CipherSuite::TLS_AES_256_GCM_SHA384, CHACHA, AES], &[]);
        assert_eq!(negotiate(&ch, &server, None).unwrap().suite, Suite::Aes128GcmSha256);
        ch.cipher_suites = vec![CipherSuite(0x00ff), CipherSuite::TLS_AES_256_GCM_SHA384];
        assert_eq!(negotiate(&ch, &server, None), Err(Error::HandshakeFailure("no cipher suite in common")));
    }

    #[test]
    fn a_hello_without_an_x25519_share_needs_a_retry_and_a_second_one_is_refused() {
        let ch = without_share(hello());
        let chosen = negotiate(&ch, &config(&[CHACHA], &[]), None).unwrap();
        assert_eq!(chosen.share, None, "a HelloRetryRequest is needed");
        assert_eq!(chosen.group, NamedGroup::X25519);
        let retry = Retry { suite: chosen.suite, session_id: ch.session_id.clone() };
        assert_eq!(
            negotiate(&ch, &config(&[CHACHA], &[]), Some(&retry)),
            Err(Error::IllegalParameter("the second ClientHello still has no x25519 key share"))
        );
    }

    #[test]
    fn the_second_hello_keeps_the_suite_of_the_retry_even_if_the_server_prefers_another() {
        let ch = hello();
        let server = config(&[AES, CHACHA], &[]);
        let retry = Retry { suite: Suite::ChaCha20Poly1305Sha256, session_id: ch.session_id.clone() };
        let chosen = negotiate(&ch, &server, Some(&retry)).unwrap();
        assert_eq!(chosen.suite, Suite::ChaCha20Poly1305Sha256);
        assert!(chosen.share.is_some(), "the second hello has its share: no second retry");

        // The retry's suite no longer offered, or another session id: the hellos differ.
        let differs = Err(Error::IllegalParameter("the second ClientHello differs from the first"));
        let mut dropped = hello();
        dropped.cipher_suites = vec![AES];
        assert_eq!(negotiate(&dropped, &server, Some(&retry)), differs);
        let mut other_id = hello();
        other_id.session_id = vec![1; 32];
        assert_eq!(negotiate(&other_id, &server, Some(&retry)), differs);
        let mut early = hello();
        early.offered_early_data = true;
        assert!(negotiate(&early, &server, None).is_ok(), "declined, not refused, in a first hello");
        assert_eq!(
            negotiate(&early, &server, Some(&retry)),
            Err(Error::IllegalParameter("early_data in the ClientHello after a HelloRetryRequest"))
        );
    }

    #[test]
    fn the_client_must_accept_ed25519_signatures() {
        let server = config(&[CHACHA], &[]);
        let mut ch = hello();
        ch.signature_algorithms = Some(vec![SignatureScheme(0x0403)]);
        assert_eq!(
            negotiate(&ch, &server, None),
            Err(Error::HandshakeFailure("the client does not accept Ed25519 signatures"))
        );
        ch.signature_algorithms = None;
        assert_eq!(negotiate(&ch, &server, None), Err(Error::MissingExtension("signature_algorithms")));
        ch.signature_algorithms = Some(vec![SignatureScheme(0x0403), SignatureScheme::ED25519]);
        assert_eq!(negotiate(&ch, &server, None).unwrap().scheme, SignatureScheme::ED25519);
    }

    #[test]
    fn groups_and_shares_must_agree_and_include_x25519() {
        let server = config(&[CHACHA], &[]);
        let mut ch = hello();
        ch.supported_groups = Some(vec![NamedGroup(23)]);
        assert_eq!(
            negotiate(&ch, &server, None),
            Err(Error::IllegalParameter("a key share for a group not in supported_groups"))
        );
        let mut ch = without_share(hello());
        ch.supported_groups = Some(vec![NamedGroup(23)]);
        assert_eq!(
            negotiate(&ch, &server, None),
            Err(Error::HandshakeFailure("no key exchange group in common (tlschat speaks x25519)"))
        );
        let mut ch = hello();
        ch.key_shares = None;
        assert_eq!(negotiate(&ch, &server, None), Err(Error::MissingExtension("key_share")));
        // A share for another offered group first: the x25519 one is found.
        let mut ch = hello();
        ch.supported_groups = Some(vec![NamedGroup(23), NamedGroup::X25519]);
        ch.key_shares = Some(vec![
            KeyShareEntry { group: NamedGroup(23), key_exchange: vec![4; 65] },
            KeyShareEntry { group: NamedGroup::X25519, key_exchange: vec![6; 32] },
        ]);
        assert_eq!(negotiate(&ch, &server, None).unwrap().share, Some(&[6; 32][..]));
    }

    #[test]
    fn alpn_is_the_servers_preference_among_the_clients_and_none_in_common_is_refused() {
        let mut ch = hello();
        ch.alpn = Some(vec![ALPN_HTTP11.to_vec(), ALPN_TLSCHAT.to_vec()]);
        let server = config(&[CHACHA], &[ALPN_TLSCHAT, ALPN_HTTP11]);
        assert_eq!(negotiate(&ch, &server, None).unwrap().alpn, Some(ALPN_TLSCHAT.to_vec()));
        // A server without ALPN ignores the extension.
        assert_eq!(negotiate(&ch, &config(&[CHACHA], &[]), None).unwrap().alpn, None);
        // A client without ALPN gets none.
        assert_eq!(negotiate(&hello(), &server, None).unwrap().alpn, None);
        ch.alpn = Some(vec![b"h2".to_vec()]);
        assert_eq!(negotiate(&ch, &server, None), Err(Error::NoApplicationProtocol));
    }

    #[test]
    fn versions_and_compression_are_checked_first() {
        let server = config(&[CHACHA], &[]);
        let mut ch = hello();
        ch.legacy_version = 0x0300;
        ch.cipher_suites.clear();
        assert_eq!(negotiate(&ch, &server, None), Err(Error::ProtocolVersion));
        let mut ch = hello();
        ch.supported_versions = Some(vec![TLS12]);
        assert_eq!(negotiate(&ch, &server, None), Err(Error::ProtocolVersion));
        let mut ch = hello();
        ch.compression_methods = vec![1, 0];
        assert_eq!(
            negotiate(&ch, &server, None),
            Err(Error::IllegalParameter("legacy_compression_methods must be exactly null"))
        );
    }
}
