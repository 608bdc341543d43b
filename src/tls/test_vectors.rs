//! Known-answer tests: the engine's key schedule, record protection and
//! primitives against published vectors.
//!
//! - RFC 8448 §3 "Simple 1-RTT Handshake" (X25519, TLS_AES_128_GCM_SHA256):
//!   every secret of the schedule, both finished keys and verify_data, every
//!   write key and IV, and the protected records byte for byte.
//! - RFC 7748 §6.1 (X25519), RFC 8032 §7.1 tests 1–3 (Ed25519),
//!   RFC 8439 §2.8.2 (ChaCha20-Poly1305), RFC 5869 A.1 (HKDF-SHA256).
//!
//! The hex strings are copied from the RFCs in their own layout (spaced
//! octets, wrapped lines), so each can be compared with the text by eye.

use super::crypto::{
    self, AeadKey, Ed25519Key, Secret, X25519Secret, ed25519_verify, hkdf_expand, hkdf_extract, sha256,
};
use super::key_schedule::{
    HandshakeSecrets, Label, LabelContext, TrafficSecret, derive_secret, expand_label, finished_key,
    traffic_keys, verify_data,
};
use super::messages::{
    CertificateVerify, CipherSuite, ClientHello, ContentType, EncryptedExtensions, ExtensionType, NamedGroup,
    ServerHello, SignatureScheme, TLS12, TLS13,
};
use super::record::{HEADER_LEN, Protection};

/// Bytes from hex, ignoring whitespace (so RFC text can be pasted as it is).
fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ASCII");
            u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("{text:?} is not hex"))
        })
        .collect()
}

/// A fixed-size array from hex.
fn unhex_array<const N: usize>(s: &str) -> [u8; N] {
    let bytes = unhex(s);
    bytes.as_slice().try_into().unwrap_or_else(|_| panic!("expected {N} bytes, got {}", bytes.len()))
}

fn secret(s: &str) -> TrafficSecret {
    Secret::new(unhex_array(s))
}

/// RFC 8448 §3, "Simple 1-RTT Handshake", in the order the trace gives it.
mod rfc8448 {
    /// {client} create an ephemeral x25519 key pair: private key
    pub(super) const CLIENT_PRIVATE: &str = "49 af 42 ba 7f 79 94 85 2d 71 3e f2 78
          4b cb ca a7 91 1d e2 6a dc 56 42 cb 63 45 40 e7 ea 50 05";
    /// ... public key
    pub(super) const CLIENT_PUBLIC: &str = "99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d
          ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c";

    /// The ClientHello's random (octets 6..38 of the message below)
    pub(super) const CLIENT_RANDOM: &str = "cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d
          ff a2 1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7";

    /// {client} construct a ClientHello handshake message (196 octets)
    pub(super) const CLIENT_HELLO: &str = "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63
          ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12 ec 18 a2 ef 62 83
          02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b
          00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00
          12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 23
          00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2
          3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a
          af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03
          02 03 08 04 08 05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06
          02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01";

    /// {server} extract secret "early": secret
    pub(super) const EARLY_SECRET: &str = "33 ad 0a 1c 60 7e c0 3b 09 e6 cd 98 93 68 0c
          e2 10 ad f3 00 aa 1f 26 60 e1 b2 2e 10 f1 70 f9 2a";

    /// {server} create an ephemeral x25519 key pair: private key
    pub(super) const SERVER_PRIVATE: &str = "b1 58 0e ea df 6d d5 89 b8 ef 4f 2d 56
          52 57 8c c8 10 e9 98 01 91 ec 8d 05 83 08 ce a2 16 a2 1e";
    /// ... public key
    pub(super) const SERVER_PUBLIC: &str = "c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6
          72 e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f";

    /// {server} construct a ServerHello handshake message (90 octets)
    pub(super) const SERVER_HELLO: &str = "02 00 00 56 03 03 a6 af 06 a4 12 18 60
          dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e
          d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88
          76 11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25 3b 83 3d f1
          dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04";

    /// {server} derive secret for handshake "tls13 derived": expanded
    pub(super) const DERIVED_FOR_HANDSHAKE: &str = "6f 26 15 a1 08 c7 02 c5 67 8f 54 fc 9d ba
          b6 97 16 c0 76 18 9c 48 25 0c eb ea c3 57 6c 36 11 ba";

    /// {server} extract secret "handshake": IKM, the (EC)DHE shared secret
    pub(super) const SHARED_SECRET: &str = "8b d4 05 4f b5 5b 9d 63 fd fb ac f9 f0 4b 9f 0d
          35 e6 d6 3f 53 75 63 ef d4 62 72 90 0f 89 49 2d";
    /// ... secret
    pub(super) const HANDSHAKE_SECRET: &str = "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b
          01 04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac";

    /// {server} derive secret "tls13 c hs traffic": hash = Transcript-Hash(ClientHello, ServerHello)
    pub(super) const HELLO_HASH: &str = "86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed
          d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8";
    /// ... expanded
    pub(super) const CLIENT_HANDSHAKE_TRAFFIC: &str = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e
          2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    /// {server} derive secret "tls13 s hs traffic": expanded
    pub(super) const SERVER_HANDSHAKE_TRAFFIC: &str = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d
          37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";

