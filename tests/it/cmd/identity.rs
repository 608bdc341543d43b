//! Identities on disk and in the room: `tlschat id`, the room's persistent
//! CA and server key, mutual TLS with names bound to keys, guests, and the
//! files' permissions and failure messages. OpenSSL checks the files.
//!
//! Every `tlschat` here runs with TLSCHAT_HOME in a temporary directory.

use crate::programs;

use std::path::Path;
use std::process::Command;

use crate::programs::{HOME_ENV, Proc, Room, TempDir, single_error_line, tlschat};

/// `tlschat ARGS` with `home` as TLSCHAT_HOME.
fn at(home: &Path, name: &str, args: &[&str]) -> Proc {
    let mut cmd = tlschat(args);
    cmd.env(HOME_ENV, home);
    Proc::spawn(name, &mut cmd)
}

/// Runs `tlschat ARGS` to its end; returns it for checks.
fn run(home: &Path, args: &[&str]) -> Proc {
    let mut p = at(home, &args.join(" "), args);
    p.close_stdin();
    p.wait();
    p
}

/// The value after `label: ` in `tlschat id`'s output.
fn field(p: &Proc, label: &str) -> String {
    let prefix = format!("{label}: ");
    p.stdout
        .all()
        .iter()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {label}\n{}", p.output()))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn openssl(dir: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    let mut p = Proc::spawn(&format!("openssl {}", args[0]), &mut cmd);
    p.close_stdin();
    let status = p.wait();
    assert!(status.success(), "openssl {args:?} failed\n{}", p.output());
    p
}

// ---------------------------------------------------------------------------
// tlschat id

#[test]
fn id_makes_an_identity_on_first_use_and_shows_the_same_one_after() {
    let home = TempDir::new("id");
    let first = run(home.path(), &["id"]);
    assert!(first.stdout.contains("made your identity (first use)"), "{}", first.output());
    let fingerprint = field(&first, "fingerprint");
    let safety = field(&first, "safety number");
    assert_eq!(fingerprint.len(), 64 + 15, "{fingerprint}");
    assert_eq!(safety.len(), 30 + 5, "{safety}");
    assert!(safety.split(' ').all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())), "{safety}");
    let key = home.join("identity/key.pem");
    assert_eq!(field(&first, "key"), key.display().to_string());

    let again = run(home.path(), &["id"]);
    assert!(!again.stdout.contains("made your identity"), "{}", again.output());
    assert_eq!(field(&again, "fingerprint"), fingerprint);
    assert_eq!(field(&again, "name"), field(&first, "name"));

    // OpenSSL reads the key, and its public half is the fingerprinted one.
    openssl(
        home.path(),
        &["pkey", "-in", "identity/key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"],
    );
    let der = std::fs::read(home.join("pub.der")).unwrap();
    // The fingerprint is BLAKE3 of that SubjectPublicKeyInfo, as documented.
    let expected = tlschat::tls::Fingerprint(*blake3::hash(&der).as_bytes());
    assert_eq!(expected.to_string(), fingerprint);
}

