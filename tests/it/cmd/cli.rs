//! The `tlschat` binary end to end: `listen` and `connect` as separate
//! processes on loopback, talking real TLS 1.3 over TCP. Ports come from
//! binding port 0; every wait has a deadline (see `support`).

use crate::programs;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::programs::{Proc, Room, TempDir, single_error_line, tlschat};

/// Runs a chat between a room and one client: a line each way, then the
/// client's stdin ends and it must close cleanly. Returns both for more checks.
fn chat_both_ways(listen_extra: &[&str], connect_extra: &[&str], suite: &str) -> (Room, Proc) {
    let dir = TempDir::new("chat");
    let mut room = Room::start(&dir, "listen", listen_extra);
    let mut client = room.connect("connect", connect_extra);

    let connected = client.stdout.wait_for_text("[tls] connected: ");
    assert!(connected.contains(suite), "{connected}");
    assert!(connected.contains("x25519, ed25519, peer CN=localhost (safety number "), "{connected}");

    client.send_line("hello from the client");
    let heard = room.proc.stdout.wait_for_text("hello from the client");
    // The client proved its identity key: the room labels it `[NAME ✓]`.
    assert!(heard.starts_with('[') && heard.ends_with(" \u{2713}] hello from the client"), "{heard}");

    room.proc.send_line("hello from the room");
    // The host's line, signed by the host's key and checked by the client.
    client.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] hello from the room"));

    client.close_stdin();
    let status = client.wait();
    assert!(status.success(), "connect exited with {status}\n{}", client.output());
    assert!(client.stderr.all().is_empty(), "{}", client.output());
    room.proc.stdout.wait_for_text("left (close_notify)");
    (room, client)
}

#[test]
fn connect_and_listen_exchange_lines_both_ways_and_connect_exits_zero_after_stdin_eof() {
    let (room, client) = chat_both_ways(&[], &[], "TLS_CHACHA20_POLY1305_SHA256");
    // Both sides show the handshake as numbered steps.
    assert!(client.stdout.contains("[tls] 1/7 -> ClientHello"), "{}", client.output());
    assert!(client.stdout.contains("[tls] 2/7 <- ServerHello  TLS_CHACHA20_POLY1305_SHA256, x25519"));
    assert!(room.proc.stdout.contains("1/7 <- ClientHello"), "{}", room.proc.output());
}

#[test]
fn a_client_restricted_to_chacha20_gets_chacha20() {
    chat_both_ways(&[], &["--suite", "chacha20"], "TLS_CHACHA20_POLY1305_SHA256");
}

#[test]
fn a_client_restricted_to_aes128_gets_aes128() {
    chat_both_ways(&[], &["--suite", "aes128"], "TLS_AES_128_GCM_SHA256");
}

#[test]
fn a_room_restricted_to_aes128_makes_a_client_offering_both_use_aes128() {
    chat_both_ways(&["--suite", "aes128"], &[], "TLS_AES_128_GCM_SHA256");
}

#[test]
fn connect_refuses_a_server_certificate_from_another_ca_and_the_server_hears_unknown_ca() {
    let dir = TempDir::new("other-ca");
    let room = Room::start(&dir, "listen", &[]);
    // A second room only to have a CA that did not sign the first room's certificate.
    let other = Room::start(&dir, "other", &[]);
    let target = room.target();
    let mut client =
        Proc::spawn("connect", &mut tlschat(&["connect", &target, "--ca", other.ca.to_str().unwrap()]));
    let status = client.wait();
    assert!(!status.success(), "{}", client.output());
    let line = single_error_line(&client);
    assert!(line.contains("certificate refused") && line.contains("not a trusted CA"), "{line}");
    room.proc.stdout.wait_for_text("handshake failed: the peer sent alert unknown_ca");
}

#[test]
fn connect_accepts_the_pinned_fingerprint_of_the_server_key() {
    let dir = TempDir::new("pin");
    let room = Room::start(&dir, "listen", &[]);
    let target = room.target();
    let mut client =
        Proc::spawn("connect", &mut tlschat(&["connect", &target, "--fingerprint", &room.fingerprint]));
    client.stdout.wait_for_text("[tls] connected: ");
    assert!(client.stdout.contains("matches the pin"), "{}", client.output());
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
}

