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
use super::conn::{Core, MAX_EARLY_DATA_SKIPPED, Message, Next, SkipEarlyData, State};
use super::crypto::X25519Secret;
use super::error::Error;
use super::events::{Event, Summary};
use super::handshake::{self, expect, received};
use super::key_schedule::{SecretKind, TrafficSecret};
use super::messages::{
    Certificate, CertificateRequest, ClientHello, EncryptedExtensions, HRR_RANDOM, HandshakeType,
    KeyShareEntry, NamedGroup, ServerHello, SignatureScheme, TLS12, TLS13,
};
use super::suites::Suite;
use super::{ClientAuth, ClientTrust, ServerConfig};

/// `ProtocolVersion` of SSL 3.0: no hello may carry it or anything older (§D.5).
const SSL3: u16 = 0x0300;

/// The initial state of a server connection.
pub(crate) fn start(config: Arc<ServerConfig>) -> Box<dyn State> {
    Box::new(ExpectClientHello { config, retry: None })
}

/// What a HelloRetryRequest fixed, which the second ClientHello must keep.
struct Retry {
    suite: Suite,
    session_id: Vec<u8>,
}

struct ExpectClientHello {
    config: Arc<ServerConfig>,
    retry: Option<Retry>,
}

impl State for ExpectClientHello {
    fn handle(self: Box<Self>, core: &mut Core, msg: Message<'_>, _now: u64) -> Result<Next, Error> {
        expect(&msg, HandshakeType::CLIENT_HELLO, self.waiting_for())?;
        let ch = ClientHello::decode(msg.body)?;
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
        if self.retry.is_some() {
            // The second hello ends the skipping of early data, and may not
            // offer any more (§4.2.10: "A client MUST NOT include the
            // "early_data" extension in its followup ClientHello").
            core.skip_early_data = SkipEarlyData::No;
            if ch.offered_early_data {
                return Err(Error::IllegalParameter(
                    "early_data in the ClientHello after a HelloRetryRequest",
                ));
            }
        }
        if let Some(retry) = &self.retry
            && (ch.session_id != retry.session_id || !ch.cipher_suites.contains(&retry.suite.code()))
        {
            return Err(Error::IllegalParameter("the second ClientHello differs from the first"));
        }
        // The server's preference decides (§4.1.1); unknown suites such as
        // 0x00ff are skipped. After a HelloRetryRequest the suite is the one
        // it named, which the second hello still offers (checked above): the
        // ServerHello must agree with it (§4.1.4), even if the client now
        // offers a suite we prefer.
        let suite = match &self.retry {
            Some(retry) => retry.suite,
            // Configured codes the engine does not implement are skipped too.
            None => self
                .config
                .suites
                .iter()
                .filter_map(|&code| Suite::from_code(code))
                .find(|s| ch.cipher_suites.contains(&s.code()))
                .ok_or(Error::HandshakeFailure("no cipher suite in common"))?,
        };
        let schemes =
            ch.signature_algorithms.as_ref().ok_or(Error::MissingExtension("signature_algorithms"))?;
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
        let alpn = choose_alpn(&self.config, ch.alpn.as_deref())?;
        if self.retry.is_none() {
            core.client_random = ch.random;
        }
        received(core, &msg, false, || handshake::describe_client_hello(&ch));
        core.ccs_allowed = true;
        let Some(share) = shares.iter().find(|s| s.group == NamedGroup::X25519) else {
            return (*self).retry(core, &ch, suite);
        };
        core.suite = Some(suite);

        let key = X25519Secret::generate(core.rng.as_mut());
        // Refuse a bad key share before anything is written.
        let shared = handshake::agree(core, &key, &share.key_exchange)?;
        let mut random = [0u8; 32];
        core.rng.fill(&mut random);
        let sh = ServerHello {
            key_share: Some(KeyShareEntry {
                group: NamedGroup::X25519,
                key_exchange: key.public_key().to_vec(),
            }),
            ..answer(&ch, random, suite)
        };
        send_server_hello(core, &ch, &sh)?;
        let secrets = handshake::derive_handshake_secrets(core, &shared);
        core.set_write_key(&secrets.server)?;
        core.set_read_key(&secrets.client)?;
        if ch.offered_early_data {
            // Declined, by sending no early_data in EncryptedExtensions: the
            // client's 0-RTT records, which do not open with its handshake
            // key, are skipped until its second flight (§4.2.10).
            core.skip_early_data = SkipEarlyData::Undecryptable(MAX_EARLY_DATA_SKIPPED);
        }

        let config = self.config;
        let mut flight = Vec::with_capacity(2048);
        let ee = EncryptedExtensions { alpn: alpn.clone(), ..EncryptedExtensions::default() };
        handshake::sent(
            core,
            &mut flight,
            true,
            |out| ee.encode(out),
            || handshake::describe_encrypted_extensions(&ee),
        );
        let requested = !matches!(config.client_auth, ClientAuth::None);
        if requested {
            let cr = CertificateRequest {
                context: Vec::new(),
                signature_algorithms: vec![SignatureScheme::ED25519],
            };
            handshake::sent(
                core,
                &mut flight,
                true,
                |out| cr.encode(out),
                || handshake::describe_certificate_request(&cr),
            );
            core.expected_messages += 3;
        }
        handshake::send_certificate(
            core,
            &mut flight,
            &[],
            Some((&config.cert.chain, &config.cert.key)),
            true,
        );
        handshake::send_finished(core, &mut flight, &secrets.server);
        core.write_handshake(&flight)?;

        let client_hs = secrets.client.clone();
        let traffic = secrets.into_traffic(&core.transcript.current());
        core.secret_step(SecretKind::MasterSecret);
        core.set_app_secrets(traffic);
        core.start_app_write()?;

        let n = Negotiated {
            config,
            client_hs,
            alpn,
            retried: self.retry.is_some(),
            server_name: ch.server_name,
        };
        Ok(Next::State(if requested {
            Box::new(ExpectClientCertificate(n))
        } else {
            Box::new(ExpectClientFinished { n, peer: None })
        }))
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for ClientHello"
    }
}