#[cfg(unix)]
#[test]
fn identity_and_room_files_are_created_0600_in_0700_directories_and_certificates_0644() {
    let home = TempDir::new("modes");
    assert!(run(home.path(), &["id"]).wait().success());
    let dir = TempDir::new("room-modes");
    let room = Room::start(&dir, "listen", &[]);
    drop(room);
    let room_home = dir.join("listen-home");
    for (path, expected) in [
        (home.join("identity"), 0o700),
        (home.join("identity/key.pem"), 0o600),
        (home.join("identity/name"), 0o600),
        (room_home.join("room"), 0o700),
        (room_home.join("room/ca.key"), 0o600),
        (room_home.join("room/server.key"), 0o600),
        (room_home.join("room/ca.pem"), 0o644),
        (room_home.join("room/server.pem"), 0o644),
    ] {
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
    // The home directory that tlschat made itself is the owner's only.
    let fresh = home.join("fresh");
    assert!(run(&fresh, &["id"]).wait().success());
    assert_eq!(mode(&fresh), 0o700);
}

#[test]
fn id_name_sets_the_display_name_and_refuses_names_that_could_pass_for_others() {
    let home = TempDir::new("id-name");
    let set = run(home.path(), &["id", "--name", "alice"]);
    assert_eq!(field(&set, "name"), "alice");
    let fingerprint = field(&set, "fingerprint");
    let renamed = run(home.path(), &["id", "--name", "alice.w"]);
    assert_eq!(field(&renamed, "name"), "alice.w");
    assert_eq!(field(&renamed, "fingerprint"), fingerprint, "renaming keeps the key");
    for bad in ["", "a b", "\u{430}lice", "-x", &"y".repeat(33)] {
        let mut p = run(home.path(), &["id", &format!("--name={bad}")]);
        assert!(!p.wait().success(), "{bad:?} was accepted");
        let line = single_error_line(&p);
        assert!(line.contains(&format!("{bad:?} cannot be a display name: ")), "{line}");
    }
    assert_eq!(std::fs::read_to_string(home.join("identity/name")).unwrap(), "alice.w\n");
}

#[test]
fn id_new_without_a_terminal_needs_yes_and_then_replaces_the_key_keeping_the_name() {
    let home = TempDir::new("id-new");
    let old = run(home.path(), &["id", "--name", "bob"]);
    let old_fp = field(&old, "fingerprint");
    let key_before = std::fs::read(home.join("identity/key.pem")).unwrap();

    let mut refused = run(home.path(), &["id", "--new"]);
    assert!(!refused.wait().success());
    let line = single_error_line(&refused);
    assert!(line.contains("tlschat id --new --yes") && line.contains("nothing was changed"), "{line}");
    assert_eq!(std::fs::read(home.join("identity/key.pem")).unwrap(), key_before);

    let mut new = run(home.path(), &["id", "--new", "--yes"]);
    assert!(new.wait().success(), "{}", new.output());
    assert_ne!(field(&new, "fingerprint"), old_fp);
    assert_eq!(field(&new, "name"), "bob");
    #[cfg(unix)]
    assert_eq!(mode(&home.join("identity/key.pem")), 0o600);
}

#[test]
fn a_corrupt_or_truncated_key_is_reported_with_its_path_and_nothing_is_overwritten() {
    let home = TempDir::new("id-corrupt");
    assert!(run(home.path(), &["id"]).wait().success());
    let key = home.join("identity/key.pem");
    let pem = std::fs::read_to_string(&key).unwrap();
    for damaged in
        [&pem[..pem.len() / 2], "", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"]
    {
        std::fs::write(&key, damaged).unwrap();
        for args in [&["id"][..], &["connect", "localhost:9", "--trust-on-first-use"][..]] {
            let mut p = run(home.path(), args);
            assert!(!p.wait().success(), "{args:?} accepted a damaged key");
            let line = single_error_line(&p);
            assert!(
                line.contains(&format!("{} is not a usable Ed25519 private key", key.display())),
                "{line}"
            );
            assert!(line.contains("tlschat id --new"), "{line}");
            assert_eq!(std::fs::read_to_string(&key).unwrap(), damaged, "the damaged key was touched");
        }
    }
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
    let home = TempDir::new("id-open");
    assert!(run(home.path(), &["id"]).wait().success());
    let key = home.join("identity/key.pem");
    chmod(&key, 0o644);
    let mut p = run(home.path(), &["id"]);
    assert!(!p.wait().success());
    let line = single_error_line(&p);
    assert!(line.contains(&format!("run `chmod 600 {}`", key.display())) && line.contains("0644"), "{line}");
    chmod(&key, 0o600);
    assert!(run(home.path(), &["id"]).wait().success());

    // A key directory others may write to: they could swap the key.
    chmod(&home.join("identity"), 0o777);
    let mut p = run(home.path(), &["id"]);
    assert!(!p.wait().success());
    let line = single_error_line(&p);
    assert!(line.contains(&format!("run `chmod 700 {}`", home.join("identity").display())), "{line}");
    chmod(&home.join("identity"), 0o700);
}

// ---------------------------------------------------------------------------
// The room's keys

#[test]
fn listen_keeps_its_room_key_across_restarts() {
    let dir = TempDir::new("room-restart");
    let first = Room::start(&dir, "listen", &[]);
    first.proc.stdout.wait_for_text("made a new room in ");
    let fingerprint = first.fingerprint.clone();
    drop(first);
    let second = Room::start(&dir, "listen", &[]);
    assert_eq!(second.fingerprint, fingerprint);
    assert!(!second.proc.stdout.contains("made a new room"), "{}", second.proc.output());
    // A client that pinned the first run trusts the second.
    let home = TempDir::new("client");
    let mut c = at(home.path(), "invited", &["connect", &second.target(), "--fingerprint", &fingerprint]);
    c.stdout.wait_for_text("matches the pin");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
}

#[test]
fn a_new_host_name_gets_a_new_certificate_for_the_same_key_that_openssl_verifies() {
    let dir = TempDir::new("room-reissue");
    let home = dir.join("room-home");
    // Made for localhost, 127.0.0.1 and ::1; then asked for the same names; then for a new one.
    let mut first = at(&home, "listen", &["listen", "127.0.0.1:0"]);
    let fp = first.stdout.wait_for_text("fingerprint: ");
    first.kill();
    let mut second = at(
        &home,
        "listen",
        &["listen", "localhost:0", "--cert-out", dir.join("chain.pem").to_str().unwrap()],
    );
    assert_eq!(second.stdout.wait_for_text("fingerprint: "), fp);
    assert!(!second.stdout.contains("issued a new server certificate"), "{}", second.output());
    second.kill();

    let ca = home.join("room/ca.pem");
    let server = home.join("room/server.pem");
    let before = std::fs::read_to_string(&server).unwrap();
    // 127.0.0.2 is loopback on Linux, and not in the first certificate.
    let mut third = at(&home, "listen", &["listen", "127.0.0.2:0"]);
    let note = third.stdout.wait_for_text("issued a new server certificate");
    assert!(
        note.contains("127.0.0.2 was not in it") && note.contains("same key, same fingerprint"),
        "{note}"
    );
    assert_eq!(third.stdout.wait_for_text("fingerprint: "), fp);
    third.kill();
    assert_ne!(std::fs::read_to_string(&server).unwrap(), before);

    let d = dir.path();
    std::fs::copy(&ca, d.join("ca.pem")).unwrap();
    std::fs::copy(&server, d.join("server.pem")).unwrap();
    let out =
        openssl(d, &["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "ca.pem", "server.pem"]);
    assert_eq!(out.stdout.all(), ["server.pem: OK"]);
    let text = openssl(d, &["x509", "-in", "server.pem", "-noout", "-ext", "subjectAltName"]).stdout.text();
    assert!(text.contains("IP Address:127.0.0.2") && text.contains("DNS:localhost"), "{text}");
    let out = openssl(d, &["verify", "-x509_strict", "-CAfile", "ca.pem", "ca.pem"]);
    assert_eq!(out.stdout.all(), ["ca.pem: OK"]);
    // The chain --cert-out wrote is leaf then CA.
    let chain = std::fs::read_to_string(dir.join("chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn openssl_s_client_verifies_the_room_with_the_ca_file_in_the_room_directory() {
    let dir = TempDir::new("s_client-room-ca");
    let mut room = Room::start(&dir, "listen", &[]);
    let ca = dir.join("listen-home/room/ca.pem");
    let port = room.addr.port().to_string();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "localhost",
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        "-tls1_3",
        "-brief",
        "-nocommands",
    ]);
    let mut guest = Proc::spawn("s_client", &mut cmd);
    guest.stderr.wait_for_text("Verification: OK");
    guest.send_line("hello as a guest");
    let heard = room.proc.stdout.wait_for_text("] hello as a guest");
    assert_eq!(heard, "[guest-1 (unverified)] hello as a guest");
    room.proc.stdout.wait_for_text("[room] guest-1 joined (an unverified guest)");
    room.proc.send_line("hello guest");
    // A guest hears the room as plain lines, each with its author's state.
    guest.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] hello guest"));
    guest.stdout.wait_for_text("tlschat: you are guest-1 (unverified guest)");
    guest.close_stdin();
    assert!(guest.wait().success(), "{}", guest.output());
}

#[test]
fn a_damaged_room_key_or_an_incomplete_room_stops_listen_with_the_file_and_the_fix() {
    let dir = TempDir::new("room-damaged");
    drop(Room::start(&dir, "listen", &[]));
    let home = dir.join("listen-home");
    let key = home.join("room/server.key");
    let original = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&key, &original[..20]).unwrap();
    let mut p = run(&home, &["listen", "127.0.0.1:0"]);
    assert!(!p.wait().success());
    let line = single_error_line(&p);
    assert!(line.contains(&format!("{} is not a usable Ed25519 private key", key.display())), "{line}");
    assert!(
        line.contains(&format!("move {} aside to start a new room", home.join("room").display())),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), &original[..20], "the damaged key was touched");

    std::fs::remove_file(&key).unwrap();
    let mut p = run(&home, &["listen", "127.0.0.1:0"]);
    assert!(!p.wait().success());
    let line = single_error_line(&p);
    assert!(line.contains("is incomplete") && line.contains(&key.display().to_string()), "{line}");
    assert!(!key.exists(), "a missing key must not be made again silently");
}

// ---------------------------------------------------------------------------
// Mutual TLS in the room

#[test]
fn mutual_tls_gives_the_room_a_verified_identity() {
    let dir = TempDir::new("mtls");
    let mut room = Room::start(&dir, "listen", &[]);
    let alice = TempDir::new("alice");
    let id = run(alice.path(), &["id", "--name", "alice"]);
    let safety = field(&id, "safety number");
    let mut c = at(alice.path(), "alice", &["connect", &room.target(), "--ca", room.ca.to_str().unwrap()]);
    c.send_line("hi, it is me");
    room.proc.stdout.wait_for_text(&format!("[room] alice joined (key {safety})"));
    room.proc.stdout.wait_for("alice's line", |l| l == "[alice \u{2713}] hi, it is me");
    room.proc.send_line("hello alice");
    c.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] hello alice"));
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    // The binding is kept in the room's directory.
    // (after the host's own name: the host is a member too)
    let fp = field(&id, "fingerprint").replace(' ', "");
    room.wait_for_binding("alice", &fp);
    let members = room.members();
    // NAME FINGERPRINT LAST-USED (Unix seconds), beside the host's own name.
    assert_eq!(members.lines().count(), 2, "{members}");
    let line = members.lines().find(|l| l.starts_with("alice ")).unwrap_or_default();
    assert!(line.starts_with(&format!("alice {fp} ")), "{members}");
    assert!(line.rsplit(' ').next().is_some_and(|t| t.parse::<u64>().is_ok()), "{members}");
}

