//! The room under load: a real `tlschat listen` process on loopback and
//! many real tlschat members (the library's own client, each with an
//! identity key of its own, in this process), measured from outside.
//!
//! Run: `cargo bench --bench room -- [--members N] [--probes N]`
//! (default 1,000 members, 50 probes). It prints `key=value` lines:
//!
//! - `join_*`: all members connecting at once: the time until the last is
//!   seated, and handshakes per second;
//! - `idle_*`: the server's resident memory before and with the members
//!   connected and idle, and per member;
//! - `fanout_*`: one member's message to all the others, from the
//!   author's send to each member's receipt, over `probes` messages: p50,
//!   p99 and max in milliseconds.
//! - with `--sustained-secs S` (and `--rate R`, messages a second in all,
//!   default 100): members take turns to speak for S seconds; every member
//!   checks that it got every message once and in the room's order
//!   (`sustained_lost`, `_duplicated`, `_out_of_order`), with the delivery
//!   p50/p99/max and the server's CPU per delivered message;
//! - with `--bad-poster`: one more member streams posts whose signature
//!   does not verify while the probes run, reconnecting each time the room
//!   disconnects it; `bad_*` says how many it sent and how often it was
//!   cut off. Compare the fan-out figures with a quiet run.
//! - with `--memory-only`: the room keeps its log in memory only (`listen
//!   --memory-only`); by default it is on disk and every delivery waits
//!   for its group commit. `store=` says which.
//! - with `--slow-percent P`: P% of the members stop reading once seated.
//!   The other figures are then the readers' own; `slow_*` says how many
//!   slow members the server cut off ("too slow") and its memory after.
//! - with `--relays R` (R > 1): the room is served by R `tlschat listen
//!   --cluster` relays sharing one `nats-server -js` that the bench starts
//!   on a free port; member i joins relay i mod R. The server figures are
//!   then the relays' together (CPU, memory per member on its relay), and
//!   `bus_*` says what the nats-server itself used: its CPU per message
//!   of the fan-out probes and its memory. The fan-out latency includes the
//!   bus hop (publish, store, deliver to every relay); compare with R = 1.
//! - with `--workers W`: the members are held by W load processes (more
//!   if a share would pass 15,000), which this bench starts as copies of
//!   itself, since one process holds at most its open-file limit of
//!   connections: what a room of 50,000 members needs here (`spread`).
//!   The bench process then holds no member; the figures are the same,
//!   with idle memory also per relay (`idle_relayR_*`), latencies in
//!   buckets of 0.1 ms, and `--settle-secs` 15 and `--rate` 2 by default;
//!   the relays give a handshake `--handshake-timeout` seconds (300), and
//!   a member whose connection is reset before its seat tries again.
//!
//! Members sign what they send and the server checks each signature. By
//! default they do not check the signatures of what they receive (they
//! decrypt each record and decode each frame, then take the text from the
//! signed bytes): 1,000 members checking every message on one 2-core
//! machine measure this process rather than the server, where each real
//! member checks on its own machine (100 messages a second cost one member
//! about 4 ms of CPU a second). With `--verify`, every member is the full
//! client (`net::connect`) that checks everything, as `tlschat connect` does.
//!
//! Members connect from 127.0.0.1, then from 127.0.0.2 past 20,000 members,
//! and so on: one address has about 28,000 ephemeral ports. The open-file
//! limit must allow the member count in this process and in the server;
//! the bench raises it as far as the system lets it and says when that is
//! not far enough. Linux only (it reads `/proc/PID/status`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

// The room over several load processes (`--workers`).
#[path = "room/spread.rs"]
mod spread;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tlschat::chat::{ChatEvent, Frame, FrameBuffer, Kind, Member, message};
use tlschat::net::{self, Intent, NetEvent};
use tlschat::store::pki;
use tlschat::tls::{
    self, ClientConfig, Connection, Ed25519Key, Event, OsRng, RootStore, ServerName, ServerTrust,
};

