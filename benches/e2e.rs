//! What an end-to-end room costs on MLS (RFC 9420, ciphersuite 0x0003),
//! through `chat::e2e`, beside the signed-only room's message path
//! (`chat::message`).
//!
//! For each group size N (`--sizes 10,100,1000`), the bench builds a group
//! of N members the quick way: the creator makes the group and adds N-1 key
//! packages in one commit (one Welcome for all). Every member is a real
//! leaf with its own identity key and key package, but the bench keeps the
//! full MLS state of a sample only: the creator and the members at leaves
//! 1, N/2 and N-1, which join from that Welcome. What the others would do
//! is what these do: every member opens the same commits and messages.
//!
//! Then, `--rounds` times each (median printed):
//! - **add**: a joiner publishes a key package; the creator commits its
//!   addition (commit + Welcome, then merges it); the joiner processes
//!   the Welcome; every member held opens the commit;
//! - **update**: a sampled member commits a fresh leaf of its own (what
//!   members do now and then for post-compromise security); every other
//!   member held opens it;
//! - **message** (`--messages` of them): the creator seals a 100-byte text,
//!   one reader opens it; beside it the signed-only room's message: the
//!   author signs, the reader parses and verifies.
//!
//! The tree is the one such a group has: only the paths of members who
//! have committed are filled, the rest blank, so a commit's path is
//! encrypted to every leaf under a blank node. The commit's size shows how
//! many: each path encryption is about 90 bytes.
//!
//! Run: `cargo bench --bench e2e [-- --sizes 10,100,1000 --rounds 3
//! --messages 500]`. Prints `key=value` lines, `nN_` before each figure of
//! a group of N; times in milliseconds (`_ms`) or microseconds (`_us`).

use std::time::{Duration, Instant};

