//! The room end to end: `tlschat listen` with three `tlschat connect`
//! members (each with an identity of its own, printing `--json`) and one
//! `openssl s_client` guest, as separate processes on loopback. Every
//! member hears every other member exactly once, in the relay's order;
//! joins, leaves, `/who`, history on joining and `/msg` work; every line a
//! member prints parses as JSON.

use std::path::Path;
use std::process::Command;

use crate::programs::{HOME_ENV, Proc, Room, TempDir, events, live_messages, tlschat, wait_event};
use serde_json::Value;

/// A member: `tlschat connect --json` under an identity named `name`.
fn member(dir: &TempDir, room: &Room, name: &str) -> Proc {
    let home = dir.join(&format!("{name}-home"));
    let mut id = tlschat(&["id", "--name", name]);
    id.env(HOME_ENV, &home);
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
    let target = room.target();
    let mut cmd = tlschat(&["connect", &target, "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &home);
    Proc::spawn(name, &mut cmd)
}

fn is_message(v: &Value, from: &str, text: &str) -> bool {
    v["type"] == "message" && v["from"] == from && v["text"] == text
}

fn guest(room: &Room, home: &Path) -> Proc {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(home).args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", room.addr.port()),
        "-servername",
        "localhost",
        "-CAfile",
        room.ca.to_str().unwrap(),
        "-tls1_3",
        "-quiet",
        "-nocommands",
    ]);
    Proc::spawn("s_client", &mut cmd)
}