/// Members the server cut off for not reading, counted from its log.
static TOO_SLOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Connections the server refused or timed out, counted from its log.
static REFUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The processes the bench started (relays, nats-server, workers), so
/// that a failure does not leave them running.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn fail(why: &str) -> ! {
    eprintln!("room bench: {why}");
    for pid in CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    std::process::exit(1);
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap_or_else(|_| fail(&format!("{name} takes a number"))))
}

/// Makes room for `n` members: each is one descriptor here and one in the
/// server, which inherits this process's limit. Raises the soft limit up
/// to the hard one, and the hard one too where this process may (it takes
/// CAP_SYS_RESOURCE); stops with the reason when neither is enough.
fn raise_open_files(n: usize) {
    use rlimit::Resource;
    let need = n as u64 + 100;
    let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) else { return };
    if need <= soft {
        return;
    }
    if need > hard && rlimit::setrlimit(Resource::NOFILE, need, need).is_ok() {
        println!("open_files_raised_to={need}");
        return;
    }
    if need <= hard {
        match rlimit::setrlimit(Resource::NOFILE, need, hard) {
            Ok(()) => return println!("open_files_raised_to={need}"),
            Err(e) => fail(&format!("cannot raise the open-file limit from {soft} to {need}: {e}")),
        }
    }
    fail(&format!(
        "{n} members need {need} open files in this process and in the server; the hard limit is \
         {hard} and this process may not raise it (that takes CAP_SYS_RESOURCE): one process \
         holds at most {} members (--workers W spreads them over W load processes, --relays R \
         over R relays)",
        hard.saturating_sub(100)
    ));
}

/// The address member `i` connects from: one loopback address per
/// [`MEMBERS_PER_ADDRESS`], since one address has about 28,000 ephemeral
/// ports to connect to the server from.
fn source_address(i: usize) -> std::net::Ipv4Addr {
    let n = (i / MEMBERS_PER_ADDRESS) as u32;
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(127, 0, 0, 1)) + n)
}

/// Members per loopback source address (below the default ephemeral port
/// range, 32768 to 60999).
const MEMBERS_PER_ADDRESS: usize = 20_000;

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| fail("cannot read VmRSS (Linux only)"))
}

/// Resident memory of every relay, in KiB.
fn rss_all(pids: &[u32]) -> u64 {
    pids.iter().map(|&pid| rss_kib(pid)).sum()
}

/// CPU time of every relay, in clock ticks.
fn cpu_all(pids: &[u32]) -> u64 {
    pids.iter().map(|&pid| cpu_ticks(pid)).sum()
}

/// CPU time (user + system) of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

struct Server {
    child: Child,
    addr: std::net::SocketAddr,
    ca: PathBuf,
    home: PathBuf,
}

/// The `nats-server -js` a cluster of relays shares, killed when dropped.
struct Bus {
    child: Child,
    url: String,
    store: PathBuf,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Starts `nats-server -js` on a free loopback port and waits until it accepts.
async fn start_bus() -> Bus {
    let store = std::env::temp_dir().join(format!("tlschat-room-bench-nats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            fail(&format!("cannot start nats-server (Debian: apt install nats-server): {e}"))
        });
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
    let bus = Bus { child, url: format!("nats://127.0.0.1:{port}"), store };
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            // JetStream is ready a moment after the port.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return bus;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fail("nats-server did not accept within 10 s")
}

/// The room's key files, which every relay of the room holds.
const ROOM_FILES: [&str; 4] = ["ca.key", "ca.pem", "server.key", "server.pem"];

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// How long the relays give a handshake, in seconds (`listen
/// --handshake-timeout`): 10, their default, unless a storm of several
/// load processes needs longer (`spread`).
static HANDSHAKE_SECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10);

/// Whether the room keeps its log in memory only (`--memory-only`).
fn memory_only() -> bool {
    std::env::args().any(|a| a == "--memory-only")
}

