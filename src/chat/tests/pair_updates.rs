//! Post-compromise updates in `/msg` pair groups, through the relay.

use super::*;
use crate::chat::e2e::{Step, UpdateState};
use crate::chat::member::UpdatePolicy;

/// Alice and bob, both updating after `every_sealed` messages sealed.
fn pair_world(every_sealed: u32) -> World {
    let mut w = World::room();
    w.join(1, "alice");
    w.join(2, "bob");
    let policy = UpdatePolicy { every_ms: 10 * 60 * 1000, every_sealed };
    for id in [1, 2] {
        let m = w.members.remove(&id).unwrap();
        w.members.insert(id, m.with_update_policy(policy));
    }
    w
}

fn updates(events: &[ChatEvent]) -> Vec<(bool, UpdateState, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::E2eStep { step: Step::Update { mine, state, to, .. }, .. } => {
                Some((*mine, *state, *to))
            }
            _ => None,
        })
        .collect()
}

fn same_epoch(w: &World) -> u64 {
    let (a, b) = (w.members[&1].pair_view(w.key(2)).unwrap(), w.members[&2].pair_view(w.key(1)).unwrap());
    assert_eq!(a.epoch, b.epoch);
    assert_eq!(a.secrets, b.secrets, "both derive the same epoch values");
    assert!(!a.pending && !b.pending);
    a.epoch
}

#[test]
fn an_update_mid_conversation_keeps_every_message_and_refuses_an_old_epoch_replay() {
    let mut w = pair_world(3);
    w.msg(1, "bob", "one");
    // Two: the relay's copy to bob is kept, to replay later.
    let member = w.members.get_mut(&1).unwrap();
    member.say(Kind::Text, "two", Some("bob"), w.now).unwrap();
    let frame = member.take_outgoing().pop().unwrap();
    let got = w.intercept(1, frame, 2);
    let [kept @ Frame::Sealed { .. }] = got.as_slice() else { panic!("{got:?}") };
    let kept = kept.encode().unwrap();
    w.deliver(2, &kept);
    assert_eq!(same_epoch(&w), 1);
    // Three is the third alice sealed: her update follows it. Bob merges
    // it and says so; alice merges hers on his word.
    w.msg(1, "bob", "three");
    let alice = w.take(1);
    assert_eq!(
        updates(&alice),
        [(true, UpdateState::Sent, 2), (true, UpdateState::Confirmed, 2)],
        "{alice:#?}"
    );
    let bob = w.take(2);
    assert_eq!(updates(&bob), [(false, UpdateState::Merged, 2)]);
    assert_eq!(same_epoch(&w), 2);
    // After it, both ways.
    w.msg(1, "bob", "four");
    w.msg(2, "alice", "five");
    let bob_now = w.take(2);
    assert_eq!(e2e_texts(&bob_now), [("four".to_owned(), true)]);
    let mut bob_all = bob;
    bob_all.extend(bob_now);
    assert_eq!(
        e2e_texts(&bob_all),
        [("one".into(), true), ("two".into(), true), ("three".into(), true), ("four".into(), true)]
    );
    assert_eq!(e2e_texts(&w.take(1)), [("five".to_owned(), true)]);
    // The relay replays two, sealed in epoch 1: refused, not shown.
    w.deliver(2, &kept);
    let bob = w.take(2);
    assert!(e2e_texts(&bob).is_empty(), "{bob:#?}");
    assert!(bob.iter().any(|e| matches!(e, ChatEvent::E2eRefused { .. })), "{bob:#?}");
    for text in ["one", "two", "three", "four", "five"] {
        assert!(!contains(&w.wire, text.as_bytes()), "the relay saw {text:?}");
    }
}

