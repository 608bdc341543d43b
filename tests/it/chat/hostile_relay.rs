//! A member facing a relay that lies (docs/PROTOCOL.md, "What a member
//! checks"): each lie the relay can tell is caught by the member's own
//! checks, in this session or a later one, and none of them crashes it.

use tlschat::chat::{
    AuthorCheck, ChatEvent, ComposeError, Contacts, Frame, Kind, Member, Received, SigCheck, Stale, Verdict,
};
use tlschat::tls::{Ed25519Key, SeededRng};

const ROOM: [u8; 32] = [7; 32];
/// This member's clock: it joins at JOIN and reads at JOIN plus a little.
const JOIN: u64 = 1_800_000_000_000;

fn key(seed: u64) -> Ed25519Key {
    Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed))
}

/// Carol, who reads; a new session of her each time, remembering `contacts`.
fn carol(contacts: Contacts, session_seed: u64) -> Member {
    let mut m =
        Member::new(ROOM, key(3), &mut SeededRng::new_for_testing_only(session_seed)).with_contacts(contacts);
    m.receive(Frame::Welcome { name: "carol".into(), room_seq: 10, history: 0, e2e: false }, JOIN).unwrap();
    m
}

/// An author: signs lines in one session.
fn author(seed: u64, session_seed: u64) -> Member {
    Member::new(ROOM, key(seed), &mut SeededRng::new_for_testing_only(session_seed))
}

/// The signed bytes of `text` by `who` at `time_ms`.
fn signed(who: &mut Member, text: &str, time_ms: u64) -> Vec<u8> {
    match who.compose(Kind::Text, text, None, time_ms).unwrap().0 {
        Frame::Post { signed } => signed,
        other => panic!("{other:?}"),
    }
}

fn deliver(room_seq: u64, flags: u8, from: &str, signed: &[u8]) -> Frame {
    Frame::Deliver { room_seq, flags, author: from.into(), signed: signed.to_vec() }
}

fn messages(events: &[ChatEvent]) -> Vec<&Received> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) => Some(&**m),
            _ => None,
        })
        .collect()
}

fn one(events: &[ChatEvent]) -> &Received {
    match messages(events).as_slice() {
        [m] => m,
        other => panic!("one message expected: {other:?} in {events:?}"),
    }
}

fn guest_line(room_seq: u64, text: &str) -> Frame {
    Frame::Guest { room_seq, flags: 0, name: "guest-1".into(), text: text.into() }
}