/// Starts relay `r` of the room; with `bus`, a relay of a cluster, which
/// holds the room's keys from `first`'s home (the first relay's).
async fn start_server(members: usize, r: usize, bus: Option<&Bus>, first: Option<&Server>) -> Server {
    let home = std::env::temp_dir().join(format!("tlschat-room-bench-{}-{r}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    if let Some(first) = first {
        let room = home.join("room");
        std::fs::create_dir_all(&room).unwrap_or_else(|e| fail(&e.to_string()));
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700));
            let _ = std::fs::set_permissions(&room, std::fs::Permissions::from_mode(0o700));
        }
        for file in ROOM_FILES {
            std::fs::copy(first.home.join("room").join(file), room.join(file))
                .unwrap_or_else(|e| fail(&format!("copying the room's {file}: {e}")));
        }
    }
    let cluster: Vec<&str> = bus.map(|b| vec!["--cluster", b.url.as_str()]).unwrap_or_default();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlschat"))
        .args(["listen", "127.0.0.1:0", "--headless", "--history", "0"])
        .args(cluster)
        .args([
            "--max-members",
            &(members + 1).to_string(),
            "--new-names-per-address",
            &(members + 10).to_string(),
        ])
        // Every member comes from 127.0.0.1, all at once: all are unverified
        // while their handshakes run.
        .args(["--max-unverified-per-address", &members.to_string()])
        .args(memory_only().then_some("--memory-only"))
        .args([
            "--handshake-timeout".to_owned(),
            HANDSHAKE_SECS.load(std::sync::atomic::Ordering::Relaxed).to_string(),
        ])
        .env("TLSCHAT_HOME", &home)
        .env_remove("SSLKEYLOGFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start tlschat listen: {e}")));
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
    let stdout = child.stdout.take().unwrap_or_else(|| fail("no stdout"));
    let stdout = tokio::process::ChildStdout::from_std(stdout).unwrap_or_else(|e| fail(&e.to_string()));
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut ca) = (None, None);
    while addr.is_none() || ca.is_none() {
        let line = lines.next_line().await.ok().flatten().unwrap_or_else(|| fail("listen ended early"));
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = a.parse().ok();
        }
        if let Some(c) = line.strip_prefix("ca: ") {
            ca = Some(PathBuf::from(c));
        }
    }
    // The server's log is not read any further; keep draining it.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("too slow") {
                TOO_SLOW.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else if (line.contains("refused") || line.contains("timed out"))
                && REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3
            {
                // The first few say why members are missing, if they are.
                eprintln!("server: {line}");
            }
        }
    });
    let (addr, ca) = (addr.unwrap_or_else(|| fail("no address")), ca.unwrap_or_else(|| fail("no CA")));
    Server { child, addr, ca, home }
}

/// What a member reports to the bench.
enum Report {
    Seated,
    Latency(Duration),
    /// A message of the sustained load: which member got which one, at
    /// which room sequence number, how long after it was sent.
    Load {
        member: usize,
        k: usize,
        room_seq: u64,
        latency: Duration,
    },
}

