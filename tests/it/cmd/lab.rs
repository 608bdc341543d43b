//! The tamper lab end to end: `tlschat demo --headless` (its room, bots,
//! man in the middle and client in one process, over loopback TCP) and
//! `tlschat connect --lab` against a real `tlschat listen`. Each case is
//! typed as the user would, and the test checks what the user is shown:
//! the alert, who sent it, the check that caught it, the mark in the pane,
//! and that the client connected again afterwards.

use crate::programs::{Proc, Room, TempDir, tlschat};

/// `tlschat demo --headless`, once alice and bob have greeted the user.
fn demo(extra: &[&str]) -> Proc {
    let mut args = vec!["demo", "--headless"];
    args.extend_from_slice(extra);
    let demo = Proc::spawn("demo", &mut tlschat(&args));
    demo.stdout.wait_for_text("[bob \u{2713}] hi ");
    demo
}

/// Leaves cleanly: end of input closes with close_notify, exit 0.
fn leave(mut proc: Proc) {
    proc.close_stdin();
    let status = proc.wait();
    assert!(status.success(), "{}", proc.output());
}

#[test]
fn flip_replay_and_reorder_make_the_room_send_bad_record_mac_and_the_demo_reconnects_after_each() {
    let mut demo = demo(&[]);
    let cases = [
        ("flip", "caught by the AEAD tag of the record (RFC 8446 §5.2)"),
        ("replay", "caught by the sequence number in the record nonce (IV XOR seq) (RFC 8446 §5.3)"),
        ("reorder", "caught by the sequence number in the record nonce (IV XOR seq) (RFC 8446 §5.3)"),
    ];
    for (n, (case, check)) in cases.into_iter().enumerate() {
        demo.send_line(&format!("/tamper {case}"));
        demo.stdout.wait_for_text(&format!("[lab] tamper {case}: "));
        // Armed: nothing happens until a line is said, which the hook tampers with.
        demo.send_line(&format!("a line the {case} case breaks"));
        let outcome = demo.stdout.wait_for_text(&format!("[lab] tamper {case}: the room sent alert"));
        assert!(outcome.contains("the room sent alert bad_record_mac"), "{outcome}");
        assert!(outcome.contains(check), "{outcome}");
        assert!(!outcome.contains("NOT the expected check"), "{outcome}");
        demo.stdout.wait_for_count("[lab] reconnecting: a new handshake", n + 1);
        demo.stdout.wait_for_count("[tls] connected: ", n + 2);
        demo.stdout.wait_for_count("[room] you are in the room as ", n + 2);
        if case == "replay" {
            // The first copy went through: the room has the line once (its
            // history, replayed on reconnecting, shows it and bob's measure
            // of it once); the verdict says what became of the copy.
            demo.stdout
                .wait_for("bob's measure of the replayed line", |l| l.contains("your 29 bytes of text"));
            let text = demo.stdout.text();
            assert!(text.contains("(your line went once and was delivered; its copy"), "{text}");
            let lines = demo.stdout.all();
            assert_eq!(
                lines.iter().filter(|l| l.contains("] a line the replay case breaks")).count(),
                1,
                "{text}"
            );
            assert_eq!(lines.iter().filter(|l| l.contains("your 29 bytes of text")).count(), 1, "{text}");
        }
    }
    // Welcomed once: a member who comes back after a case is not greeted again.
    let welcomes = demo.stdout.all().iter().filter(|l| l.starts_with("[alice \u{2713}] welcome, ")).count();
    assert_eq!(welcomes, 1, "{}", demo.stdout.text());
    // The connection after the last case works: alice answers.
    demo.send_line("hello again");
    demo.stdout.wait_for("alice's answer", |l| l.starts_with("[alice \u{2713}] hi "));
    leave(demo);
}

#[test]
fn finished_cert_and_mitm_are_caught_in_the_handshake_with_the_alert_each_check_sends() {
    let mut demo = demo(&[]);
    let cases = [
        (
            "finished",
            "the room sent alert decrypt_error",
            "the Finished MAC over the handshake transcript (RFC 8446 §4.4.4)",
        ),
        ("cert", "this client sent alert unknown_ca", "the certificate chain ends at a CA you trust"),
        (
            "cert name",
            "this client sent alert bad_certificate",
            "the certificate names the server you asked for",
        ),
        ("mitm", "this client sent alert bad_certificate", "the server's key against the one you pinned"),
    ];
    for (n, (case, alert, check)) in cases.into_iter().enumerate() {
        demo.send_line(&format!("/tamper {case}"));
        let outcome = demo.stdout.wait_for_text(&format!("[lab] tamper {case}: {alert}"));
        assert!(outcome.contains(&format!("caught by {check}")), "{outcome}");
        demo.stdout.wait_for_count("[lab] reconnecting: a new handshake", n + 1);
        demo.stdout.wait_for_count("[room] you are in the room as ", n + 2);
    }
    let text = demo.stdout.text();
    // The tampered Finished: the client's side ended, the room refused it;
    // never "connected" in between (at most a note that our Finished is sent).
    let armed = text.find("[lab] tamper finished: closing, then connecting again").unwrap();
    let alert = text.find("[lab] tamper finished: the room sent alert decrypt_error").unwrap();
    assert!(!text[armed..alert].contains("[tls] connected"), "{text}");
    let sent =
        text.find("[lab] tamper finished: our Finished (one bit of verify_data flipped) is sent").unwrap();
    assert!(armed < sent && sent < alert, "{text}");
    assert!(
        text.contains(
            "[lab]    (certificate refused: the certificate is for www.example.org, not localhost)"
        ),
        "{text}"
    );
    assert!(text.contains("does not match the expected"), "{text}");
    // The demo's server went back to its own certificate after each case.
    demo.send_line("hello");
    demo.stdout.wait_for("alice's answer", |l| l.starts_with("[alice \u{2713}] hi "));
    leave(demo);
}

