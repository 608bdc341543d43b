//! Interop with peers nobody on this project wrote: `openssl s_client`,
//! `openssl s_server`, `openssl verify` and `curl` (which uses OpenSSL here)
//! against the `tlschat` binary, following the recipes in
//! `shared/interop.md`. Loopback only; every process has a deadline.
//!
//! OpenSSL and curl must be installed: a missing tool fails the test with a
//! message naming it rather than skipping it.

use crate::programs::openssl_certs;

use std::path::Path;
use std::process::Command;

use crate::programs::{Proc, Room, TempDir, tlschat};
use openssl_certs::{openssl, openssl_certificates, run};

const CHACHA20: &str = "TLS_CHACHA20_POLY1305_SHA256";
const AES128: &str = "TLS_AES_128_GCM_SHA256";

/// `openssl s_client` against `addr`, verifying with `ca` as interop.md does.
fn s_client(port: u16, ca: &Path, extra: &[&str]) -> Proc {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-tls1_3",
        "-sigalgs",
        "ed25519",
        "-brief",
    ];
    args.extend_from_slice(extra);
    Proc::spawn("s_client", &mut openssl(&args))
}

/// s_client restricted to one suite and X25519 chats with `tlschat listen`.
fn s_client_chats_with_listen(suite: &str) {
    let dir = TempDir::new("s_client");
    let mut room = Room::start(&dir, "listen", &[]);
    let mut client =
        s_client(room.addr.port(), &room.ca, &["-ciphersuites", suite, "-groups", "X25519", "-nocommands"]);
    // The last line of -brief's summary; the rest came before it.
    client.stderr.wait_for_text("Server Temp Key: X25519");
    for line in ["Protocol version: TLSv1.3", &format!("Ciphersuite: {suite}"), "Verification: OK"] {
        assert!(client.stderr.contains(line), "no {line:?}\n{}", client.output());
    }

    client.send_line("hello from openssl");
    let heard = room.proc.stdout.wait_for_text("] hello from openssl");
    // No client certificate: a guest, labelled as unverified.
    assert_eq!(heard, "[guest-1 (unverified)] hello from openssl");
    room.proc.send_line("hello from tlschat");
    client.stdout.wait_for("tlschat's line", |l| l.ends_with(" \u{2713}] hello from tlschat"));

    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
    // s_client says goodbye with close_notify, which the room answers.
    room.proc.stdout.wait_for_text("left (close_notify)");
    assert!(
        room.proc.stdout.contains(&format!("connected: {suite}, x25519, ed25519")),
        "{}",
        room.proc.output()
    );
}

#[test]
fn openssl_s_client_chats_with_tlschat_listen_over_chacha20() {
    s_client_chats_with_listen(CHACHA20);
}

#[test]
fn openssl_s_client_chats_with_tlschat_listen_over_aes128() {
    s_client_chats_with_listen(AES128);
}

/// `tlschat connect` chats with `openssl s_server` restricted to `suite`;
/// both key logs must agree.
fn connect_chats_with_s_server(suite: &str) {
    let dir = TempDir::new("s_server");
    openssl_certificates(&dir);
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    // Without -brief, s_server prints the port it got (ACCEPT 127.0.0.1:PORT)
    // and the suite it chose (CIPHER is ...).
    let mut server = Proc::spawn(
        "s_server",
        &mut openssl(&[
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-naccept",
            "1",
            "-cert",
            &d("server.pem"),
            "-key",
            &d("server.key"),
            "-cert_chain",
            &d("ca.pem"),
            "-tls1_3",
            "-ciphersuites",
            suite,
            "-groups",
            "X25519",
            "-sigalgs",
            "ed25519",
            "-keylogfile",
            &d("openssl.keys"),
        ]),
    );
    let accept = server.stdout.wait_for_text("ACCEPT 127.0.0.1:");
    let port = accept.rsplit(':').next().unwrap().trim();
    let target = format!("localhost:{port}");
    let mut client = Proc::spawn(
        "connect",
        &mut tlschat(&["connect", &target, "--ca", &d("ca.pem"), "--keylog", &d("tlschat.keys")]),
    );
    let connected = client.stdout.wait_for_text("[tls] connected: ");
    assert!(connected.contains(&format!("{suite}, x25519, ed25519, peer CN=localhost")), "{connected}");
    server.stdout.wait_for_text(&format!("CIPHER is {suite}"));

    client.send_line("hello from tlschat");
    server.stdout.wait_for("tlschat's line", |l| l == "hello from tlschat");
    server.send_line("hello from openssl");
    client.stdout.wait_for("openssl's line", |l| l == "hello from openssl");

    client.close_stdin();
    let status = client.wait();
    assert!(status.success(), "connect exited with {status}\n{}", client.output());
    // Only the notice that secrets are being written (--keylog).
    let stderr = client.stderr.all();
    assert!(
        stderr.len() == 1 && stderr[0].starts_with("tlschat: writing this session's secrets to "),
        "{}",
        client.output()
    );
    // -naccept 1: s_server ends with its one connection.
    server.close_stdin();
    server.wait();

    // OpenSSL logged the same secrets as tlschat did.
    let ours = std::fs::read_to_string(dir.join("tlschat.keys")).unwrap();
    let theirs = std::fs::read_to_string(dir.join("openssl.keys")).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        let line = ours
            .lines()
            .find(|l| l.starts_with(&format!("{label} ")))
            .unwrap_or_else(|| panic!("no {label}"));
        assert!(theirs.lines().any(|l| l == line), "OpenSSL's key log lacks {line}\n{theirs}");
    }
}

