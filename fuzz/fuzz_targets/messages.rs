//! The handshake message decoders on their own, for the messages that
//! arrive encrypted and so are out of the engine targets' reach: one whole
//! message (type, 3-byte length, body), decoded by its type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat::tls::internal::messages::{
    Certificate, CertificateRequest, CertificateVerify, ClientHello, EncryptedExtensions, ServerHello,
    decode_key_update,
};

fuzz_target!(|data: &[u8]| {
    let Some((&typ, rest)) = data.split_first() else { return };
    let body = rest.get(3..).unwrap_or_default();
    match typ {
        1 => drop(ClientHello::decode(body)),
        2 => drop(ServerHello::decode(body)),
        8 => drop(EncryptedExtensions::decode(body)),
        11 => drop(Certificate::decode(body)),
        13 => drop(CertificateRequest::decode(body)),
        15 => drop(CertificateVerify::decode(body)),
        24 => drop(decode_key_update(body)),
        _ => {
            drop(ClientHello::decode(body));
            drop(ServerHello::decode(body));
        }
    }
});
