//! Handshake messages and wire codes (RFC 8446 §4, §4.2, §B.3).
//!
//! Wire codes are newtypes over their integer with named constants, so a code
//! we do not know still decodes and can be skipped or reported. Each message
//! type decodes with a [`Reader`] that rejects trailing bytes and encodes into
//! a `Vec<u8>` in one pass.

use std::fmt;

use super::codec::{
    CodeSet, InvalidMessage, LenPrefix, Reader, TooLong, put_bytes, put_items, put_u16, put_u16_items,
    put_vec,
};

macro_rules! wire_code {
    ($(#[$meta:meta])* $vis:vis $name:ident($ty:ty) { $($(#[$cmeta:meta])* $konst:ident = $value:expr => $text:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        $vis struct $name($vis $ty);

        impl $name {
            $($(#[$cmeta])* $vis const $konst: Self = Self($value);)*

            /// The name the RFC gives this code, if we know it.
            $vis fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$konst => Some($text),)*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}(0x{:x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

wire_code! {
    /// `ContentType` of a record (§5.1).
    pub ContentType(u8) {
        /// change_cipher_spec(20), only ever the middlebox-compatibility dummy.
        CHANGE_CIPHER_SPEC = 20 => "change_cipher_spec",
        /// alert(21)
        ALERT = 21 => "alert",
        /// handshake(22)
        HANDSHAKE = 22 => "handshake",
        /// application_data(23)
        APPLICATION_DATA = 23 => "application_data",
    }
}

wire_code! {
    /// `HandshakeType` (§4).
    pub HandshakeType(u8) {
        /// client_hello(1)
        CLIENT_HELLO = 1 => "ClientHello",
        /// server_hello(2), also HelloRetryRequest
        SERVER_HELLO = 2 => "ServerHello",
        /// new_session_ticket(4)
        NEW_SESSION_TICKET = 4 => "NewSessionTicket",
        /// end_of_early_data(5)
        END_OF_EARLY_DATA = 5 => "EndOfEarlyData",
        /// encrypted_extensions(8)
        ENCRYPTED_EXTENSIONS = 8 => "EncryptedExtensions",
        /// certificate(11)
        CERTIFICATE = 11 => "Certificate",
        /// certificate_request(13)
        CERTIFICATE_REQUEST = 13 => "CertificateRequest",
        /// certificate_verify(15)
        CERTIFICATE_VERIFY = 15 => "CertificateVerify",
        /// finished(20)
        FINISHED = 20 => "Finished",
        /// key_update(24)
        KEY_UPDATE = 24 => "KeyUpdate",
        /// message_hash(254): stands in for ClientHello1 after a HelloRetryRequest (§4.4.1)
        MESSAGE_HASH = 254 => "message_hash",
    }
}

wire_code! {
    /// `CipherSuite` (§B.4).
    pub CipherSuite(u16) {
        /// TLS_AES_128_GCM_SHA256 {0x13,0x01}: mandatory to implement (§9.1).
        TLS_AES_128_GCM_SHA256 = 0x1301 => "TLS_AES_128_GCM_SHA256",
        /// TLS_AES_256_GCM_SHA384 {0x13,0x02}: recognised, not supported.
        TLS_AES_256_GCM_SHA384 = 0x1302 => "TLS_AES_256_GCM_SHA384",
        /// TLS_CHACHA20_POLY1305_SHA256 {0x13,0x03}: tlschat's preference.
        TLS_CHACHA20_POLY1305_SHA256 = 0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        /// TLS_EMPTY_RENEGOTIATION_INFO_SCSV, always offered by OpenSSL; ignored.
        TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    }
}

wire_code! {
    /// `NamedGroup` (§4.2.7).
    pub NamedGroup(u16) {
        /// secp256r1(0x0017): recognised, not supported.
        SECP256R1 = 0x0017 => "secp256r1",
        /// secp384r1(0x0018): recognised, not supported.
        SECP384R1 = 0x0018 => "secp384r1",
        /// x25519(0x001D): the only group tlschat speaks.
        X25519 = 0x001d => "x25519",
        /// x448(0x001E): recognised, not supported.
        X448 = 0x001e => "x448",
    }
}

wire_code! {
    /// `SignatureScheme` (§4.2.3).
    pub SignatureScheme(u16) {
        /// ecdsa_secp256r1_sha256(0x0403): recognised, not supported.
        ECDSA_SECP256R1_SHA256 = 0x0403 => "ecdsa_secp256r1_sha256",
        /// rsa_pss_rsae_sha256(0x0804): recognised, not supported.
        RSA_PSS_RSAE_SHA256 = 0x0804 => "rsa_pss_rsae_sha256",
        /// ed25519(0x0807): the only scheme tlschat signs and verifies with.
        ED25519 = 0x0807 => "ed25519",
    }
}

wire_code! {
    /// `ExtensionType` (§4.2).
    pub ExtensionType(u16) {
        /// server_name(0), RFC 6066
        SERVER_NAME = 0 => "server_name",
        /// supported_groups(10), RFC 8422 and 7919
        SUPPORTED_GROUPS = 10 => "supported_groups",
        /// signature_algorithms(13)
        SIGNATURE_ALGORITHMS = 13 => "signature_algorithms",
        /// application_layer_protocol_negotiation(16), RFC 7301
        ALPN = 16 => "application_layer_protocol_negotiation",
        /// pre_shared_key(41)
        PRE_SHARED_KEY = 41 => "pre_shared_key",
        /// early_data(42)
        EARLY_DATA = 42 => "early_data",
        /// supported_versions(43)
        SUPPORTED_VERSIONS = 43 => "supported_versions",
        /// cookie(44)
        COOKIE = 44 => "cookie",
        /// psk_key_exchange_modes(45)
        PSK_KEY_EXCHANGE_MODES = 45 => "psk_key_exchange_modes",
        /// signature_algorithms_cert(50)
        SIGNATURE_ALGORITHMS_CERT = 50 => "signature_algorithms_cert",
        /// key_share(51)
        KEY_SHARE = 51 => "key_share",
    }
}

wire_code! {
    /// `AlertDescription` (§6).
    pub AlertDescription(u8) {
        /// close_notify(0)
        CLOSE_NOTIFY = 0 => "close_notify",
        /// unexpected_message(10)
        UNEXPECTED_MESSAGE = 10 => "unexpected_message",
        /// bad_record_mac(20)
        BAD_RECORD_MAC = 20 => "bad_record_mac",
        /// record_overflow(22)
        RECORD_OVERFLOW = 22 => "record_overflow",
        /// handshake_failure(40)
        HANDSHAKE_FAILURE = 40 => "handshake_failure",
        /// bad_certificate(42)
        BAD_CERTIFICATE = 42 => "bad_certificate",
        /// unsupported_certificate(43)
        UNSUPPORTED_CERTIFICATE = 43 => "unsupported_certificate",
        /// certificate_revoked(44)
        CERTIFICATE_REVOKED = 44 => "certificate_revoked",
        /// certificate_expired(45)
        CERTIFICATE_EXPIRED = 45 => "certificate_expired",
        /// certificate_unknown(46)
        CERTIFICATE_UNKNOWN = 46 => "certificate_unknown",
        /// illegal_parameter(47)
        ILLEGAL_PARAMETER = 47 => "illegal_parameter",
        /// unknown_ca(48)
        UNKNOWN_CA = 48 => "unknown_ca",
        /// access_denied(49)
        ACCESS_DENIED = 49 => "access_denied",
        /// decode_error(50)
        DECODE_ERROR = 50 => "decode_error",
        /// decrypt_error(51)
        DECRYPT_ERROR = 51 => "decrypt_error",
        /// protocol_version(70)
        PROTOCOL_VERSION = 70 => "protocol_version",
        /// insufficient_security(71)
        INSUFFICIENT_SECURITY = 71 => "insufficient_security",
        /// internal_error(80)
        INTERNAL_ERROR = 80 => "internal_error",
        /// inappropriate_fallback(86)
        INAPPROPRIATE_FALLBACK = 86 => "inappropriate_fallback",
        /// user_canceled(90)
        USER_CANCELED = 90 => "user_canceled",
        /// missing_extension(109)
        MISSING_EXTENSION = 109 => "missing_extension",
        /// unsupported_extension(110)
        UNSUPPORTED_EXTENSION = 110 => "unsupported_extension",
        /// unrecognized_name(112)
        UNRECOGNIZED_NAME = 112 => "unrecognized_name",
        /// bad_certificate_status_response(113)
        BAD_CERTIFICATE_STATUS_RESPONSE = 113 => "bad_certificate_status_response",
        /// unknown_psk_identity(115)
        UNKNOWN_PSK_IDENTITY = 115 => "unknown_psk_identity",
        /// certificate_required(116)
        CERTIFICATE_REQUIRED = 116 => "certificate_required",
        /// no_application_protocol(120)
        NO_APPLICATION_PROTOCOL = 120 => "no_application_protocol",
    }
}

/// `ProtocolVersion` of TLS 1.2, the legacy_version every TLS 1.3 hello carries.
pub const TLS12: u16 = 0x0303;
/// `ProtocolVersion` of TLS 1.3, only ever named in supported_versions (§4.2.1).
pub const TLS13: u16 = 0x0304;

/// ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (§4.1.3).
pub(crate) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2,
    0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// One extension as found on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawExtension<'a> {
    /// extension_type
    pub(crate) typ: ExtensionType,
    /// extension_data
    pub(crate) data: &'a [u8],
}

/// Reads `Extension extensions<0..2^16-1>`, refusing duplicates (§4.2: "There
/// MUST NOT be more than one extension of the same type in a given extension
/// block"), in time linear in the number of extensions.
pub(crate) fn read_extensions<'a>(r: &mut Reader<'a>) -> Result<Vec<RawExtension<'a>>, ExtensionError> {
    let mut seen = CodeSet::new();
    r.vec16()?.items(0, |block| {
        let typ = ExtensionType(block.u16()?);
        let data = block.vec16()?.rest();
        if !seen.insert(typ.0) {
            return Err(ExtensionError::Duplicate(typ));
        }
        Ok(RawExtension { typ, data })
    })
}

/// A problem with an extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtensionError {
    /// The bytes do not parse.
    Decode(InvalidMessage),
    /// The same extension appears twice (illegal_parameter).
    Duplicate(ExtensionType),
}

impl From<InvalidMessage> for ExtensionError {
    fn from(e: InvalidMessage) -> Self {
        Self::Decode(e)
    }
}

fn put_extension(
    out: &mut Vec<u8>,
    typ: ExtensionType,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>,
) -> Result<(), TooLong> {
    let at = out.len();
    put_u16(out, typ.0);
    put_vec(out, LenPrefix::U16, body).inspect_err(|_| out.truncate(at))
}

/// Appends a handshake message: `msg_type`, a uint24 length, then the body (§4).
/// A body over 2^24-1 bytes is refused, with nothing left on `out`.
pub(crate) fn put_handshake(
    out: &mut Vec<u8>,
    typ: HandshakeType,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), TooLong>,
) -> Result<(), TooLong> {
    let at = out.len();
    out.push(typ.0);
    put_vec(out, LenPrefix::U24, body).inspect_err(|_| out.truncate(at))
}

/// A `KeyShareEntry` (§4.2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShareEntry {
    /// group
    pub group: NamedGroup,
    /// key_exchange
    pub key_exchange: Vec<u8>,
}

