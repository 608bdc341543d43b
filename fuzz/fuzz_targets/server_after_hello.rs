//! The record layer of a server that has answered the fixture ClientHello:
//! the bytes are what the client sends next (its protected Certificate,
//! CertificateVerify and Finished, application data, KeyUpdate, alerts).
//! The corpus holds a seeded client's real flights, which decrypt here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat_fuzz::{NOW, client_hello, drain, server};

fuzz_target!(|data: &[u8]| {
    let mut server = server();
    server.handle_input(client_hello(), NOW).expect("the fixture ClientHello is accepted");
    drain(&mut server);
    if server.handle_input(data, NOW).is_ok() && !server.is_handshaking() && !server.is_closed() {
        // Connected: the traffic paths run too.
        let _ = server.send(b"a reply");
        let _ = server.key_update(true);
    }
    drain(&mut server);
    server.close();
    drain(&mut server);
});
