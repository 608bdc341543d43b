//! `--reveal`: the engine reports the values it used only when asked, and
//! every command the key schedule view offers, run with the standard
//! tools (OpenSSL, xxd, sh), prints exactly the engine's value: the proof
//! the RFC 8448 tests give, for live sessions.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use tlschat::schedule::{Proof, Schedule, State, normalize};
use tlschat::tls::key_schedule::SecretKind;
use tlschat::tls::{CipherSuite, ClientAuth, ClientTrust, Direction, Event, Revealed};

const CHACHA: CipherSuite = CipherSuite::TLS_CHACHA20_POLY1305_SHA256;
const AES: CipherSuite = CipherSuite::TLS_AES_128_GCM_SHA256;

/// A session with reveal on both sides (or off), data both ways and a
/// KeyUpdate each way, so every kind of value appears.
fn session(suite: CipherSuite, reveal: bool, seed: u64) -> Pair {
    let pki = pki(seed);
    let mut c = client_config(&pki);
    c.suites = vec![suite];
    c.reveal = reveal;
    let mut s = server_config(&pki);
    s.reveal = reveal;
    let mut p = Pair::new(c, s, seed);
    p.drive();
    p.assert_connected();
    p.client.send(b"hello from the client\n").unwrap();
    p.server.send(b"hello from the server\n").unwrap();
    p.drive();
    p.client.key_update(true).unwrap();
    p.client.send(b"after the update\n").unwrap();
    p.drive();
    p.server.send(b"answered\n").unwrap();
    p.drive();
    p
}