    /// {server} derive secret for master "tls13 derived": expanded
    pub(super) const DERIVED_FOR_MASTER: &str = "43 de 77 e0 c7 77 13 85 9a 94 4d b9 db 25
          90 b5 31 90 a6 5b 3e e2 e4 f1 2d d7 a0 bb 7c e2 54 b4";
    /// {server} extract secret "master": secret
    pub(super) const MASTER_SECRET: &str = "18 df 06 84 3d 13 a0 8b f2 a4 49 84 4c 5f 8a
          47 80 01 bc 4d 4c 62 79 84 d5 a4 1d a8 d0 40 29 19";

    /// {server} derive write traffic keys for handshake data: key expanded
    pub(super) const SERVER_HANDSHAKE_KEY: &str = "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e
          e4 03 bc";
    /// ... iv expanded
    pub(super) const SERVER_HANDSHAKE_IV: &str = "5d 31 3e b2 67 12 76 ee 13 00 0b 30";

    /// {server} construct an EncryptedExtensions handshake message (40 octets)
    pub(super) const ENCRYPTED_EXTENSIONS: &str = "08 00 00 24 00 22 00 0a 00 14 00
          12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c
          00 02 40 01 00 00 00 00";

    /// {server} construct a Certificate handshake message (445 octets)
    pub(super) const CERTIFICATE: &str = "0b 00 01 b9 00 00 01 b5 00 01 b0 30 82
          01 ac 30 82 01 15 a0 03 02 01 02 02 01 02 30 0d 06 09 2a 86 48
          86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a 06 03 55 04 03 13 03
          72 73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33 35 39 5a 17
          0d 32 36 30 37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a 06
          03 55 04 03 13 03 72 73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7
          0d 01 01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 bb 49 8f
          82 79 30 3d 98 08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26
          d3 90 1a 24 61 ea fd 2d e4 9a 91 d0 15 ab bc 9a 95 13 7a ce 6c
          1a f1 9e aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc b0 52
          4b 1b 01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2 2a 5f da 43 08 46 74
          80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6 d1 d0 3e 2b d1 93
          ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 03
          01 00 01 a3 1a 30 18 30 09 06 03 55 1d 13 04 02 30 00 30 0b 06
          03 55 1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86 f7 0d 01
          01 0b 05 00 03 81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a
          72 67 17 06 18 a5 4c 5f 8a 7b 33 7d 2d f7 a5 94 36 54 17 f2 ea
          e8 f8 a5 8c 8f 81 72 f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a 03 01
          51 56 72 60 96 fd 33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be
          c1 fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb 2b d5 20 3b
          1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8 f8
          96 12 29 ac 91 87 b4 2b 4d e1 00 00";

    /// {server} construct a CertificateVerify handshake message (136 octets)
    pub(super) const CERTIFICATE_VERIFY: &str = "0f 00 00 84 08 04 00 80 5a 74 7c
          5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a
          b3 ff 52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3 3a 5c 14 1a 07
          86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6 d3 0b
          be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 45 9e 46 44
          5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15 2a
          3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3";

    /// {server} calculate finished "tls13 finished": expanded (the finished key)
    pub(super) const SERVER_FINISHED_KEY: &str = "00 8d 3b 66 f8 16 ea 55 9f 96 b5 37 e8 85
          c3 1f c0 68 bf 49 2c 65 2f 01 f2 88 a1 d8 cd c1 9f c8";
    /// ... finished (verify_data)
    pub(super) const SERVER_VERIFY_DATA: &str = "9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4
          de da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07 18";
    /// {server} construct a Finished handshake message (36 octets)
    pub(super) const SERVER_FINISHED: &str = "14 00 00 20 9b 9b 14 1d 90 63 37 fb d2 cb
          dc e7 1d f4 de da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f 07
          18";

    /// {server} send handshake record: complete record (679 octets), the
    /// server's EncryptedExtensions..Finished under the handshake key.
    pub(super) const SERVER_FLIGHT_RECORD: &str = "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf
          f6 59 4a 07 cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3 3a f3 5e df
          78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca 07 61 2e f9 f9 45
          cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd 05 d2 a3
          89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b
          d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9
          b1 18 3e f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf
          51 42 73 25 25 0c 7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d
          2e d6 5b 0e 3c dd 0c ba e8 bf 2d 0b 22 78 12 cb b3 60 98 72 55
          cc 74 41 10 c4 53 ba a4 fc d6 10 92 8d 80 98 10 e4 b7 ed 1a 8f
          d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70 a2 55 9c 09 ea d6
          86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8 94 41 ac
          66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea
          52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e
          a5 e2 2f 44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6
          54 0c 84 83 8d 89 f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb
          31 7b 66 d9 02 f4 f2 92 a3 6a c1 b6 39 c6 37 ce 34 31 17 b6 59
          62 22 45 31 7b 49 ee da 0c 62 58 f1 00 d7 d9 61 ff b1 38 64 7e
          92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e 1b 7a 6c 71 78 af
          36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84 c8 b0 37
          8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c
          f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88
          2b d8 9f c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80
          f8 5d f8 81 ed be 5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69
          18 a3 96 fa 48 a1 81 d6 b6 fa 4f 9d 62 d5 13 af bb 99 2f 2b 99
          2f 67 f8 af e6 7f 76 91 3f a3 88 cb 56 30 c8 ca 01 e0 c6 5d 11
          c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10 dc 35 ae 69 f5 51
          56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38 eb ba 42
          f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f
          60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd
          d5 02 78 40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af
          93 98 28 fd 4a e3 79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da
          bf 02 53 fe 51 75 be 89 8e 75 0e dc 53 37 0d 2b";

