//! `--pcap FILE` end to end: real `tlschat` processes on loopback write a
//! capture, and Wireshark's `tshark` reads it with no key log setting. The
//! handshake messages tlschat reported appear decrypted in it, in the same
//! order, and so does the chat text (before and after a KeyUpdate), and
//! Wireshark's TCP analysis and checksum checks find nothing to flag.
//!
//! tshark (Debian's tshark package, which `.ci/run` installs) must be
//! installed: a missing tool fails the test with a message naming it
//! rather than skipping it.

use crate::programs;

use std::path::Path;
use std::process::Command;

use crate::programs::tmux::{Tmux, file_within};
use crate::programs::{Proc, Room, TLSCHAT, TempDir, single_error_line, tlschat};

/// Runs `tshark -r FILE ARGS…` with no key log configured (the secrets
/// can only come from the file) and checksum checks on; its stdout.
fn tshark(file: &Path, args: &[&str]) -> String {
    let home = TempDir::new("tshark-home");
    let output = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "tls.keylog_file:", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"])
        .args(args)
        // A profile of the user's own (a key log in it) must not help.
        .env("HOME", home.path())
        .env_remove("SSLKEYLOGFILE")
        .output()
        .unwrap_or_else(|e| {
            panic!("`tshark` cannot run ({e}); these tests need it: install Debian's tshark package (.ci/run does)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tshark {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The TLS handshake message type (RFC 8446 §4) of a message name as
/// tlschat's steps report it.
fn handshake_type(name: &str) -> u8 {
    match name {
        "ClientHello" => 1,
        "ServerHello" | "HelloRetryRequest" => 2,
        "EncryptedExtensions" => 8,
        "Certificate" => 11,
        "CertificateRequest" => 13,
        "CertificateVerify" => 15,
        "Finished" => 20,
        "KeyUpdate" => 24,
        other => panic!("a handshake message tlschat reported that this test does not know: {other}"),
    }
}

/// The handshake messages a headless client reported, in order: the name
/// after each step's arrow (`[tls] 2/9 <- ServerHello  …`).
fn reported_messages(client: &Proc) -> Vec<String> {
    client
        .stdout
        .all()
        .iter()
        .filter_map(|l| l.strip_prefix("[tls] "))
        .filter_map(|l| l.split_once(" -> ").or_else(|| l.split_once(" <- ")))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_owned())
        // The middlebox-compatibility ChangeCipherSpec is a record of its own, not a handshake message.
        .filter(|name| name != "ChangeCipherSpec")
        .collect()
}

/// The handshake message types tshark found, per TCP stream, in frame order.
fn handshake_types_by_stream(file: &Path) -> Vec<(u32, Vec<u8>)> {
    let out = tshark(
        file,
        &["-T", "fields", "-e", "tcp.stream", "-e", "tls.handshake.type", "-Y", "tls.handshake"],
    );
    let mut streams: Vec<(u32, Vec<u8>)> = Vec::new();
    for line in out.lines() {
        let (stream, types) = line.split_once('\t').unwrap_or_else(|| panic!("odd tshark line {line:?}"));
        let stream: u32 = stream.parse().unwrap();
        let types = types.split(',').map(|t| t.parse::<u8>().unwrap());
        match streams.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, seen)) => seen.extend(types),
            None => streams.push((stream, types.collect())),
        }
    }
    streams
}

