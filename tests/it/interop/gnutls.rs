//! Interop with GnuTLS, a TLS stack that shares no code with OpenSSL:
//! `gnutls-cli` as a client of `tlschat listen`, and `gnutls-serv --echo`
//! as the server of `tlschat connect`, each restricted to one suite.
//! Loopback only; every process has a deadline.
//!
//! GnuTLS's tools (Debian's gnutls-bin) must be installed: a missing tool
//! fails the test with a message naming it rather than skipping it.

use crate::programs::openssl_certs;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::programs::{Proc, Room, TempDir, tlschat};
use openssl_certs::openssl_certificates;

/// A GnuTLS priority string for TLS 1.3 with one cipher suite, the suite's
/// name as tlschat reports it, and as GnuTLS describes the session.
struct Suite {
    priority: &'static str,
    name: &'static str,
    gnutls: &'static str,
}

const CHACHA20: Suite = Suite {
    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305",
    name: "TLS_CHACHA20_POLY1305_SHA256",
    gnutls: "(TLS1.3-X.509)-(ECDHE-X25519)-(EdDSA-Ed25519)-(CHACHA20-POLY1305)",
};

const AES128: Suite = Suite {
    priority: "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM",
    name: "TLS_AES_128_GCM_SHA256",
    gnutls: "(TLS1.3-X.509)-(ECDHE-X25519)-(EdDSA-Ed25519)-(AES-128-GCM)",
};

/// `gnutls-cli` restricted to `suite`, verifying the server against `ca`
/// for the name localhost. Its stdin's lines go to the server; what the
/// server sends, and GnuTLS's own `- ` status lines, come on its stdout.
fn gnutls_cli(port: u16, ca: &Path, suite: &Suite) -> Proc {
    let port = port.to_string();
    Proc::spawn(
        "gnutls-cli",
        Command::new("gnutls-cli").args([
            "--priority",
            suite.priority,
            "--x509cafile",
            ca.to_str().unwrap(),
            "-p",
            &port,
            "localhost",
        ]),
    )
}

/// gnutls-cli joins the room as a guest and chats both ways.
fn gnutls_cli_chats_with_listen(suite: &Suite) {
    let dir = TempDir::new("gnutls-cli");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut client = gnutls_cli(room.addr.port(), &room.ca, suite);
    client.stdout.wait_for_text("tlschat: you are guest-1 (unverified guest)");
    for line in ["- Status: The certificate is trusted.", &format!("- Description: {}", suite.gnutls)] {
        assert!(client.stdout.contains(line), "no {line:?}\n{}", client.output());
    }

    client.send_line("hello from gnutls");
    let heard = room.proc.stdout.wait_for_text("] hello from gnutls");
    assert_eq!(heard, "[guest-1 (unverified)] hello from gnutls");
    room.proc.send_line("hello from tlschat");
    let line = client.stdout.wait_for("the host's line", |l| l.ends_with(" \u{2713}] hello from tlschat"));
    assert!(line.starts_with('[') && !line.contains("unverified"), "{line}");

    // At the end of its input gnutls-cli says goodbye with close_notify.
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
    room.proc.stdout.wait_for_text("left (close_notify)");
    assert!(
        room.proc.stdout.contains(&format!("connected: {}, x25519, ed25519", suite.name)),
        "{}",
        room.proc.output()
    );
}

#[test]
fn gnutls_cli_joins_tlschat_listen_as_a_guest_and_chats_over_chacha20() {
    gnutls_cli_chats_with_listen(&CHACHA20);
}

#[test]
fn gnutls_cli_joins_tlschat_listen_as_a_guest_and_chats_over_aes128() {
    gnutls_cli_chats_with_listen(&AES128);
}

/// `echo hello | gnutls-cli`: the line and close_notify leave together, so
/// they reach the server in one read. Records are handled in order: the
/// line is echoed before the server answers the close_notify.
fn data_then_close_notify_is_echoed(suite: &Suite) {
    let dir = TempDir::new("gnutls-cli-echo");
    let room = Room::start(&dir, "listen", &["--echo"]);
    let mut client = gnutls_cli(room.addr.port(), &room.ca, suite);
    client.send_line("hello");
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
    assert!(client.stdout.all().iter().any(|l| l == "hello"), "no echo\n{}", client.output());
    assert!(client.stdout.contains(&format!("- Description: {}", suite.gnutls)), "{}", client.output());
}

#[test]
fn a_line_and_close_notify_sent_together_by_gnutls_cli_are_echoed_by_listen_echo_over_chacha20() {
    data_then_close_notify_is_echoed(&CHACHA20);
}

#[test]
fn a_line_and_close_notify_sent_together_by_gnutls_cli_are_echoed_by_listen_echo_over_aes128() {
    data_then_close_notify_is_echoed(&AES128);
}

/// A loopback port that was free a moment ago: gnutls-serv takes only a
/// port number, so the test picks one by binding port 0 and letting it go.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `tlschat connect` sends a line through `gnutls-serv --echo` restricted
/// to `suite`, serving a certificate made by OpenSSL, and gets it back.
fn connect_through_gnutls_serv_echo(suite: &Suite) {
    let dir = TempDir::new("gnutls-serv");
    openssl_certificates(&dir);
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let port = free_port();
    let port_arg = port.to_string();
    // gnutls-serv has no option to choose its address: it listens on every
    // interface, and the test talks to it over loopback only.
    let server = Proc::spawn(
        "gnutls-serv",
        Command::new("gnutls-serv").args([
            "--echo",
            "--priority",
            suite.priority,
            "--x509certfile",
            &d("server.pem"),
            "--x509keyfile",
            &d("server.key"),
            "-p",
            &port_arg,
        ]),
    );
    // Its own messages go to stderr; stdout is block-buffered into a pipe.
    server.stderr.wait_for_text(&format!("listening on IPv4 0.0.0.0 port {port}...done"));

    let target = format!("localhost:{port}");
    let mut client =
        Proc::spawn("connect", &mut tlschat(&["connect", &target, "--ca", &d("ca.pem"), "--headless"]));
    let connected = client.stdout.wait_for_text("[tls] connected: ");
    assert!(
        connected.contains(&format!("{}, x25519, ed25519, peer CN=localhost", suite.name)),
        "{connected}"
    );

    client.send_line("hello through gnutls");
    client.stdout.wait_for("the echo", |l| l == "hello through gnutls");

    client.close_stdin();
    let status = client.wait();
    assert!(status.success(), "connect exited with {status}\n{}", client.output());
    client.stdout.wait_for_text("[tls] sent alert close_notify");
}

#[test]
fn tlschat_connect_gets_its_line_back_from_gnutls_serv_echo_over_chacha20() {
    connect_through_gnutls_serv_echo(&CHACHA20);
}

#[test]
fn tlschat_connect_gets_its_line_back_from_gnutls_serv_echo_over_aes128() {
    connect_through_gnutls_serv_echo(&AES128);
}
