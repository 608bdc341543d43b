//! Certificate parsing and the chain checks the engine runs: each entry
//! through `parse_leaf` (pinning, self-signed user certificates), the chain
//! through `verify_server_chain` and `verify_client_chain` against the
//! fixture room CA, and against its own last certificate as the root.
//! Input: entries of a 3-byte length and DER, as in a Certificate message.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tlschat::tls::internal::cert::{parse_leaf, verify_client_chain, verify_server_chain};
use tlschat::tls::{RootStore, ServerName};
use tlschat_fuzz::{NOW, pki, split_chain};

fn localhost() -> &'static ServerName {
    static NAME: OnceLock<ServerName> = OnceLock::new();
    NAME.get_or_init(|| ServerName::parse("localhost").expect("a valid name"))
}

fuzz_target!(|data: &[u8]| {
    let chain = split_chain(data);
    for der in &chain {
        let _ = parse_leaf(der);
    }
    let roots = &pki().roots;
    let _ = verify_server_chain(&chain, roots, localhost(), NOW);
    let _ = verify_client_chain(&chain, roots, NOW);
    if let Some(last) = chain.last() {
        let mut own = RootStore::new();
        if own.add_der(last).is_ok() {
            let _ = verify_server_chain(&chain, &own, localhost(), NOW);
        }
    }
});
