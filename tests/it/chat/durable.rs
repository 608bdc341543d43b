//! The room's log on disk, end to end: `tlschat listen` is killed with
//! SIGKILL in the middle of a burst from three `tlschat connect --json`
//! members and started again on the same home and port. Every message a
//! member was acknowledged, and every message anyone received, is in the
//! history served after the restart, once, in order and still verifiable,
//! and the room's sequence numbers go on from where they were: none is
//! given twice. A name bound before the kill is still bound to its key
//! after it, and a home's older members file is imported once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::programs::{HOME_ENV, Proc, Room, TempDir, WAIT, events, tlschat};
use serde_json::Value;

/// `tlschat listen 127.0.0.1:PORT` in `DIR/room-home`, its CA in `DIR/room-ca.pem`.
fn listen(dir: &TempDir, port: u16, extra: &[&str]) -> Room {
    let ca = dir.join("room-ca.pem");
    let home = dir.join("room-home");
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["listen", &addr, "--ca-out", ca.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = tlschat(&args);
    cmd.env(HOME_ENV, &home);
    let proc = Proc::spawn("listen", &mut cmd);
    let line = proc.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
    let addr: SocketAddr = line["listening on ".len()..].parse().unwrap();
    let fingerprint = proc.stdout.wait_for_text("fingerprint: ")["fingerprint: ".len()..].to_owned();
    Room { proc, addr, ca, fingerprint, home }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tlschat connect --json` as `name`, whose home (and identity) is
/// `DIR/NAME-home`, made on first use.
fn member(dir: &TempDir, room: &Room, name: &str) -> Proc {
    let home = dir.join(&format!("{name}-home"));
    if !home.exists() {
        let mut id = tlschat(&["id", "--name", name]);
        id.env(HOME_ENV, &home);
        let mut id = Proc::spawn("id", &mut id);
        assert!(id.wait().success(), "{}", id.output());
    }
    let mut cmd = tlschat(&["connect", &room.target(), "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &home);
    let p = Proc::spawn(name, &mut cmd);
    p.stdout.wait_for(&format!("{name}'s welcome"), |l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| v["type"] == "welcome")
    });
    p
}

/// The room messages `p` was acknowledged: room_seq -> the text it sent.
fn acknowledged(p: &Proc) -> BTreeMap<u64, String> {
    let events = events(p);
    let sent: BTreeMap<u64, String> = events
        .iter()
        .filter(|v| v["type"] == "sent")
        .map(|v| (v["seq"].as_u64().unwrap(), v["text"].as_str().unwrap().to_owned()))
        .collect();
    events
        .iter()
        .filter(|v| v["type"] == "delivered" && v["private"] == false)
        .map(|v| (v["room_seq"].as_u64().unwrap(), sent[&v["seq"].as_u64().unwrap()].clone()))
        .collect()
}

/// The messages `p` received (live or history): (room_seq, from, text, history).
fn received(p: &Proc) -> Vec<(u64, String, String, bool)> {
    events(p)
        .iter()
        .filter(|v| v["type"] == "message")
        .map(|v| {
            assert_eq!(v["sig"], "valid", "{v}");
            (
                v["room_seq"].as_u64().unwrap(),
                v["from"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
                v["history"] == true,
            )
        })
        .collect()
}

/// Every room_seq `p` was shown: messages, acknowledgements.
fn room_seqs(p: &Proc) -> BTreeSet<u64> {
    events(p)
        .iter()
        .filter(|v| matches!(v["type"].as_str(), Some("message" | "delivered")))
        .filter_map(|v| v["room_seq"].as_u64())
        .collect()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_relay_killed_mid_burst_and_started_again_keeps_every_acknowledged_message_and_its_order() {
    let dir = TempDir::new("durable");
    let port = free_port();
    let mut room = listen(&dir, port, &[]);
    room.proc.stdout.wait_for_text("the room goes on from room_seq 0");
    let names = ["alice", "bob", "carol"];
    let mut members: Vec<Proc> = names.iter().map(|n| member(&dir, &room, n)).collect();

    // A burst: each says 15 lines, 20 ms apart (within the room's rate of
    // 20 at once).
    let mut killed = false;
    for i in 1..=15 {
        for (p, name) in members.iter_mut().zip(names) {
            p.send_line(&format!("{name} {i}"));
        }
        // The relay is killed as soon as ten are acknowledged, in the
        // middle of the burst: the rest is typed while it is gone.
        if !killed && members.iter().map(|p| acknowledged(p).len()).sum::<usize>() >= 10 {
            room.proc.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + WAIT;
    while !killed && members.iter().map(|p| acknowledged(p).len()).sum::<usize>() < 10 {
        assert!(Instant::now() < deadline, "no acknowledgements");
        std::thread::sleep(Duration::from_millis(1));
    }
    if !killed {
        room.proc.kill();
    }
    // What was on its way to the members arrives, then their connections
    // end and they start reconnecting by themselves.
    for p in &members {
        p.stdout.wait_for("reconnecting", |l| l.contains("\"type\":\"reconnecting\""));
    }

    let acked: Vec<BTreeMap<u64, String>> = members.iter().map(acknowledged).collect();
    let heard: BTreeSet<(u64, String, String)> =
        members.iter().flat_map(received).map(|(seq, from, text, _)| (seq, from, text)).collect();
    let seen_before = members.iter().flat_map(room_seqs).max().unwrap();
    let total_acked: usize = acked.iter().map(BTreeMap::len).sum();
    assert!(total_acked >= 10, "{total_acked}");
    eprintln!("before the kill: {total_acked} of 45 acknowledged, highest room_seq seen {seen_before}");

    // The same home, the same port.
    let room = listen(&dir, port, &["--history", "200"]);
    let line = room.proc.stdout.wait_for_text("the room goes on from room_seq ");
    let restored: u64 = line.rsplit(' ').next().unwrap().trim_end_matches(')').parse().unwrap();
    assert!(restored >= seen_before, "restored at {restored}, but {seen_before} was seen: {line}");

    // Dave, new here, gets the whole burst as history.
    let mut dave = member(&dir, &room, "dave");
    let wanted: usize = acked.iter().map(BTreeMap::len).sum();
    wait_until("the history", || received(&dave).iter().filter(|m| m.3).count() >= wanted);
    let history: Vec<(u64, String, String, bool)> = received(&dave).into_iter().filter(|m| m.3).collect();
    let seqs: Vec<u64> = history.iter().map(|m| m.0).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "not in order, or twice: {seqs:?}");
    let by_seq: BTreeMap<u64, (String, String)> =
        history.iter().map(|(seq, from, text, _)| (*seq, (from.clone(), text.clone()))).collect();
    for (name, acked) in names.iter().zip(&acked) {
        for (room_seq, text) in acked {
            assert_eq!(
                by_seq.get(room_seq),
                Some(&((*name).to_owned(), text.clone())),
                "{name}'s acknowledged {text:?} (room_seq {room_seq}) is not in the history"
            );
        }
    }
    // Whatever anyone received live was on disk before it was sent.
    for (room_seq, from, text) in &heard {
        assert_eq!(by_seq.get(room_seq), Some(&(from.clone(), text.clone())), "{text:?} heard, then lost");
    }
    // The members connected before the kill came back by themselves and
    // resumed: across both connections, each was shown every acknowledged
    // message once, as it is in the log.
    let every_acked: BTreeSet<u64> = acked.iter().flat_map(|a| a.keys().copied()).collect();
    for (p, name) in members.iter().zip(names) {
        p.stdout.wait_for("the resume", |l| l.contains("\"type\":\"resumed\""));
        wait_until("every acknowledged message", || every_acked.is_subset(&room_seqs(p)));
        let shown: Vec<u64> = received(p).iter().map(|m| m.0).collect();
        let once: BTreeSet<u64> = shown.iter().copied().collect();
        assert_eq!(once.len(), shown.len(), "{name} was shown a message twice: {shown:?}");
        for (seq, from, text, _) in received(p) {
            assert_eq!(by_seq.get(&seq), Some(&(from, text)), "{name} was shown what is not in the log");
        }
    }
    let bob = &members[1];

    // The order goes on: the next message's room_seq was never given before.
    dave.send_line("after the restart");
    wait_until("dave's acknowledgement", || !acknowledged(&dave).is_empty());
    let (&next, _) = acknowledged(&dave).iter().next().unwrap();
    assert!(next > restored && next > seen_before, "room_seq {next} after {restored}/{seen_before}");
    bob.stdout.wait_for("bob hearing dave", |l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v["type"] == "message" && v["text"] == "after the restart" && v["room_seq"] == next
        })
    });
}

#[test]
fn a_memory_only_room_starts_over_and_writes_no_log() {
    let dir = TempDir::new("memory-only");
    let port = free_port();
    let mut room = listen(&dir, port, &["--memory-only"]);
    room.proc.stdout.wait_for_text("in memory only (--memory-only)");
    let mut alice = member(&dir, &room, "alice");
    alice.send_line("gone with the room");
    wait_until("alice's acknowledgement", || !acknowledged(&alice).is_empty());
    room.proc.kill();
    alice.kill();
    assert!(!walk_has(&room.home, "log.redb"), "a log file was written");
    let room = listen(&dir, port, &["--memory-only"]);
    let dave = member(&dir, &room, "dave");
    let history = events(&dave).into_iter().find(|v| v["type"] == "welcome").unwrap();
    assert_eq!(history["history"], 0, "{history}");
}

/// Whether a file named `name` is anywhere under `dir`.
fn walk_has(dir: &std::path::Path, name: &str) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let path = e.path();
        path.file_name().is_some_and(|n| n == name) || (path.is_dir() && walk_has(&path, name))
    })
}

/// `tlschat connect` as `name` (home `DIR/NAME-home`, made on first use),
/// which the room must refuse in the handshake; returns its error line.
fn refused(dir: &TempDir, room: &Room, name: &str) -> String {
    let home = dir.join(&format!("{name}-home"));
    if !home.exists() {
        let mut id = tlschat(&["id", "--name", name]);
        id.env(HOME_ENV, &home);
        let mut id = Proc::spawn("id", &mut id);
        assert!(id.wait().success(), "{}", id.output());
    }
    let mut cmd = tlschat(&["connect", &room.target(), "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &home);
    let mut p = Proc::spawn(name, &mut cmd);
    p.send_line("it is me");
    assert!(!p.wait().success(), "{}", p.output());
    let out = p.output();
    assert!(out.contains("access_denied"), "{out}");
    out
}

/// The hex fingerprint of the identity in `DIR/NAME-home`.
fn fingerprint_of(dir: &TempDir, name: &str) -> String {
    let mut id = tlschat(&["id"]);
    id.env(HOME_ENV, dir.join(&format!("{name}-home")));
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
    let line = id.stdout.wait_for_text("fingerprint: ");
    line["fingerprint: ".len()..].replace(' ', "")
}

#[test]
fn a_name_bound_before_a_kill_is_still_bound_to_its_key_after_the_restart_and_a_members_file_is_imported_once()
 {
    let dir = TempDir::new("names-kill");
    let port = free_port();
    // A home of an older tlschat: its names in a members file.
    let room_dir = dir.join("room-home").join("room");
    std::fs::create_dir_all(&room_dir).unwrap();
    let carol_key = "11".repeat(32);
    let members = room_dir.join("members");
    std::fs::write(&members, format!("carol {carol_key} 1800000000\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(dir.join("room-home"), 0o700), (room_dir.clone(), 0o700), (members, 0o600)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let mut room = listen(&dir, port, &[]);
    room.proc.stdout.wait_for_text("imported 1 name binding(s)");
    room.proc.stdout.wait_for_text("log: ");
    assert!(room_dir.join("members.imported").exists() && !room_dir.join("members").exists());
    assert!(room.members().contains(&format!("carol {carol_key} 1800000000")), "{}", room.members());
    // Alice is welcomed: her binding is committed by then.
    let mut alice = member(&dir, &room, "alice");
    let alice_key = fingerprint_of(&dir, "alice");
    room.proc.kill();
    alice.kill();

    let mut room = listen(&dir, port, &[]);
    // The store is read once the room has opened it (after a kill, it repairs it first).
    room.proc.stdout.wait_for_text("log: ");
    assert!(!room.proc.stdout.contains("imported"), "imported twice:\n{}", room.proc.output());
    let names = room.members();
    assert!(names.lines().any(|l| l.starts_with(&format!("alice {alice_key} "))), "{names}");
    // Another key asking for alice, or for carol, is refused; alice's own key is welcome.
    refused(&dir, &room, "ALICE");
    room.proc.stdout.wait_for_text("the name alice belongs to the key");
    refused(&dir, &room, "carol");
    room.proc.stdout.wait_for_text("the name carol belongs to the key");
    let mut alice = member(&dir, &room, "alice");
    alice.send_line("still me");
    wait_until("alice's acknowledgement", || !acknowledged(&alice).is_empty());
    room.proc.kill();
    alice.kill();

    // Killed again: a room kept in memory starts from the names the store kept.
    let mut room = listen(&dir, port, &["--memory-only"]);
    room.proc.stdout.wait_for_text("in memory only (--memory-only)");
    refused(&dir, &room, "ALICE");
    room.proc.stdout.wait_for_text("the name alice belongs to the key");
    room.proc.kill();
}