use tlschat::chat::Kind;
use tlschat::chat::e2e::{self, Commit, E2e, Opened};
use tlschat::chat::message::{Fields, Signed};
use tlschat::tls::{Ed25519Key, SeededRng};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The text each message carries.
const TEXT_BYTES: usize = 100;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn number(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Stops the bench with what failed.
fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| {
        eprintln!("e2e bench: {what}: {e}");
        std::process::exit(1);
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// A member whose MLS state the bench holds.
struct Held {
    key: Ed25519Key,
    mls: E2e,
}

impl Held {
    fn new(rng: &mut SeededRng) -> Self {
        let key = Ed25519Key::generate(rng);
        let mls = E2e::new(key.public_key());
        Self { key, mls }
    }

    fn pk(&self) -> [u8; 32] {
        self.key.public_key()
    }
}

/// Every held member but `skip` opens `commit` from `from`; their times.
fn open_commit(held: &mut [Held], skip: usize, commit: &Commit, from: [u8; 32], epoch: u64) -> Vec<f64> {
    let mut times = Vec::new();
    for (i, member) in held.iter_mut().enumerate() {
        if i == skip {
            continue;
        }
        let start = Instant::now();
        let opened = ok(member.mls.open(&commit.commit, from), "a member opens a commit");
        times.push(ms(start.elapsed()));
        match opened {
            Opened::Commit { epoch: e, .. } if e == epoch => {}
            other => {
                eprintln!("e2e bench: a commit opened as {other:?}, not epoch {epoch}");
                std::process::exit(1);
            }
        }
    }
    times
}

fn text() -> String {
    (0..TEXT_BYTES).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn bench_size(n: usize, rounds: usize, messages: usize, rng: &mut SeededRng) {
    let p = |key: &str| format!("n{n}_{key}");
    // The group: the creator, then N-1 key packages added in one commit.
    let setup = Instant::now();
    let sample: Vec<usize> = {
        let mut s = vec![1, n / 2, n - 1];
        s.retain(|&l| l >= 1 && l < n);
        s.dedup();
        s
    };
    let mut creator = Held::new(rng);
    let group = ok(creator.mls.create(&creator.key), "create the group");
    let mut packages: Vec<(Vec<u8>, [u8; 32])> = Vec::with_capacity(n - 1);
    let mut sampled: Vec<Held> = Vec::new();
    let started = Instant::now();
    for leaf in 1..n {
        let mut member = Held::new(rng);
        packages.push((ok(member.mls.key_package(&member.key), "make a key package"), member.pk()));
        if sample.contains(&leaf) {
            sampled.push(member);
        }
    }
    let key_packages = started.elapsed();
    let refs: Vec<(&[u8], [u8; 32])> = packages.iter().map(|(b, k)| (b.as_slice(), *k)).collect();
    let started = Instant::now();
    let bulk = ok(creator.mls.add(&creator.key, &group, &refs), "add the members");
    ok(creator.mls.confirm(&group), "merge the bulk add");
    let bulk_add = started.elapsed();
    let Some(bulk_welcome) = bulk.welcome.as_deref() else {
        eprintln!("e2e bench: the bulk add made no Welcome");
        std::process::exit(1);
    };
    let mut bulk_joins = Vec::new();
    for member in &mut sampled {
        let started = Instant::now();
        let joined = ok(member.mls.join(bulk_welcome, creator.pk()), "join from the bulk Welcome");
        bulk_joins.push(ms(started.elapsed()));
        if joined.members.len() != n || joined.group != group {
            eprintln!("e2e bench: joined a group of {} members, not {n}", joined.members.len());
            std::process::exit(1);
        }
    }
    println!("{}={n}", p("members"));
    println!("{}={:.2}", p("setup_seconds"), setup.elapsed().as_secs_f64());
    println!("{}={:.2}", p("setup_key_packages_ms"), ms(key_packages));
    println!("{}={:.2}", p("setup_bulk_add_commit_ms"), ms(bulk_add));
    println!("{}={}", p("setup_bulk_welcome_bytes"), bulk_welcome.len());
    println!("{}={:.2}", p("setup_bulk_join_ms"), median(bulk_joins));
    println!("{}={}", p("held_members"), 1 + sampled.len());

    // Everyone held: the creator first.
    let mut held = vec![creator];
    held.extend(sampled);
    let mut epoch = ok(held[0].mls.epoch(&group).ok_or("no epoch"), "read the epoch");
    println!("{}={epoch}", p("setup_epoch"));

    // Add one joiner, `rounds` times.
    let (mut add_ms, mut join_ms, mut welcome_bytes, mut commit_bytes) = (vec![], vec![], vec![], vec![]);
    let (mut process_mean, mut process_max) = (vec![], vec![]);
    for _ in 0..rounds {
        let mut joiner = Held::new(rng);
        let package = ok(joiner.mls.key_package(&joiner.key), "make the joiner's key package");
        let adder = held[0].pk();
        let started = Instant::now();
        let commit = {
            let h = &mut held[0];
            let c = ok(h.mls.add(&h.key, &group, &[(&package, joiner.pk())]), "add one joiner");
            epoch = ok(h.mls.confirm(&group), "merge the add");
            c
        };
        add_ms.push(ms(started.elapsed()));
        let Some(welcome) = commit.welcome.as_deref() else {
            eprintln!("e2e bench: an add made no Welcome");
            std::process::exit(1);
        };
        welcome_bytes.push(welcome.len() as f64);
        commit_bytes.push(commit.commit.len() as f64);
        let started = Instant::now();
        let joined = ok(joiner.mls.join(welcome, adder), "the joiner processes the Welcome");
        join_ms.push(ms(started.elapsed()));
        if joined.epoch != epoch {
            eprintln!("e2e bench: the joiner is at epoch {}, not {epoch}", joined.epoch);
            std::process::exit(1);
        }
        let times = open_commit(&mut held, 0, &commit, adder, epoch);
        process_mean.push(mean(&times));
        process_max.push(max(&times));
        held.push(joiner);
    }
    println!("{}={:.2}", p("add_commit_and_welcome_ms"), median(add_ms));
    println!("{}={:.2}", p("add_welcome_processing_ms"), median(join_ms));
    println!("{}={:.0}", p("add_welcome_bytes"), median(welcome_bytes));
    println!("{}={:.0}", p("add_commit_bytes"), median(commit_bytes));
    println!("{}={:.2}", p("add_commit_processing_per_member_ms"), median(process_mean));
    println!("{}={:.2}", p("add_commit_processing_max_ms"), median(process_max));

    // Self-updates, by the sampled members in turn (leaves 1, N/2, N-1).
    let (mut update_ms, mut update_bytes, mut update_mean, mut update_max) = (vec![], vec![], vec![], vec![]);
    let samples = held.len() - 1 - rounds;
    for round in 0..rounds {
        let who = 1 + round % samples.max(1);
        let (commit, from) = {
            let h = &mut held[who];
            let started = Instant::now();
            let c = ok(h.mls.update(&h.key, &group), "update a leaf");
            epoch = ok(h.mls.confirm(&group), "merge the update");
            update_ms.push(ms(started.elapsed()));
            (c, h.pk())
        };
        update_bytes.push(commit.commit.len() as f64);
        let times = open_commit(&mut held, who, &commit, from, epoch);
        update_mean.push(mean(&times));
        update_max.push(max(&times));
    }
    println!("{}={:.2}", p("update_commit_ms"), median(update_ms));
    println!("{}={:.0}", p("update_commit_bytes"), median(update_bytes));
    println!("{}={:.2}", p("update_processing_per_member_ms"), median(update_mean));
    println!("{}={:.2}", p("update_processing_max_ms"), median(update_max));

    // Messages: the creator seals, the member at leaf 1 opens.
    let text = text();
    let (mut seal, mut open) = (Duration::ZERO, Duration::ZERO);
    let mut sealed_bytes = 0;
    let author = held[0].pk();
    for _ in 0..messages {
        let started = Instant::now();
        let sealed = {
            let h = &mut held[0];
            ok(h.mls.seal(&h.key, &group, text.as_bytes()), "seal a message")
        };
        seal += started.elapsed();
        sealed_bytes = sealed.len();
        let started = Instant::now();
        let opened = ok(held[1].mls.open(&sealed, author), "open a message");
        open += started.elapsed();
        match opened {
            Opened::Application { plaintext, .. } if plaintext == text.as_bytes() => {}
            other => {
                eprintln!("e2e bench: a message opened as {other:?}");
                std::process::exit(1);
            }
        }
    }
    let per = messages.max(1) as u32;
    println!("{}={:.1}", p("message_seal_us"), us(seal / per));
    println!("{}={:.1}", p("message_open_us"), us(open / per));
    println!("{}={sealed_bytes}", p("message_bytes"));
}

/// The signed-only room's message: signed by its author, parsed and
/// checked by each reader (and the relay).
fn bench_signed(messages: usize, rng: &mut SeededRng) {
    let key = Ed25519Key::generate(rng);
    let text = text();
    let mut prev = [0; 32];
    let (mut sign, mut verify) = (Duration::ZERO, Duration::ZERO);
    let mut bytes = 0;
    for seq in 1..=messages as u64 {
        let fields = Fields {
            room: [0x42; 32],
            author: key.public_key(),
            session: [7; 16],
            seq,
            prev,
            time_ms: 1_800_000_000_000 + seq,
            kind: Kind::Text,
            recipient: None,
            text: text.clone(),
        };
        let started = Instant::now();
        let signed = ok(fields.sign(&key), "sign a message");
        sign += started.elapsed();
        bytes = signed.len();
        let started = Instant::now();
        let opened = ok(Signed::open(&signed), "open a signed message");
        verify += started.elapsed();
        if !opened.valid() || opened.fields().text != text {
            eprintln!("e2e bench: a signed message did not verify");
            std::process::exit(1);
        }
        prev = opened.hash();
    }
    let per = messages.max(1) as u32;
    println!("signed_message_sign_us={:.1}", us(sign / per));
    println!("signed_message_verify_us={:.1}", us(verify / per));
    println!("signed_message_bytes={bytes}");
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n >= 2)
        .collect();
    let rounds = number("--rounds", 3).max(1);
    let messages = number("--messages", 500).max(1);
    let mut rng = SeededRng::new_for_testing_only(16);
    println!("ciphersuite=0x{:04x}", u16::from(e2e::CIPHERSUITE));
    println!("text_bytes={TEXT_BYTES}");
    println!("rounds={rounds}");
    println!("messages={messages}");
    bench_signed(messages, &mut rng);
    for n in sizes {
        bench_size(n, rounds, messages, &mut rng);
    }
}