/// A decoded ClientHello (§4.1.2) with the extensions tlschat acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `ProtocolVersion legacy_version = 0x0303;`
    pub legacy_version: u16,
    /// `Random random;` 32 bytes
    pub random: [u8; 32],
    /// `opaque legacy_session_id<0..32>;` echoed by the server (§D.4)
    pub session_id: Vec<u8>,
    /// `CipherSuite cipher_suites<2..2^16-2>;`
    pub cipher_suites: Vec<CipherSuite>,
    /// `opaque legacy_compression_methods<1..2^8-1>;` must be exactly {0}
    pub compression_methods: Vec<u8>,
    /// supported_versions (§4.2.1), if present
    pub supported_versions: Option<Vec<u16>>,
    /// supported_groups (§4.2.7), if present
    pub supported_groups: Option<Vec<NamedGroup>>,
    /// signature_algorithms (§4.2.3), if present
    pub signature_algorithms: Option<Vec<SignatureScheme>>,
    /// signature_algorithms_cert (§4.2.3), if present (tlschat's only
    /// certificate signature is Ed25519, so it is checked, not used)
    pub signature_algorithms_cert: Option<Vec<SignatureScheme>>,
    /// key_share client_shares (§4.2.8), if present
    pub key_shares: Option<Vec<KeyShareEntry>>,
    /// server_name host_name (RFC 6066 §3), if present
    pub server_name: Option<String>,
    /// ALPN protocol_name_list (RFC 7301 §3.1), if present
    pub alpn: Option<Vec<Vec<u8>>>,
    /// cookie (§4.2.2), echoed from a HelloRetryRequest
    pub cookie: Option<Vec<u8>>,
    /// Whether pre_shared_key was offered (we never accept it, but it must be last).
    pub offered_psk: bool,
    /// Whether early_data was offered (we never accept it).
    pub offered_early_data: bool,
    /// Extension types in the order received, for display.
    pub extension_order: Vec<ExtensionType>,
}

