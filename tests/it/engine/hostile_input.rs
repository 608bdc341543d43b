//! Random and mutated bytes fed to both engines at every state of the
//! handshake and after it: the only acceptable outcomes are progress or a
//! typed error with its alert, never a panic or a hang.

use crate::engine_pair::*;
use proptest::prelude::*;
use tlschat::tls::{ClientAuth, ClientTrust, Error};

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    Truncate { keep: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Replace(Vec<u8>),
    Duplicate,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Mutation::Replace),
        Just(Mutation::Duplicate),
    ]
}

fn apply(m: &Mutation, flight: &mut Vec<u8>) {
    match m {
        Mutation::FlipBit { at, bit } if !flight.is_empty() => {
            let i = at % flight.len();
            flight[i] ^= 1 << bit;
        }
        Mutation::FlipBit { .. } => {}
        Mutation::Truncate { keep } => flight.truncate(keep % (flight.len() + 1)),
        Mutation::Insert { at, bytes } => {
            let i = at % (flight.len() + 1);
            flight.splice(i..i, bytes.iter().copied());
        }
        Mutation::Replace(bytes) => *flight = bytes.clone(),
        Mutation::Duplicate => {
            let copy = flight.clone();
            flight.extend_from_slice(&copy);
        }
    }
}

/// Runs a handshake, some data, a KeyUpdate and close, mutating flight
/// number `target` (counting both directions).
fn run(variant: u8, target: usize, m: &Mutation) {
    let pki = pki(40);
    let mut c = client_config(&pki);
    let mut s = server_config(&pki);
    match variant % 3 {
        0 => {}
        1 => c.key_share_in_first_hello = false,
        _ => {
            s.client_auth = ClientAuth::Required(ClientTrust::AnyKey);
            c.client_cert = Some(pki.server.clone());
        }
    }
    let mut p = Pair::new(c, s, 40);
    let mut count = 0;
    let mut hook = |_, flight: &mut Vec<u8>| {
        if count == target {
            apply(m, flight);
        }
        count += 1;
    };
    p.drive_with(&mut hook);
    if p.client_error.is_none() && p.server_error.is_none() {
        let _ = p.client.send(b"client data");
        let _ = p.server.send(&[7u8; 20_000]);
        let _ = p.client.key_update(true);
        p.drive_with(&mut hook);
        p.client.close();
        p.drive_with(&mut hook);
    }
    // A side that failed stays failed and says so, and sends nothing more.
    for (conn, err) in [(&mut p.client, &p.client_error), (&mut p.server, &p.server_error)] {
        if let Some(e) = err {
            assert_eq!(conn.handle_input(&[22, 3, 3, 0, 1, 1], NOW).unwrap_err(), *e);
            let mut out = Vec::new();
            assert!(!conn.poll_transmit(&mut out), "a failed connection keeps writing");
            assert!(conn.send(b"x").is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_flights_at_every_state_never_panic(variant in 0u8..3, target in 0usize..12, m in mutation()) {
        run(variant, target, &m);
    }

    #[test]
    fn random_bytes_to_a_fresh_server_only_ever_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let pki = pki(41);
        let mut server = tlschat::tls::Connection::server(
            std::sync::Arc::new(server_config(&pki)),
            Box::new(tlschat::tls::SeededRng::new_for_testing_only(41)),
        );
        if let Err(e) = server.handle_input(&bytes, NOW) {
            prop_assert!(e.alert().is_some() || matches!(e, Error::AlertReceived(_)));
        }
    }

    #[test]
    fn random_records_to_a_waiting_client_only_ever_fail_cleanly(
        typ in prop_oneof![Just(20u8), Just(21), Just(22), Just(23), any::<u8>()],
        body in proptest::collection::vec(any::<u8>(), 0..1000),
    ) {
        let pki = pki(42);
        let mut p = Pair::new(client_config(&pki), server_config(&pki), 42);
        let mut out = Vec::new();
        let _ = p.client.poll_transmit(&mut out);
        let mut record = vec![typ, 3, 3];
        record.extend_from_slice(&(body.len() as u16).to_be_bytes());
        record.extend_from_slice(&body);
        if let Err(e) = p.client.handle_input(&record, NOW) {
            prop_assert!(e.alert().is_some() || matches!(e, Error::AlertReceived(_)));
        }
    }
}
