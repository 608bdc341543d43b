//! Post-compromise updates in a `/msg` pair group, through the real
//! binaries: `tlschat listen` and two `tlschat connect --json` members.
//! Alice seals 100 lines to bob, then her leaf is due: she commits an
//! Update, bob takes it and answers, and both go on in the new epoch; every
//! line is read, end to end, and the relay prints none of them.

use std::time::Duration;

use crate::programs::{HOME_ENV, Proc, Room, TempDir, events, tlschat, wait_event};
use serde_json::Value;

fn member(dir: &TempDir, room: &Room, name: &str) -> Proc {
    let home = dir.join(&format!("{name}-home"));
    let mut id = tlschat(&["id", "--name", name]);
    id.env(HOME_ENV, &home);
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
    let mut cmd = tlschat(&["connect", &room.target(), "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(HOME_ENV, &home);
    Proc::spawn(name, &mut cmd)
}

fn updates(p: &Proc) -> Vec<Value> {
    events(p).into_iter().filter(|v| v["type"] == "e2e_step" && v["step"] == "Update").collect()
}

#[test]
fn after_a_hundred_sealed_lines_the_pair_updates_and_every_line_before_and_after_is_read() {
    let dir = TempDir::new("e2e-update");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut alice = member(&dir, &room, "alice");
    wait_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let mut bob = member(&dir, &room, "bob");
    wait_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    wait_event(&alice, "bob's join", |v| v["type"] == "join" && v["member"]["name"] == "bob");
    // 101 lines: the 100th sealed makes alice's update due. Paced under
    // the relay's rate (a burst of 20, then 5 a second).
    let texts: Vec<String> = (1..=101).map(|i| format!("line {i} for bob")).collect();
    for (i, text) in texts.iter().enumerate() {
        alice.send_line(&format!("/msg bob {text}"));
        if i >= 10 {
            std::thread::sleep(Duration::from_millis(230));
        }
    }
    let last = texts.last().unwrap().clone();
    wait_event(&bob, "alice's last line", |v| v["type"] == "message" && v["text"] == last.as_str());
    // Alice's update: sent at epoch 1, taken by bob, merged by alice.
    wait_event(&bob, "bob merging alice's update", |v| {
        v["type"] == "e2e_step" && v["step"] == "Update" && v["epoch"] == 2
    });
    wait_event(&alice, "alice's update confirmed", |v| {
        v["type"] == "e2e_step" && v["step"] == "Update" && v["epoch"] == 2
    });
    // After it, both ways.
    alice.send_line("/msg bob after the update");
    wait_event(&bob, "the line after", |v| v["type"] == "message" && v["text"] == "after the update");
    bob.send_line("/msg alice and back");
    wait_event(&alice, "bob's answer", |v| v["type"] == "message" && v["text"] == "and back");

    let read: Vec<(String, bool)> = events(&bob)
        .iter()
        .filter(|v| v["type"] == "message" && v["from"] == "alice")
        .map(|v| (v["text"].as_str().unwrap().to_owned(), v["e2e"] == true && v["sig"] == "valid"))
        .collect();
    let mut expected: Vec<(String, bool)> = texts.iter().map(|t| (t.clone(), true)).collect();
    expected.push(("after the update".into(), true));
    assert_eq!(read, expected, "{}", bob.output());
    assert_eq!(updates(&alice).len(), 2, "sent, then confirmed: {}", alice.output());
    assert_eq!(updates(&bob).len(), 1, "merged: {}", bob.output());
    for p in [&alice, &bob] {
        assert!(!events(p).iter().any(|v| v["type"] == "e2e_refused"), "{}", p.output());
    }
    for p in [&mut alice, &mut bob] {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
    let relay = room.proc.output();
    for text in texts.iter().map(String::as_str).chain(["after the update", "and back"]) {
        assert!(!relay.contains(text), "the relay printed {text:?}");
    }
    room.proc.close_stdin();
}