impl ClientHello {
    /// Decodes a ClientHello body (without the handshake header).
    pub fn decode(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body, "ClientHello");
        let mut ch = ClientHello { legacy_version: r.u16()?, random: r.array()?, ..Self::default() };
        let sid = r.vec8()?.rest();
        if sid.len() > 32 {
            return Err(r.invalid("legacy_session_id longer than 32 bytes").into());
        }
        ch.session_id = sid.to_vec();
        // CipherSuite cipher_suites<2..2^16-2>;
        ch.cipher_suites =
            r.vec16()?.u16_items(1, CipherSuite).map_err(|_| r.invalid("cipher_suites length"))?;
        ch.compression_methods = r.vec8()?.rest().to_vec();
        if ch.compression_methods.is_empty() {
            return Err(r.invalid("no compression methods").into());
        }
        if r.is_empty() {
            // A hello without extensions is from TLS 1.2 or older.
            return Ok(ch);
        }
        let extensions = read_extensions(&mut r)?;
        r.finish()?;
        let count = extensions.len();
        for (i, ext) in extensions.into_iter().enumerate() {
            ch.extension_order.push(ext.typ);
            let mut d = Reader::new(ext.data, "ClientHello extension");
            match ext.typ {
                // ProtocolVersion versions<2..254>;
                ExtensionType::SUPPORTED_VERSIONS => {
                    ch.supported_versions = Some(d.vec8()?.u16_items(1, |v| v)?);
                }
                // NamedGroup named_group_list<2..2^16-1>;
                ExtensionType::SUPPORTED_GROUPS => {
                    ch.supported_groups = Some(d.vec16()?.u16_items(1, NamedGroup)?);
                }
                // SignatureScheme supported_signature_algorithms<2..2^16-2>;
                ExtensionType::SIGNATURE_ALGORITHMS => {
                    ch.signature_algorithms = Some(d.vec16()?.u16_items(1, SignatureScheme)?);
                }
                // The same SignatureSchemeList (§4.2.3); read so that a bad one is refused.
                ExtensionType::SIGNATURE_ALGORITHMS_CERT => {
                    ch.signature_algorithms_cert = Some(d.vec16()?.u16_items(1, SignatureScheme)?);
                }
                // KeyShareEntry client_shares<0..2^16-1>;
                ExtensionType::KEY_SHARE => {
                    let mut groups = CodeSet::new();
                    let shares = d.vec16()?.items(0, |list| {
                        let group = NamedGroup(list.u16()?);
                        let key_exchange = list.vec16()?.rest().to_vec();
                        if key_exchange.is_empty() {
                            return Err(list.invalid("empty key_exchange").into());
                        }
                        // §4.2.8: "Clients MUST NOT offer multiple KeyShareEntry values for the same group."
                        if !groups.insert(group.0) {
                            return Err(HelloError::Illegal("two key shares for one group"));
                        }
                        Ok(KeyShareEntry { group, key_exchange })
                    })?;
                    ch.key_shares = Some(shares);
                }
                // ServerName server_name_list<1..2^16-1> (RFC 6066 §3).
                ExtensionType::SERVER_NAME => {
                    let mut host = None;
                    d.vec16()?.items(1, |list| {
                        let name_type = list.u8()?;
                        let name = list.vec16()?.rest();
                        if name_type == 0 {
                            host = Some(host_name(name, host.is_some())?);
                        }
                        Ok::<_, HelloError>(())
                    })?;
                    ch.server_name = host;
                }
                // ProtocolName protocol_name_list<2..2^16-1> (RFC 7301 §3.1).
                ExtensionType::ALPN => {
                    let protocols = d.vec16()?.items(1, |list| {
                        let p = list.vec8()?.rest();
                        if p.is_empty() {
                            return Err(list.invalid("empty ALPN protocol name"));
                        }
                        Ok(p.to_vec())
                    })?;
                    ch.alpn = Some(protocols);
                }
                ExtensionType::COOKIE => {
                    ch.cookie = Some(d.vec16()?.rest().to_vec());
                }
                ExtensionType::PRE_SHARED_KEY => {
                    // §4.2.11: pre_shared_key MUST be the last extension.
                    if i + 1 != count {
                        return Err(HelloError::Illegal("pre_shared_key is not the last extension"));
                    }
                    ch.offered_psk = true;
                    d.rest();
                }
                ExtensionType::EARLY_DATA => {
                    ch.offered_early_data = true;
                }
                _ => {
                    // Unknown or unused extensions are ignored (§4.1.2).
                    d.rest();
                }
            }
            d.finish()?;
        }
        Ok(ch)
    }

    /// Encodes the whole handshake message (header included) onto `out`.
    ///
    /// A field longer than its length prefix allows is refused with
    /// [`TooLong`], and nothing is left on `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::CLIENT_HELLO, |out| {
            put_u16(out, self.legacy_version);
            out.extend_from_slice(&self.random);
            put_bytes(out, LenPrefix::U8, &self.session_id)?;
            put_u16_items(out, LenPrefix::U16, self.cipher_suites.iter().map(|s| s.0))?;
            put_bytes(out, LenPrefix::U8, &self.compression_methods)?;
            put_vec(out, LenPrefix::U16, |out| {
                if let Some(name) = &self.server_name {
                    put_extension(out, ExtensionType::SERVER_NAME, |out| {
                        put_vec(out, LenPrefix::U16, |out| {
                            out.push(0); // host_name
                            put_bytes(out, LenPrefix::U16, name.as_bytes())
                        })
                    })?;
                }
                if let Some(groups) = &self.supported_groups {
                    put_extension(out, ExtensionType::SUPPORTED_GROUPS, |out| {
                        put_u16_items(out, LenPrefix::U16, groups.iter().map(|g| g.0))
                    })?;
                }
                if let Some(schemes) = &self.signature_algorithms {
                    put_extension(out, ExtensionType::SIGNATURE_ALGORITHMS, |out| {
                        put_u16_items(out, LenPrefix::U16, schemes.iter().map(|s| s.0))
                    })?;
                }
                if let Some(schemes) = &self.signature_algorithms_cert {
                    put_extension(out, ExtensionType::SIGNATURE_ALGORITHMS_CERT, |out| {
                        put_u16_items(out, LenPrefix::U16, schemes.iter().map(|s| s.0))
                    })?;
                }
                if let Some(protocols) = &self.alpn {
                    put_extension(out, ExtensionType::ALPN, |out| {
                        put_items(out, LenPrefix::U16, protocols, |out, p| put_bytes(out, LenPrefix::U8, p))
                    })?;
                }
                if let Some(cookie) = &self.cookie {
                    put_extension(out, ExtensionType::COOKIE, |out| put_bytes(out, LenPrefix::U16, cookie))?;
                }
                if let Some(shares) = &self.key_shares {
                    put_extension(out, ExtensionType::KEY_SHARE, |out| {
                        put_items(out, LenPrefix::U16, shares, |out, s| {
                            put_u16(out, s.group.0);
                            put_bytes(out, LenPrefix::U16, &s.key_exchange)
                        })
                    })?;
                }
                if let Some(versions) = &self.supported_versions {
                    put_extension(out, ExtensionType::SUPPORTED_VERSIONS, |out| {
                        put_u16_items(out, LenPrefix::U8, versions.iter().copied())
                    })?;
                }
                Ok(())
            })
        })
    }
}

