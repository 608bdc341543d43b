//! Data and close_notify in one input (RFC 8446 §6.1): the records are
//! handled in order, so a driver can still answer the data that came
//! before the close_notify, and its answer goes out before the engine's
//! own close_notify. `echo hello | gnutls-cli` against `listen --echo`
//! sends exactly this (tests/it/interop/gnutls.rs).

use crate::engine_pair::*;
use tlschat::tls::{AlertDescription, Error, Event};

fn connected(seed: u64) -> Pair {
    let pki = pki(seed);
    let mut p = Pair::new(client_config(&pki), server_config(&pki), seed);
    p.drive();
    p.assert_connected();
    p
}

#[test]
fn data_that_came_with_close_notify_can_be_answered_before_the_close_notify_in_reply() {
    for seed in [40, 41] {
        let mut p = connected(seed);
        p.client.send(b"hello").unwrap();
        p.client.close();
        let mut flight = Vec::new();
        assert!(p.client.poll_transmit(&mut flight));
        // Both records in one read.
        p.server.handle_input(&flight, p.now).unwrap();
        assert!(p.server.is_closed(), "the peer's close_notify was read");
        let events: Vec<_> = std::iter::from_fn(|| p.server.poll_event()).collect();
        assert_eq!(events, [Event::PeerClosed, Event::AlertSent(AlertDescription::CLOSE_NOTIFY)]);
        let data = p.server.recv_application_data().unwrap();
        assert_eq!(data, b"hello");
        p.server.send(&data).expect("the data before close_notify can still be answered");

        let mut reply = Vec::new();
        assert!(p.server.poll_transmit(&mut reply));
        // The echo first, then the close_notify: two protected records.
        assert_eq!(records(&reply).len(), 2);
        assert_eq!(p.server.send(b"too late"), Err(Error::Closed));
        assert!(!p.server.poll_transmit(&mut Vec::new()), "one close_notify only");

        p.client.handle_input(&reply, p.now).unwrap();
        assert_eq!(p.client.recv_application_data().as_deref(), Some(&b"hello"[..]));
        let events: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
        assert!(events.contains(&Event::PeerClosed), "{events:?}");
        assert!(p.client.is_closed() && p.client.error().is_none());
    }
}

#[test]
fn a_driver_that_flushes_without_answering_sends_close_notify_alone_and_can_send_no_more() {
    let mut p = connected(42);
    p.client.send(b"last words").unwrap();
    p.client.close();
    p.drive();
    assert_eq!(p.server_data, [b"last words".to_vec()]);
    assert_eq!(Pair::alerts_sent(&p.server_events), [AlertDescription::CLOSE_NOTIFY]);
    assert!(p.server.is_closed() && p.server.error().is_none());
    assert_eq!(p.server.send(b"too late"), Err(Error::Closed));
}
