//! The client handshake (RFC 8446 §4.1–§4.4, §2 figure 1 and 2).
//!
//! ```text
//! start ─ClientHello─▶ ExpectServerHello ─(HelloRetryRequest: ClientHello again)─┐
//!                        │ ◀────────────────────────────────────────────────────┘
//!                        ▼ ServerHello
//!                      ExpectEncryptedExtensions ─▶ ExpectCertificate (CertificateRequest?)
//!                      ─▶ ExpectCertificateVerify ─▶ ExpectFinished ─▶ traffic
//! ```

use std::sync::Arc;

use super::cert::{self, CertError, CertSummary, ServerName};
use super::conn::Connection;
use super::crypto::Rng;
use super::crypto::{self, X25519Secret};
use super::describe;
use super::error::Error;
use super::events::{Event, Summary};
use super::handshake::{self, expect, received};
use super::key_schedule::{HandshakeSecrets, SecretKind, TrafficSecret};
use super::messages::{
    self, Certificate, CertificateRequest, CipherSuite, ClientHello, EncryptedExtensions, ExtensionType,
    HandshakeType, KeyShareEntry, NamedGroup, ServerHello, SignatureScheme, TLS12, TLS13,
};
use super::state::{AppSecrets, Core, Message, Next, Side, State};
use super::suites::Suite;
use super::{ClientConfig, ServerTrust};

impl Connection {
    /// Starts a client handshake with `server_name`: the ClientHello is ready
    /// in [`poll_transmit`](Self::poll_transmit) at once.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName,
        rng: Box<dyn Rng>,
    ) -> Result<Self, Error> {
        let mut core = Core::new(Side::Client, rng, config.keylog.clone(), config.emit_steps, config.reveal);
        let state = start(&mut core, config, server_name)?;
        Ok(Self::handshaking(core, state))
    }

    /// As [`client`](Self::client), for the tamper lab (`/tamper finished`)
    /// only: the connection sends its Finished with one bit of verify_data
    /// flipped, so that the server's check (RFC 8446 §4.4.4) fails with
    /// decrypt_error. Nothing in a configuration can ask for this: a
    /// connection made by [`client`](Self::client) never does it.
    pub fn client_with_wrong_finished(
        config: Arc<ClientConfig>,
        server_name: ServerName,
        rng: Box<dyn Rng>,
    ) -> Result<Self, Error> {
        let mut core = Core::new(Side::Client, rng, config.keylog.clone(), config.emit_steps, config.reveal);
        core.wrong_finished = true;
        let state = start(&mut core, config, server_name)?;
        Ok(Self::handshaking(core, state))
    }
}

/// Builds and writes the first ClientHello.
fn start(core: &mut Core, config: Arc<ClientConfig>, name: ServerName) -> Result<Box<dyn State>, Error> {
    // Only suites the engine implements are offered, so that the one the
    // server picks among them is one we can key.
    let suites: Vec<CipherSuite> =
        config.suites.iter().copied().filter(|&code| Suite::from_code(code).is_some()).collect();
    if suites.is_empty() {
        return Err(Error::Internal("no cipher suites configured"));
    }
    core.rng.fill(&mut core.client_random);
    let mut session_id = vec![0u8; 32];
    core.rng.fill(&mut session_id);
    let key = X25519Secret::generate(core.rng.as_mut());
    let shares = if config.key_share_first() { vec![share_of(&key)] } else { Vec::new() };
    let hello = ClientHello {
        legacy_version: TLS12,
        random: core.client_random,
        // §D.4: a non-empty session id puts the server in middlebox-compatibility mode.
        session_id,
        cipher_suites: suites,
        compression_methods: vec![0],
        supported_versions: Some(vec![TLS13]),
        supported_groups: Some(vec![NamedGroup::X25519]),
        signature_algorithms: Some(vec![SignatureScheme::ED25519]),
        key_shares: Some(shares),
        // RFC 6066 §3: literal IP addresses are not sent as server names.
        server_name: match &name {
            ServerName::Dns(n) => Some(n.clone()),
            ServerName::Ip(_) => None,
        },
        alpn: (!config.alpn.is_empty()).then(|| config.alpn.clone()),
        ..ClientHello::default()
    };
    send_hello(core, &hello)?;
    // The server may send its dummy ChangeCipherSpec from now until its Finished.
    core.ccs_allowed = true;
    Ok(Box::new(ExpectServerHello { config, name, key, hello, retry_suite: None }))
}

fn share_of(key: &X25519Secret) -> KeyShareEntry {
    KeyShareEntry { group: NamedGroup::X25519, key_exchange: key.public_key().to_vec() }
}

