//! The record layer of a fresh server: any bytes from a client, whole and
//! cut in two reads (the deframer must not care where reads end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat_fuzz::{NOW, drain, server};

fuzz_target!(|data: &[u8]| {
    let mut whole = server();
    let _ = whole.handle_input(data, NOW);
    drain(&mut whole);

    if data.len() > 1 {
        let (first, second) = data.split_at(data.len() / 2);
        let mut cut = server();
        if cut.handle_input(first, NOW).is_ok() {
            drain(&mut cut);
            let _ = cut.handle_input(second, NOW);
        }
        drain(&mut cut);
    }
});
