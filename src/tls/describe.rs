//! The readable descriptions of handshake messages that the step events
//! carry: a summary line and named fields, each with where its bytes lie in
//! the message when that is known. Only called when steps are on, so a
//! server that nobody watches formats nothing.

use super::crypto;
use super::events::Field;
use super::messages::{
    Certificate, CertificateRequest, CertificateVerify, ClientHello, EncryptedExtensions, ServerHello, TLS13,
};

/// Most items a field lists, and key shares a hello's description shows: a
/// hostile hello may carry tens of thousands, and steps are read by people.
const MAX_LISTED: usize = 32;

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    capped(items.iter().map(ToString::to_string), items.len())
}

/// The first [`MAX_LISTED`] of `total` items, joined, and how many more there are.
fn capped(items: impl Iterator<Item = String>, total: usize) -> String {
    let mut parts: Vec<String> = items.take(MAX_LISTED).collect();
    if total > MAX_LISTED {
        parts.push(format!("and {} more", total - MAX_LISTED));
    }
    parts.join(", ")
}

fn alpn_text(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// Length of the handshake header (type and 24-bit length) that the
/// offsets of [`Field::range`] count.
const HEADER: usize = 4;

/// A field whose position in the message is not reported.
fn field(name: &'static str, value: impl Into<String>) -> Field {
    Field { name, value: value.into(), range: None }
}

/// A field at `range` of the message bytes (header included).
fn field_at(name: &'static str, value: impl Into<String>, range: std::ops::Range<usize>) -> Field {
    Field { name, value: value.into(), range: Some(range) }
}

/// Where the start of a hello lies (§4.1.2, §4.1.3): `legacy_version` at
/// 4..6, `random` at 6..38, the session id's length byte at 38, the id
/// after it, then what follows the id. Decoding keeps the id as sent, so
/// its decoded length is its length on the wire.
fn hello_offsets(session_id_len: usize) -> (std::ops::Range<usize>, usize) {
    let id_start = HEADER + 2 + 32 + 1;
    (id_start..id_start + session_id_len, id_start + session_id_len)
}

/// Summary and fields of a ClientHello.
pub(crate) fn client_hello(ch: &ClientHello) -> (String, Vec<Field>) {
    let shares = ch.key_shares.as_deref().unwrap_or_default();
    let groups = capped(shares.iter().map(|s| s.group.to_string()), shares.len());
    let summary = format!(
        "{} suites, key share {}{}",
        ch.cipher_suites.len(),
        if groups.is_empty() { "none".to_string() } else { groups },
        ch.server_name.as_ref().map(|n| format!(", SNI {n}")).unwrap_or_default()
    );
    let (id, after_id) = hello_offsets(ch.session_id.len());
    // cipher_suites<2..2^16-2>: a 2-byte length, then 2 bytes a suite (decoding keeps every one).
    let suites = after_id + 2..after_id + 2 + 2 * ch.cipher_suites.len();
    let mut fields = vec![
        field_at("legacy_version", format!("0x{:04x}", ch.legacy_version), HEADER..HEADER + 2),
        field_at("random", crypto::hex(&ch.random), HEADER + 2..HEADER + 34),
        field_at("legacy_session_id", crypto::hex(&ch.session_id), id),
        field_at("cipher_suites", list(&ch.cipher_suites), suites),
        field("extensions", list(&ch.extension_order)),
    ];
    if let Some(v) = &ch.supported_versions {
        fields.push(field("supported_versions", capped(v.iter().map(|v| format!("0x{v:04x}")), v.len())));
    }
    if let Some(g) = &ch.supported_groups {
        fields.push(field("supported_groups", list(g)));
    }
    if let Some(s) = &ch.signature_algorithms {
        fields.push(field("signature_algorithms", list(s)));
    }
    for share in shares.iter().take(MAX_LISTED) {
        fields.push(field("key_share", format!("{} {}", share.group, crypto::hex(&share.key_exchange))));
    }
    if shares.len() > MAX_LISTED {
        fields.push(field("key_share", format!("and {} more", shares.len() - MAX_LISTED)));
    }
    if let Some(n) = &ch.server_name {
        fields.push(field("server_name", n.clone()));
    }
    if let Some(a) = &ch.alpn {
        fields.push(field("alpn", capped(a.iter().map(|p| alpn_text(p)), a.len())));
    }
    (summary, fields)
}

/// Summary and fields of a ServerHello or HelloRetryRequest.
pub(crate) fn server_hello(sh: &ServerHello) -> (String, Vec<Field>) {
    let summary = if sh.is_retry_request() {
        format!(
            "HelloRetryRequest: {}, send a {} key share",
            sh.cipher_suite,
            sh.hrr_group.map(|g| g.to_string()).unwrap_or_default()
        )
    } else {
        format!(
            "{}, {}",
            sh.cipher_suite,
            sh.key_share.as_ref().map(|s| s.group.to_string()).unwrap_or_default()
        )
    };
    let (id, after_id) = hello_offsets(sh.session_id.len());
    let mut fields = vec![
        field_at("random", crypto::hex(&sh.random), HEADER + 2..HEADER + 34),
        field_at("legacy_session_id_echo", crypto::hex(&sh.session_id), id),
        field_at("cipher_suite", sh.cipher_suite.to_string(), after_id..after_id + 2),
        field("supported_versions", if sh.selected_version == Some(TLS13) { "TLS 1.3" } else { "?" }),
    ];
    if let Some(s) = &sh.key_share {
        fields.push(field("key_share", format!("{} {}", s.group, crypto::hex(&s.key_exchange))));
    }
    if let Some(g) = sh.hrr_group {
        fields.push(field("selected_group", g.to_string()));
    }
    (summary, fields)
}

/// Summary and fields of EncryptedExtensions.
pub(crate) fn encrypted_extensions(ee: &EncryptedExtensions) -> (String, Vec<Field>) {
    match &ee.alpn {
        Some(p) => (format!("ALPN {}", alpn_text(p)), vec![field("alpn", alpn_text(p))]),
        None => ("no ALPN".into(), Vec::new()),
    }
}

/// Summary and fields of CertificateRequest.
pub(crate) fn certificate_request(cr: &CertificateRequest) -> (String, Vec<Field>) {
    (
        "the server asks for a client certificate".into(),
        vec![field("signature_algorithms", list(&cr.signature_algorithms))],
    )
}

/// Where each certificate's DER lies in `raw`, the whole Certificate
/// message (§4.4.2). Read from the bytes rather than the decoded chain, since
/// a peer's entries may carry extensions that decoding skips; a range is
/// only reported if its bytes are the decoded certificate.
fn certificate_ranges(c: &Certificate, raw: &[u8]) -> Vec<Option<std::ops::Range<usize>>> {
    let u24 = |at: usize| {
        raw.get(at..at + 3).map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    };
    let u16_at = |at: usize| raw.get(at..at + 2).map(|b| usize::from(b[0]) << 8 | usize::from(b[1]));
    // The context's length byte, the context, then the list's 3-byte length.
    let mut at = raw.get(HEADER).map(|&n| HEADER + 1 + usize::from(n) + 3);
    c.chain
        .iter()
        .map(|der| {
            let pos = at?;
            let len = u24(pos)?;
            let range = pos + 3..pos + 3 + len;
            at = u16_at(range.end).map(|ext| range.end + 2 + ext);
            (raw.get(range.clone()) == Some(der.as_slice())).then_some(range)
        })
        .collect()
}

/// Summary and fields of Certificate; `raw` is the whole message.
pub(crate) fn certificate(c: &Certificate, raw: &[u8]) -> (String, Vec<Field>) {
    let summary = match c.chain.len() {
        0 => "no certificate".to_string(),
        1 => "1 certificate".to_string(),
        n => format!("{n} certificates"),
    };
    let mut fields = Vec::new();
    let ranges = certificate_ranges(c, raw);
    for ((i, der), range) in c.chain.iter().enumerate().zip(ranges) {
        let text = match super::cert::parse_leaf(der) {
            Ok(s) => format!("{} (issuer {}), {} bytes", s.subject, s.issuer, der.len()),
            Err(_) => format!("{} bytes", der.len()),
        };
        fields.push(Field { name: if i == 0 { "leaf" } else { "chain" }, value: text, range });
    }
    (summary, fields)
}

/// Summary and fields of a Finished we send.
pub(crate) fn finished_sent(verify_data: &[u8]) -> (String, Vec<Field>) {
    (
        "verify_data = HMAC(finished_key, transcript hash)".into(),
        vec![field_at("verify_data", crypto::hex(verify_data), HEADER..HEADER + verify_data.len())],
    )
}

/// Summary and fields of a Finished received; `body` is what follows the header.
pub(crate) fn finished_received(body: &[u8]) -> (String, Vec<Field>) {
    let range = HEADER..HEADER + body.len();
    ("verify_data".into(), vec![field_at("verify_data", crypto::hex(body), range)])
}

/// Summary and fields of CertificateVerify.
pub(crate) fn certificate_verify(cv: &CertificateVerify) -> (String, Vec<Field>) {
    (
        cv.scheme.to_string(),
        vec![
            field_at("algorithm", cv.scheme.to_string(), HEADER..HEADER + 2),
            // After the signature's 2-byte length; decoding requires it to end the message.
            field_at("signature", crypto::hex(&cv.signature), HEADER + 4..HEADER + 4 + cv.signature.len()),
        ],
    )
}

/// Summary and fields of a KeyUpdate.
pub(crate) fn key_update(update_requested: bool) -> (String, Vec<Field>) {
    let s = if update_requested { "update_requested" } else { "update_not_requested" };
    (s.into(), vec![field_at("request_update", s, HEADER..HEADER + 1)])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::pki;
    use crate::tls::{
        CertifiedKey, ClientConfig, Connection, Event, RootStore, SeededRng, ServerConfig, ServerName,
        ServerTrust, Step,
    };

    /// Handshake messages as one side reported them: name, fields and bytes.
    type Messages = Vec<(&'static str, Vec<super::Field>, Vec<u8>)>;

    /// Every handshake message one side reported.
    fn messages(conn: &mut Connection) -> Messages {
        let mut out = Vec::new();
        while let Some(e) = conn.poll_event() {
            if let Event::Handshake(s) = e
                && let Step::Message { name, fields, bytes, .. } = s.step
            {
                out.push((name, fields, bytes));
            }
        }
        out
    }

    /// A whole in-memory handshake; the client's and the server's messages.
    fn handshake() -> (Messages, Messages) {
        let now = 1_793_491_200;
        let (ca, server) = pki::test_room_for_testing_only(31, now).unwrap();
        let mut roots = RootStore::new();
        roots.add_der(&ca.cert_der).unwrap();
        let server = CertifiedKey { chain: server.chain_der.clone(), key: server.key.clone() };
        let mut client = Connection::client(
            Arc::new(ClientConfig::new(ServerTrust::Roots(roots))),
            ServerName::parse("localhost").unwrap(),
            Box::new(SeededRng::new_for_testing_only(1)),
        )
        .unwrap();
        let mut srv = Connection::server(
            Arc::new(ServerConfig::new(server)),
            Box::new(SeededRng::new_for_testing_only(2)),
        );
        for _ in 0..20 {
            let mut buf = Vec::new();
            if client.poll_transmit(&mut buf) {
                srv.handle_input(&buf, now + 86_400).unwrap();
            }
            let mut buf = Vec::new();
            if srv.poll_transmit(&mut buf) {
                client.handle_input(&buf, now + 86_400).unwrap();
            }
        }
        assert!(!client.is_handshaking() && !srv.is_handshaking());
        (messages(&mut client), messages(&mut srv))
    }

    fn at<'a>(fields: &[super::Field], bytes: &'a [u8], name: &str) -> &'a [u8] {
        let f = fields.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no field {name}"));
        &bytes[f.range.clone().unwrap_or_else(|| panic!("{name} has no range"))]
    }

    #[test]
    fn field_ranges_point_at_the_fields_bytes_in_real_messages() {
        let (client, server) = handshake();
        let names: Vec<_> = client.iter().map(|m| m.0).collect();
        assert!(names.contains(&"Certificate") && names.contains(&"CertificateVerify"), "{names:?}");
        for (side, msgs) in [("client", &client), ("server", &server)] {
            for (name, fields, bytes) in msgs.iter() {
                for f in fields {
                    if let Some(r) = &f.range {
                        assert!(r.start >= 4 && r.end <= bytes.len(), "{side} {name} {} {r:?}", f.name);
                    }
                }
                match *name {
                    "ClientHello" => {
                        let ch = crate::tls::messages::ClientHello::decode(&bytes[4..]).unwrap();
                        assert_eq!(at(fields, bytes, "legacy_version"), &ch.legacy_version.to_be_bytes());
                        assert_eq!(at(fields, bytes, "random"), &ch.random);
                        assert_eq!(at(fields, bytes, "legacy_session_id"), ch.session_id.as_slice());
                        let suites: Vec<u8> =
                            ch.cipher_suites.iter().flat_map(|s| s.0.to_be_bytes()).collect();
                        assert_eq!(at(fields, bytes, "cipher_suites"), suites.as_slice());
                    }
                    "ServerHello" => {
                        let sh = crate::tls::messages::ServerHello::decode(&bytes[4..]).unwrap();
                        assert_eq!(at(fields, bytes, "random"), &sh.random);
                        assert_eq!(at(fields, bytes, "legacy_session_id_echo"), sh.session_id.as_slice());
                        assert_eq!(at(fields, bytes, "cipher_suite"), &sh.cipher_suite.0.to_be_bytes());
                    }
                    "Certificate" => {
                        let c = crate::tls::messages::Certificate::decode(&bytes[4..]).unwrap();
                        assert_eq!(at(fields, bytes, "leaf"), c.chain[0].as_slice());
                    }
                    "CertificateVerify" => {
                        let cv = crate::tls::messages::CertificateVerify::decode(&bytes[4..]).unwrap();
                        assert_eq!(at(fields, bytes, "algorithm"), &cv.scheme.0.to_be_bytes());
                        assert_eq!(at(fields, bytes, "signature"), cv.signature.as_slice());
                        assert_eq!(fields[1].range.as_ref().unwrap().end, bytes.len());
                    }
                    "Finished" => {
                        assert_eq!(at(fields, bytes, "verify_data"), &bytes[4..]);
                        assert_eq!(bytes[4..].len(), 32);
                    }
                    _ => {}
                }
            }
        }
        // Both sides saw both hellos and both Finished, sent and received.
        for msgs in [&client, &server] {
            for want in ["ClientHello", "ServerHello", "Finished"] {
                assert!(msgs.iter().any(|m| m.0 == want), "{want} missing");
            }
        }
    }

    #[test]
    fn a_huge_hello_is_described_in_a_bounded_number_of_short_fields() {
        use crate::tls::messages::{ClientHello, KeyShareEntry, NamedGroup, SignatureScheme};
        let ch = ClientHello {
            cipher_suites: (0..5_000).map(crate::tls::CipherSuite).collect(),
            signature_algorithms: Some((0..30_000).map(SignatureScheme).collect()),
            supported_groups: Some((0..3_000).map(NamedGroup).collect()),
            key_shares: Some(
                (0..3_000).map(|g| KeyShareEntry { group: NamedGroup(g), key_exchange: vec![1] }).collect(),
            ),
            alpn: Some(vec![b"x".to_vec(); 1_000]),
            extension_order: (0..16_000).map(crate::tls::messages::ExtensionType).collect(),
            ..ClientHello::default()
        };
        let (summary, fields) = super::client_hello(&ch);
        assert!(summary.len() < 1_500, "a summary of {} bytes", summary.len());
        assert!(fields.len() < 50, "{} fields", fields.len());
        for f in &fields {
            assert!(f.value.len() < 1_500, "{}: {} bytes", f.name, f.value.len());
        }
        let schemes = fields.iter().find(|f| f.name == "signature_algorithms").unwrap();
        assert!(schemes.value.ends_with("and 29968 more"), "{}", schemes.value);
    }

    #[test]
    fn a_certificate_range_skips_entry_extensions_a_peer_may_send() {
        // One entry whose cert_data is 3 bytes, followed by a 2-byte extension block.
        let der = vec![0x30, 0x01, 0x00];
        let mut body = vec![0u8]; // empty context
        let entry = [&[0, 0, 3][..], &der, &[0, 4, 0xaa, 0xbb, 0xcc, 0xdd]].concat();
        let second = [&[0, 0, 2][..], &[0x30, 0x00], &[0, 0]].concat();
        let list = [entry, second].concat();
        body.extend_from_slice(&[0, 0, u8::try_from(list.len()).unwrap()]);
        body.extend_from_slice(&list);
        let mut raw = vec![11, 0, 0, u8::try_from(body.len()).unwrap()];
        raw.extend_from_slice(&body);
        let c = crate::tls::messages::Certificate::decode(&raw[4..]).unwrap();
        let (_, fields) = super::certificate(&c, &raw);
        assert_eq!(fields[0].range, Some(11..14));
        assert_eq!(&raw[fields[1].range.clone().unwrap()], &[0x30, 0x00]);
    }
}