fn send_hello(core: &mut Core, hello: &ClientHello) -> Result<(), Error> {
    let mut flight = Vec::with_capacity(256);
    handshake::sent(core, &mut flight, false, |out| hello.encode(out), || describe::client_hello(hello))?;
    core.write_handshake(&flight)
}

/// What the handshake carries from ServerHello to Finished.
struct Negotiated {
    config: Arc<ClientConfig>,
    suite: Suite,
    name: ServerName,
    secrets: HandshakeSecrets,
    retried: bool,
    alpn: Option<Vec<u8>>,
    cert_request: Option<CertificateRequest>,
}

struct ExpectServerHello {
    config: Arc<ClientConfig>,
    name: ServerName,
    key: X25519Secret,
    hello: ClientHello,
    /// The suite a HelloRetryRequest named, which the ServerHello must repeat.
    retry_suite: Option<messages::CipherSuite>,
}

impl State for ExpectServerHello {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::SERVER_HELLO, self.waiting_for())?;
        let sh = ServerHello::decode(msg.body)?;
        match sh.selected_version {
            // Without supported_versions the server chose TLS 1.2 or older (§4.2.1).
            None => return Err(Error::ProtocolVersion),
            Some(TLS13) => {}
            Some(_) => {
                return Err(Error::IllegalParameter("the server selected a version that was not offered"));
            }
        }
        if sh.session_id != self.hello.session_id {
            return Err(Error::IllegalParameter("legacy_session_id_echo does not match ours"));
        }
        if !self.hello.cipher_suites.contains(&sh.cipher_suite) {
            return Err(Error::IllegalParameter("the server chose a cipher suite that was not offered"));
        }
        if sh.compression_method != 0 {
            return Err(Error::IllegalParameter("legacy_compression_method is not 0"));
        }
        if let Some(ext) = sh.other_extensions.first() {
            return Err(Error::UnsupportedExtension(format!("{ext} in ServerHello")));
        }
        if sh.is_retry_request() {
            return self.retry(core, &msg, &sh);
        }
        if self.retry_suite.is_some_and(|s| s != sh.cipher_suite) {
            return Err(Error::IllegalParameter("ServerHello changes the suite chosen in HelloRetryRequest"));
        }
        let share = sh.key_share.as_ref().ok_or(Error::MissingExtension("key_share in ServerHello"))?;
        let offered = self.hello.key_shares.iter().flatten().any(|s| s.group == share.group);
        if share.group != NamedGroup::X25519 || !offered {
            return Err(Error::IllegalParameter("the server's key share is for a group we did not share"));
        }
        let shared = handshake::agree(core, &self.key, &share.key_exchange)?;
        // Offered, so implemented (start offers nothing else).
        let suite = Suite::from_code(sh.cipher_suite)
            .ok_or(Error::IllegalParameter("the server chose a cipher suite that was not offered"))?;
        received(core, &msg, false, || describe::server_hello(&sh));
        let secrets = handshake::derive_handshake_secrets(core, &shared);
        core.set_read_key(suite, SecretKind::ServerHandshakeTraffic, &secrets.server)?;
        core.set_write_key(suite, SecretKind::ClientHandshakeTraffic, &secrets.client);
        let n = Negotiated {
            config: self.config,
            suite,
            name: self.name,
            secrets,
            retried: self.retry_suite.is_some(),
            alpn: None,
            cert_request: None,
        };
        Ok(Next::State(Box::new(ExpectEncryptedExtensions(n))))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for ServerHello"
    }
}

impl ExpectServerHello {
    /// Answers a HelloRetryRequest with a second ClientHello (§4.1.4).
    fn retry(
        mut self: Box<Self>,
        core: &mut Core,
        msg: &Message<'_>,
        hrr: &ServerHello,
    ) -> Result<Next, Error> {
        if self.retry_suite.is_some() {
            return Err(Error::UnexpectedMessage("a second HelloRetryRequest".into()));
        }
        let group = hrr.hrr_group;
        let already_shared = self.hello.key_shares.iter().flatten().any(|s| Some(s.group) == group);
        match group {
            Some(NamedGroup::X25519) if !already_shared => {}
            // §4.1.4: an HRR that would not change the ClientHello is illegal.
            Some(_) => {
                return Err(Error::IllegalParameter(
                    "HelloRetryRequest names a group we cannot or already did share",
                ));
            }
            None if hrr.cookie.is_none() => {
                return Err(Error::IllegalParameter("HelloRetryRequest would not change the ClientHello"));
            }
            None => {}
        }
        handshake::replace_client_hello_with_its_hash(core);
        received(core, msg, false, || describe::server_hello(hrr));
        core.expected_messages += 2;
        if group.is_some() {
            self.key = X25519Secret::generate(core.rng.as_mut());
            self.hello.key_shares = Some(vec![share_of(&self.key)]);
        }
        self.hello.cookie = hrr.cookie.clone();
        // §D.4: the client's dummy ChangeCipherSpec goes before its second flight.
        core.write_ccs();
        send_hello(core, &self.hello)?;
        self.retry_suite = Some(hrr.cipher_suite);
        Ok(Next::State(self))
    }
}