    /// {server} derive secret "tls13 c ap traffic": hash = Transcript-Hash(ClientHello..server Finished)
    pub(super) const FINISHED_HASH: &str = "96 08 10 2a 0f 1c cc 6d b6 25 0b 7b 7e 41 7b 1a
          00 0e aa da 3d aa e4 77 7a 76 86 c9 ff 83 df 13";
    /// ... expanded
    pub(super) const CLIENT_APPLICATION_TRAFFIC: &str = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce
          65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5";
    /// {server} derive secret "tls13 s ap traffic": expanded
    pub(super) const SERVER_APPLICATION_TRAFFIC: &str = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9
          50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
    /// {server} derive secret "tls13 exp master": expanded
    pub(super) const EXPORTER_MASTER: &str = "fe 22 f8 81 17 6e da 18 eb 8f 44 52 9e 67
          92 c5 0c 9a 3f 89 45 2f 68 d8 ae 31 1b 43 09 d3 cf 50";

    /// {server} derive write traffic keys for application data: key expanded
    pub(super) const SERVER_APPLICATION_KEY: &str = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac
          92 e3 56";
    /// ... iv expanded
    pub(super) const SERVER_APPLICATION_IV: &str = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84";

    /// {server} derive read traffic keys for handshake data: key expanded
    /// (the client's handshake write key)
    pub(super) const CLIENT_HANDSHAKE_KEY: &str = "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50
          25 8d 01";
    /// ... iv expanded
    pub(super) const CLIENT_HANDSHAKE_IV: &str = "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f";

    /// {client} calculate finished "tls13 finished": expanded (the finished key)
    pub(super) const CLIENT_FINISHED_KEY: &str = "b8 0a d0 10 15 fb 2f 0b d6 5f f7 d4 da 5d
          6b f8 3f 84 82 1d 1f 87 fd c7 d3 c7 5b 5a 7b 42 d9 c4";
    /// ... finished (verify_data)
    pub(super) const CLIENT_VERIFY_DATA: &str = "a8 ec 43 6d 67 76 34 ae 52 5a c1 fc eb e1
          1a 03 9e c1 76 94 fa c6 e9 85 27 b6 42 f2 ed d5 ce 61";
    /// {client} construct a Finished handshake message (36 octets)
    pub(super) const CLIENT_FINISHED: &str = "14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a
          c1 fc eb e1 1a 03 9e c1 76 94 fa c6 e9 85 27 b6 42 f2 ed d5 ce
          61";
    /// {client} send handshake record: complete record (58 octets)
    pub(super) const CLIENT_FINISHED_RECORD: &str = "17 03 03 00 35 75 ec 4d c2 38 cc e6
          0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44
          d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7
          26 c4 05 46";

    /// {client} derive write traffic keys for application data: key expanded
    pub(super) const CLIENT_APPLICATION_KEY: &str = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6
          3f 50 51";
    /// ... iv expanded
    pub(super) const CLIENT_APPLICATION_IV: &str = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";

    /// {server} construct a NewSessionTicket handshake message (205 octets),
    /// the server's first record under its application key (sequence 0).
    pub(super) const NEW_SESSION_TICKET: &str = "04 00 00 c9 00 00 00 1e fa d6 aa
          c5 02 00 00 00 b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00
          00 26 2a 64 94 dc 48 6d 2c 8a 34 cb 33 fa 90 bf 1b 00 70 ad 3c
          49 88 83 c9 36 7c 09 a2 be 78 5a bc 55 cd 22 60 97 a3 a9 82 11
          72 83 f8 2a 03 a1 43 ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28
          27 db 27 9c ce 14 50 77 d4 54 a3 66 4d 4e 6d a4 d2 9e e0 37 25
          a6 a4 da fc d0 fc 67 d2 ae a7 05 29 51 3e 3d a2 67 7f a5 90 6c
          5b 3f 7d 8f 92 f2 28 bd a4 0d da 72 14 70 f9 fb f2 97 b5 ae a6
          17 64 6f ac 5c 03 27 2e 97 07 27 c6 21 a7 91 41 ef 5f 7d e6 50
          5e 5b fb c3 88 e9 33 43 69 40 93 93 4a e4 d3 57 00 08 00 2a 00
          04 00 00 04 00";
    /// {server} send handshake record: complete record (227 octets)
    pub(super) const NEW_SESSION_TICKET_RECORD: &str = "17 03 03 00 de 3a 6b 8f 90 41 4a 97
          d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d
          6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55
          71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1 70 ad 3c
          73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0
          9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13
          06 46 15 13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84
          00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86
          51 9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02
          3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26 97 68 7e 24 87 46 d6
          df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b
          f1 59 85 68 4f";

    /// {client} send application_data record: payload (50 octets); the
    /// server's record carries the same 50 octets.
    pub(super) const APPLICATION_PAYLOAD: &str = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e
          0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
          24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31";
    /// ... complete record (72 octets)
    pub(super) const CLIENT_APPLICATION_RECORD: &str = "17 03 03 00 43 a2 3f 70 54 b6 2c 94
          d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b
          98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62
          92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";
    /// {server} send application_data record: complete record (72 octets)
    pub(super) const SERVER_APPLICATION_RECORD: &str = "17 03 03 00 43 2e 93 7e 11 ef 4a c7
          40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3
          0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5
          f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";

    /// {client} send alert record: payload (2 octets), close_notify
    pub(super) const CLOSE_NOTIFY: &str = "01 00";
    /// ... complete record (24 octets)
    pub(super) const CLIENT_ALERT_RECORD: &str = "17 03 03 00 13 c9 87 27 60 65 56 66
          b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3";
    /// {server} send alert record: complete record (24 octets)
    pub(super) const SERVER_ALERT_RECORD: &str = "17 03 03 00 13 b5 8f d6 71 66 eb f5
          99 d2 47 20 cf be 7e fa 7a 88 64 a9";
}