fn lines(events: &[ChatEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Guest { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Session 1: Carol hears Alice and Bob; what she learned, as saved.
fn first_session() -> (Contacts, Vec<u8>) {
    let mut c = carol(Contacts::new(), 100);
    let (mut alice, mut bob) = (author(1, 11), author(2, 12));
    let hello = signed(&mut alice, "hello", JOIN + 1_000);
    let e = c.receive(deliver(11, 0, "alice", &hello), JOIN + 1_100).unwrap();
    assert_eq!((one(&e).author.clone(), one(&e).verdict()), (AuthorCheck::FirstSeen, Verdict::Verified));
    assert!(e.iter().any(|e| matches!(e, ChatEvent::Learned { name, .. } if name == "alice")), "{e:?}");
    let hi = signed(&mut bob, "hi", JOIN + 2_000);
    c.receive(deliver(12, 0, "bob", &hi), JOIN + 2_100).unwrap();
    assert!(c.contacts().is_dirty());
    // What the driver writes to the home, and reads in the next session.
    let saved = Contacts::parse(&c.contacts().to_text()).unwrap();
    (saved, hello)
}

#[test]
fn a_key_swap_in_a_later_session_is_key_changed_and_msg_is_refused() {
    let (saved, _) = first_session();
    let mut c = carol(saved, 200);
    // The relay, a day later, lists "bob" with Alice's key: its word binds
    // nothing, and the lie is told.
    let alice_key = key(1).public_key();
    let lie = tlschat::chat::MemberInfo {
        name: "bob".into(),
        standing: tlschat::chat::Standing::Verified,
        key: alice_key,
        idle_secs: 0,
    };
    let e = c.receive(Frame::Roster { total: 1, last: true, members: vec![lie] }, JOIN + 500).unwrap();
    assert!(e.iter().any(|e| matches!(e, ChatEvent::KeyChanged { name, .. } if name == "bob")), "{e:?}");
    // /msg bob still goes to Bob's own key.
    let (post, _) = c.compose(Kind::Text, "to bob", Some("bob"), JOIN + 600).unwrap();
    let Frame::Post { signed: bytes } = post else { panic!() };
    let opened = tlschat::chat::message::Signed::open(&bytes).unwrap();
    assert_eq!(opened.fields().recipient, Some(key(2).public_key()));

    // Then it delivers Alice's new line as Bob's.
    let mut alice = author(1, 21);
    let line = signed(&mut alice, "I am bob, trust me", JOIN + 1_000);
    let e = c.receive(deliver(11, 0, "bob", &line), JOIN + 1_100).unwrap();
    let m = one(&e);
    assert_eq!(m.sig, SigCheck::Valid);
    assert!(matches!(m.author, AuthorCheck::Changed { .. }), "{m:?}");
    assert_eq!(m.verdict(), Verdict::KeyChanged);
    // Until the user accepts the new key, nothing private goes to "bob".
    let refused = c.compose(Kind::Text, "psst", Some("bob"), JOIN + 1_200).unwrap_err();
    assert!(matches!(refused, ComposeError::KeyChanged(ref name) if name == "bob"), "{refused}");
    assert!(refused.to_string().contains("CHANGED"));
    // The change is remembered across sessions too.
    let again = Contacts::parse(&c.contacts().to_text()).unwrap();
    assert_eq!(again.get("bob").and_then(|b| b.changed_to), Some(alice_key));

    // Alice's key under a name Carol never saw: the key is Alice's.
    let other = signed(&mut alice, "who am I", JOIN + 2_000);
    let e = c.receive(deliver(12, 0, "mallory", &other), JOIN + 2_100).unwrap();
    assert_eq!(one(&e).author, AuthorCheck::OtherName { known_as: "alice".into() });
    assert_eq!(one(&e).verdict(), Verdict::KeyChanged);
}

#[test]
fn known_contacts_show_as_known_in_a_later_session_and_verified_after_verify() {
    let (mut saved, _) = first_session();
    saved.verify("bob").unwrap();
    let mut c = carol(saved, 300);
    let (mut alice, mut bob) = (author(1, 31), author(2, 32));
    let e = c.receive(deliver(11, 0, "alice", &signed(&mut alice, "back", JOIN + 10)), JOIN + 20).unwrap();
    assert_eq!(one(&e).author, AuthorCheck::Known);
    let e = c.receive(deliver(12, 0, "bob", &signed(&mut bob, "me too", JOIN + 30)), JOIN + 40).unwrap();
    assert_eq!(one(&e).author, AuthorCheck::Verified);
}

#[test]
fn a_replay_from_an_earlier_session_is_caught_as_stale() {
    let (saved, hello) = first_session();
    let mut c = carol(saved, 400);
    // Yesterday's line, as live, with the next room number and no history flag.
    let e = c.receive(deliver(11, 0, "alice", &hello), JOIN + 86_400_000).unwrap();
    let m = one(&e);
    assert_eq!((m.sig, m.stale), (SigCheck::Valid, Some(Stale::EarlierSession)));
    assert_eq!(m.verdict(), Verdict::Stale);
    // The same line as history is history: shown as such, not a lie.
    let mut fresh = carol(Contacts::new(), 401);
    let e = fresh.receive(deliver(5, 1, "alice", &hello), JOIN).unwrap();
    assert_eq!((one(&e).history, one(&e).stale), (true, None));
}

#[test]
fn a_live_line_signed_before_joining_or_far_from_the_clock_is_flagged() {
    let mut c = carol(Contacts::new(), 500);
    let mut dave = author(4, 41);
    let old = signed(&mut dave, "from an hour ago", JOIN - 3_600_000);
    let e = c.receive(deliver(11, 0, "dave", &old), JOIN + 1_000).unwrap();
    assert_eq!(one(&e).stale, Some(Stale::BeforeJoin));
    let future = signed(&mut dave, "from the future", JOIN + 3_600_000);
    let e = c.receive(deliver(12, 0, "dave", &future), JOIN + 2_000).unwrap();
    assert_eq!(one(&e).stale, Some(Stale::Skewed));
    let now = signed(&mut dave, "now", JOIN + 3_000);
    let e = c.receive(deliver(13, 0, "dave", &now), JOIN + 3_050).unwrap();
    assert_eq!((one(&e).stale, one(&e).verdict()), (None, Verdict::Verified));
}

#[test]
fn a_late_message_is_shown_once_marked_out_of_order() {
    let mut c = carol(Contacts::new(), 600);
    let mut alice = author(1, 61);
    let m: Vec<Vec<u8>> = (1..=4).map(|i| signed(&mut alice, &format!("m{i}"), JOIN + i)).collect();
    c.receive(deliver(11, 0, "alice", &m[0]), JOIN + 10).unwrap();
    c.receive(deliver(12, 0, "alice", &m[1]), JOIN + 10).unwrap();
    let e = c.receive(deliver(14, 0, "alice", &m[3]), JOIN + 10).unwrap();
    assert_eq!((one(&e).missing_before, one(&e).late), (1, false));
    let e = c.receive(deliver(13, 0, "alice", &m[2]), JOIN + 10).unwrap();
    let late = one(&e);
    assert_eq!((late.text.as_str(), late.late, late.sig), ("m3", true, SigCheck::Valid));
    assert_eq!(late.stale, None, "read in this session, not an earlier one");
    // Seen now: a second copy is a replay, not shown.
    let e = c.receive(deliver(15, 0, "alice", &m[2]), JOIN + 10).unwrap();
    assert!(messages(&e).is_empty(), "{e:?}");
    assert!(e.iter().any(|e| matches!(e, ChatEvent::Replay { seq: 3, .. })), "{e:?}");
}

#[test]
fn the_signed_kind_decides_private_or_public_whatever_the_flag_says() {
    let mut c = carol(Contacts::new(), 700);
    let mut alice = author(1, 71);
    // A public line flagged private.
    let public = signed(&mut alice, "for everyone", JOIN);
    let e = c.receive(deliver(0, 2, "alice", &public), JOIN).unwrap();
    let m = one(&e);
    assert_eq!((m.sig, m.private, m.mislabeled), (SigCheck::Valid, false, true));
    // A private line to Carol delivered without the flag.
    let bob_key = key(2).public_key();
    alice
        .receive(Frame::Welcome { name: "alice".into(), room_seq: 0, history: 0, e2e: false }, JOIN)
        .unwrap();
    let listed = |name: &str, key: [u8; 32]| tlschat::chat::MemberInfo {
        name: name.into(),
        standing: tlschat::chat::Standing::Verified,
        key,
        idle_secs: 0,
    };
    let roster = vec![listed("carol", key(3).public_key()), listed("bob", bob_key)];
    alice.receive(Frame::Roster { total: 2, last: true, members: roster }, JOIN).unwrap();
    let Frame::Post { signed: to_carol } = alice.compose(Kind::Text, "psst", Some("carol"), JOIN).unwrap().0
    else {
        panic!()
    };
    let e = c.receive(deliver(12, 0, "alice", &to_carol), JOIN).unwrap();
    let m = one(&e);
    assert_eq!((m.sig, m.private, m.mislabeled), (SigCheck::Valid, true, true));
    // One to Bob, flagged private: not for Carol, whatever the flag.
    let Frame::Post { signed: to_bob } = alice.compose(Kind::Text, "for bob", Some("bob"), JOIN).unwrap().0
    else {
        panic!()
    };
    let e = c.receive(deliver(0, 2, "alice", &to_bob), JOIN).unwrap();
    assert_eq!(one(&e).sig, SigCheck::NotForMe);
}

#[test]
fn unknown_flag_bits_make_a_frame_malformed() {
    let mut frame = deliver(1, 0, "alice", b"x").encode().unwrap();
    // Header (type, 3-byte length), then room_seq (8 bytes), then flags.
    frame[4 + 8] = 0x04;
    let mut buffer = tlschat::chat::FrameBuffer::default();
    buffer.push(&frame);
    assert!(buffer.next_frame().is_err());
    let mut guest = guest_line(1, "hi").encode().unwrap();
    guest[4 + 8] = 0x02;
    let mut buffer = tlschat::chat::FrameBuffer::default();
    buffer.push(&guest);
    assert!(buffer.next_frame().is_err(), "a guest line is never private");
}

#[test]
fn a_room_sequence_number_of_u64_max_does_not_switch_the_checks_off() {
    let mut m = carol(Contacts::new(), 800);
    let events = m.receive(guest_line(u64::MAX, "the lie"), JOIN).unwrap();
    assert_eq!(lines(&events), ["the lie"]);
    assert!(events.iter().any(|e| matches!(e, ChatEvent::RelayGap { .. })), "{events:?}");
    // The next honest number is told as backwards, and shown.
    let events = m.receive(guest_line(11, "next"), JOIN).unwrap();
    assert_eq!(lines(&events), ["next"]);
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::RelayDisorder { room_seq: 11, repeated: false, .. })),
        "{events:?}"
    );
    // Later holes are still caught, later lines still shown.
    let events = m.receive(guest_line(14, "after a hole"), JOIN).unwrap();
    assert_eq!(lines(&events), ["after a hole"]);
    assert!(events.iter().any(|e| matches!(e, ChatEvent::RelayGap { missing: 2 })), "{events:?}");
}