#[test]
fn both_updating_at_once_ends_in_one_group_with_the_lower_keys_commit_then_the_other() {
    let mut w = pair_world(100);
    w.msg(1, "bob", "hi");
    w.msg(2, "alice", "hi");
    w.take(1);
    w.take(2);
    // Ten minutes on: each one's next line brings an update, and the relay
    // holds both until each has sent its own.
    w.now += 10 * 60 * 1000;
    let mut held = Vec::new();
    for (id, to, to_id, text) in [(1, "bob", 2, "from alice"), (2, "alice", 1, "from bob")] {
        let member = w.members.get_mut(&id).unwrap();
        let said = member.say(Kind::Text, text, Some(to), w.now).unwrap();
        let frames = member.take_outgoing();
        w.events.entry(id).or_default().extend(said);
        assert_eq!(frames.len(), 2, "the line and the update");
        for frame in frames {
            for got in w.intercept(id, frame, to_id) {
                held.push((to_id, got.encode().unwrap()));
            }
        }
    }
    for (to, bytes) in held {
        w.deliver(to, &bytes);
    }
    let (alice, bob) = (w.take(1), w.take(2));
    assert_eq!(e2e_texts(&alice), [("from bob".to_owned(), true)]);
    assert_eq!(e2e_texts(&bob), [("from alice".to_owned(), true)]);
    let (low, high) = if w.key(1) < w.key(2) { (&alice, &bob) } else { (&bob, &alice) };
    // The low key: its own sent, the rival left, its own confirmed, then
    // the high key's redone update merged.
    assert_eq!(
        updates(low),
        [
            (true, UpdateState::Sent, 2),
            (false, UpdateState::RivalWon, 2),
            (true, UpdateState::Confirmed, 2),
            (false, UpdateState::Merged, 3)
        ],
        "{low:#?}"
    );
    assert_eq!(
        updates(high),
        [
            (true, UpdateState::Sent, 2),
            (false, UpdateState::RivalLost, 2),
            (true, UpdateState::Sent, 3),
            (true, UpdateState::Confirmed, 3)
        ],
        "{high:#?}"
    );
    assert_eq!(same_epoch(&w), 3);
    w.msg(1, "bob", "after");
    w.msg(2, "alice", "and back");
    assert_eq!(e2e_texts(&w.take(2)), [("after".to_owned(), true)]);
    assert_eq!(e2e_texts(&w.take(1)), [("and back".to_owned(), true)]);
}

#[test]
fn a_pair_groups_life_is_told_in_steps_with_the_group_after_each() {
    let mut w = pair_world(100);
    w.msg(1, "bob", "hi");
    let steps: Vec<(&'static str, Option<u64>)> = w.events[&1]
        .iter()
        .filter_map(|e| match e {
            ChatEvent::E2eStep { step, view, .. } => Some((step.name(), view.as_ref().map(|v| v.epoch))),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("KeyPackage", None),
            ("KeyPackage", None),
            ("Add", Some(1)),
            ("Commit", Some(1)),
            ("Welcome", Some(1))
        ]
    );
    let fetched = w.events[&1].iter().find_map(|e| match e {
        ChatEvent::E2eStep { step: Step::Fetched(info), .. } => Some(info.clone()),
        _ => None,
    });
    assert_eq!(fetched.map(|i| (i.suite, i.leaf_key)), Some((0x0003, w.key(2))));
    assert!(w.events[&2].iter().any(|e| matches!(
        e,
        ChatEvent::E2eStep { step: Step::Welcome { made: false, members: 2, .. }, view: Some(v), .. } if v.epoch == 1
    )));
}

#[test]
fn the_epoch_values_a_step_carries_are_never_in_debug_the_log_or_json() {
    let mut w = pair_world(100);
    w.msg(1, "bob", "hi");
    let events = &w.events[&1];
    let view = events
        .iter()
        .rev()
        .find_map(|e| match e {
            ChatEvent::E2eStep { view: Some(v), .. } => Some(v.clone()),
            _ => None,
        })
        .unwrap();
    let secrets = view.secrets.clone().unwrap();
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut printed = format!("{events:?}");
    for event in events {
        let net = crate::net::NetEvent::Chat { peer, event: event.clone() };
        printed.push_str(&format!("{:?}", crate::present::report::json(&net)));
        printed.push_str(&crate::present::report::chat_lines(event).join("\n"));
    }
    assert!(printed.contains("e2e_step"), "{printed}");
    for value in [&secrets.authenticator, &secrets.exporter, &secrets.confirmation_tag] {
        let hex = crate::tls::crypto::hex(value);
        assert!(!printed.contains(&hex[..16]), "{hex} printed");
        let bytes = format!("{:?}", &value[..8]);
        assert!(!printed.contains(&bytes[1..bytes.len() - 1]), "{bytes} printed");
    }
}