/// Checks a server_name `HostName` (RFC 6066 §3): one per list, at least one
/// byte (`opaque HostName<1..2^16-1>`), and a plain DNS host name: ASCII
/// letters, digits, hyphens (and the underscores some hosts use), in dot-
/// separated labels of 1 to 63 bytes, without the trailing dot RFC 6066
/// forbids. Anything else, control characters and terminal escape
/// sequences above all, is illegal_parameter: the name reaches logs and
/// the screen.
fn host_name(name: &[u8], already: bool) -> Result<String, HelloError> {
    if already {
        return Err(HelloError::Illegal("two host names in server_name"));
    }
    if name.is_empty() {
        return Err(InvalidMessage { what: "server_name", why: "empty host name" }.into());
    }
    match std::str::from_utf8(name) {
        Ok(text) if super::cert::is_dns_name(text) => Ok(text.to_owned()),
        _ => Err(HelloError::Illegal("server_name is not a plain host name")),
    }
}

/// What went wrong decoding a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// The bytes do not parse (decode_error).
    Decode(InvalidMessage),
    /// They parse but break a rule of the RFC (illegal_parameter).
    Illegal(&'static str),
}

impl From<InvalidMessage> for HelloError {
    fn from(e: InvalidMessage) -> Self {
        Self::Decode(e)
    }
}