struct ExpectEncryptedExtensions(Negotiated);

impl State for ExpectEncryptedExtensions {
    fn handle(mut self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::ENCRYPTED_EXTENSIONS, self.waiting_for())?;
        let ee = EncryptedExtensions::decode(msg.body)?;
        if let Some(p) = &ee.alpn {
            if self.0.config.alpn.is_empty() {
                return Err(Error::UnsupportedExtension("ALPN, which we did not offer".into()));
            }
            if !self.0.config.alpn.contains(p) {
                return Err(Error::IllegalParameter("the server chose an ALPN protocol we did not offer"));
            }
        }
        // supported_groups may appear in EncryptedExtensions (§4.2.7); others we never asked for.
        if let Some(ext) = ee.other_extensions.iter().find(|e| **e != ExtensionType::SUPPORTED_GROUPS) {
            return Err(Error::UnsupportedExtension(format!("{ext} in EncryptedExtensions")));
        }
        received(core, &msg, true, || describe::encrypted_extensions(&ee));
        self.0.alpn = ee.alpn;
        Ok(Next::State(Box::new(ExpectCertificate(self.0))))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for EncryptedExtensions"
    }
}

struct ExpectCertificate(Negotiated);

impl State for ExpectCertificate {
    fn handle(mut self: Box<Self>, core: &mut Core, msg: Message<'_>, now: u64) -> Result<Next, Error> {
        if msg.typ == HandshakeType::CERTIFICATE_REQUEST && self.0.cert_request.is_none() {
            let cr = CertificateRequest::decode(msg.body)?;
            if !cr.context.is_empty() {
                return Err(Error::IllegalParameter(
                    "certificate_request_context must be empty in the handshake",
                ));
            }
            received(core, &msg, true, || describe::certificate_request(&cr));
            core.expected_messages += if self.0.config.client_cert.is_some() { 3 } else { 2 };
            self.0.cert_request = Some(cr);
            return Ok(Next::State(self));
        }
        expect(&msg, HandshakeType::CERTIFICATE, self.waiting_for())?;
        let cert = Certificate::decode(msg.body)?;
        if !cert.context.is_empty() {
            return Err(Error::IllegalParameter("certificate_request_context must be empty for the server"));
        }
        received(core, &msg, true, || describe::certificate(&cert, msg.raw));
        // §4.4.2.4: an empty server Certificate is a decode_error.
        if cert.chain.is_empty() {
            core.check("certificate chain", false, || "the server sent no certificate".into());
            return Err(Error::Certificate(CertError::Empty));
        }
        let verdict = verify_server(&self.0.config.trust, &cert.chain, &self.0.name, now);
        match &verdict {
            Ok(peer) => {
                let detail = match &self.0.config.trust {
                    ServerTrust::Roots(_) => {
                        format!("{} issued by {}, valid for {}", peer.subject, peer.issuer, self.0.name)
                    }
                    ServerTrust::Fingerprint(_) => {
                        format!("key fingerprint {} matches the pin", peer.fingerprint)
                    }
                    ServerTrust::AnyKey => format!(
                        "key fingerprint {} taken as presented: not trusted until the user decides",
                        peer.fingerprint
                    ),
                };
                core.check("certificate chain", true, || detail);
            }
            Err(e) => core.check("certificate chain", false, || e.to_string()),
        }
        let peer = verdict?;
        Ok(Next::State(Box::new(ExpectCertificateVerify { n: self.0, peer })))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for Certificate"
    }
}

/// The client's trust decision on the server's chain.
fn verify_server(
    trust: &ServerTrust,
    chain: &[Vec<u8>],
    name: &ServerName,
    now: u64,
) -> Result<CertSummary, Error> {
    match trust {
        ServerTrust::Roots(roots) => Ok(cert::verify_server_chain(chain, roots, name, now)?),
        ServerTrust::Fingerprint(pin) => {
            let leaf = chain.first().ok_or(Error::Certificate(CertError::Empty))?;
            let summary = cert::parse_leaf(leaf)?;
            if crypto::ct_eq(&summary.fingerprint.0, &pin.0) {
                Ok(summary)
            } else {
                Err(Error::FingerprintMismatch {
                    expected: pin.to_string(),
                    got: summary.fingerprint.to_string(),
                })
            }
        }
        // The key must still prove itself with CertificateVerify, which
        // the next state checks against `summary.public_key`.
        ServerTrust::AnyKey => {
            let leaf = chain.first().ok_or(Error::Certificate(CertError::Empty))?;
            Ok(cert::parse_leaf(leaf)?)
        }
    }
}