/// Connects member `i`; it reports when seated and the latency of every
/// message it receives. A member that does not `read` stops taking
/// anything from its connection once seated (its queues fill, then the
/// server's queue for it).
fn member(
    i: usize,
    server: &Server,
    roots: RootStore,
    epoch: Instant,
    reports: mpsc::UnboundedSender<Report>,
    read: bool,
    verify: bool,
) -> mpsc::Sender<Intent> {
    let now = tlschat::clock::unix_now() - 60;
    let key = Ed25519Key::generate(&mut OsRng);
    let cert = pki::self_signed_client(key.clone(), &format!("m{i}"), &mut OsRng, now)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.client_cert = Some(cert.into());
    config.emit_steps = false;
    let (intents, intent_rx) = mpsc::channel(16);
    if !verify {
        let port = server.addr.port();
        tokio::spawn(async move {
            if let Err(e) = light_member(
                i,
                port,
                Arc::new(config),
                key,
                &mut { intent_rx },
                epoch,
                reports,
                read,
                None,
                None,
            )
            .await
            {
                eprintln!("member {i}: {e}");
            }
        });
        return intents;
    }
    let (events_tx, mut events) = mpsc::channel(64);
    let port = server.addr.port();
    tokio::spawn(async move {
        let name = ServerName::parse("localhost").unwrap_or_else(|e| fail(&e.to_string()));
        let limit = Duration::from_secs(120);
        if let Err(e) = net::connect(
            net::Dial::new("127.0.0.1", port, name, Arc::new(config), limit),
            intent_rx,
            events_tx,
            None,
        )
        .await
        {
            eprintln!("member {i}: {e}");
        }
    });
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetEvent::Chat { event, .. } = event else { continue };
            match event {
                ChatEvent::Welcome { .. } => {
                    let _ = reports.send(Report::Seated);
                    if !read {
                        // Holds `events` unread from now on.
                        std::future::pending::<()>().await;
                    }
                }
                ChatEvent::Message(m) => heard(i, &m.text, m.room_seq, epoch, &reports),
                _ => {}
            }
        }
    });
    intents
}

/// Connections reset before their member was seated, tried again (`spread`).
static JOIN_RETRIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Connects member `i` to the relay on `port` as a light member (see
/// [`light_member`]) that reads everything; for the workers of `spread`.
/// A connection that fails before its member is seated (a listen queue
/// overflowing in a storm of tens of thousands of connections) is tried
/// again after a jittered second or two, up to 10 times, as a real client
/// reconnects; [`JOIN_RETRIES`] counts them.
fn member_at(
    i: usize,
    port: u16,
    roots: RootStore,
    epoch: Instant,
    reports: mpsc::UnboundedSender<Report>,
) -> mpsc::Sender<Intent> {
    let now = tlschat::clock::unix_now() - 60;
    let key = Ed25519Key::generate(&mut OsRng);
    let cert = pki::self_signed_client(key.clone(), &format!("m{i}"), &mut OsRng, now)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.client_cert = Some(cert.into());
    config.emit_steps = false;
    let config = Arc::new(config);
    let (intents, mut intent_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let seated = std::sync::atomic::AtomicBool::new(false);
        for attempt in 0.. {
            let (config, key, reports) = (config.clone(), key.clone(), reports.clone());
            let result =
                light_member(i, port, config, key, &mut intent_rx, epoch, reports, true, None, Some(&seated))
                    .await;
            match result {
                Err(e) if !seated.load(std::sync::atomic::Ordering::Relaxed) && attempt < 10 => {
                    JOIN_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let jitter = (i as u64 * 7919 + attempt * 131) % 1000;
                    tokio::time::sleep(Duration::from_millis(1000 + jitter)).await;
                    let _ = e;
                }
                Err(e) => return eprintln!("member {i}: {e}"),
                Ok(()) => return,
            }
        }
    });
    intents
}

/// Reports a message heard by member `i`: a probe or a load message, whose
/// text carries when it was sent.
fn heard(i: usize, text: &str, room_seq: u64, epoch: Instant, reports: &mpsc::UnboundedSender<Report>) {
    let mut words = text.split(' ');
    let (what, k, sent) = (words.next(), words.next(), words.next());
    let k: usize = k.and_then(|k| k.parse().ok()).unwrap_or(0);
    let sent: u64 = sent.and_then(|t| t.parse().ok()).unwrap_or(0);
    let latency = Duration::from_nanos((epoch.elapsed().as_nanos() as u64).saturating_sub(sent));
    let _ = match what {
        Some("probe") => reports.send(Report::Latency(latency)),
        Some("load") => reports.send(Report::Load { member: i, k, room_seq, latency }),
        _ => Ok(()),
    };
}