// ---------------------------------------------------------------------------
// RFC 8448 §3: helpers

/// SHA-256 of the concatenation of RFC 8448 handshake messages.
fn transcript_hash(messages: &[&str]) -> [u8; 32] {
    let mut transcript = crypto::TranscriptHash::default();
    for m in messages {
        transcript.update(&unhex(m));
    }
    transcript.current()
}

/// The key schedule up to the handshake traffic secrets, from the RFC's
/// private key, its server public key and its hellos.
fn rfc8448_handshake_secrets() -> HandshakeSecrets {
    let client = X25519Secret::from_bytes_for_testing_only(unhex_array(rfc8448::CLIENT_PRIVATE));
    let shared = client.agree(&unhex_array(rfc8448::SERVER_PUBLIC)).expect("a contributory key share");
    HandshakeSecrets::derive(&shared, &transcript_hash(&[rfc8448::CLIENT_HELLO, rfc8448::SERVER_HELLO]))
}

/// Everything up to the server Finished, in transcript order.
const THROUGH_SERVER_FINISHED: [&str; 6] = [
    rfc8448::CLIENT_HELLO,
    rfc8448::SERVER_HELLO,
    rfc8448::ENCRYPTED_EXTENSIONS,
    rfc8448::CERTIFICATE,
    rfc8448::CERTIFICATE_VERIFY,
    rfc8448::SERVER_FINISHED,
];

/// Record protection keyed by a traffic secret, as the engine keys it.
fn protection(secret: &TrafficSecret) -> Protection {
    let (key, iv) = traffic_keys(crate::tls::Suite::Aes128GcmSha256, secret);
    Protection::new(key, iv)
}

/// The write key and IV of a 16-byte-key suite, as §7.3 derives them.
fn key_and_iv(secret: &str) -> ([u8; 16], [u8; 12]) {
    let secret = unhex_array(secret);
    (
        expand_label(&secret, Label::Key, LabelContext::Empty),
        expand_label(&secret, Label::Iv, LabelContext::Empty),
    )
}

/// Opens one whole record (header included) and returns its inner type and content.
fn open_record(p: &mut Protection, record: &[u8]) -> (ContentType, Vec<u8>) {
    let header: [u8; HEADER_LEN] = record[..HEADER_LEN].try_into().expect("a record header");
    let mut body = record[HEADER_LEN..].to_vec();
    let (typ, len) = p.open(&header, &mut body).expect("the RFC's record authenticates");
    body.truncate(len);
    (typ, body)
}

/// Seals `payload` as one record and returns it, header included.
fn seal_record(p: &mut Protection, typ: ContentType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    p.seal(typ, payload, &mut out).expect("seal");
    out
}

// ---------------------------------------------------------------------------
// RFC 8448 §3: key exchange and transcript

#[test]
fn rfc8448_x25519_public_keys_come_from_the_private_keys() {
    let client = X25519Secret::from_bytes_for_testing_only(unhex_array(rfc8448::CLIENT_PRIVATE));
    let server = X25519Secret::from_bytes_for_testing_only(unhex_array(rfc8448::SERVER_PRIVATE));
    assert_eq!(client.public_key(), unhex_array::<32>(rfc8448::CLIENT_PUBLIC));
    assert_eq!(server.public_key(), unhex_array::<32>(rfc8448::SERVER_PUBLIC));
}

#[test]
fn rfc8448_x25519_shared_secret_matches_from_both_sides() {
    let client = X25519Secret::from_bytes_for_testing_only(unhex_array(rfc8448::CLIENT_PRIVATE));
    let server = X25519Secret::from_bytes_for_testing_only(unhex_array(rfc8448::SERVER_PRIVATE));
    let expected: [u8; 32] = unhex_array(rfc8448::SHARED_SECRET);
    let from_client = client.agree(&unhex_array(rfc8448::SERVER_PUBLIC)).expect("contributory");
    let from_server = server.agree(&unhex_array(rfc8448::CLIENT_PUBLIC)).expect("contributory");
    assert_eq!(from_client.expose(), &expected);
    assert_eq!(from_server.expose(), &expected);
}

#[test]
fn rfc8448_transcript_hash_of_the_hellos_matches() {
    let hash = transcript_hash(&[rfc8448::CLIENT_HELLO, rfc8448::SERVER_HELLO]);
    assert_eq!(hash, unhex_array::<32>(rfc8448::HELLO_HASH));
}

#[test]
fn rfc8448_transcript_hash_through_server_finished_matches() {
    assert_eq!(transcript_hash(&THROUGH_SERVER_FINISHED), unhex_array::<32>(rfc8448::FINISHED_HASH));
}