struct ExpectCertificateVerify {
    n: Negotiated,
    peer: CertSummary,
}

impl State for ExpectCertificateVerify {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::CERTIFICATE_VERIFY, self.waiting_for())?;
        handshake::check_certificate_verify(core, &msg, &self.peer.public_key, true)?;
        Ok(Next::State(Box::new(ExpectFinished { n: self.n, peer: self.peer })))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for CertificateVerify"
    }
}

struct ExpectFinished {
    n: Negotiated,
    peer: CertSummary,
}

impl State for ExpectFinished {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::FINISHED, self.waiting_for())?;
        let Negotiated { config, suite, name, secrets, retried, alpn, cert_request } = self.n;
        handshake::check_finished(core, &msg, &secrets.server)?;
        let client_hs = secrets.client.clone();
        let traffic = secrets.into_traffic(&core.transcript.current());
        core.secret_step(SecretKind::MasterSecret);
        core.app_secrets_derived(&traffic);
        let app = AppSecrets::new(Side::Client, suite, traffic);
        core.set_read_key(suite, SecretKind::ServerApplicationTraffic(0), &app.theirs)?;
        core.ccs_allowed = false;
        let flight = SecondFlight {
            config,
            suite,
            name,
            client_hs,
            app,
            retried,
            alpn,
            cert_request,
            peer: self.peer,
        };
        if flight.config.hold_for_trust {
            // The server has proven its key; ours waits for the driver's word.
            core.event(Event::ServerKey(flight.peer.clone()));
            return Ok(Next::State(Box::new(AwaitTrust(flight))));
        }
        flight.send(core)
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for the server's Finished"
    }
}

/// Everything our second flight needs, from the server's verified Finished on.
struct SecondFlight {
    config: Arc<ClientConfig>,
    suite: Suite,
    name: ServerName,
    client_hs: TrafficSecret,
    app: Box<AppSecrets>,
    retried: bool,
    alpn: Option<Vec<u8>>,
    cert_request: Option<CertificateRequest>,
    peer: CertSummary,
}

impl SecondFlight {
    /// Writes [Certificate, CertificateVerify], Finished and enters the
    /// traffic phase.
    fn send(self, core: &mut Core) -> Result<Next, Error> {
        let Self { config, suite, name, client_hs, app, retried, alpn, cert_request, peer } = self;
        // Our second flight: [Certificate, CertificateVerify], Finished.
        core.write_ccs();
        let mut flight = Vec::with_capacity(1024);
        if let Some(cr) = &cert_request {
            let cert = config
                .client_cert
                .as_ref()
                .filter(|_| cr.signature_algorithms.contains(&SignatureScheme::ED25519))
                .map(|c| (c.chain.as_slice(), &c.key));
            handshake::send_certificate(core, &mut flight, &cr.context, cert, false)?;
        }
        handshake::send_finished(core, &mut flight, &client_hs)?;
        if core.wrong_finished
            && let Some(last) = flight.last_mut()
        {
            // The tamper lab: the last byte of the flight is verify_data's.
            *last ^= 1;
        }
        core.write_handshake(&flight)?;
        core.set_write_key(suite, SecretKind::ClientApplicationTraffic(0), &app.ours);
        core.event(Event::Connected(Summary {
            suite: suite.code(),
            group: NamedGroup::X25519,
            signature_scheme: SignatureScheme::ED25519,
            alpn,
            peer: Some(peer),
            retried,
            server_name: match name {
                ServerName::Dns(n) => Some(n),
                ServerName::Ip(ip) => Some(ip.to_string()),
            },
        }));
        Ok(Next::Traffic(app))
    }
}

/// [`ClientConfig::hold_for_trust`]: the server's flight has verified and
/// [`Event::ServerKey`] told the driver its key; our flight waits for
/// [`Connection::trust_server`]. [`Connection::close`] here cancels the
/// handshake with user_canceled and close_notify, and the server never
/// sees our certificate. The server sends nothing more before our
/// Finished, so any message now is unexpected.
struct AwaitTrust(SecondFlight);

impl State for AwaitTrust {
    fn handle(self: Box<Self>, _core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        Err(Error::unexpected(msg.typ, self.waiting_for()))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for you to trust the server's key"
    }

    fn awaits_trust(&self) -> bool {
        true
    }

    fn trusted(self: Box<Self>, core: &mut Core) -> Result<Next, Error> {
        self.0.send(core)
    }
}