impl ExpectClientHello {
    /// Asks for an x25519 key share with a HelloRetryRequest (§4.1.4).
    fn retry(self, core: &mut Core, ch: &ClientHello, suite: Suite) -> Result<Next, Error> {
        if self.retry.is_some() {
            return Err(Error::IllegalParameter("the second ClientHello still has no x25519 key share"));
        }
        handshake::replace_client_hello_with_its_hash(core);
        if ch.offered_early_data {
            // §4.2.10: after a HelloRetryRequest the server "ignores early
            // data by skipping all records with an external content type of
            // "application_data"" until the second ClientHello.
            core.skip_early_data = SkipEarlyData::AllProtected(MAX_EARLY_DATA_SKIPPED);
        }
        let hrr = ServerHello { hrr_group: Some(NamedGroup::X25519), ..answer(ch, HRR_RANDOM, suite) };
        send_server_hello(core, ch, &hrr)?;
        core.expected_messages += 2;
        Ok(Next::State(Box::new(ExpectClientHello {
            config: self.config,
            retry: Some(Retry { suite, session_id: ch.session_id.clone() }),
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
    handshake::sent(core, &mut hello, false, |out| sh.encode(out), || handshake::describe_server_hello(sh));
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
    alpn: Option<Vec<u8>>,
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
        received(core, &msg, true, || handshake::describe_certificate(&cert, msg.raw));
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
                format!("{} (key fingerprint {})", peer.subject, peer.fingerprint.short())
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
        core.start_app_read()?;
        core.ccs_allowed = false;
        core.event(Event::Connected(Summary {
            suite: core.suite()?.code(),
            group: NamedGroup::X25519,
            signature_scheme: SignatureScheme::ED25519,
            alpn: self.n.alpn,
            peer: self.peer,
            retried: self.n.retried,
            server_name: self.n.server_name,
        }));
        Ok(Next::Traffic)
    }

    fn waiting_for(&self) -> &'static str {
        "waiting for the client's Finished"
    }
}