#[test]
fn sig_shows_bobs_line_as_altered_by_the_demos_relay_and_marked_invalid() {
    let mut demo = demo(&[]);
    demo.send_line("/tamper sig");
    let armed = demo.stdout.wait_for_text("[lab] tamper sig: bob says a line");
    assert!(armed.contains("the demo's relay"), "{armed}");
    let line = demo.stdout.wait_for_text("meet me at");
    assert!(line.starts_with("[bob \u{2717} INVALID] meet me at midnight"), "{line}");
    let outcome = demo.stdout.wait_for_text("[lab] tamper sig: bob's line is marked \u{2717} INVALID");
    assert!(outcome.contains("the author's Ed25519 signature"), "{outcome}");
    // Bob's next line is delivered as he signed it, and not as one after a
    // gap: the altered line came in its place, and was shown, marked.
    demo.send_line("a line for bob to measure");
    demo.stdout.wait_for("bob's answer", |l| l.starts_with("[bob \u{2713}] ") && l.contains("bytes of text"));
    assert!(!demo.stdout.contains("missing"), "{}", demo.stdout.text());
    leave(demo);
}

#[test]
fn json_output_has_one_lab_object_with_the_alert_the_check_and_the_rfc_section() {
    let mut demo = Proc::spawn("demo", &mut tlschat(&["demo", "--json"]));
    demo.stdout.wait_for_text(r#""type":"welcome""#);
    demo.send_line("/tamper finished");
    let line = demo.stdout.wait_for_text(r#""event":"ended""#);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["type"], "lab");
    assert_eq!(v["case"], "finished");
    assert_eq!(v["alert"], "decrypt_error");
    assert_eq!(v["sent_by"], "peer");
    assert_eq!(v["caught"], true);
    assert_eq!(v["section"], "RFC 8446 §4.4.4");
    demo.stdout.wait_for_text(r#""event":"reconnecting""#);
    leave(demo);
}

#[test]
fn connect_with_lab_flips_a_record_to_a_real_room_and_meets_an_interceptor_with_its_pin() {
    let dir = TempDir::new("lab-connect");
    let room = Room::start(&dir, "listen", &[]);
    let target = room.target();
    let mut cmd = tlschat(&["connect", &target, "--fingerprint", &room.fingerprint, "--lab"]);
    cmd.env("TLSCHAT_HOME", dir.join("client-home"));
    let mut client = Proc::spawn("connect", &mut cmd);
    client.stdout.wait_for_text("[tls] connected: ");
    client.send_line("/tamper flip");
    client.send_line("a flipped line");
    let outcome = client.stdout.wait_for_text("[lab] tamper flip: ");
    let outcome =
        if outcome.contains("alert") { outcome } else { client.stdout.wait_for_text("the room sent alert") };
    assert!(outcome.contains("the room sent alert bad_record_mac"), "{outcome}");
    // The room saw the record fail its check, and never the line.
    room.proc.stdout.wait_for_text("bad_record_mac");
    assert!(!room.proc.stdout.contains("a flipped line"), "{}", room.proc.output());
    client.stdout.wait_for_count("[tls] connected: ", 2);

    client.send_line("/tamper mitm");
    let outcome = client.stdout.wait_for_text("[lab] tamper mitm: this client sent alert");
    assert!(
        outcome.contains("bad_certificate") && outcome.contains("caught by the server's key"),
        "{outcome}"
    );
    client.stdout.wait_for_count("[tls] connected: ", 3);

    // What only the demo can do is refused, and says so.
    client.send_line("/tamper sig");
    client.stdout.wait_for_text("[lab] /tamper sig needs tlschat demo");
    client.send_line("still here");
    room.proc.stdout.wait_for_text("still here");
    leave(client);
}

#[test]
fn connect_without_lab_says_how_to_enable_tamper_and_sends_the_next_line_untouched() {
    let dir = TempDir::new("lab-off");
    let room = Room::start(&dir, "listen", &[]);
    let target = room.target();
    let mut cmd = tlschat(&["connect", &target, "--fingerprint", &room.fingerprint]);
    cmd.env("TLSCHAT_HOME", dir.join("client-home"));
    let mut client = Proc::spawn("connect", &mut cmd);
    client.stdout.wait_for_text("[tls] connected: ");
    client.send_line("/tamper flip");
    client.stdout.wait_for_text("[lab] /tamper is off");
    client.send_line("an honest line");
    room.proc.stdout.wait_for_text("an honest line");
    assert!(!client.stdout.contains("bad_record_mac"), "{}", client.output());
    leave(client);
}