#[test]
fn connect_refuses_a_server_whose_key_does_not_match_the_pinned_fingerprint() {
    let dir = TempDir::new("wrong-pin");
    let room = Room::start(&dir, "listen", &[]);
    // The right fingerprint with its first digit changed.
    let first = room.fingerprint.chars().next().unwrap();
    let wrong = format!("{}{}", if first == '0' { '1' } else { '0' }, &room.fingerprint[1..]);
    let target = room.target();
    let mut client = Proc::spawn("connect", &mut tlschat(&["connect", &target, "--fingerprint", &wrong]));
    assert!(!client.wait().success(), "{}", client.output());
    let line = single_error_line(&client);
    assert!(line.contains("does not match the expected"), "{line}");
    room.proc.stdout.wait_for_text("handshake failed: the peer sent alert bad_certificate");
}

// Without --ca or --fingerprint, connect falls back on pins and first
// contact: see tests/it/chat/trust.rs.

#[test]
fn connect_to_a_port_nobody_listens_on_reports_the_refusal() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    let mut client =
        Proc::spawn("connect", &mut tlschat(&["connect", &target, "--fingerprint", &"0".repeat(64)]));
    assert!(!client.wait().success());
    let line = single_error_line(&client);
    assert!(line.contains("refused"), "{line}");
}

#[test]
fn connect_reports_a_host_name_that_does_not_resolve() {
    // .invalid never resolves (RFC 6761 §6.4). A resolver with no network may
    // be slow to say so; the generous limits are for that.
    let mut client = Proc::spawn(
        "connect",
        &mut tlschat(&[
            "connect",
            "nosuchhost.invalid:8443",
            "--fingerprint",
            &"0".repeat(64),
            "--handshake-timeout",
            "25",
        ]),
    );
    assert!(!client.wait_within(Duration::from_secs(30)).success());
    let line = single_error_line(&client);
    assert!(line.contains("cannot resolve nosuchhost.invalid"), "{line}");
}

#[test]
fn connect_gives_up_on_a_server_that_never_answers_after_the_handshake_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    // Accept and hold the connection without a word.
    let holder = std::thread::spawn(move || silent.accept().map(|(stream, _)| stream));
    let started = Instant::now();
    let mut client = Proc::spawn(
        "connect",
        &mut tlschat(&["connect", &target, "--fingerprint", &"0".repeat(64), "--handshake-timeout", "1"]),
    );
    assert!(!client.wait_within(Duration::from_secs(10)).success());
    let elapsed = started.elapsed();
    let line = single_error_line(&client);
    assert!(line.contains("timed out") && line.contains("waiting for ServerHello"), "{line}");
    assert!(elapsed < Duration::from_secs(5), "gave up only after {elapsed:?}");
    drop(holder.join());
}

#[test]
fn listen_drops_a_client_that_sends_nothing_after_the_handshake_timeout_and_keeps_serving_others() {
    let dir = TempDir::new("silent-client");
    let mut room = Room::start(&dir, "listen", &["--handshake-timeout", "1"]);
    let mut silent = TcpStream::connect(room.addr).unwrap();
    let port = silent.local_addr().unwrap().port();
    room.wait_for_peer_line(
        port,
        "handshake failed: the TLS handshake timed out after 1 s, waiting for ClientHello",
    );
    // The server hung up on it.
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "the silent client was not disconnected");

    // The room still works.
    let mut client = room.connect("connect", &[]);
    client.stdout.wait_for_text("[tls] connected: ");
    client.send_line("still here?");
    room.proc.stdout.wait_for_text("] still here?");
    room.proc.send_line("yes");
    client.stdout.wait_for("the room's answer", |l| l.ends_with(" \u{2713}] yes"));
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
}

#[test]
fn connect_reports_a_server_that_vanishes_without_close_notify_and_tries_again() {
    let dir = TempDir::new("vanish");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut client = room.connect("connect", &[]);
    client.stdout.wait_for_text("[tls] connected: ");
    room.proc.stdout.wait_for_text("connected: ");
    // SIGKILL: the kernel closes the socket, TLS says nothing.
    room.proc.kill();
    let line = client.stdout.wait_for_text("[net] reconnecting to ");
    assert!(line.contains("(attempt 1): the peer closed the connection without close_notify"), "{line}");
    // Nothing listens any more: each attempt is refused, and told.
    let line = client.stdout.wait_for_text("(attempt 2)");
    assert!(line.contains("nothing is listening there"), "{line}");
    // The user leaves while it waits: a clean exit, no error.
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
    assert!(client.stderr.all().is_empty(), "{}", client.output());
}