#[test]
fn a_second_key_claiming_a_taken_name_is_refused_and_its_lines_never_arrive() {
    let dir = TempDir::new("taken");
    let room = Room::start(&dir, "listen", &[]);
    let ca = room.ca.to_str().unwrap().to_owned();
    let first = TempDir::new("first-alice");
    let second = TempDir::new("second-alice");
    run(first.path(), &["id", "--name", "alice"]);
    let impostor = run(second.path(), &["id", "--name", "Alice"]);
    let impostor_safety = field(&impostor, "safety number");

    let mut c = at(first.path(), "alice", &["connect", &room.target(), "--ca", &ca]);
    c.stdout.wait_for_text("[tls] connected: ");
    room.proc.stdout.wait_for_text("[room] alice joined (key ");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());

    let mut other = at(second.path(), "other alice", &["connect", &room.target(), "--ca", &ca]);
    other.send_line("I am alice too");
    assert!(!other.wait().success(), "{}", other.output());
    let line = single_error_line(&other);
    assert!(line.contains("refused your identity Alice (alert access_denied)"), "{line}");
    assert!(line.contains("tlschat id --name NAME"), "{line}");
    let logged =
        room.proc.stdout.wait_for_text("handshake failed: access denied: the name alice belongs to the key");
    assert!(logged.contains(&format!("refused the key {impostor_safety}")), "{logged}");
    assert!(!room.proc.stdout.contains("I am alice too"), "{}", room.proc.output());
    assert!(!room.proc.stdout.contains("Alice joined"), "{}", room.proc.output());
}