impl From<ExtensionError> for HelloError {
    fn from(e: ExtensionError) -> Self {
        match e {
            ExtensionError::Decode(e) => Self::Decode(e),
            ExtensionError::Duplicate(_) => Self::Illegal("duplicate extension"),
        }
    }
}

/// A decoded ServerHello or HelloRetryRequest (§4.1.3, §4.1.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// `ProtocolVersion legacy_version = 0x0303;`
    pub(crate) legacy_version: u16,
    /// `Random random;` ([`HRR_RANDOM`] for a HelloRetryRequest)
    pub(crate) random: [u8; 32],
    /// `opaque legacy_session_id_echo<0..32>;`
    pub session_id: Vec<u8>,
    /// `CipherSuite cipher_suite;`
    pub cipher_suite: CipherSuite,
    /// `uint8 legacy_compression_method = 0;`
    pub(crate) compression_method: u8,
    /// supported_versions selected_version (§4.2.1)
    pub(crate) selected_version: Option<u16>,
    /// key_share server_share (§4.2.8)
    pub key_share: Option<KeyShareEntry>,
    /// key_share selected_group, in a HelloRetryRequest (§4.2.8)
    pub(crate) hrr_group: Option<NamedGroup>,
    /// cookie (§4.2.2), in a HelloRetryRequest
    pub(crate) cookie: Option<Vec<u8>>,
    /// Other extension types present (the client refuses them).
    pub(crate) other_extensions: Vec<ExtensionType>,
}

impl ServerHello {
    /// Whether this is a HelloRetryRequest.
    pub fn is_retry_request(&self) -> bool {
        self.random == HRR_RANDOM
    }