#[test]
fn rfc8448_client_hello_decodes_despite_extensions_we_do_not_model() {
    let raw = unhex(rfc8448::CLIENT_HELLO);
    let ch = ClientHello::decode(&raw[4..]).expect("the RFC's ClientHello decodes");
    assert_eq!(ch.legacy_version, TLS12);
    assert_eq!(ch.random, unhex_array::<32>(rfc8448::CLIENT_RANDOM));
    assert!(ch.session_id.is_empty());
    assert_eq!(
        ch.cipher_suites,
        [
            CipherSuite::TLS_AES_128_GCM_SHA256,
            CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS_AES_256_GCM_SHA384
        ]
    );
    assert_eq!(ch.supported_versions, Some(vec![TLS13]));
    assert_eq!(ch.server_name.as_deref(), Some("server"));
    let groups = ch.supported_groups.expect("supported_groups");
    assert_eq!(groups.first(), Some(&NamedGroup::X25519));
    let schemes = ch.signature_algorithms.expect("signature_algorithms");
    assert!(schemes.contains(&SignatureScheme::RSA_PSS_RSAE_SHA256));
    let shares = ch.key_shares.expect("key_share");
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].group, NamedGroup::X25519);
    assert_eq!(shares[0].key_exchange, unhex(rfc8448::CLIENT_PUBLIC));
    assert!(!ch.offered_psk && !ch.offered_early_data);
    // renegotiation_info (0xff01), session_ticket (0x0023) and
    // record_size_limit (0x001c) are skipped, but their place is recorded.
    let order: Vec<u16> = ch.extension_order.iter().map(|e| e.0).collect();
    assert_eq!(order, [0x0000, 0xff01, 0x000a, 0x0023, 0x0033, 0x002b, 0x000d, 0x002d, 0x001c]);
}

#[test]
fn rfc8448_server_hello_decodes_with_its_key_share() {
    let raw = unhex(rfc8448::SERVER_HELLO);
    let sh = ServerHello::decode(&raw[4..]).expect("the RFC's ServerHello decodes");
    assert!(!sh.is_retry_request());
    assert_eq!(sh.cipher_suite, CipherSuite::TLS_AES_128_GCM_SHA256);
    assert_eq!(sh.selected_version, Some(TLS13));
    assert!(sh.session_id.is_empty());
    let share = sh.key_share.expect("key_share");
    assert_eq!(share.group, NamedGroup::X25519);
    assert_eq!(share.key_exchange, unhex(rfc8448::SERVER_PUBLIC));
    assert!(sh.other_extensions.is_empty());
}

#[test]
fn rfc8448_server_encrypted_extensions_and_certificate_verify_decode() {
    let ee = unhex(rfc8448::ENCRYPTED_EXTENSIONS);
    let ee = EncryptedExtensions::decode(&ee[4..]).expect("the RFC's EncryptedExtensions decodes");
    assert!(ee.server_name_ack);
    assert_eq!(ee.alpn, None);
    assert_eq!(ee.other_extensions, [ExtensionType::SUPPORTED_GROUPS, ExtensionType(0x001c)]);

    let cv = unhex(rfc8448::CERTIFICATE_VERIFY);
    let cv = CertificateVerify::decode(&cv[4..]).expect("the RFC's CertificateVerify decodes");
    assert_eq!(cv.scheme, SignatureScheme::RSA_PSS_RSAE_SHA256);
    assert_eq!(cv.signature.len(), 128);
}

// ---------------------------------------------------------------------------
// RFC 8448 §3: the key schedule, step by step

#[test]
fn rfc8448_early_secret_matches() {
    let early = hkdf_extract(&[0u8; 32], &[0u8; 32]);
    assert_eq!(early.expose(), &unhex_array::<32>(rfc8448::EARLY_SECRET));
}

#[test]
fn rfc8448_derived_secret_for_the_handshake_matches() {
    let derived = derive_secret(&unhex_array(rfc8448::EARLY_SECRET), Label::Derived, &sha256(b""));
    assert_eq!(derived.expose(), &unhex_array::<32>(rfc8448::DERIVED_FOR_HANDSHAKE));
}

#[test]
fn rfc8448_handshake_secret_matches() {
    let secrets = rfc8448_handshake_secrets();
    assert_eq!(secrets.handshake_secret().expose(), &unhex_array::<32>(rfc8448::HANDSHAKE_SECRET));
}

#[test]
fn rfc8448_client_handshake_traffic_secret_matches() {
    let secrets = rfc8448_handshake_secrets();
    assert_eq!(secrets.client.expose(), &unhex_array::<32>(rfc8448::CLIENT_HANDSHAKE_TRAFFIC));
}

#[test]
fn rfc8448_server_handshake_traffic_secret_matches() {
    let secrets = rfc8448_handshake_secrets();
    assert_eq!(secrets.server.expose(), &unhex_array::<32>(rfc8448::SERVER_HANDSHAKE_TRAFFIC));
}

#[test]
fn rfc8448_derived_secret_for_the_master_secret_matches() {
    let derived = derive_secret(&unhex_array(rfc8448::HANDSHAKE_SECRET), Label::Derived, &sha256(b""));
    assert_eq!(derived.expose(), &unhex_array::<32>(rfc8448::DERIVED_FOR_MASTER));
}

#[test]
fn rfc8448_master_secret_matches() {
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));
    assert_eq!(traffic.master.expose(), &unhex_array::<32>(rfc8448::MASTER_SECRET));
}

#[test]
fn rfc8448_application_traffic_and_exporter_secrets_match() {
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));
    assert_eq!(traffic.client.expose(), &unhex_array::<32>(rfc8448::CLIENT_APPLICATION_TRAFFIC));
    assert_eq!(traffic.server.expose(), &unhex_array::<32>(rfc8448::SERVER_APPLICATION_TRAFFIC));
    assert_eq!(traffic.exporter.expose(), &unhex_array::<32>(rfc8448::EXPORTER_MASTER));
}