#[test]
fn a_repeated_room_sequence_number_is_told_and_not_shown_twice() {
    let mut m = carol(Contacts::new(), 900);
    assert_eq!(lines(&m.receive(guest_line(11, "next"), JOIN).unwrap()), ["next"]);
    let events = m.receive(guest_line(11, "a repeat"), JOIN).unwrap();
    assert!(lines(&events).is_empty());
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::RelayDisorder { repeated: true, .. })),
        "{events:?}"
    );
    let events = m.receive(guest_line(12, "then on"), JOIN).unwrap();
    assert_eq!(lines(&events), ["then on"]);
    assert!(!events.iter().any(|e| matches!(e, ChatEvent::RelayGap { .. })), "{events:?}");
}

#[test]
fn a_look_alike_of_a_contacts_name_is_flagged() {
    let (saved, _) = first_session();
    let mut c = carol(saved, 1000);
    let mut mallory = author(9, 91);
    let line = signed(&mut mallory, "it is me, alice", JOIN + 10);
    let e = c.receive(deliver(11, 0, "a1ice", &line), JOIN + 20).unwrap();
    assert_eq!(one(&e).author, AuthorCheck::LookAlike { of: "alice".into() });
    assert_eq!(one(&e).verdict(), Verdict::KeyChanged);
    // Not learned: the real name keeps its key, the look-alike binds nothing.
    assert!(c.contacts().get("a1ice").is_none());
}