#[test]
fn tlschat_connect_chats_with_openssl_s_server_over_chacha20() {
    connect_chats_with_s_server(CHACHA20);
}

#[test]
fn tlschat_connect_chats_with_openssl_s_server_over_aes128() {
    connect_chats_with_s_server(AES128);
}

#[test]
fn openssl_verify_accepts_the_ca_and_server_chain_that_listen_writes() {
    let dir = TempDir::new("verify");
    let chain = dir.join("chain.pem");
    let room = Room::start(&dir, "listen", &["--cert-out", chain.to_str().unwrap()]);
    let ca = room.ca.to_str().unwrap();
    let chain = chain.to_str().unwrap();
    // The leaf (first in the chain file), for both the name and the address.
    let out = run(
        "openssl verify",
        &mut openssl(&["verify", "-CAfile", ca, "-verify_hostname", "localhost", chain]),
    );
    assert_eq!(out.trim(), format!("{chain}: OK"));
    let out =
        run("openssl verify", &mut openssl(&["verify", "-CAfile", ca, "-verify_ip", "127.0.0.1", chain]));
    assert_eq!(out.trim(), format!("{chain}: OK"));
    // The CA itself, as a trust anchor.
    let out = run("openssl verify", &mut openssl(&["verify", "-CAfile", ca, ca]));
    assert_eq!(out.trim(), format!("{ca}: OK"));
}

#[test]
fn tlschat_listen_serves_a_certificate_and_key_made_by_openssl() {
    let dir = TempDir::new("openssl-cert");
    openssl_certificates(&dir);
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let room = Proc::spawn(
        "listen",
        &mut tlschat(&["listen", "127.0.0.1:0", "--cert", &d("server.pem"), "--key", &d("server.key")]),
    );
    let line = room.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let mut client = s_client(port, &dir.join("ca.pem"), &["-nocommands"]);
    client.stderr.wait_for_text("Verification: OK");
    client.send_line("made by openssl");
    room.stdout.wait_for_text("] made by openssl");
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
}

#[test]
fn openssl_s_client_offering_only_a_p256_key_share_gets_a_hello_retry_request_and_connects() {
    let dir = TempDir::new("hrr");
    let mut room = Room::start(&dir, "listen", &[]);
    // OpenSSL sends a key share for the first group only: P-256, which
    // tlschat does not speak, so the server must ask again for X25519.
    let mut client = s_client(room.addr.port(), &room.ca, &["-groups", "P-256:X25519", "-nocommands"]);
    client.stderr.wait_for_text("Server Temp Key: X25519");
    assert!(client.stderr.contains("Verification: OK"), "{}", client.output());
    room.proc.stdout.wait_for_text("-> HelloRetryRequest");
    room.proc.stdout.wait_for_text("after HelloRetryRequest");
    client.send_line("after a retry");
    room.proc.stdout.wait_for_text("] after a retry");
    room.proc.send_line("welcome");
    client.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] welcome"));
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
}

#[test]
fn openssl_s_client_keyupdate_asking_for_an_update_keeps_listen_echo_echoing() {
    let dir = TempDir::new("keyupdate");
    let room = Room::start(&dir, "listen", &["--echo"]);
    // Commands on: a line "K" makes s_client send KeyUpdate(update_requested).
    let mut client = s_client(room.addr.port(), &room.ca, &[]);
    client.stderr.wait_for_text("Verification: OK");
    client.send_line("before the update");
    client.stdout.wait_for("the first echo", |l| l == "before the update");
    client.send_line("K");
    client.stderr.wait_for_text("KEYUPDATE");
    client.send_line("after the update");
    // Readable only if the server moved to the new keys for reading and,
    // as asked, for writing too.
    client.stdout.wait_for("the second echo", |l| l == "after the update");
    assert!(!client.stdout.all().iter().any(|l| l == "K"), "K was sent as data\n{}", client.output());
    client.close_stdin();
    assert!(client.wait().success(), "{}", client.output());
}

#[test]
fn curl_gets_the_status_page_from_tlschat_listen() {
    let dir = TempDir::new("curl-page");
    let room = Room::start(&dir, "listen", &[]);
    let url = format!("https://localhost:{}/", room.addr.port());
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--max-time", "10", "--cacert", room.ca.to_str().unwrap(), &url]);
    let page = run("curl", &mut curl);
    assert!(page.starts_with("tlschat room"), "{page}");
    assert!(page.contains(&format!("listening on {}", room.addr)), "{page}");
    assert!(page.contains(&room.fingerprint), "{page}");
    // How many are in, and never where the room's files live.
    assert!(page.contains("in the room: 1 (the host included)"), "{page}");
    assert!(!page.contains(room.ca.to_str().unwrap()), "{page}");
    room.proc.stdout.wait_for_text("sent the HTTP status page");
    assert!(room.proc.stdout.contains("alpn http/1.1"), "{}", room.proc.output());
}

#[test]
fn curl_verbose_shows_a_tls13_connection_to_tlschat_listen_echo() {
    let dir = TempDir::new("curl-echo");
    let room = Room::start(&dir, "listen", &["--echo"]);
    let url = format!("https://localhost:{}/", room.addr.port());
    let mut curl = Proc::spawn(
        "curl",
        Command::new("curl").args(["-v", "--max-time", "10", "--cacert", room.ca.to_str().unwrap(), &url]),
    );
    curl.close_stdin();
    // The echoed request is no HTTP response, so curl's exit status is not
    // the point: the handshake is.
    curl.wait();
    assert!(curl.stderr.contains("SSL connection using TLSv1.3"), "{}", curl.output());
    assert!(curl.stderr.contains("SSL certificate verify ok"), "{}", curl.output());
}