fn revealed(events: &[Event]) -> Vec<&Revealed> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Revealed(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn schedule_of(events: &[Event]) -> Schedule {
    let mut s = Schedule::default();
    for e in events {
        match e {
            Event::Handshake(step) => s.step(step),
            Event::Revealed(r) => s.reveal(r.clone()),
            _ => {}
        }
    }
    s
}

fn run(proof: &Proof) -> String {
    let out = Command::new("sh").arg("-c").arg(proof.command.as_str()).output().expect("sh runs");
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        proof.command.as_str(),
        String::from_utf8_lossy(&out.stderr)
    );
    normalize(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn without_reveal_no_value_leaves_the_engine() {
    let p = session(CHACHA, false, 31);
    assert!(revealed(&p.client_events).is_empty());
    assert!(revealed(&p.server_events).is_empty());
    // The view still has its tree, labels and transcript hashes.
    let rows = schedule_of(&p.client_events).rows();
    assert!(rows.iter().all(|r| r.value.is_none() || r.name.contains("verify_data")));
    assert!(rows.iter().all(|r| r.proof.is_none()));
    let c_hs = rows.iter().find(|r| r.name == "c hs traffic").unwrap();
    assert_eq!(c_hs.state, State::Derived);
    assert!(c_hs.over.is_some());
}

#[test]
fn revealed_values_are_the_ones_the_key_log_gets_and_debug_hides_them() {
    let pki = pki(32);
    let keys = Arc::new(CapturedKeys::default());
    let mut c = client_config(&pki);
    c.reveal = true;
    c.keylog = Some(keys.clone());
    let mut p = Pair::new(c, server_config(&pki), 32);
    p.drive();
    p.assert_connected();
    let values = revealed(&p.client_events);
    let secret = |kind| {
        values.iter().find_map(|r| match r {
            Revealed::Secret { kind: k, value, .. } if *k == kind => Some(value.expose().to_vec()),
            _ => None,
        })
    };
    for (kind, label) in [
        (SecretKind::ClientHandshakeTraffic, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
        (SecretKind::ServerHandshakeTraffic, "SERVER_HANDSHAKE_TRAFFIC_SECRET"),
        (SecretKind::ClientApplicationTraffic(0), "CLIENT_TRAFFIC_SECRET_0"),
        (SecretKind::ServerApplicationTraffic(0), "SERVER_TRAFFIC_SECRET_0"),
        (SecretKind::ExporterMaster, "EXPORTER_SECRET"),
    ] {
        assert_eq!(secret(kind).as_deref(), Some(&keys.get(label).expose()[..]), "{label}");
    }
    for kind in [
        SecretKind::SharedSecret,
        SecretKind::EarlySecret,
        SecretKind::HandshakeSecret,
        SecretKind::MasterSecret,
    ] {
        assert!(secret(kind).is_some(), "{kind} revealed");
    }
    // The server did not ask: it reveals nothing.
    assert!(revealed(&p.server_events).is_empty());
    let debug = format!("{:?}", p.client_events);
    let hex: String =
        keys.get("CLIENT_TRAFFIC_SECRET_0").expose().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.contains(&hex), "Debug shows a revealed value");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn every_command_the_view_offers_recomputes_the_engines_value_with_each_suite() {
    for (suite, seed) in [(CHACHA, 33), (AES, 34)] {
        let p = session(suite, true, seed);
        for (side, events) in [("client", &p.client_events), ("server", &p.server_events)] {
            let schedule = schedule_of(events);
            let proofs = schedule.proofs();
            // The exchange, early, derived, handshake, 2 hs traffic (each
            // finished_key, verify_data, key, iv), derived, master, ap
            // traffic of generations 0 and 1 both ways (key, iv each),
            // exporter; then records (nonce and plaintext each).
            let secrets = 1 + 3 + 2 * 5 + 2 + 4 * 3 + 1;
            assert!(proofs.len() > secrets + 8, "{side}: only {} commands", proofs.len());
            let records = revealed(events).iter().filter(|r| matches!(r, Revealed::Record { .. })).count();
            assert!(records >= 8, "{side}: {records} records revealed");
            for proof in &proofs {
                assert_eq!(run(proof), proof.expected.as_str(), "{side} {suite}: {}", proof.command.as_str());
            }
            let names: Vec<String> = schedule.rows().into_iter().map(|r| r.name).collect();
            for name in ["c ap traffic 1", "s ap traffic 1", "exp master", "client Finished verify_data"] {
                assert!(names.iter().any(|n| n == name), "{side}: no {name} row in {names:?}");
            }
        }
    }
}

#[test]
fn a_wrong_value_makes_its_command_disagree() {
    let p = session(CHACHA, true, 35);
    let proofs = schedule_of(&p.client_events).proofs();
    // Flip one hex digit of the input of a few commands: each output changes.
    let mut tried = 0;
    for proof in
        proofs.iter().filter(|p| p.command.starts_with("echo ") || p.command.contains("hexkey:")).step_by(5)
    {
        tried += 1;
        let at = proof.command.find("hexkey:").or_else(|| proof.command.find("echo ")).unwrap() + 8;
        let mut command = proof.command.to_string();
        let digit = command.as_bytes()[at];
        let flipped = if digit == b'0' { "1" } else { "0" };
        command.replace_range(at..at + 1, flipped);
        let wrong = Proof { command: command.into(), expected: proof.expected.clone() };
        let out = Command::new("sh").arg("-c").arg(wrong.command.as_str()).output().unwrap();
        assert_ne!(
            normalize(&String::from_utf8_lossy(&out.stdout)),
            proof.expected.as_str(),
            "{}",
            wrong.command.as_str()
        );
    }
    assert!(tried >= 6, "{tried} commands tried");
}

#[test]
fn mutual_tls_reveals_the_clients_finished_and_it_recomputes() {
    let pki = pki(36);
    let mut c = client_config(&pki);
    c.reveal = true;
    let mut rng = tlschat::tls::SeededRng::new_for_testing_only(36);
    let key = tlschat::tls::Ed25519Key::generate(&mut rng);
    c.client_cert = Some(to_tls(&pki.ca.issue_client(key, "alice", &mut rng, MADE).unwrap()));
    let mut s = server_config(&pki);
    s.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
    s.reveal = true;
    let mut p = Pair::new(c, s, 36);
    p.drive();
    p.assert_connected();
    for events in [&p.client_events, &p.server_events] {
        let finished: Vec<Direction> = revealed(events)
            .iter()
            .filter_map(|r| match r {
                Revealed::Finished { direction, .. } => Some(*direction),
                _ => None,
            })
            .collect();
        assert_eq!(finished.len(), 2);
        for proof in schedule_of(events).proofs() {
            assert_eq!(run(&proof), proof.expected.as_str(), "{}", proof.command.as_str());
        }
    }
}