    /// Decodes a ServerHello body.
    pub fn decode(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body, "ServerHello");
        let mut sh = ServerHello { legacy_version: r.u16()?, random: r.array()?, ..Self::default() };
        let sid = r.vec8()?.rest();
        if sid.len() > 32 {
            return Err(r.invalid("legacy_session_id_echo longer than 32 bytes").into());
        }
        sh.session_id = sid.to_vec();
        sh.cipher_suite = CipherSuite(r.u16()?);
        sh.compression_method = r.u8()?;
        if r.is_empty() {
            return Ok(sh);
        }
        let retry = sh.is_retry_request();
        for ext in read_extensions(&mut r)? {
            let mut d = Reader::new(ext.data, "ServerHello extension");
            match ext.typ {
                ExtensionType::SUPPORTED_VERSIONS => sh.selected_version = Some(d.u16()?),
                ExtensionType::KEY_SHARE if retry => sh.hrr_group = Some(NamedGroup(d.u16()?)),
                ExtensionType::KEY_SHARE => {
                    let group = NamedGroup(d.u16()?);
                    let key_exchange = d.vec16()?.rest().to_vec();
                    sh.key_share = Some(KeyShareEntry { group, key_exchange });
                }
                ExtensionType::COOKIE if retry => {
                    let cookie = d.vec16()?.rest();
                    if cookie.is_empty() {
                        return Err(d.invalid("empty cookie").into());
                    }
                    sh.cookie = Some(cookie.to_vec());
                }
                other => {
                    sh.other_extensions.push(other);
                    d.rest();
                }
            }
            d.finish()?;
        }
        r.finish()?;
        Ok(sh)
    }

    /// Encodes the whole handshake message (header included) onto `out`.
    /// A field longer than its length prefix allows is refused.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::SERVER_HELLO, |out| {
            put_u16(out, self.legacy_version);
            out.extend_from_slice(&self.random);
            put_bytes(out, LenPrefix::U8, &self.session_id)?;
            put_u16(out, self.cipher_suite.0);
            out.push(self.compression_method);
            put_vec(out, LenPrefix::U16, |out| {
                if let Some(v) = self.selected_version {
                    put_extension(out, ExtensionType::SUPPORTED_VERSIONS, |out| {
                        put_u16(out, v);
                        Ok(())
                    })?;
                }
                if let Some(group) = self.hrr_group {
                    put_extension(out, ExtensionType::KEY_SHARE, |out| {
                        put_u16(out, group.0);
                        Ok(())
                    })?;
                }
                if let Some(share) = &self.key_share {
                    put_extension(out, ExtensionType::KEY_SHARE, |out| {
                        put_u16(out, share.group.0);
                        put_bytes(out, LenPrefix::U16, &share.key_exchange)
                    })?;
                }
                if let Some(cookie) = &self.cookie {
                    put_extension(out, ExtensionType::COOKIE, |out| put_bytes(out, LenPrefix::U16, cookie))?;
                }
                Ok(())
            })
        })
    }
}

/// EncryptedExtensions (§4.3.1): the extensions tlschat sends or accepts there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptedExtensions {
    /// The ALPN protocol the server selected.
    pub(crate) alpn: Option<Vec<u8>>,
    /// Whether the server acknowledged server_name with an empty extension.
    pub(crate) server_name_ack: bool,
    /// Other extension types present.
    pub(crate) other_extensions: Vec<ExtensionType>,
}

impl EncryptedExtensions {
    /// Decodes an EncryptedExtensions body.
    pub fn decode(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body, "EncryptedExtensions");
        let mut ee = Self::default();
        for ext in read_extensions(&mut r)? {
            let mut d = Reader::new(ext.data, "EncryptedExtensions extension");
            match ext.typ {
                ExtensionType::ALPN => {
                    let mut list = d.vec16()?;
                    let name = list.vec8()?.rest();
                    list.finish().map_err(|_| HelloError::Illegal("ALPN must name exactly one protocol"))?;
                    if name.is_empty() {
                        return Err(d.invalid("empty ALPN protocol name").into());
                    }
                    ee.alpn = Some(name.to_vec());
                }
                ExtensionType::SERVER_NAME => ee.server_name_ack = true,
                other => {
                    ee.other_extensions.push(other);
                    d.rest();
                }
            }
            d.finish()?;
        }
        r.finish()?;
        Ok(ee)
    }

    /// Encodes the whole handshake message onto `out`.
    /// A field longer than its length prefix allows is refused.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::ENCRYPTED_EXTENSIONS, |out| {
            put_vec(out, LenPrefix::U16, |out| {
                if self.server_name_ack {
                    put_extension(out, ExtensionType::SERVER_NAME, |_| Ok(()))?;
                }
                if let Some(p) = &self.alpn {
                    put_extension(out, ExtensionType::ALPN, |out| {
                        put_vec(out, LenPrefix::U16, |out| put_bytes(out, LenPrefix::U8, p))
                    })?;
                }
                Ok(())
            })
        })
    }
}

/// CertificateRequest (§4.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateRequest {
    /// `opaque certificate_request_context<0..2^8-1>;` empty during the handshake
    pub(crate) context: Vec<u8>,
    /// signature_algorithms, required (§4.3.2)
    pub(crate) signature_algorithms: Vec<SignatureScheme>,
}

impl CertificateRequest {
    /// Decodes a CertificateRequest body.
    pub fn decode(body: &[u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body, "CertificateRequest");
        let context = r.vec8()?.rest().to_vec();
        let mut schemes = None;
        for ext in read_extensions(&mut r)? {
            if ext.typ == ExtensionType::SIGNATURE_ALGORITHMS {
                let mut d = Reader::new(ext.data, "CertificateRequest extension");
                schemes = Some(d.vec16()?.u16_items(1, SignatureScheme)?);
                d.finish()?;
            }
        }
        r.finish()?;
        let signature_algorithms =
            schemes.ok_or(HelloError::Illegal("CertificateRequest without signature_algorithms"))?;
        Ok(Self { context, signature_algorithms })
    }