#[test]
fn three_members_and_a_guest_each_hear_everyone_else_once_in_the_relays_order() {
    let dir = TempDir::new("room");
    let mut room = Room::start(&dir, "listen", &["--history", "5"]);

    // Alice first, alone; what she says is history for those who come later.
    let mut alice = member(&dir, &room, "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome" && v["name"] == "alice");
    alice.send_line("before the others");
    wait_event(&alice, "alice's line delivered", |v| v["type"] == "delivered" && v["seq"] == 1);

    let mut bob = member(&dir, &room, "bob");
    let history =
        wait_event(&bob, "alice's line as history", |v| is_message(v, "alice", "before the others"));
    assert_eq!(
        (history["history"].as_bool(), history["sig"].as_str()),
        (Some(true), Some("valid")),
        "{history}"
    );
    let mut carol = member(&dir, &room, "carol");
    wait_event(&carol, "carol's welcome", |v| v["type"] == "welcome");
    let mut guest = guest(&room, dir.path());
    // Alice, bob, carol, the host and the guest: one count, said the same way everywhere.
    guest
        .stdout
        .wait_for_text("tlschat: you are guest-1 (unverified guest); 5 in the room, the host included.");
    guest.stdout.wait_for_text("commands such as /who or /msg are for members with tlschat");
    // Everyone has seen everyone come in.
    for p in [&alice, &bob, &carol] {
        wait_event(p, "the guest's join", |v| v["type"] == "join" && v["member"]["name"] == "guest-1");
    }
    alice.send_line("/who");
    // The answer to /who, after the list that came on joining.
    let who = wait_event(&alice, "the member list of five", |v| v["type"] == "members" && v["total"] == 5);
    assert_eq!(who["members"].as_array().map(Vec::len), Some(5), "{who}");

    alice.send_line("from alice");
    bob.send_line("from bob");
    carol.send_line("from carol");
    guest.send_line("from the guest");
    room.proc.send_line("from the host");
    let all = [
        ("alice", "from alice"),
        ("bob", "from bob"),
        ("carol", "from carol"),
        ("guest-1", "from the guest"),
    ];
    let host = room.proc.stdout.wait_for_text("you are in the room as ");
    let host_name = host.rsplit(' ').next().unwrap().to_owned();
    for (p, me) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        for (from, text) in all.iter().filter(|(from, _)| *from != me) {
            wait_event(p, &format!("{me} hearing {from}"), |v| is_message(v, from, text));
        }
        wait_event(p, &format!("{me} hearing the host"), |v| is_message(v, &host_name, "from the host"));
    }
    for (from, text) in all.iter().filter(|(from, _)| *from != "guest-1") {
        guest
            .stdout
            .wait_for(&format!("the guest hearing {from}"), |l| l == format!("[{from} \u{2713}] {text}"));
    }
    room.proc.stdout.wait_for_text("[guest-1 (unverified)] from the guest");
    room.proc.stdout.wait_for_text("[carol \u{2713}] from carol");

    // Exactly once each, in one order shared by everyone: the relay's.
    let orders: Vec<Vec<(u64, String, String)>> =
        [&alice, &bob, &carol].iter().map(|p| live_messages(p)).collect();
    for (who, order) in ["alice", "bob", "carol"].iter().zip(&orders) {
        let seqs: Vec<u64> = order.iter().map(|m| m.0).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{who}: not in room order: {order:?}");
        let texts: Vec<&str> = order.iter().map(|m| m.2.as_str()).collect();
        for (_, text) in &all {
            let n = texts.iter().filter(|t| *t == text).count();
            assert!(n <= 1, "{who} got {text:?} {n} times");
        }
    }
    let seq_of =
        |order: &Vec<(u64, String, String)>, text: &str| order.iter().find(|m| m.2 == text).map(|m| m.0);
    for text in ["from the guest", "from the host"] {
        let seqs: Vec<_> = orders.iter().map(|o| seq_of(o, text)).collect();
        assert!(seqs.iter().all(|s| s.is_some() && *s == seqs[0]), "{text}: {seqs:?}");
    }
    // Every signed message verified; the guest's is unsigned.
    for v in events(&alice).iter().chain(&events(&bob)).chain(&events(&carol)) {
        if v["type"] == "message" {
            let expected = if v["from"] == "guest-1" { "unsigned" } else { "valid" };
            assert_eq!(v["sig"], expected, "{v}");
            if expected == "valid" {
                assert_eq!(v["key"].as_str().map(str::len), Some(64), "{v}");
            }
        }
        assert!(
            !matches!(v["type"].as_str(), Some("relay_gap" | "replay" | "key_changed" | "refused")),
            "{v}"
        );
    }

    // /who lists everyone, with their standing.
    carol.send_line("/who");
    // (the list that came on joining had no guest yet)
    let who = wait_event(&carol, "the member list", |v| {
        v["type"] == "members"
            && v["members"].as_array().is_some_and(|m| m.iter().any(|m| m["name"] == "guest-1"))
    });
    let mut names: Vec<(String, String)> = who["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().into(), m["standing"].as_str().unwrap().into()))
        .collect();
    names.sort();
    let mut expected: Vec<(String, String)> =
        [("alice", "verified"), ("bob", "verified"), ("carol", "verified"), ("guest-1", "guest")]
            .iter()
            .map(|(n, s)| ((*n).into(), (*s).into()))
            .collect();
    expected.push((host_name.clone(), "host".into()));
    expected.sort();
    assert_eq!(names, expected);

    // /msg reaches its recipient only, marked private on both sides.
    alice.send_line("/msg bob for bob only");
    let private = wait_event(&bob, "the private message", |v| is_message(v, "alice", "for bob only"));
    assert_eq!(
        (private["private"].as_bool(), private["sig"].as_str(), private["kind"].as_str()),
        (Some(true), Some("valid"), Some("private"))
    );
    wait_event(&alice, "the private message delivered", |v| v["type"] == "delivered" && v["private"] == true);
    carol.send_line("after the secret");
    wait_event(&bob, "carol's next line", |v| is_message(v, "carol", "after the secret"));
    guest.stdout.wait_for_text("[carol \u{2713}] after the secret");
    assert!(!carol.stdout.text().contains("for bob only"), "{}", carol.output());
    assert!(!guest.stdout.text().contains("for bob only"), "{}", guest.output());
    assert!(!room.proc.stdout.text().contains("for bob only"), "{}", room.proc.output());

    // Leaving is announced to the others.
    alice.close_stdin();
    assert!(alice.wait().success(), "{}", alice.output());
    let left = wait_event(&bob, "alice leaving", |v| v["type"] == "leave" && v["member"]["name"] == "alice");
    assert_eq!(left["member"]["standing"], "verified");
    guest.stdout.wait_for_text("* alice left");
    for p in [&mut bob, &mut carol] {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
    // Everything the members printed was JSON (events() panics otherwise).
    assert!(events(&bob).len() > 10);
}

/// Makes `name`'s identity in `dir/NAME-home`; returns its fingerprint as
/// 64 hex digits.
fn identity(dir: &TempDir, name: &str) -> String {
    let mut id = tlschat(&["id", "--name", name]);
    id.env(HOME_ENV, dir.join(&format!("{name}-home")));
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
    let line = id.stdout.wait_for_text("fingerprint: ");
    line["fingerprint: ".len()..].replace(' ', "")
}

/// `tlschat connect --json` under `name`'s identity, made before.
fn rejoin(dir: &TempDir, room: &Room, name: &str) -> Proc {
    let mut cmd = tlschat(&["connect", &room.target(), "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, dir.join(&format!("{name}-home")));
    Proc::spawn(name, &mut cmd)
}

#[test]
fn a_closed_room_admits_the_invited_and_the_host_kicks_and_bans_while_a_member_ignores() {
    let dir = TempDir::new("moderation");
    let alice_fp = identity(&dir, "alice");
    let bob_fp = identity(&dir, "bob");
    // Bob is invited before the room starts, from the command line.
    let mut invite = tlschat(&["invite", "bob", &bob_fp]);
    invite.env(HOME_ENV, dir.join("listen-home"));
    let mut invite = Proc::spawn("invite", &mut invite);
    assert!(invite.wait().success(), "{}", invite.output());
    assert!(invite.stdout.text().starts_with("invited bob with the key"), "{}", invite.output());
    let mut room = Room::start(&dir, "listen", &["--closed", "--no-guests"]);
    room.proc.stdout.wait_for_text("log: ");
    // The running room holds its store: the command line says to use /invite there.
    let mut late = tlschat(&["invite", "carol", &"ab".repeat(32)]);
    late.env(HOME_ENV, dir.join("listen-home"));
    let mut late = Proc::spawn("invite", &mut late);
    assert!(!late.wait().success(), "{}", late.output());
    assert!(late.output().contains("the host's /invite does it"), "{}", late.output());

    // Closed: not invited, not admitted, and told what to ask for.
    let mut alice = rejoin(&dir, &room, "alice");
    assert!(!alice.wait().success());
    room.proc.stdout.wait_for_text("this room is closed");

    room.proc.send_line(&format!("/invite alice {alice_fp}"));
    room.proc.stdout.wait_for_text("invited alice with the key");
    let mut alice = rejoin(&dir, &room, "alice");
    let mut bob = rejoin(&dir, &room, "bob");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");

    // Bob ignores alice: her line is not shown to him, the host's is.
    alice.send_line("before the ignore");
    wait_event(&bob, "alice's first line", |v| is_message(v, "alice", "before the ignore"));
    bob.send_line("/ignore alice");
    wait_event(&bob, "the ignore", |v| v["type"] == "ignoring" && v["name"] == "alice");
    alice.send_line("you will not see this");
    room.proc.stdout.wait_for_text("] you will not see this");
    room.proc.send_line("the host speaks");
    wait_event(&bob, "the host's line", |v| v["type"] == "message" && v["text"] == "the host speaks");
    assert!(!bob.stdout.contains("you will not see this"), "{}", bob.output());

    // Kicked: disconnected, and may come back.
    room.proc.send_line("/kick alice");
    wait_event(&bob, "alice's leave", |v| v["type"] == "leave" && v["reason"] == "removed by the host");
    assert!(alice.wait().success() || alice.stdout.contains("removed by the host"), "{}", alice.output());
    let mut alice = rejoin(&dir, &room, "alice");
    wait_event(&alice, "alice back", |v| v["type"] == "welcome");

    // Banned: disconnected, and refused from then on, in this process and the next.
    room.proc.send_line("/ban alice");
    wait_event(&bob, "alice banned", |v| v["type"] == "leave" && v["reason"] == "banned by the host");
    let _ = alice.wait();
    let banned = std::fs::read_to_string(dir.join("listen-home").join("room").join("banned")).unwrap();
    assert!(banned.contains(" alice"), "{banned}");
    let mut alice = rejoin(&dir, &room, "alice");
    assert!(!alice.wait().success());
    room.proc.stdout.wait_for_text("the host banned this key");
    bob.close_stdin();
    assert!(bob.wait().success(), "{}", bob.output());
}