/// A member that signs what it says but does not check what it hears: the
/// engine, the frames and the signing of the real client, around one
/// socket, with the text taken straight from each delivered message's
/// signed bytes.
#[allow(clippy::too_many_arguments)]
async fn light_member(
    i: usize,
    port: u16,
    config: Arc<ClientConfig>,
    key: Ed25519Key,
    intents: &mut mpsc::Receiver<Intent>,
    epoch: Instant,
    reports: mpsc::UnboundedSender<Report>,
    read: bool,
    bad: Option<Arc<std::sync::atomic::AtomicU64>>,
    seated: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    let mut tick = tokio::time::interval(Duration::from_micros(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind((source_address(i), 0).into()).map_err(|e| e.to_string())?;
    let mut tcp = socket.connect(([127, 0, 0, 1], port).into()).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::parse("localhost").map_err(|e| e.to_string())?;
    let mut tls = Connection::client(config, name, Box::new(OsRng)).map_err(|e| e.to_string())?;
    let text_at = message::layout(0).iter().find(|(field, _)| *field == "text").map_or(0, |(_, r)| r.start);
    let (mut key, mut me) = (Some(key), None::<Member>);
    let (mut out, mut buf, mut frames) = (Vec::new(), vec![0u8; 32 * 1024], FrameBuffer::default());
    loop {
        out.clear();
        let _ = tls.poll_transmit(&mut out);
        if !out.is_empty() {
            tcp.write_all(&out).await.map_err(|e| e.to_string())?;
        }
        while let Some(event) = tls.poll_event() {
            if let (Event::Connected(summary), Some(key)) = (&event, key.take()) {
                let room = summary.peer.as_ref().ok_or("no server certificate")?.fingerprint.0;
                me = Some(Member::new(room, key, &mut OsRng));
            }
        }
        while let Some(data) = tls.recv_application_data() {
            frames.push(&data);
        }
        while let Some(frame) = frames.next_frame().map_err(|e| e.to_string())? {
            match frame {
                Frame::Welcome { .. } => {
                    let _ = reports.send(Report::Seated);
                    if let Some(seated) = seated {
                        seated.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if !read {
                        // Reads nothing from now on.
                        std::future::pending::<()>().await;
                    }
                }
                Frame::Deliver { room_seq, signed, .. } if signed.len() >= text_at + 64 => {
                    let text = String::from_utf8_lossy(&signed[text_at..signed.len() - 64]);
                    heard(i, &text, room_seq, epoch, &reports);
                }
                _ => {}
            }
        }
        tokio::select! {
            read = tcp.read(&mut buf) => match read.map_err(|e| e.to_string())? {
                0 => return Ok(()),
                n => {
                    let now = tlschat::clock::unix_now();
                    tls.handle_input(&buf[..n], now).map_err(|e| e.to_string())?;
                }
            },
            intent = intents.recv() => match (intent, me.as_mut()) {
                (Some(Intent::Say { kind, text, to }), Some(me)) => {
                    let now = tlschat::clock::unix_now_ms();
                    let (frame, _) = me.compose(kind, &text, to.as_deref(), now).map_err(|e| e.to_string())?;
                    tls.send(&frame.encode().unwrap()).map_err(|e| e.to_string())?;
                }
                (None, _) => return Ok(()),
                _ => {}
            },
            _ = tick.tick(), if bad.is_some() && me.is_some() => {
                // A post whose signature does not verify.
                let now = tlschat::clock::unix_now_ms();
                if let Some(me) = me.as_mut() {
                    let (frame, _) = me.compose(Kind::Text, "bad", None, now).map_err(|e| e.to_string())?;
                    let Frame::Post { mut signed } = frame else { continue };
                    let last = signed.len() - 1;
                    signed[last] ^= 1;
                    tls.send(&Frame::Post { signed }.encode().unwrap()).map_err(|e| e.to_string())?;
                }
                if let Some(sent) = &bad {
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--worker") {
        return spread::work().await;
    }
    let n = arg("--members", 1000);
    let workers = arg("--workers", 0);
    if workers > 0 {
        return spread::coordinate(n, workers).await;
    }
    let probes = arg("--probes", 50);
    let sustained_secs = arg("--sustained-secs", 0);
    let rate = arg("--rate", 100).max(1);
    // Member 0 is the probes' author and always reads.
    let slow = (n * arg("--slow-percent", 0) / 100).min(n.saturating_sub(2));
    let readers = n - slow;
    let verify = std::env::args().any(|a| a == "--verify");
    raise_open_files(n);
    if verify && n > MEMBERS_PER_ADDRESS {
        fail(&format!("--verify members all connect from 127.0.0.1: at most {MEMBERS_PER_ADDRESS}"));
    }
    let relays = arg("--relays", 1).max(1);
    let bus = if relays > 1 { Some(start_bus().await) } else { None };
    let mut servers: Vec<Server> = Vec::new();
    for r in 0..relays {
        let server = start_server(n.div_ceil(relays), r, bus.as_ref(), servers.first()).await;
        servers.push(server);
    }
    let server = &servers[0];
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let bus_pid = bus.as_ref().map(|b| b.child.id());
    let pem = std::fs::read_to_string(&server.ca).unwrap_or_else(|e| fail(&e.to_string()));
    let roots = RootStore::from_pem(&pem).unwrap_or_else(|e| fail(&e.to_string()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_all(&pids);
    let cpu_before = cpu_all(&pids);

    // The join storm: everyone at once.
    let epoch = Instant::now();
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut intents = HashMap::new();
    let start = Instant::now();
    for i in 0..n {
        // The slow members are the last ones.
        let server = &servers[i % relays];
        intents.insert(i, member(i, server, roots.clone(), epoch, reports_tx.clone(), i < readers, verify));
    }
    let mut seated = 0;
    while seated < n {
        match tokio::time::timeout(Duration::from_secs(120), reports.recv()).await {
            Ok(Some(Report::Seated)) => seated += 1,
            Ok(Some(Report::Latency(_))) => {}
            _ => fail(&format!("only {seated} of {n} members were seated")),
        }
    }
    let joined = start.elapsed();
    println!("members={n}");
    println!("store={}", if memory_only() { "memory" } else { "disk" });
    println!("relays={relays}");
    println!("members_check_signatures={}", if verify { "yes" } else { "no" });
    println!("join_all_seated_s={:.2}", joined.as_secs_f64());
    println!("join_handshakes_per_s={:.0}", n as f64 / joined.as_secs_f64());
    println!(
        "join_server_cpu_us_per_member={:.0}",
        (cpu_all(&pids) - cpu_before) as f64 * 10_000.0 / n as f64
    );

    // Idle: let the join's work settle, then read the server's memory.
    tokio::time::sleep(Duration::from_secs(arg("--settle-secs", 3) as u64)).await;
    let rss_idle = rss_all(&pids);
    println!("idle_server_rss_before_kib={rss_before}");
    println!("idle_server_rss_with_members_kib={rss_idle}");
    println!("idle_server_kib_per_member={:.2}", (rss_idle.saturating_sub(rss_before)) as f64 / n as f64);

    // The bad poster, if asked for: one more member, streaming forgeries.
    let bad_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bad_connections = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bad_poster = std::env::args().any(|a| a == "--bad-poster").then(|| {
        let (sent, connections) = (bad_sent.clone(), bad_connections.clone());
        let (port, roots) = (server.addr.port(), roots.clone());
        // One key, bound to its name on the first connection, kept after.
        let key = Ed25519Key::generate(&mut OsRng);
        tokio::spawn(async move {
            loop {
                connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let now = tlschat::clock::unix_now() - 60;
                let Ok(cert) = pki::self_signed_client(key.clone(), "forger", &mut OsRng, now) else {
                    return;
                };
                let mut config = ClientConfig::new(ServerTrust::Roots(roots.clone()));
                config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
                config.client_cert = Some(cert.into());
                config.emit_steps = false;
                let (_keep, mut intent_rx) = mpsc::channel(1);
                let (reports, _) = mpsc::unbounded_channel();
                let at = n + 1;
                let _ = light_member(
                    at,
                    port,
                    Arc::new(config),
                    key.clone(),
                    &mut intent_rx,
                    epoch,
                    reports,
                    true,
                    Some(sent.clone()),
                    None,
                )
                .await;
            }
        })
    });
    if bad_poster.is_some() {
        // Let it get going.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Fan-out: member 0 speaks, everyone else hears.
    let author = intents.get(&0).cloned().unwrap_or_else(|| fail("no member 0"));
    let mut latencies = Vec::with_capacity(probes * n);
    let cpu_fanout = cpu_all(&pids);
    let bus_cpu_fanout = bus_pid.map_or(0, cpu_ticks);
    for k in 0..probes {
        let sent = epoch.elapsed().as_nanos();
        let text = format!("probe {k} {sent}");
        if author.send(Intent::Say { kind: Kind::Text, text, to: None }).await.is_err() {
            fail("member 0 is gone");
        }
        let mut heard = 0;
        while heard < readers - 1 {
            match tokio::time::timeout(Duration::from_secs(30), reports.recv()).await {
                Ok(Some(Report::Latency(d))) => {
                    latencies.push(d);
                    heard += 1;
                }
                Ok(Some(_)) => {}
                _ => fail(&format!("probe {k}: only {heard} of {} members heard it", readers - 1)),
            }
        }
        // Below the per-member rate limit (5 a second after a burst of 20).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cpu_used = cpu_all(&pids) - cpu_fanout;
    let bus_cpu_used = bus_pid.map_or(0, cpu_ticks) - bus_cpu_fanout;
    latencies.sort_unstable();
    println!("fanout_probes={probes}");
    println!("fanout_deliveries={}", latencies.len());
    println!("fanout_p50_ms={:.2}", percentile(&latencies, 0.50));
    println!("fanout_p99_ms={:.2}", percentile(&latencies, 0.99));
    println!("fanout_max_ms={:.2}", percentile(&latencies, 1.0));
    // Clock ticks are 10 ms here (sysconf(_SC_CLK_TCK) = 100 on Linux).
    println!(
        "fanout_server_cpu_us_per_delivery={:.2}",
        cpu_used as f64 * 10_000.0 / latencies.len().max(1) as f64
    );
    if let Some(bus_pid) = bus_pid {
        // The bus's own work: one publish and one delivery to each relay per message.
        println!("bus_cpu_us_per_message={:.1}", bus_cpu_used as f64 * 10_000.0 / probes.max(1) as f64);
        println!("bus_rss_kib={}", rss_kib(bus_pid));
    }
    if let Some(task) = bad_poster {
        task.abort();
        println!("bad_posts_sent={}", bad_sent.load(std::sync::atomic::Ordering::Relaxed));
        println!("bad_poster_connections={}", bad_connections.load(std::sync::atomic::Ordering::Relaxed));
    }
    if sustained_secs > 0 {
        let bus_cpu_start = bus_pid.map_or(0, cpu_ticks);
        sustained(&intents, &mut reports, epoch, &pids, readers, sustained_secs, rate).await;
        if let Some(bus_pid) = bus_pid {
            let used = cpu_ticks(bus_pid) - bus_cpu_start;
            let messages = (sustained_secs * rate).max(1);
            println!("bus_sustained_cpu_us_per_message={:.1}", used as f64 * 10_000.0 / messages as f64);
        }
    }
    if slow > 0 {
        // The slow members' places: cut off, or still queued for.
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("slow_members={slow}");
        println!("slow_members_disconnected={}", TOO_SLOW.load(std::sync::atomic::Ordering::Relaxed));
        println!("slow_server_rss_after_kib={}", rss_all(&pids));
    }
    drop(intents);
    drop(servers);
    drop(bus);
}

/// What the readers got of the sustained load.
struct Tally {
    /// Per reader, per message: whether it arrived.
    got: Vec<Vec<bool>>,
    /// Per reader: the last room sequence number seen.
    last_seq: Vec<u64>,
    duplicated: usize,
    out_of_order: usize,
    latencies: Vec<Duration>,
}

impl Tally {
    fn record(&mut self, report: Report) {
        let Report::Load { member, k, room_seq, latency } = report else { return };
        let (Some(seen), Some(last)) =
            (self.got.get_mut(member).and_then(|g| g.get_mut(k)), self.last_seq.get_mut(member))
        else {
            return;
        };
        if std::mem::replace(seen, true) {
            self.duplicated += 1;
        }
        if room_seq <= *last {
            self.out_of_order += 1;
        }
        *last = room_seq;
        self.latencies.push(latency);
    }
}

/// The sustained load: `rate` messages a second for `secs` seconds, each
/// from the next member in turn (readers only), heard by every other
/// reader; then every reader's record is checked.
async fn sustained(
    intents: &HashMap<usize, mpsc::Sender<Intent>>,
    reports: &mut mpsc::UnboundedReceiver<Report>,
    epoch: Instant,
    pids: &[u32],
    readers: usize,
    secs: usize,
    rate: usize,
) {
    let total = secs * rate;
    let expected = total * (readers - 1);
    let mut tally = Tally {
        got: vec![vec![false; total]; readers],
        last_seq: vec![0; readers],
        duplicated: 0,
        out_of_order: 0,
        latencies: Vec::with_capacity(expected),
    };
    let cpu_start = cpu_all(pids);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    for k in 0..total {
        tick.tick().await;
        // Take what arrived meanwhile, so that nothing waits behind the sender.
        while let Ok(report) = reports.try_recv() {
            tally.record(report);
        }
        // Authors in turn; member 0 is the probes' author, so start at 1.
        let author = 1 + k % (readers - 1);
        let text = format!("load {k} {}", epoch.elapsed().as_nanos());
        let Some(to) = intents.get(&author) else { fail("an author is missing") };
        if to.send(Intent::Say { kind: Kind::Text, text, to: None }).await.is_err() {
            fail(&format!("member {author} is gone"));
        }
    }
    // Whatever is still on its way: until all is in, or 30 s of silence.
    while tally.latencies.len() - tally.duplicated < expected {
        match tokio::time::timeout(Duration::from_secs(30), reports.recv()).await {
            Ok(Some(report)) => tally.record(report),
            _ => break,
        }
    }
    let cpu_used = cpu_all(pids) - cpu_start;
    let Tally { duplicated, out_of_order, mut latencies, .. } = tally;
    let delivered = latencies.len();
    let lost = expected.saturating_sub(delivered - duplicated);
    latencies.sort_unstable();
    println!("sustained_secs={secs}");
    println!("sustained_rate_per_s={rate}");
    println!("sustained_messages={total}");
    println!("sustained_deliveries_expected={expected}");
    println!("sustained_deliveries={delivered}");
    println!("sustained_lost={lost}");
    println!("sustained_duplicated={duplicated}");
    println!("sustained_out_of_order={out_of_order}");
    println!("sustained_p50_ms={:.2}", percentile(&latencies, 0.50));
    println!("sustained_p99_ms={:.2}", percentile(&latencies, 0.99));
    println!("sustained_max_ms={:.2}", percentile(&latencies, 1.0));
    println!(
        "sustained_server_cpu_us_per_delivery={:.2}",
        cpu_used as f64 * 10_000.0 / delivered.max(1) as f64
    );
}