#[test]
fn rfc8448_server_finished_key_and_verify_data_match() {
    let base = secret(rfc8448::SERVER_HANDSHAKE_TRAFFIC);
    assert_eq!(finished_key(&base).expose(), &unhex_array::<32>(rfc8448::SERVER_FINISHED_KEY));
    let through_certificate_verify = transcript_hash(&THROUGH_SERVER_FINISHED[..5]);
    assert_eq!(
        verify_data(&base, &through_certificate_verify),
        unhex_array::<32>(rfc8448::SERVER_VERIFY_DATA)
    );
}

#[test]
fn rfc8448_client_finished_key_and_verify_data_match() {
    let base = secret(rfc8448::CLIENT_HANDSHAKE_TRAFFIC);
    assert_eq!(finished_key(&base).expose(), &unhex_array::<32>(rfc8448::CLIENT_FINISHED_KEY));
    let through_server_finished = transcript_hash(&THROUGH_SERVER_FINISHED);
    assert_eq!(verify_data(&base, &through_server_finished), unhex_array::<32>(rfc8448::CLIENT_VERIFY_DATA));
}

#[test]
fn rfc8448_finished_messages_carry_the_verify_data() {
    assert_eq!(unhex(rfc8448::SERVER_FINISHED)[4..], unhex(rfc8448::SERVER_VERIFY_DATA));
    assert_eq!(unhex(rfc8448::CLIENT_FINISHED)[4..], unhex(rfc8448::CLIENT_VERIFY_DATA));
}

#[test]
fn rfc8448_write_keys_and_ivs_match() {
    let cases = [
        (rfc8448::SERVER_HANDSHAKE_TRAFFIC, rfc8448::SERVER_HANDSHAKE_KEY, rfc8448::SERVER_HANDSHAKE_IV),
        (rfc8448::CLIENT_HANDSHAKE_TRAFFIC, rfc8448::CLIENT_HANDSHAKE_KEY, rfc8448::CLIENT_HANDSHAKE_IV),
        (
            rfc8448::SERVER_APPLICATION_TRAFFIC,
            rfc8448::SERVER_APPLICATION_KEY,
            rfc8448::SERVER_APPLICATION_IV,
        ),
        (
            rfc8448::CLIENT_APPLICATION_TRAFFIC,
            rfc8448::CLIENT_APPLICATION_KEY,
            rfc8448::CLIENT_APPLICATION_IV,
        ),
    ];
    for (traffic, key, iv) in cases {
        let (got_key, got_iv) = key_and_iv(traffic);
        assert_eq!(got_key, unhex_array::<16>(key), "key of {traffic}");
        assert_eq!(got_iv, unhex_array::<12>(iv), "iv of {traffic}");
    }
}

// ---------------------------------------------------------------------------
// RFC 8448 §3: protected records, byte for byte

#[test]
fn rfc8448_server_handshake_flight_seals_to_the_rfc_record() {
    let flight: Vec<u8> = THROUGH_SERVER_FINISHED[2..].iter().flat_map(|m| unhex(m)).collect();
    assert_eq!(flight.len(), 657);
    let mut server = protection(&rfc8448_handshake_secrets().server);
    let sealed = seal_record(&mut server, ContentType::HANDSHAKE, &flight);
    assert_eq!(sealed, unhex(rfc8448::SERVER_FLIGHT_RECORD));
}

#[test]
fn rfc8448_server_handshake_record_opens_to_the_flight() {
    let mut client_reads = protection(&secret(rfc8448::SERVER_HANDSHAKE_TRAFFIC));
    let (typ, content) = open_record(&mut client_reads, &unhex(rfc8448::SERVER_FLIGHT_RECORD));
    assert_eq!(typ, ContentType::HANDSHAKE);
    let flight: Vec<u8> = THROUGH_SERVER_FINISHED[2..].iter().flat_map(|m| unhex(m)).collect();
    assert_eq!(content, flight);
}

#[test]
fn rfc8448_client_finished_record_seals_and_opens() {
    let record = unhex(rfc8448::CLIENT_FINISHED_RECORD);
    let mut server_reads = protection(&rfc8448_handshake_secrets().client);
    let (typ, content) = open_record(&mut server_reads, &record);
    assert_eq!((typ, content), (ContentType::HANDSHAKE, unhex(rfc8448::CLIENT_FINISHED)));

    let mut client_writes = protection(&secret(rfc8448::CLIENT_HANDSHAKE_TRAFFIC));
    assert_eq!(
        seal_record(&mut client_writes, ContentType::HANDSHAKE, &unhex(rfc8448::CLIENT_FINISHED)),
        record
    );
}

#[test]
fn rfc8448_client_application_data_record_seals_and_opens() {
    let record = unhex(rfc8448::CLIENT_APPLICATION_RECORD);
    let payload = unhex(rfc8448::APPLICATION_PAYLOAD);
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));

    let mut client_writes = protection(&traffic.client);
    assert_eq!(seal_record(&mut client_writes, ContentType::APPLICATION_DATA, &payload), record);

    let mut server_reads = protection(&traffic.client);
    assert_eq!(open_record(&mut server_reads, &record), (ContentType::APPLICATION_DATA, payload));
}

#[test]
fn rfc8448_server_application_data_record_seals_and_opens_after_the_ticket() {
    // The server's first record under its application key is the
    // NewSessionTicket (sequence 0); the application data is sequence 1.
    let ticket_record = unhex(rfc8448::NEW_SESSION_TICKET_RECORD);
    let record = unhex(rfc8448::SERVER_APPLICATION_RECORD);
    let payload = unhex(rfc8448::APPLICATION_PAYLOAD);
    let ticket = unhex(rfc8448::NEW_SESSION_TICKET);
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));

    let mut server_writes = protection(&traffic.server);
    assert_eq!(seal_record(&mut server_writes, ContentType::HANDSHAKE, &ticket), ticket_record);
    assert_eq!(server_writes.sequence(), 1);
    assert_eq!(seal_record(&mut server_writes, ContentType::APPLICATION_DATA, &payload), record);

    let mut client_reads = protection(&traffic.server);
    assert_eq!(open_record(&mut client_reads, &ticket_record), (ContentType::HANDSHAKE, ticket));
    assert_eq!(open_record(&mut client_reads, &record), (ContentType::APPLICATION_DATA, payload));
}