#[cfg(unix)]
#[test]
fn listen_closes_its_connections_with_close_notify_on_ctrl_c() {
    let dir = TempDir::new("interrupt");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut client = room.connect("connect", &[]);
    client.stdout.wait_for_text("[tls] connected: ");
    room.proc.stdout.wait_for_text("connected: ");
    let kill =
        std::process::Command::new("kill").args(["-INT", &room.proc.id().to_string()]).status().unwrap();
    assert!(kill.success());
    // The client hears close_notify and exits cleanly, stdin still open.
    client.stdout.wait_for_text("[tls] the server closed the connection (close_notify)");
    assert!(client.wait().success(), "{}", client.output());
    assert!(room.proc.wait().success(), "{}", room.proc.output());
    assert!(room.proc.stdout.contains("closed (close_notify)"), "{}", room.proc.output());
}

/// The lines of an NSS key log file, by label: (client random, secret).
fn read_keylog(path: &std::path::Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "not a key log line: {line}");
            assert!(parts[1].len() == 64 && parts[2].len() == 64, "{line}");
            assert!(parts[1..].iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())), "{line}");
            (parts[0].to_owned(), (parts[1].to_owned(), parts[2].to_owned()))
        })
        .collect()
}

#[test]
fn keylog_writes_the_four_traffic_secrets_with_one_client_random_on_both_sides() {
    let dir = TempDir::new("keylog");
    let client_log = dir.join("client.keys");
    let server_log = dir.join("server.keys");
    // The server takes SSLKEYLOGFILE, the client --keylog.
    let room = Room::start_with(&dir, "listen", &[], |cmd| {
        cmd.env("SSLKEYLOGFILE", &server_log);
    });
    let mut client = room.connect("connect", &["--keylog", client_log.to_str().unwrap()]);
    client.stdout.wait_for_text("[tls] connected: ");
    client.send_line("secret-free line");
    room.proc.stdout.wait_for_text("] secret-free line");
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
    room.proc.stdout.wait_for_text("left (close_notify)");

    // Neither writes secrets silently.
    room.proc.stderr.wait_for_text(&format!(
        "writing this session's secrets to {} (SSLKEYLOGFILE)",
        server_log.display()
    ));
    client
        .stderr
        .wait_for_text(&format!("writing this session's secrets to {} (--keylog)", client_log.display()));
    let client_keys = read_keylog(&client_log);
    let server_keys = read_keylog(&server_log);
    let labels = [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ];
    let random = &client_keys[labels[0]].0;
    for label in labels {
        let (client_random, secret) = client_keys.get(label).unwrap_or_else(|| panic!("no {label} line"));
        assert_eq!(client_random, random, "{label}");
        // Both ends derived and logged the same secret.
        assert_eq!(server_keys.get(label), Some(&(client_random.clone(), secret.clone())), "{label}");
        // ... and it appears nowhere but in the key log.
        for proc in [&client, &room.proc] {
            assert!(!proc.output().contains(secret.as_str()), "{label} leaked into the output");
        }
    }
    #[cfg(unix)]
    for path in [&client_log, &server_log] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

#[test]
fn listen_echo_echoes_records_for_several_concurrent_connections_and_then_more() {
    let dir = TempDir::new("echo");
    let room = Room::start(&dir, "listen", &["--echo"]);
    let mut clients: Vec<Proc> = (0..4).map(|i| room.connect(&format!("connect {i}"), &[])).collect();
    for client in &clients {
        client.stdout.wait_for_text("[tls] connected: ");
    }
    // All connected at once; each line comes back on its own connection only.
    for (i, client) in clients.iter_mut().enumerate() {
        client.send_line(&format!("first line of client {i}"));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client.stdout.wait_for("the echo", |l| l == format!("first line of client {i}"));
        client.send_line(&format!("second line of client {i}"));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client.stdout.wait_for("the echo", |l| l == format!("second line of client {i}"));
        for j in 0..4 {
            if j != i {
                assert!(!client.stdout.contains(&format!("client {j}")), "{}", client.output());
            }
        }
        client.close_stdin();
        assert!(client.wait().success(), "{}", client.output());
    }
    // One more after the others have gone.
    let mut late = room.connect("late", &[]);
    late.send_line("anyone?");
    late.stdout.wait_for("the echo", |l| l == "anyone?");
    late.close_stdin();
    assert!(late.wait().success(), "{}", late.output());
    // The echo server does not log records or clean closes.
    assert!(!room.proc.stdout.contains("line of client"), "{}", room.proc.output());
}

#[test]
fn listen_writes_the_room_ca_where_it_says_and_prints_a_join_hint() {
    let dir = TempDir::new("banner");
    let room = Room::start(&dir, "listen", &[]);
    let port = room.addr.port();
    room.proc.stdout.wait_for_text(&format!("ca: {}", room.ca.display()));
    room.proc
        .stdout
        .wait_for_text(&format!("join: tlschat connect 127.0.0.1:{port} --ca {}", room.ca.display()));
    let pem = std::fs::read_to_string(&room.ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(room.proc.stdout.all().iter().filter(|l| l.starts_with("listening on ")).count(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&room.ca).unwrap().permissions().mode() & 0o777, 0o644);
    }
}

#[test]
fn demo_headless_prints_the_handshake_answers_each_line_and_exits_zero_at_the_end_of_input() {
    let mut demo = Proc::spawn("demo", &mut tlschat(&["demo", "--headless"]));
    demo.stdout.wait_for_text("[tls] 1/7 -> ClientHello");
    let connected = demo.stdout.wait_for_text("[tls] connected: ");
    assert!(connected.contains("peer CN=localhost"), "{connected}");
    // Two bots, each with a key of its own, greet the newcomer: signed, checked here.
    demo.stdout.wait_for("alice's welcome", |l| l.starts_with("[alice \u{2713}] welcome, "));
    demo.stdout.wait_for("bob's follow-up", |l| l.starts_with("[bob \u{2713}] hi "));
    demo.send_line("hello there");
    demo.stdout.wait_for("alice's greeting", |l| l.starts_with("[alice \u{2713}] hi "));
    demo.send_line("twelve bytes");
    // 12 bytes of text; the signed message's fixed fields take 186 bytes
    // and the signature 64; a Post frame adds 4, a record 22.
    demo.stdout.wait_for_text(
        "your 12 bytes of text went out as signed message #2 (262 bytes with its 64-byte signature), in a 266-byte Post frame, sealed into a 288-byte TLS record.",
    );
    demo.close_stdin();
    let status = demo.wait();
    assert!(status.success(), "{}", demo.output());
    assert!(demo.stdout.contains("[tls] closed (close_notify)"), "{}", demo.output());
    assert!(demo.stderr.all().is_empty(), "{}", demo.output());
}

#[test]
fn step_without_the_full_screen_interface_is_refused_with_one_line() {
    let mut demo = Proc::spawn("demo", &mut tlschat(&["demo", "--headless", "--step"]));
    let status = demo.wait();
    assert!(!status.success(), "{}", demo.output());
    let line = single_error_line(&demo);
    assert!(line.contains("--step needs the full-screen interface"), "{line}");
}

#[test]
fn listen_refuses_a_key_file_others_can_read_and_names_the_fix() {
    let dir = TempDir::new("open-key");
    let now = tlschat::clock::unix_now();
    let (ca, server) = tlschat::store::pki::test_room_for_testing_only(5, now).unwrap();
    programs::write_room_files(&dir, &ca, &server, 0o644);
    let d = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let mut room = Proc::spawn(
        "listen",
        &mut tlschat(&["listen", "127.0.0.1:0", "--cert", &d("server.pem"), "--key", &d("server.key")]),
    );
    assert!(!room.wait().success(), "{}", room.output());
    let line = single_error_line(&room);
    assert!(line.contains(&format!("run `chmod 600 {}`", d("server.key"))), "{line}");
}

#[test]
fn the_output_flags_belong_to_the_commands_that_chat_and_not_to_id_or_trust() {
    let dir = TempDir::new("flags");
    let run = |args: &[&str]| {
        tlschat(args)
            .env("TLSCHAT_HOME", dir.path())
            .env("HOME", dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for args in [
        &["id", "--json"][..],
        &["id", "--headless"],
        &["trust", "list", "--no-bell"],
        &["--json", "trust", "list"],
        &["id", "--utc"],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
    for command in ["listen", "connect", "demo"] {
        let help = String::from_utf8_lossy(&run(&[command, "--help"]).stdout).into_owned();
        for flag in ["--headless", "--json", "--no-bell", "--utc"] {
            assert!(help.contains(flag), "{command} --help lacks {flag}:\n{help}");
        }
    }
    let help = String::from_utf8_lossy(&run(&["id", "--help"]).stdout).into_owned();
    assert!(!help.contains("--json") && !help.contains("--headless"), "{help}");
}

#[test]
fn a_port_out_of_range_is_said_to_be_out_of_range() {
    for args in [&["connect", "localhost:70000", "--headless"][..], &["listen", "99999", "--headless"]] {
        let mut proc = Proc::spawn(args[0], &mut tlschat(args));
        assert!(!proc.wait().success(), "{}", proc.output());
        let line = single_error_line(&proc);
        assert!(line.contains("is out of range (a port is a number from 0 to 65535)"), "{line}");
        assert!(!line.contains("is not HOST:PORT"), "{line}");
    }
}
