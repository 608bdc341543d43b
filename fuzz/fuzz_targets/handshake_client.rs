//! A client that has sent its ClientHello, fed what a server would send:
//! records carrying ServerHello or HelloRetryRequest and the protected
//! flight after it. The corpus holds the seeded server's real flights,
//! which decrypt here, so mutations reach every state of the client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat_fuzz::{NOW, client, drain};

fuzz_target!(|data: &[u8]| {
    let mut client = client(true);
    drain(&mut client);
    if client.handle_input(data, NOW).is_ok() && !client.is_handshaking() && !client.is_closed() {
        let _ = client.send(b"hello");
        let _ = client.key_update(false);
    }
    drain(&mut client);
});