/// Every decrypted application-data byte tshark shows (its "data"
/// dissector's fields, in hex), as text.
fn decrypted_data(file: &Path) -> String {
    let out = tshark(file, &["-T", "fields", "-e", "data.data", "-Y", "tls.app_data || data"]);
    let mut bytes = Vec::new();
    for hex in out.split(|c: char| c.is_whitespace() || c == ',' || c == ':').filter(|h| !h.is_empty()) {
        for pair in hex.as_bytes().chunks(2) {
            bytes.push(u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Frames Wireshark flags: TCP analysis problems (retransmissions, lost
/// or unseen segments, window trouble…) and anything expert info rates a
/// warning or worse (bad checksums, malformed packets).
fn flagged_frames(file: &Path) -> String {
    tshark(file, &["-Y", "tcp.analysis.flags || _ws.expert.severity >= 6291456 || _ws.malformed"])
}

fn assert_private(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}

#[test]
fn a_connect_capture_opens_in_tshark_decrypted_with_the_handshake_tlschat_reported() {
    let dir = TempDir::new("pcap-connect");
    let mut room = Room::start(&dir, "listen", &[]);
    let file = dir.join("connect.pcapng");
    let mut client = room.connect("connect", &["--headless", "--pcap", file.to_str().unwrap()]);
    client.stdout.wait_for_text("[tls] connected: ");
    client.send_line("hello from the capture test");
    room.proc.stdout.wait_for_text("hello from the capture test");
    // New keys both ways: their secrets must reach the file before the
    // records they protect.
    client.send_line("/rekey");
    client.stdout.wait_for_text("KeyUpdate received");
    client.send_line("after the key update, still readable");
    room.proc.stdout.wait_for_text("after the key update, still readable");
    client.close_stdin();
    let status = client.wait();
    assert!(status.success(), "connect exited with {status}\n{}", client.output());
    let stderr = client.stderr.all();
    assert!(
        stderr.len() == 1
            && stderr[0].starts_with("tlschat: writing this connection and its secrets to ")
            && stderr[0].contains("(--pcap)"),
        "{}",
        client.output()
    );
    assert_private(&file);

    // One TCP stream; its handshake messages, as tshark decrypted them,
    // are the ones tlschat reported, in the same order: Encrypted
    // Extensions and what follows it are only visible decrypted.
    let reported = reported_messages(&client);
    assert!(reported.len() >= 11, "too few steps reported: {reported:?}\n{}", client.output());
    let expected: Vec<u8> = reported.iter().map(|n| handshake_type(n)).collect();
    let streams = handshake_types_by_stream(&file);
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0].1, expected, "tshark's handshake types against tlschat's steps {reported:?}");
    for t in [8, 11, 13, 15, 20, 24] {
        assert!(expected.contains(&t), "type {t} not reported: {reported:?}");
    }

    let text = decrypted_data(&file);
    for line in ["hello from the capture test", "after the key update, still readable"] {
        assert!(text.contains(line), "{line:?} is not in the decrypted data:\n{text:?}");
    }
    // The frames: a three-way handshake, FINs, and nothing flagged.
    let flags = tshark(&file, &["-T", "fields", "-e", "tcp.flags.str"]);
    let flags: Vec<&str> = flags.lines().map(str::trim).collect();
    assert!(flags.len() > 10, "{flags:?}");
    assert_eq!(&flags[..3], ["··········S·", "·······A··S·", "·······A····"], "{flags:?}");
    assert_eq!(flags.iter().filter(|f| f.ends_with('F')).count(), 2, "{flags:?}");
    let flagged = flagged_frames(&file);
    assert!(flagged.trim().is_empty(), "Wireshark flags frames:\n{flagged}");
    // The addresses are the connection's own.
    let ends = tshark(&file, &["-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-c", "1"]);
    let port = room.addr.port();
    assert_eq!(ends.trim().split('\t').next(), Some("127.0.0.1"), "{ends}");
    let syn_ack = tshark(
        &file,
        &["-T", "fields", "-e", "tcp.srcport", "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 1"],
    );
    assert_eq!(syn_ack.trim(), port.to_string());
    room.proc.kill();
}

#[test]
fn a_listen_capture_holds_each_connection_as_its_own_decrypted_stream() {
    let dir = TempDir::new("pcap-listen");
    let file = dir.join("room.pcapng");
    let mut room = Room::start(&dir, "listen", &["--pcap", file.to_str().unwrap()]);
    assert!(
        room.proc
            .stderr
            .wait_for_text("(--pcap)")
            .starts_with("tlschat: writing every connection and its secrets to "),
        "{}",
        room.proc.output()
    );
    for line in ["the first member speaks", "the second member speaks"] {
        let mut client = room.connect("connect", &["--headless"]);
        client.stdout.wait_for_text("[tls] connected: ");
        client.send_line(line);
        room.proc.stdout.wait_for_text(line);
        client.close_stdin();
        assert!(client.wait().success(), "{}", client.output());
    }
    // Both leaves: the first one's line alone would let the file be read
    // while the second connection is still being written.
    room.proc.stdout.wait_for_count("left (close_notify)", 2);
    assert_private(&file);

    // Two streams, both decrypted through and through (the server's view:
    // the same messages, ClientHello first, then the server's flight).
    let streams = handshake_types_by_stream(&file);
    assert_eq!(streams.len(), 2, "{streams:?}");
    for (_, types) in &streams {
        assert_eq!(types[..], [1, 2, 8, 13, 11, 15, 20, 11, 15, 20], "{streams:?}");
    }
    let text = decrypted_data(&file);
    for line in ["the first member speaks", "the second member speaks"] {
        assert!(text.contains(line), "{line:?} is not in the decrypted data:\n{text:?}");
    }
    let flagged = flagged_frames(&file);
    assert!(flagged.trim().is_empty(), "Wireshark flags frames:\n{flagged}");
    room.proc.kill();
}

#[test]
fn a_demo_capture_records_the_users_own_connection() {
    let dir = TempDir::new("pcap-demo");
    let file = dir.join("demo.pcapng");
    let mut demo =
        Proc::spawn("demo", &mut tlschat(&["demo", "--headless", "--pcap", file.to_str().unwrap()]));
    demo.stdout.wait_for_text("[tls] connected: ");
    demo.send_line("a line for the capture");
    // bob answers each line with what it became on the wire.
    demo.stdout.wait_for_text("went out as signed message");
    demo.close_stdin();
    assert!(demo.wait().success(), "{}", demo.output());

    // The user's connection only: the bots' connections are not in it.
    let streams = handshake_types_by_stream(&file);
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert!(streams[0].1.contains(&8), "{streams:?}");
    let text = decrypted_data(&file);
    assert!(
        text.contains("a line for the capture") && text.contains("went out as signed message"),
        "{text:?}"
    );
}

#[test]
fn the_full_screen_demo_writes_a_capture_too() {
    let dir = TempDir::new("pcap-tui");
    let file = dir.join("tui.pcapng");
    let tmux = Tmux::start(&dir);
    let home = dir.path();
    // The interface in a real terminal; stderr (the --pcap notice, printed
    // before the interface starts) and the exit status go to files.
    let program = format!(
        "env -u SSLKEYLOGFILE HOME='{home}' XDG_DATA_HOME='{home}/data' XDG_CONFIG_HOME='{home}/config' \
         TERM=xterm-256color '{tlschat}' demo --step-delay 0 --pcap '{file}' 2>'{home}/stderr'; \
         echo \"EXIT:$?\" >'{home}/exit'; exec sleep 600",
        home = home.display(),
        tlschat = TLSCHAT,
        file = file.display(),
    );
    tmux.session("demo", &program);
    tmux.wait_for("demo", "the finished handshake", |s| {
        s.contains("Handshake 10/10") && s.contains("Connected")
    });
    tmux.type_line("demo", "typed in the terminal");
    tmux.wait_for_text("demo", "you \u{2713}\u{2713}: typed in the terminal");
    tmux.type_line("demo", "/quit");
    let exit = file_within(&home.join("exit"), || tmux.screen("demo"));
    let stderr = std::fs::read_to_string(home.join("stderr")).unwrap();
    assert_eq!(exit.trim(), "EXIT:0", "{stderr}");
    assert!(stderr.contains("(--pcap): anyone who reads it can decrypt the session"), "{stderr}");

    let streams = handshake_types_by_stream(&file);
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0].1[..], [1, 2, 8, 13, 11, 15, 20, 11, 15, 20], "{streams:?}");
    assert!(decrypted_data(&file).contains("typed in the terminal"));
    let flagged = flagged_frames(&file);
    assert!(flagged.trim().is_empty(), "Wireshark flags frames:\n{flagged}");
}

#[test]
fn a_capture_that_cannot_be_made_stops_the_command_with_one_line_naming_it() {
    let dir = TempDir::new("pcap-unwritable");
    let file = dir.join("no-such-directory/capture.pcapng");
    let mut demo =
        Proc::spawn("demo", &mut tlschat(&["demo", "--headless", "--pcap", file.to_str().unwrap()]));
    assert!(!demo.wait().success());
    let line = single_error_line(&demo);
    assert!(line.starts_with(&format!("tlschat: cannot create the capture {}: ", file.display())), "{line}");
}

/// A member: `tlschat connect --json` under an identity named `name`.
fn json_member(dir: &TempDir, room: &Room, name: &str) -> Proc {
    let home = dir.join(&format!("{name}-home"));
    let mut id = tlschat(&["id", "--name", name]);
    id.env(programs::HOME_ENV, &home);
    let mut id = Proc::spawn("id", &mut id);
    assert!(id.wait().success(), "{}", id.output());
    let mut cmd = tlschat(&["connect", &room.target(), "--ca", room.ca.to_str().unwrap(), "--json"]);
    cmd.env(programs::HOME_ENV, &home);
    Proc::spawn(name, &mut cmd)
}

/// Waits for a JSON event of `p`'s that `pred` accepts.
fn json_event(p: &Proc, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let line = p.stdout.wait_for(what, |l| serde_json::from_str(l).is_ok_and(|v| pred(&v)));
    serde_json::from_str(&line).unwrap()
}

#[test]
fn private_messages_are_end_to_end_the_relays_capture_key_log_and_output_never_hold_them() {
    let dir = TempDir::new("pcap-e2e");
    let file = dir.join("room.pcapng");
    let keylog = dir.join("keylog.txt");
    let mut room = Room::start_with(&dir, "listen", &["--pcap", file.to_str().unwrap()], |cmd| {
        cmd.env("SSLKEYLOGFILE", &keylog);
    });
    let mut alice = json_member(&dir, &room, "alice");
    json_event(&alice, "alice's welcome", |v| v["type"] == "welcome");
    let mut bob = json_member(&dir, &room, "bob");
    json_event(&bob, "bob's welcome", |v| v["type"] == "welcome");
    json_event(&alice, "bob joining", |v| v["type"] == "join" && v["member"]["name"] == "bob");

    // A public line: the capture decrypts, and shows what the relay reads.
    alice.send_line("a public line the relay reads");
    json_event(&bob, "the public line", |v| v["text"] == "a public line the relay reads");
    let secrets =
        ["alice tells bob: the vault code is 4711", "bob answers: and the spare key is under the mat"];
    alice.send_line(&format!("/msg bob {}", secrets[0]));
    let got = json_event(&bob, "alice's private line", |v| v["type"] == "message" && v["text"] == secrets[0]);
    assert_eq!(
        (got["e2e"].as_bool(), got["private"].as_bool(), got["sig"].as_str()),
        (Some(true), Some(true), Some("valid")),
        "{got}"
    );
    json_event(&alice, "the group made", |v| v["type"] == "e2e_ready" && v["made"] == true);
    json_event(&alice, "delivered", |v| v["type"] == "delivered" && v["private"] == true);
    bob.send_line(&format!("/msg alice {}", secrets[1]));
    let got = json_event(&alice, "bob's private line", |v| v["type"] == "message" && v["text"] == secrets[1]);
    assert_eq!(got["e2e"].as_bool(), Some(true), "{got}");
    let public = json_event(&bob, "the public line", |v| v["text"] == "a public line the relay reads");
    assert_eq!(public["e2e"].as_bool(), Some(false), "{public}");
    for p in [&mut alice, &mut bob] {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
    room.proc.stdout.wait_for_count("left (close_notify)", 2);

    let text = decrypted_data(&file);
    assert!(text.contains("a public line the relay reads"), "the capture does not decrypt:\n{text:?}");
    let relay_said = format!("{}\n{}", room.proc.stdout.text(), room.proc.stderr.all().join("\n"));
    let keys = std::fs::read_to_string(&keylog).unwrap();
    assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0"), "{keys}");
    for secret in secrets {
        assert!(!text.contains(secret), "the relay's capture holds {secret:?}");
        for word in ["4711", "spare key"] {
            assert!(!text.contains(word), "the relay's capture holds {word:?}");
            assert!(!relay_said.contains(word), "the relay's output holds {word:?}:\n{relay_said}");
        }
    }
    room.proc.kill();
}

#[test]
fn an_e2e_room_chats_and_neither_the_capture_nor_the_relays_output_holds_a_line() {
    let dir = TempDir::new("pcap-e2e-room");
    let file = dir.join("room.pcapng");
    let keylog = dir.join("keylog.txt");
    let mut room = Room::start_with(&dir, "listen", &["--e2e", "--pcap", file.to_str().unwrap()], |cmd| {
        cmd.env("SSLKEYLOGFILE", &keylog);
    });
    room.proc.stdout.wait_for_text("end to end room (--e2e)");
    let names = ["alice", "bob", "carol"];
    let mut members: Vec<Proc> = Vec::new();
    for name in names {
        let p = json_member(&dir, &room, name);
        let welcome = json_event(&p, "the welcome", |v| v["type"] == "welcome");
        assert_eq!(welcome["e2e"], true, "{welcome}");
        members.push(p);
    }
    // Each is in the room's group once it holds all three.
    for p in &members {
        json_event(p, "the group of three", |v| v["type"] == "e2e_group" && v["members"] == 3);
    }
    let lines = [
        "alice says: the launch code is 0451",
        "bob says: the meeting moved to pier 39",
        "carol says: bring the blue folder",
    ];
    for (p, line) in members.iter_mut().zip(lines) {
        p.send_line(line);
        json_event(p, "its line delivered", |v| v["type"] == "delivered" && v["private"] == false);
    }
    for (i, p) in members.iter().enumerate() {
        for (j, line) in lines.iter().enumerate() {
            if i == j {
                continue;
            }
            let got = json_event(p, line, |v| v["type"] == "message" && v["text"] == *line);
            assert_eq!(
                (got["e2e"].as_bool(), got["sig"].as_str(), got["from"].as_str()),
                (Some(true), Some("valid"), Some(names[j])),
                "{got}"
            );
        }
    }
    // A guest (no key) is refused with the reason.
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir.path()).args([
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
    let guest = Proc::spawn("s_client", &mut cmd);
    guest.stdout.wait_for_text("this room is end to end: members only; a guest has no key to be added with");
    room.proc.stdout.wait_for_text("refused a member: this room is end to end: members only");
    // The host runs the relay and is not in the group: its line is refused.
    room.proc.send_line("the host tries: the safe is behind the painting");
    room.proc
        .stdout
        .wait_for_text("not sent: this room is end to end and its relay's host is not in its group");
    for p in &mut members {
        p.close_stdin();
        assert!(p.wait().success(), "{}", p.output());
    }
    room.proc.stdout.wait_for_count("left (close_notify)", 3);

    let text = decrypted_data(&file);
    // The capture decrypts: the guest's refusal is there in clear.
    assert!(text.contains("this room is end to end"), "the capture does not decrypt:\n{text:?}");
    let keys = std::fs::read_to_string(&keylog).unwrap();
    assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0"), "{keys}");
    let relay_said = format!("{}\n{}", room.proc.stdout.text(), room.proc.stderr.all().join("\n"));
    // Every file the relay wrote in its home (its log of the room among them).
    fn files(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    let mut kept = Vec::new();
    files(&room.home, &mut kept);
    assert!(kept.iter().any(|(p, _)| p.ends_with("log.redb")), "{kept:?}");
    for word in ["0451", "pier 39", "blue folder", "behind the painting"] {
        assert!(!text.contains(word), "the relay's capture holds {word:?}");
        assert!(!relay_said.contains(word), "the relay's output holds {word:?}:\n{relay_said}");
        for (path, bytes) in &kept {
            assert!(
                !bytes.windows(word.len()).any(|w| w == word.as_bytes()),
                "{} holds {word:?}",
                path.display()
            );
        }
    }
    room.proc.kill();
}
