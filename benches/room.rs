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
//!   author's send to each member's receipt (its signature checked), over
//!   `probes` messages: p50, p99 and max in milliseconds.
//!
//! Linux only (it reads `/proc/PID/status`); the open-file limit must
//! allow twice the member count (this process and the server).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use tlschat::chat::{ChatEvent, Kind};
use tlschat::net::{self, Intent, NetEvent};
use tlschat::pki;
use tlschat::tls::{self, ClientConfig, Ed25519Key, OsRng, RootStore, ServerName, ServerTrust};

/// The server's pid, so that a failure does not leave it running.
static SERVER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

fn fail(why: &str) -> ! {
    eprintln!("room bench: {why}");
    if let Some(pid) = SERVER.get() {
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

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| fail("cannot read VmRSS (Linux only)"))
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

async fn start_server(members: usize) -> Server {
    let home = std::env::temp_dir().join(format!("tlschat-room-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlschat"))
        .args(["listen", "127.0.0.1:0", "--headless", "--history", "0"])
        .args(["--max-members", &members.to_string(), "--new-names-per-address", &members.to_string()])
        // Every member comes from 127.0.0.1, all at once: all are unverified
        // while their handshakes run.
        .args(["--max-unverified-per-address", &members.to_string()])
        .env("TLSCHAT_HOME", &home)
        .env_remove("SSLKEYLOGFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start tlschat listen: {e}")));
    let _ = SERVER.set(child.id());
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (addr, ca) = (addr.unwrap_or_else(|| fail("no address")), ca.unwrap_or_else(|| fail("no CA")));
    Server { child, addr, ca, home }
}

/// What a member reports to the bench.
enum Report {
    Seated,
    Latency(Duration),
}

/// Connects member `i`; it reports when seated and the latency of every probe it receives.
fn member(
    i: usize,
    server: &Server,
    roots: RootStore,
    epoch: Instant,
    reports: mpsc::UnboundedSender<Report>,
) -> mpsc::Sender<Intent> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) - 60;
    let cert = pki::self_signed_client(Ed25519Key::generate(&mut OsRng), &format!("m{i}"), &mut OsRng, now)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.client_cert = Some(cert.into());
    config.emit_steps = false;
    let (intents, intent_rx) = mpsc::channel(16);
    let (events_tx, mut events) = mpsc::channel(64);
    let port = server.addr.port();
    tokio::spawn(async move {
        let name = ServerName::parse("localhost").unwrap_or_else(|e| fail(&e.to_string()));
        let limit = Duration::from_secs(120);
        if let Err(e) =
            net::connect("127.0.0.1", port, name, Arc::new(config), limit, intent_rx, events_tx, None).await
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
                }
                ChatEvent::Message(m) if m.text.starts_with("probe ") => {
                    let sent: u64 = m.text.rsplit(' ').next().and_then(|t| t.parse().ok()).unwrap_or(0);
                    let at = epoch.elapsed().as_nanos() as u64;
                    let _ = reports.send(Report::Latency(Duration::from_nanos(at.saturating_sub(sent))));
                }
                _ => {}
            }
        }
    });
    intents
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
    let n = arg("--members", 1000);
    let probes = arg("--probes", 50);
    let server = start_server(n).await;
    let pid = server.child.id();
    let pem = std::fs::read_to_string(&server.ca).unwrap_or_else(|e| fail(&e.to_string()));
    let roots = RootStore::from_pem(&pem).unwrap_or_else(|e| fail(&e.to_string()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);
    let cpu_before = cpu_ticks(pid);

    // The join storm: everyone at once.
    let epoch = Instant::now();
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut intents = HashMap::new();
    let start = Instant::now();
    for i in 0..n {
        intents.insert(i, member(i, &server, roots.clone(), epoch, reports_tx.clone()));
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
    println!("join_all_seated_s={:.2}", joined.as_secs_f64());
    println!("join_handshakes_per_s={:.0}", n as f64 / joined.as_secs_f64());
    println!(
        "join_server_cpu_us_per_member={:.0}",
        (cpu_ticks(pid) - cpu_before) as f64 * 10_000.0 / n as f64
    );

    // Idle: let the join's work settle, then read the server's memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss_kib(pid);
    println!("idle_server_rss_before_kib={rss_before}");
    println!("idle_server_rss_with_members_kib={rss_idle}");
    println!("idle_server_kib_per_member={:.2}", (rss_idle.saturating_sub(rss_before)) as f64 / n as f64);

    // Fan-out: member 0 speaks, everyone else hears.
    let author = intents.get(&0).cloned().unwrap_or_else(|| fail("no member 0"));
    let mut latencies = Vec::with_capacity(probes * n);
    let cpu_fanout = cpu_ticks(pid);
    for k in 0..probes {
        let sent = epoch.elapsed().as_nanos();
        let text = format!("probe {k} {sent}");
        if author.send(Intent::Say { kind: Kind::Text, text, to: None }).await.is_err() {
            fail("member 0 is gone");
        }
        let mut heard = 0;
        while heard < n - 1 {
            match tokio::time::timeout(Duration::from_secs(30), reports.recv()).await {
                Ok(Some(Report::Latency(d))) => {
                    latencies.push(d);
                    heard += 1;
                }
                Ok(Some(_)) => {}
                _ => fail(&format!("probe {k}: only {heard} of {} members heard it", n - 1)),
            }
        }
        // Below the per-member rate limit (5 a second after a burst of 20).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cpu_used = cpu_ticks(pid) - cpu_fanout;
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
    drop(intents);
    drop(server);
}
