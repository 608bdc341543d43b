//! Handshake messages to a fresh server, wrapped by the target in plaintext
//! handshake records: the fuzzer works on the messages, not the framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat_fuzz::{NOW, drain, plaintext_handshake_records, server};

fuzz_target!(|data: &[u8]| {
    let mut server = server();
    let _ = server.handle_input(&plaintext_handshake_records(data), NOW);
    drain(&mut server);
});
