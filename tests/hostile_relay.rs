//! A member facing a relay that misbehaves: the relay is not trusted
//! (docs/PROTOCOL.md), so nothing it numbers may crash a member. Found by
//! the `chat_frames` fuzz target (fuzz/).

use tlschat::chat::{ChatEvent, Frame, Member};
use tlschat::tls::{Ed25519Key, SeededRng};

fn member() -> Member {
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(1));
    Member::new([7; 32], key, &mut SeededRng::new_for_testing_only(2))
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

#[test]
fn a_room_sequence_number_of_u64_max_is_the_last_any_frame_can_have() {
    let mut m = member();
    m.receive(Frame::Welcome { name: "alice".into(), room_seq: 1, history: 0 }).unwrap();
    let events = m.receive(guest_line(u64::MAX, "the last")).unwrap();
    assert_eq!(lines(&events), ["the last"]);
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::RelayGap { missing } if *missing == u64::MAX - 2)),
        "{events:?}"
    );
    // Nothing comes after it: a repeat, and any lower number, are already seen.
    for seq in [u64::MAX, 0, 2] {
        let events = m.receive(guest_line(seq, "again")).unwrap();
        assert!(lines(&events).is_empty(), "{seq}: {events:?}");
    }
}

#[test]
fn room_sequence_numbers_in_order_skip_and_repeat_as_before() {
    let mut m = member();
    m.receive(Frame::Welcome { name: "alice".into(), room_seq: 5, history: 0 }).unwrap();
    assert_eq!(lines(&m.receive(guest_line(6, "next")).unwrap()), ["next"]);
    let events = m.receive(guest_line(9, "after a gap")).unwrap();
    assert_eq!(lines(&events), ["after a gap"]);
    assert!(events.iter().any(|e| matches!(e, ChatEvent::RelayGap { missing: 2 })), "{events:?}");
    assert!(lines(&m.receive(guest_line(9, "a repeat")).unwrap()).is_empty());
}
