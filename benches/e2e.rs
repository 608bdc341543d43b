//! What end to end (MLS, `chat::e2e`) costs a group of N members, beside
//! the signed-only room: for each N (10, 100, 1,000 by default), a group of
//! N made by one member adding the other N−1 from their key packages, then:
//!
//! - **join**: a member adds one more (the commit and the Welcome made:
//!   `add_ms`), and the newcomer joins from the Welcome (`join_ms`, which
//!   checks every leaf of the tree it carries); `welcome_bytes`;
//! - **commit processing per member**: the time one member takes to process
//!   that add (`add_commit_process_ms`) and a self-update
//!   (`update_commit_process_ms`, after `update_ms` to make it), with their
//!   sizes; every member of the group pays this for every commit;
//! - **per message**: sealing a signed message of 200 bytes of text and
//!   opening it (`seal_us`, `open_us`, `sealed_bytes`), beside signing and
//!   verifying the same message in the signed-only room (`sign_us`,
//!   `verify_us`, `signed_bytes`).
//!
//! Run: `cargo bench --bench e2e [-- --sizes 10,100,1000 --messages 200]`.
//! Prints one `key=value` line per group size.

use std::time::Instant;

use tlschat::chat::Kind;
use tlschat::chat::e2e::{E2e, Opened};
use tlschat::chat::message::{Fields, Signed};
use tlschat::tls::{Ed25519Key, SeededRng};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

struct Person {
    key: Ed25519Key,
    mls: E2e,
}

fn person(seed: u64) -> Person {
    let key = Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed));
    let mls = E2e::new(key.public_key());
    Person { key, mls }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn signed_message(key: &Ed25519Key, to: [u8; 32], seq: u64) -> Vec<u8> {
    let fields = Fields {
        room: [0x42; 32],
        author: key.public_key(),
        session: [7; 16],
        seq,
        prev: [0; 32],
        time_ms: 1_764_720_000_000,
        kind: Kind::Private,
        recipient: Some(to),
        text: "x".repeat(200),
    };
    fields.sign(key).unwrap_or_else(|e| panic!("{e}"))
}

fn one_size(n: usize, messages: usize) {
    let mut alice = person(1);
    let mut bob = person(2);
    let group = alice.mls.create(&alice.key).unwrap_or_else(|e| panic!("{e}"));
    // The others' key packages; only bob keeps his state (he reads).
    let mut packages =
        vec![(bob.mls.key_package(&bob.key).unwrap_or_else(|e| panic!("{e}")), bob.key.public_key())];
    for i in 3..=n as u64 {
        let mut other = person(i);
        packages.push((
            other.mls.key_package(&other.key).unwrap_or_else(|e| panic!("{e}")),
            other.key.public_key(),
        ));
    }
    let refs: Vec<(&[u8], [u8; 32])> = packages.iter().map(|(p, k)| (p.as_slice(), *k)).collect();
    let made = Instant::now();
    let commit = alice.mls.add(&alice.key, &group, &refs).unwrap_or_else(|e| panic!("{e}"));
    alice.mls.confirm(&group).unwrap_or_else(|e| panic!("{e}"));
    let build_ms = ms(made);
    let welcome = commit.welcome.unwrap_or_default();
    bob.mls.join(&welcome, alice.key.public_key()).unwrap_or_else(|e| panic!("{e}"));

    // One more joins.
    let mut carol = person(1_000_000);
    let package = carol.mls.key_package(&carol.key).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let add = alice
        .mls
        .add(&alice.key, &group, &[(&package, carol.key.public_key())])
        .unwrap_or_else(|e| panic!("{e}"));
    alice.mls.confirm(&group).unwrap_or_else(|e| panic!("{e}"));
    let add_ms = ms(t);
    let welcome = add.welcome.unwrap_or_default();
    let t = Instant::now();
    let joined = carol.mls.join(&welcome, alice.key.public_key()).unwrap_or_else(|e| panic!("{e}"));
    let join_ms = ms(t);
    assert_eq!(joined.members.len(), n + 1);
    let t = Instant::now();
    let Ok(Opened::Commit { .. }) = bob.mls.open(&add.commit, alice.key.public_key()) else {
        panic!("bob processes the add")
    };
    let add_commit_process_ms = ms(t);

    // Bob updates his leaf; the others process it.
    let t = Instant::now();
    let update = bob.mls.update(&bob.key, &group).unwrap_or_else(|e| panic!("{e}"));
    bob.mls.confirm(&group).unwrap_or_else(|e| panic!("{e}"));
    let update_ms = ms(t);
    let t = Instant::now();
    let Ok(Opened::Commit { .. }) = alice.mls.open(&update.commit, bob.key.public_key()) else {
        panic!("alice processes the update")
    };
    let update_commit_process_ms = ms(t);
    let Ok(Opened::Commit { .. }) = carol.mls.open(&update.commit, bob.key.public_key()) else {
        panic!("carol processes the update")
    };

    // Per message: sealed and opened, against signed and verified.
    let to = bob.key.public_key();
    let inner: Vec<Vec<u8>> = (1..=messages as u64).map(|seq| signed_message(&alice.key, to, seq)).collect();
    let t = Instant::now();
    let sealed: Vec<Vec<u8>> = inner
        .iter()
        .map(|m| alice.mls.seal(&alice.key, &group, m).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let seal_us = ms(t) * 1000.0 / messages as f64;
    let t = Instant::now();
    for m in &sealed {
        let Ok(Opened::Application { .. }) = bob.mls.open(m, alice.key.public_key()) else {
            panic!("bob opens")
        };
    }
    let open_us = ms(t) * 1000.0 / messages as f64;
    let t = Instant::now();
    let signed: Vec<Vec<u8>> = (1..=messages as u64).map(|seq| signed_message(&alice.key, to, seq)).collect();
    let sign_us = ms(t) * 1000.0 / messages as f64;
    let t = Instant::now();
    for m in &signed {
        assert!(Signed::open(m).is_ok_and(|s| s.valid()));
    }
    let verify_us = ms(t) * 1000.0 / messages as f64;
    println!(
        "members={n} build_ms={build_ms:.1} add_ms={add_ms:.2} join_ms={join_ms:.2} welcome_bytes={} \
         add_commit_bytes={} add_commit_process_ms={add_commit_process_ms:.2} update_ms={update_ms:.2} \
         update_commit_bytes={} update_commit_process_ms={update_commit_process_ms:.2} \
         seal_us={seal_us:.1} open_us={open_us:.1} sealed_bytes={} sign_us={sign_us:.1} verify_us={verify_us:.1} signed_bytes={}",
        welcome.len(),
        add.commit.len(),
        update.commit.len(),
        sealed[0].len(),
        signed[0].len(),
    );
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    let messages = arg("--messages").and_then(|m| m.parse().ok()).unwrap_or(200).max(1);
    for n in sizes {
        one_size(n.max(2), messages);
    }
}
