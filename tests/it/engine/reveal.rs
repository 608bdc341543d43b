//! `--reveal`: the engine reports the values it used only when asked, and
//! every command the key schedule view offers, run with the standard
//! tools (OpenSSL, xxd, sh), prints exactly the engine's value: the proof
//! the RFC 8448 tests give, for live sessions.

use std::process::Command;
use std::sync::Arc;

use crate::engine_pair::*;
use tlschat::teach::schedule::{Proof, Schedule, State, normalize};
use tlschat::tls::{CipherSuite, ClientAuth, ClientTrust, Direction, Event, Revealed, SecretKind};

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
            let records = revealed(events).iter().filter(|r| matches!(r, Revealed::Record(_))).count();
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

// ---------------------------------------------------------------------------
// End to end through the binary

use crate::programs::{Proc, TempDir, tlschat};

/// The JSON lines of a headless demo run with `args`, once it has connected
/// and then ended with its input.
fn demo_json(dir: &TempDir, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["demo", "--headless", "--json"];
    all.extend_from_slice(args);
    let mut demo = Proc::spawn("demo", tlschat(&all).env("TLSCHAT_HOME", dir.path()));
    demo.stdout.wait_for("connected", |l| l.contains("\"type\":\"connected\""));
    demo.close_stdin();
    assert!(demo.wait().success(), "{}", demo.output());
    demo.stdout.all().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn sh(command: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    normalize(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn the_demo_reveals_by_default_and_openssl_and_the_key_log_agree_with_what_it_prints() {
    let dir = TempDir::new("reveal-demo");
    let keylog = dir.join("keys.log");
    let lines = demo_json(&dir, &["--keylog", keylog.to_str().unwrap()]);
    let revealed = |what: &str| {
        lines
            .iter()
            .find(|v| v["type"] == "revealed" && v["what"] == what)
            .unwrap_or_else(|| panic!("no revealed {what}"))
            .clone()
    };
    let text = |v: &serde_json::Value, field: &str| v[field].as_str().unwrap().to_owned();
    // X25519 by OpenSSL, from the printed keys (commands written here, apart
    // from the view's).
    let x = revealed("x25519");
    let shared = text(&revealed("(EC)DHE shared secret"), "value");
    let derived = sh(&format!(
        "d=$(mktemp -d); echo 302e020100300506032b656e04220420{} | xxd -r -p > $d/k; \
         echo 302a300506032b656e032100{} | xxd -r -p > $d/p; \
         openssl pkeyutl -derive -keyform DER -inkey $d/k -peerform DER -peerkey $d/p | xxd -p -c 32; rm -r $d",
        text(&x, "private_key"),
        text(&x, "peer_public_key")
    ));
    assert_eq!(derived, shared);
    // c hs traffic = HKDF-Expand-Label(handshake secret, "c hs traffic", hash, 32).
    let hs = text(&revealed("handshake secret"), "value");
    let c_hs = revealed("c hs traffic");
    let info = format!(
        "0020{:02x}{}20{}",
        18,
        "746c73313320632068732074726166666963",
        text(&c_hs, "transcript_hash")
    );
    let expanded = sh(&format!(
        "openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY -kdfopt hexkey:{hs} -kdfopt hexinfo:{info} HKDF"
    ));
    assert_eq!(expanded, text(&c_hs, "value"));
    // The key log, written by another path, has the same secrets.
    let log = std::fs::read_to_string(&keylog).unwrap();
    for (label, what) in
        [("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "c hs traffic"), ("SERVER_TRAFFIC_SECRET_0", "s ap traffic")]
    {
        let line = log.lines().find(|l| l.starts_with(label)).unwrap();
        assert_eq!(line.rsplit(' ').next().unwrap(), text(&revealed(what), "value"), "{label}");
    }
}

#[test]
fn the_demo_with_no_reveal_prints_no_value() {
    let dir = TempDir::new("reveal-demo-off");
    let lines = demo_json(&dir, &["--no-reveal"]);
    assert!(lines.iter().any(|v| v["type"] == "connected"));
    assert!(!lines.iter().any(|v| v["type"] == "revealed"));
}

#[test]
fn headless_lines_carry_the_values_but_not_the_records() {
    let dir = TempDir::new("reveal-demo-lines");
    let mut demo = Proc::spawn("demo", tlschat(&["demo", "--headless"]).env("TLSCHAT_HOME", dir.path()));
    demo.stdout.wait_for_text("[tls] connected: ");
    demo.close_stdin();
    assert!(demo.wait().success(), "{}", demo.output());
    let out = demo.stdout.all();
    let value = |prefix: &str| {
        out.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}:\n{out:?}")).clone()
    };
    let line = value("[tls] revealed handshake secret = ");
    let hex = line.rsplit(' ').next().unwrap();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    value("[tls] revealed c ap traffic = ");
    value("[tls] revealed x25519 private key ");
    assert!(!out.iter().any(|l| l.contains("record")), "records are the view's alone");
    // On by default in the demo: nothing said on stderr.
    assert!(demo.stderr.all().is_empty(), "{}", demo.output());
}

// ---------------------------------------------------------------------------
// The commands as a script (`--reveal-script`) and as headless lines

/// Runs a script with `shell`: its status and what it printed.
fn run_script(shell: &str, path: &std::path::Path) -> (bool, String) {
    let out = Command::new(shell).arg(path).output().expect("the shell runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_written_script_runs_every_command_and_checks_the_engines_values() {
    let dir = TempDir::new("reveal-script-lib");
    for (suite, seed) in [(CHACHA, 37), (AES, 38)] {
        let p = session(suite, true, seed);
        let schedule = schedule_of(&p.client_events);
        let proofs = schedule.named_proofs();
        let script = schedule.script();
        // Each command is there with its value as a comment.
        for (name, proof) in &proofs {
            assert!(script.contains(&format!("# expect: {}", proof.expected.as_str())), "{name}");
            assert!(script.contains(proof.command.as_str()), "{name}");
        }
        let path = dir.join("schedule.sh");
        std::fs::write(&path, script.as_bytes()).unwrap();
        for shell in ["bash", "sh"] {
            let (ok, out) = run_script(shell, &path);
            assert!(ok, "{shell} {suite}:\n{out}");
            assert_eq!(out.lines().filter(|l| l.starts_with("ok   ")).count(), proofs.len(), "{out}");
            assert!(out.ends_with(&format!("{} ok, 0 failed\n", proofs.len())), "{out}");
        }
        // A wrong value is caught: the script says which and fails.
        let (_, proof) = &proofs[proofs.len() / 2];
        let mut wrong = proof.expected.to_string();
        let flipped = if wrong.starts_with('0') { "1" } else { "0" };
        wrong.replace_range(0..1, flipped);
        std::fs::write(
            &path,
            script.replace(&format!(" {} \"$got\"", proof.expected.as_str()), &format!(" {wrong} \"$got\"")),
        )
        .unwrap();
        let (ok, out) = run_script("bash", &path);
        assert!(!ok, "{out}");
        assert_eq!(out.lines().filter(|l| l.starts_with("FAIL ")).count(), 1, "{out}");
    }
}

#[test]
fn the_demo_writes_the_script_and_headless_reveal_prints_the_commands() {
    let dir = TempDir::new("reveal-script-demo");
    let script = dir.join("schedule.sh");
    let mut demo = Proc::spawn(
        "demo",
        tlschat(&["demo", "--headless", "--reveal", "--reveal-script", script.to_str().unwrap()])
            .env("TLSCHAT_HOME", dir.path()),
    );
    demo.stdout.wait_for_text("[tls] connected: ");
    demo.close_stdin();
    assert!(demo.wait().success(), "{}", demo.output());
    let out = demo.stdout.all();
    // The commands printed, each under its name and value, and each
    // printed one gives that value.
    let mut commands = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if let Some((name, expected)) = out[i].strip_prefix("# ").and_then(|l| l.split_once(": expect ")) {
            let mut command = String::new();
            i += 1;
            while i < out.len() {
                command.push_str(&out[i]);
                command.push('\n');
                let more = out[i].ends_with('\\');
                i += 1;
                if !more {
                    break;
                }
            }
            commands.push((name.to_owned(), expected.to_owned(), command));
        } else {
            i += 1;
        }
    }
    for name in ["(EC)DHE shared secret", "early secret", "handshake secret", "c hs traffic", "master secret"]
    {
        assert!(commands.iter().any(|(n, ..)| n.ends_with(name)), "no {name} command in {out:?}");
    }
    for (name, expected, command) in &commands {
        assert_eq!(&sh(command), expected, "{name}: {command}");
    }
    // The script: 0600, and every check passes.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o600);
    let (ok, printed) = run_script("bash", &script);
    assert!(ok, "{printed}");
    let checked = printed.lines().filter(|l| l.starts_with("ok   ")).count();
    assert!(checked >= commands.len(), "{checked} checks, {} commands printed", commands.len());
    // The revealed values the demo printed are the script's expectations.
    let line = out.iter().find(|l| l.starts_with("[tls] revealed handshake secret = ")).unwrap();
    let hs = line.rsplit(' ').next().unwrap();
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains(&format!("# expect: {hs}")), "{text}");
}

#[test]
fn without_reveal_given_the_headless_demo_prints_no_command() {
    let dir = TempDir::new("reveal-no-commands");
    let mut demo = Proc::spawn("demo", tlschat(&["demo", "--headless"]).env("TLSCHAT_HOME", dir.path()));
    demo.stdout.wait_for_text("[tls] connected: ");
    demo.close_stdin();
    assert!(demo.wait().success(), "{}", demo.output());
    assert!(!demo.stdout.all().iter().any(|l| l.starts_with("openssl ") || l.contains(": expect ")));
}