#[test]
fn names_in_other_scripts_are_admitted_as_written_and_a_whole_script_lookalike_is_refused() {
    let dir = TempDir::new("unicode-names");
    let room = Room::start(&dir, "listen", &[]);
    let ca = room.ca.to_str().unwrap().to_owned();
    let jose = TempDir::new("jose");
    let bob = TempDir::new("bob");
    let impostor = TempDir::new("cyrillic-bob");
    // Full-width letters are stored as the name they spell.
    let id = run(jose.path(), &["id", "--name", "\u{ff2a}\u{ff4f}\u{ff53}\u{e9}"]);
    assert_eq!(field(&id, "name"), "Jos\u{e9}");
    run(bob.path(), &["id", "--name", "bob"]);
    // Cyrillic capitals В, О, В: one script, so a valid name, but it looks like bob.
    let id = run(impostor.path(), &["id", "--name", "\u{412}\u{41e}\u{412}"]);
    assert_eq!(field(&id, "name"), "\u{412}\u{41e}\u{412}");

    let mut c = at(jose.path(), "jose", &["connect", &room.target(), "--ca", &ca]);
    c.send_line("hola");
    room.proc.stdout.wait_for_text("[room] Jos\u{e9} joined (key ");
    room.proc.stdout.wait_for("José's line", |l| l == "[Jos\u{e9} \u{2713}] hola");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    let mut c = at(bob.path(), "bob", &["connect", &room.target(), "--ca", &ca]);
    room.proc.stdout.wait_for_text("[room] bob joined (key ");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());

    let mut other = at(impostor.path(), "impostor", &["connect", &room.target(), "--ca", &ca]);
    other.send_line("I am bob");
    assert!(!other.wait().success(), "{}", other.output());
    assert!(single_error_line(&other).contains("(alert access_denied)"), "{}", other.output());
    let logged =
        room.proc.stdout.wait_for_text("handshake failed: access denied: the name \u{412}\u{41e}\u{412}");
    assert!(logged.contains("looks like bob"), "{logged}");
    assert!(!room.proc.stdout.contains("I am bob"), "{}", room.proc.output());
    let members = room.members();
    assert!(members.lines().any(|l| l.starts_with("Jos\u{e9} ")), "{members}");
}