    /// Encodes the whole handshake message onto `out`.
    /// A field longer than its length prefix allows is refused.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::CERTIFICATE_REQUEST, |out| {
            put_bytes(out, LenPrefix::U8, &self.context)?;
            put_vec(out, LenPrefix::U16, |out| {
                put_extension(out, ExtensionType::SIGNATURE_ALGORITHMS, |out| {
                    put_u16_items(out, LenPrefix::U16, self.signature_algorithms.iter().map(|s| s.0))
                })
            })
        })
    }
}

/// Certificate (§4.4.2): the chain, leaf first; per-entry extensions are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Certificate {
    /// `opaque certificate_request_context<0..2^8-1>;`
    pub context: Vec<u8>,
    /// `cert_data` of each CertificateEntry (X.509 DER).
    pub chain: Vec<Vec<u8>>,
}

impl Certificate {
    /// Decodes a Certificate body.
    pub fn decode(body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body, "Certificate");
        let context = r.vec8()?.rest().to_vec();
        let chain = r.vec24()?.items(0, |list| {
            let data = list.vec24()?.rest();
            if data.is_empty() {
                return Err(list.invalid("empty cert_data"));
            }
            list.vec16()?; // extensions of the entry: none are requested, so none matter
            Ok(data.to_vec())
        })?;
        r.finish()?;
        Ok(Self { context, chain })
    }

    /// Encodes the whole handshake message onto `out`.
    /// A certificate, or the chain, longer than 2^24-1 bytes is refused.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::CERTIFICATE, |out| {
            put_bytes(out, LenPrefix::U8, &self.context)?;
            put_items(out, LenPrefix::U24, &self.chain, |out, cert| {
                put_bytes(out, LenPrefix::U24, cert)?;
                put_u16(out, 0); // no per-entry extensions
                Ok(())
            })
        })
    }
}

/// CertificateVerify (§4.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateVerify {
    /// `SignatureScheme algorithm;`
    pub(crate) scheme: SignatureScheme,
    /// `opaque signature<0..2^16-1>;`
    pub(crate) signature: Vec<u8>,
}

impl CertificateVerify {
    /// Decodes a CertificateVerify body.
    pub fn decode(body: &[u8]) -> Result<Self, InvalidMessage> {
        let mut r = Reader::new(body, "CertificateVerify");
        let scheme = SignatureScheme(r.u16()?);
        let signature = r.vec16()?.rest().to_vec();
        r.finish()?;
        Ok(Self { scheme, signature })
    }

    /// Encodes the whole handshake message onto `out`.
    /// A signature over 65,535 bytes is refused.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        put_handshake(out, HandshakeType::CERTIFICATE_VERIFY, |out| {
            put_u16(out, self.scheme.0);
            put_bytes(out, LenPrefix::U16, &self.signature)
        })
    }
}

/// Encodes a Finished message (§4.4.4) onto `out`.
pub fn encode_finished(out: &mut Vec<u8>, verify_data: &[u8; 32]) {
    out.push(HandshakeType::FINISHED.0);
    out.extend_from_slice(&[0, 0, 32]);
    out.extend_from_slice(verify_data);
}

/// Encodes a KeyUpdate message (§4.6.3) onto `out`.
pub(crate) fn encode_key_update(out: &mut Vec<u8>, update_requested: bool) {
    out.extend_from_slice(&[HandshakeType::KEY_UPDATE.0, 0, 0, 1, u8::from(update_requested)]);
}

/// Decodes a KeyUpdate body: `Some(update_requested)`, or `None` for a value
/// other than 0 or 1 (illegal_parameter).
pub fn decode_key_update(body: &[u8]) -> Result<Option<bool>, InvalidMessage> {
    let mut r = Reader::new(body, "KeyUpdate");
    let v = r.u8()?;
    r.finish()?;
    Ok(match v {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    })
}

/// The synthetic `message_hash` message that replaces ClientHello1 in the
/// transcript after a HelloRetryRequest (§4.4.1).
pub fn message_hash(hash_of_client_hello1: &[u8; 32]) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[0] = HandshakeType::MESSAGE_HASH.0;
    out[3] = 32;
    out[4..].copy_from_slice(hash_of_client_hello1);
    out
}

