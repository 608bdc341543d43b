//! Strings a peer chooses never reach a terminal raw: a client certificate
//! whose subject carries escape sequences, and a guest's and the host's
//! text with them, against a real `tlschat listen` whose stdout (the
//! operator's terminal in headless mode) is read line by line.

use std::process::Command;

use crate::programs::{Proc, Room, TempDir};
use tlschat::tls::{Ed25519Key, SeededRng};

/// Escape sequences that retitle a window, clear the screen, and start an
/// OSC 52 clipboard write, with a bidi override for good measure.
const NASTY: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{202e}";

/// `openssl s_client` to `room`, quiet, with `extra` arguments.
fn s_client(room: &Room, name: &str, extra: &[&str]) -> Proc {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", room.addr.port()),
        "-servername",
        "localhost",
    ])
    .args(["-CAfile", room.ca.to_str().unwrap(), "-tls1_3", "-quiet", "-nocommands"])
    .args(extra);
    Proc::spawn(name, &mut cmd)
}

fn assert_clean(p: &Proc) {
    for line in p.stdout.all().iter().chain(p.stderr.all().iter()) {
        assert!(
            !line.chars().any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}'),
            "raw control character in {line:?}"
        );
    }
}

#[test]
fn a_client_certificate_subject_with_escape_sequences_is_shown_escaped() {
    let dir = TempDir::new("subject-escapes");
    let room = Room::start(&dir, "listen", &[]);
    let mut rng = SeededRng::new_for_testing_only(77);
    let now = tlschat::clock::unix_now() - 60;
    let name = format!("x{NASTY}");
    let cert = tlschat::store::pki::self_signed_client(Ed25519Key::generate(&mut rng), &name, &mut rng, now)
        .unwrap();
    let (pem, key) = (dir.join("c.pem"), dir.join("c.key"));
    std::fs::write(&pem, &cert.chain_pem).unwrap();
    std::fs::write(&key, cert.key.to_pkcs8_pem().as_bytes()).unwrap();
    let mut client =
        s_client(&room, "s_client", &["-cert", pem.to_str().unwrap(), "-key", key.to_str().unwrap()]);
    client.send_line("hello");
    // Refused in the handshake (the subject is not a tlschat name), and said so escaped.
    let refused = room.proc.stdout.wait_for_text("is not one tlschat name");
    assert!(refused.contains("\\u{1b}]0;pwned\\u{7}"), "{refused}");
    client.close_stdin();
    let _ = client.wait();
    assert_clean(&room.proc);
}

#[test]
fn a_guests_escape_sequences_reach_neither_the_operator_nor_the_other_members() {
    let dir = TempDir::new("text-escapes");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut sender = s_client(&room, "sender", &[]);
    let reader = s_client(&room, "reader", &[]);
    // Both in the room (in either order) before anything is said.
    for p in [&sender, &reader] {
        p.stdout.wait_for_text("tlschat: you are guest-");
    }
    sender.send_line(&format!("look {NASTY} here"));
    room.proc.stdout.wait_for_text("look ");
    reader.stdout.wait_for_text("look ");
    room.proc.send_line(&format!("host says {NASTY}"));
    reader.stdout.wait_for_text("host says ");
    for p in [&room.proc, &reader] {
        assert_clean(p);
    }
}

#[test]
fn invisible_characters_and_piles_of_marks_reach_the_operator_and_members_as_escapes() {
    let dir = TempDir::new("invisible-escapes");
    let room = Room::start(&dir, "listen", &[]);
    let mut sender = s_client(&room, "sender", &[]);
    let reader = s_client(&room, "reader", &[]);
    for p in [&sender, &reader] {
        p.stdout.wait_for_text("tlschat: you are guest-");
    }
    // Tag characters (invisible ASCII), a soft hyphen, a line separator, the
    // Hangul filler, a variation selector, and eight marks on one letter.
    let marks = "\u{301}".repeat(8);
    sender.send_line(&format!("ink\u{e0041}\u{e0042} ad\u{ad}min a\u{2028}b \u{3164} x\u{fe00} z{marks}!"));
    let expected = format!(
        "ink\\u{{e0041}}\\u{{e0042}} ad\\u{{ad}}min a\\u{{2028}}b \\u{{3164}} x\\u{{fe00}} z{}{}!",
        "\u{301}".repeat(4),
        "\\u{301}".repeat(4)
    );
    for p in [&room.proc, &reader] {
        let line = p.stdout.wait_for_text("ink");
        assert!(line.ends_with(&expected), "{line:?}");
        for line in p.stdout.all() {
            assert!(
                !line.chars().any(|c| matches!(
                    c,
                    '\u{e0000}'..='\u{e007f}' | '\u{ad}' | '\u{2028}' | '\u{3164}' | '\u{fe00}'
                )),
                "{line:?}"
            );
        }
    }
}