#[test]
fn require_identity_refuses_a_guest_with_certificate_required_and_admits_members() {
    let dir = TempDir::new("require");
    let mut room = Room::start(&dir, "listen", &["--require-identity"]);
    let port = room.addr.port().to_string();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "localhost",
        "-CAfile",
        room.ca.to_str().unwrap(),
        "-tls1_3",
        "-brief",
        "-nocommands",
    ]);
    let mut guest = Proc::spawn("s_client", &mut cmd);
    guest.send_line("guest line");
    room.proc.stdout.wait_for_text("handshake failed: the client sent no certificate, and one is required");
    guest.stderr.wait_for_text("certificate required");
    assert!(!room.proc.stdout.contains("guest line"), "{}", room.proc.output());

    let mut member = room.connect("member", &[]);
    member.send_line("member line");
    room.proc.stdout.wait_for_text(" \u{2713}] member line");
    room.proc.send_line("bye");
    member.stdout.wait_for("the room's line", |l| l.ends_with(" \u{2713}] bye"));
    member.close_stdin();
    assert!(member.wait().success(), "{}", member.output());
}

#[test]
fn a_room_serving_its_own_cert_and_key_still_binds_names_in_its_data_directory() {
    let dir = TempDir::new("own-cert");
    let now = tlschat::clock::unix_now();
    let (ca, server) = tlschat::store::pki::test_room_for_testing_only(7, now).unwrap();
    programs::write_room_files(&dir, &ca, &server, 0o600);
    let d = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let room_home = dir.join("room-home");
    let room = at(
        &room_home,
        "listen",
        &["listen", "127.0.0.1:0", "--cert", &d("server.pem"), "--key", &d("server.key")],
    );
    let listening = room.stdout.wait_for("the listening line", |l| l.starts_with("listening on "));
    let port = listening.rsplit(':').next().unwrap().to_owned();
    let carol = TempDir::new("carol");
    run(carol.path(), &["id", "--name", "carol"]);
    let mut c = at(carol.path(), "carol", &["connect", &format!("localhost:{port}"), "--ca", &d("ca.pem")]);
    c.send_line("hello from carol");
    room.stdout.wait_for("carol's line", |l| l == "[carol \u{2713}] hello from carol");
    c.close_stdin();
    assert!(c.wait().success(), "{}", c.output());
    let members = programs::bound_names(&room_home);
    assert!(members.lines().any(|l| l.starts_with("carol ")), "{members}");
    assert!(!room_home.join("room/ca.key").exists(), "--cert/--key makes no room CA");
}