#[test]
fn rfc8448_close_notify_records_seal_and_open_in_both_directions() {
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));
    let alert = unhex(rfc8448::CLOSE_NOTIFY);

    // The client's alert follows its one application data record (sequence 1).
    let mut client_writes = protection(&traffic.client);
    seal_record(&mut client_writes, ContentType::APPLICATION_DATA, &unhex(rfc8448::APPLICATION_PAYLOAD));
    assert_eq!(
        seal_record(&mut client_writes, ContentType::ALERT, &alert),
        unhex(rfc8448::CLIENT_ALERT_RECORD)
    );

    // The server's follows the ticket and its application data (sequence 2).
    let mut client_reads = protection(&traffic.server);
    open_record(&mut client_reads, &unhex(rfc8448::NEW_SESSION_TICKET_RECORD));
    open_record(&mut client_reads, &unhex(rfc8448::SERVER_APPLICATION_RECORD));
    assert_eq!(
        open_record(&mut client_reads, &unhex(rfc8448::SERVER_ALERT_RECORD)),
        (ContentType::ALERT, alert)
    );
}

#[test]
fn rfc8448_record_with_a_flipped_bit_does_not_open() {
    let mut record = unhex(rfc8448::CLIENT_FINISHED_RECORD);
    let last = record.len() - 1;
    record[last] ^= 0x01;
    let header: [u8; HEADER_LEN] = record[..HEADER_LEN].try_into().unwrap();
    let mut p = protection(&secret(rfc8448::CLIENT_HANDSHAKE_TRAFFIC));
    assert_eq!(p.open(&header, &mut record[HEADER_LEN..]), Err(super::Error::BadRecordMac));
}

#[test]
fn rfc8448_record_opened_at_the_wrong_sequence_number_does_not_open() {
    // The client's application data is sequence 0; a reader already at 1
    // (a replay, or a record from the wrong place) must refuse it.
    let traffic = rfc8448_handshake_secrets().into_traffic(&transcript_hash(&THROUGH_SERVER_FINISHED));
    let mut server_reads = protection(&traffic.client);
    let mut record = unhex(rfc8448::CLIENT_APPLICATION_RECORD);
    open_record(&mut server_reads, &record);
    let header: [u8; HEADER_LEN] = record[..HEADER_LEN].try_into().unwrap();
    assert_eq!(server_reads.open(&header, &mut record[HEADER_LEN..]), Err(super::Error::BadRecordMac));
}

// ---------------------------------------------------------------------------
// RFC 7748 §6.1: X25519

const ALICE_PRIVATE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_PRIVATE: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PUBLIC: &str = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const ALICE_BOB_SHARED: &str = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

#[test]
fn rfc7748_alice_and_bob_public_keys_match() {
    let alice = X25519Secret::from_bytes_for_testing_only(unhex_array(ALICE_PRIVATE));
    let bob = X25519Secret::from_bytes_for_testing_only(unhex_array(BOB_PRIVATE));
    assert_eq!(alice.public_key(), unhex_array::<32>(ALICE_PUBLIC));
    assert_eq!(bob.public_key(), unhex_array::<32>(BOB_PUBLIC));
}

#[test]
fn rfc7748_alice_and_bob_agree_on_the_shared_secret() {
    let alice = X25519Secret::from_bytes_for_testing_only(unhex_array(ALICE_PRIVATE));
    let bob = X25519Secret::from_bytes_for_testing_only(unhex_array(BOB_PRIVATE));
    let expected: [u8; 32] = unhex_array(ALICE_BOB_SHARED);
    assert_eq!(alice.agree(&unhex_array(BOB_PUBLIC)).expect("contributory").expose(), &expected);
    assert_eq!(bob.agree(&unhex_array(ALICE_PUBLIC)).expect("contributory").expose(), &expected);
}

#[test]
fn x25519_with_a_low_order_peer_key_gives_no_shared_secret() {
    // §6.1 of RFC 7748 and §7.4.2 of RFC 8446: an all-zero result must be
    // refused. The zero point and the point of order 8 below both give it.
    let alice = X25519Secret::from_bytes_for_testing_only(unhex_array(ALICE_PRIVATE));
    assert!(alice.agree(&[0u8; 32]).is_none());
    let mut one = [0u8; 32];
    one[0] = 1;
    assert!(alice.agree(&one).is_none());
    let order_eight = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800";
    assert!(alice.agree(&unhex_array(order_eight)).is_none());
}

// ---------------------------------------------------------------------------
// RFC 8032 §7.1: Ed25519, tests 1-3

/// (secret key, public key, message, signature)
const ED25519_TESTS: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
         085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac
         18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn rfc8032_public_keys_come_from_the_seeds() {
    for (seed, public, _, _) in ED25519_TESTS {
        assert_eq!(Ed25519Key::from_seed(&unhex_array(seed)).public_key(), unhex_array::<32>(public));
    }
}