/// Encodes an alert record body (§6).
pub(crate) fn encode_alert(desc: AlertDescription) -> [u8; 2] {
    // Every alert but close_notify and user_canceled is fatal in TLS 1.3 (§6).
    let level =
        if desc == AlertDescription::CLOSE_NOTIFY || desc == AlertDescription::USER_CANCELED { 1 } else { 2 };
    [level, desc.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrr_random_is_sha256_of_its_name() {
        assert_eq!(crate::tls::crypto::sha256(b"HelloRetryRequest"), HRR_RANDOM);
    }

    #[test]
    fn client_hello_round_trips() {
        let ch = ClientHello {
            legacy_version: TLS12,
            random: [7; 32],
            session_id: vec![1; 32],
            cipher_suites: vec![CipherSuite::TLS_CHACHA20_POLY1305_SHA256, CipherSuite(0x00ff)],
            compression_methods: vec![0],
            supported_versions: Some(vec![TLS13]),
            supported_groups: Some(vec![NamedGroup::X25519]),
            signature_algorithms: Some(vec![SignatureScheme::ED25519]),
            key_shares: Some(vec![KeyShareEntry { group: NamedGroup::X25519, key_exchange: vec![9; 32] }]),
            server_name: Some("localhost".into()),
            alpn: Some(vec![b"tlschat/1".to_vec()]),
            ..ClientHello::default()
        };
        let mut out = Vec::new();
        ch.encode(&mut out).unwrap();
        let mut decoded = ClientHello::decode(&out[4..]).unwrap();
        decoded.extension_order.clear();
        assert_eq!(decoded, ch);
    }

    #[test]
    fn duplicate_extensions_are_illegal() {
        let mut out = Vec::new();
        ClientHello {
            compression_methods: vec![0],
            cipher_suites: vec![CipherSuite(1)],
            ..Default::default()
        }
        .encode(&mut out)
        .unwrap();
        // Replace the empty extension block with two supported_versions.
        out.truncate(out.len() - 2);
        out.extend_from_slice(&[0, 14, 0, 43, 0, 3, 2, 3, 4, 0, 43, 0, 3, 2, 3, 4]);
        assert_eq!(ClientHello::decode(&out[4..]), Err(HelloError::Illegal("duplicate extension")));
    }

    #[test]
    fn unknown_codes_survive_and_print_in_hex() {
        assert_eq!(format!("{:?}", CipherSuite(0x1304)), "CipherSuite(0x1304)");
        assert_eq!(CipherSuite::TLS_AES_128_GCM_SHA256.to_string(), "TLS_AES_128_GCM_SHA256");
    }

    #[test]
    fn an_extension_over_65535_bytes_is_refused_and_leaves_nothing() {
        // The cookie extension's body is the cookie's own uint16 length and
        // its bytes; the block of extensions adds the extension's type and
        // length. Alone in the block, a cookie of 65,529 bytes fills it to
        // exactly 65,535.
        let hello = |cookie_len: usize| ClientHello {
            compression_methods: vec![0],
            cipher_suites: vec![CipherSuite(1)],
            cookie: Some(vec![7; cookie_len]),
            ..Default::default()
        };
        let mut out = Vec::new();
        hello(65_529).encode(&mut out).unwrap();
        let decoded = ClientHello::decode(&out[4..]).unwrap();
        assert_eq!(decoded.cookie.map(|c| c.len()), Some(65_529));
        let mut out = vec![1, 2];
        assert_eq!(hello(65_530).encode(&mut out), Err(TooLong { prefix: LenPrefix::U16, len: 65_536 }));
        assert_eq!(out, [1, 2]);

        // The extension's body is exactly 65,535 at 65,533, and the block
        // is refused; one more and the extension itself is.
        let mut out = vec![1, 2];
        assert_eq!(hello(65_533).encode(&mut out), Err(TooLong { prefix: LenPrefix::U16, len: 65_539 }));
        assert_eq!(out, [1, 2]);
        let mut out = vec![1, 2];
        assert_eq!(hello(65_534).encode(&mut out), Err(TooLong { prefix: LenPrefix::U16, len: 65_536 }));
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn a_certificate_message_over_2_24_bytes_is_refused() {
        const MAX: usize = (1 << 24) - 1;
        // The handshake body is the context's uint8 length, the chain's
        // uint24 length and one entry: a uint24 length, the certificate and
        // a uint16 for its (empty) extensions. 9 bytes beside the
        // certificate, so the message's own uint24 is the first to fill.
        let chain = |len: usize| Certificate { context: Vec::new(), chain: vec![vec![1; len]] };
        let mut out = Vec::new();
        chain(MAX - 9).encode(&mut out).unwrap();
        assert_eq!(out[..4], [HandshakeType::CERTIFICATE.0, 0xff, 0xff, 0xff]);
        assert_eq!(out.len(), 4 + MAX);
        assert_eq!(Certificate::decode(&out[4..]).unwrap().chain[0].len(), MAX - 9);

        let mut out = Vec::new();
        assert_eq!(chain(MAX - 8).encode(&mut out), Err(TooLong { prefix: LenPrefix::U24, len: MAX + 1 }));
        assert!(out.is_empty());
        // One certificate over its own uint24 is refused before the chain is.
        assert_eq!(chain(MAX + 1).encode(&mut out), Err(TooLong { prefix: LenPrefix::U24, len: MAX + 1 }));
        // And a context over its uint8.
        let mut out = Vec::new();
        let long_context = Certificate { context: vec![0; 256], chain: Vec::new() };
        assert_eq!(long_context.encode(&mut out), Err(TooLong { prefix: LenPrefix::U8, len: 256 }));
        assert!(out.is_empty());
    }
}