#[test]
fn a_name_no_room_may_give_is_flagged_and_binds_nothing() {
    let mut c = carol(Contacts::new(), 1100);
    let mut dave = author(4, 111);
    // Mixed scripts: a Cyrillic а among Latin letters.
    let line = signed(&mut dave, "hello", JOIN + 10);
    let e = c.receive(deliver(11, 0, "d\u{430}ve", &line), JOIN + 20).unwrap();
    assert!(matches!(one(&e).author, AuthorCheck::BadName { .. }), "{e:?}");
    assert_eq!(one(&e).verdict(), Verdict::KeyChanged);
    assert!(c.contacts().list().is_empty());
}

#[test]
fn invalid_copies_claiming_one_place_do_not_hide_another_places_gap() {
    let mut c = carol(Contacts::new(), 1200);
    let mut alice = author(1, 121);
    let m: Vec<Vec<u8>> = (1..=4).map(|i| signed(&mut alice, &format!("m{i}"), JOIN + i)).collect();
    c.receive(deliver(11, 0, "alice", &m[0]), JOIN + 10).unwrap();
    // m2 dropped; m3 altered, twice.
    for room_seq in [12, 13] {
        let mut altered = m[2].clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        let e = c.receive(deliver(room_seq, 0, "alice", &altered), JOIN + 10).unwrap();
        assert_eq!(one(&e).sig, SigCheck::Invalid);
    }
    let e = c.receive(deliver(14, 0, "alice", &m[3]), JOIN + 10).unwrap();
    assert_eq!(one(&e).missing_before, 1, "m2 never came: {e:?}");
}