#[test]
fn rfc8032_signatures_match_and_verify() {
    for (seed, public, message, signature) in ED25519_TESTS {
        let key = Ed25519Key::from_seed(&unhex_array(seed));
        let sig = key.sign(&unhex(message));
        assert_eq!(sig, unhex_array::<64>(signature), "signature over {message:?}");
        assert!(ed25519_verify(&unhex_array(public), &unhex(message), &sig));
    }
}

#[test]
fn ed25519_signature_with_a_flipped_bit_does_not_verify() {
    let (_, public, message, signature) = ED25519_TESTS[1];
    for byte in [0, 40] {
        let mut sig = unhex(signature);
        sig[byte] ^= 0x01;
        assert!(!ed25519_verify(&unhex_array(public), &unhex(message), &sig), "flipped byte {byte}");
    }
    let other_message = [0x73];
    assert!(!ed25519_verify(&unhex_array(public), &other_message, &unhex(signature)));
}

// ---------------------------------------------------------------------------
// RFC 8439 §2.8.2: ChaCha20-Poly1305 AEAD

const CHACHA_KEY: &str = "80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
     90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f";
/// The 32-bit constant 07 00 00 00 followed by the 64-bit IV 40..47.
const CHACHA_NONCE: &str = "07 00 00 00 40 41 42 43 44 45 46 47";
const CHACHA_AAD: &str = "50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7";
const CHACHA_PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const CHACHA_CIPHERTEXT: &str = "d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2
     a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
     3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b
     1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
     92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58
     fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
     3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b
     61 16";
const CHACHA_TAG: &str = "1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91";

#[test]
fn rfc8439_chacha20_poly1305_seal_matches() {
    let key = AeadKey::chacha20_poly1305(&unhex(CHACHA_KEY));
    let mut buf = CHACHA_PLAINTEXT.to_vec();
    let tag = key.seal(&unhex_array(CHACHA_NONCE), &unhex(CHACHA_AAD), &mut buf);
    assert_eq!(buf, unhex(CHACHA_CIPHERTEXT));
    assert_eq!(tag, unhex_array::<16>(CHACHA_TAG));
}

#[test]
fn rfc8439_chacha20_poly1305_open_matches() {
    let key = AeadKey::chacha20_poly1305(&unhex(CHACHA_KEY));
    let mut buf = unhex(CHACHA_CIPHERTEXT);
    key.open(&unhex_array(CHACHA_NONCE), &unhex(CHACHA_AAD), &mut buf, &unhex_array(CHACHA_TAG))
        .expect("the RFC's ciphertext authenticates");
    assert_eq!(buf, CHACHA_PLAINTEXT);
}

#[test]
fn chacha20_poly1305_with_a_flipped_tag_bit_does_not_open() {
    let key = AeadKey::chacha20_poly1305(&unhex(CHACHA_KEY));
    let mut tag: [u8; 16] = unhex_array(CHACHA_TAG);
    tag[15] ^= 0x80;
    let mut buf = unhex(CHACHA_CIPHERTEXT);
    assert_eq!(
        key.open(&unhex_array(CHACHA_NONCE), &unhex(CHACHA_AAD), &mut buf, &tag),
        Err(crypto::AeadError)
    );
}

#[test]
fn chacha20_poly1305_with_altered_additional_data_does_not_open() {
    let key = AeadKey::chacha20_poly1305(&unhex(CHACHA_KEY));
    let mut aad = unhex(CHACHA_AAD);
    aad[0] ^= 0x01;
    let mut buf = unhex(CHACHA_CIPHERTEXT);
    assert_eq!(
        key.open(&unhex_array(CHACHA_NONCE), &aad, &mut buf, &unhex_array(CHACHA_TAG)),
        Err(crypto::AeadError)
    );
}

// ---------------------------------------------------------------------------
// RFC 5869 A.1: HKDF-SHA256, basic test case

const HKDF_IKM: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const HKDF_SALT: &str = "000102030405060708090a0b0c";
const HKDF_INFO: &str = "f0f1f2f3f4f5f6f7f8f9";
const HKDF_PRK: &str = "077709362c2e32df0ddc3f0dc47bba63
     90b6c73bb50f9c3122ec844ad7c2b3e5";
const HKDF_OKM: &str = "3cb25f25faacd57a90434f64d0362f2a
     2d2d0a90cf1a5a4c5db02d56ecc4c5bf
     34007208d5b887185865";

#[test]
fn rfc5869_hkdf_extract_matches() {
    let prk = hkdf_extract(&unhex(HKDF_SALT), &unhex(HKDF_IKM));
    assert_eq!(prk.expose(), &unhex_array::<32>(HKDF_PRK));
}

#[test]
fn rfc5869_hkdf_expand_matches() {
    let mut okm = [0u8; 42];
    hkdf_expand(&unhex_array(HKDF_PRK), &[&unhex(HKDF_INFO)], &mut okm);
    assert_eq!(okm, unhex_array::<42>(HKDF_OKM));
}

#[test]
fn rfc5869_hkdf_expand_gives_the_same_output_with_info_in_parts() {
    // expand_label passes its info in pieces; splitting must not change the result.
    let info = unhex(HKDF_INFO);
    let mut okm = [0u8; 42];
    hkdf_expand(&unhex_array(HKDF_PRK), &[&info[..3], &[], &info[3..]], &mut okm);
    assert_eq!(okm, unhex_array::<42>(HKDF_OKM));
}

#[test]
fn unhex_ignores_whitespace_and_reads_rfc_layout() {
    assert_eq!(unhex("00 0a\n   ff"), [0x00, 0x0a, 0xff]);
}
