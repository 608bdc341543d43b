//! The room bench over several load processes (`--workers W`): one
//! process holds at most its open-file limit of connections (20,000 here),
//! so a room of 50,000 members needs its members spread over several.
//!
//! The bench process then holds no member itself: it starts the relays
//! (and the nats-server of a cluster), then starts itself again W times as
//! workers (`--worker`), each holding a contiguous share of the members
//! (member i still joins relay i mod R and connects from the loopback
//! address of [`super::source_address`]). It drives them through their
//! stdin, one command a line:
//!
//! - `probe K`: the worker that holds member 0 says probe K;
//! - `load K M`: the worker that holds member M says load message K;
//! - `load_end TOTAL`: the sustained load is over, TOTAL messages were
//!   said: count what arrived, waiting until all is in or 30 s of silence;
//! - `report`: print the latency histograms.
//!
//! and reads their figures on their stdout, one line each: `seated N`
//! (members of the worker seated so far), `probe_done K` (every member of
//! the worker heard probe K), `load delivered=… expected=… duplicated=…
//! out_of_order=…`, `hist probe|load BUCKET:COUNT …` (latencies in
//! buckets of [`BUCKET_US`] µs, with `max_us=…`), `done`. Latencies are
//! measured against one clock: each worker's epoch is the bench's, given
//! as Unix nanoseconds (`--epoch-ns`), so a message sent by one worker and
//! heard by another is timed on the same scale.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use tlschat::chat::Kind;
use tlschat::net::Intent;
use tlschat::tls::RootStore;

use super::{
    Report, arg, cpu_all, cpu_ticks, fail, member_at, raise_open_files, rss_all, rss_kib, start_bus,
    start_server,
};

/// Members one worker holds at most: under the open-file limit of 20,000,
/// with room for what else the process opens.
pub const PER_WORKER: usize = 15_000;

/// Latency histogram resolution.
pub const BUCKET_US: u64 = 100;

/// How long a worker waits for the next report before it says what is missing.
const SILENCE: Duration = Duration::from_secs(30);

fn unix_ns() -> u128 {
    tlschat::clock::UnixTime::now().duration().as_nanos()
}

/// Latencies in buckets of [`BUCKET_US`], mergeable across workers.
#[derive(Default)]
struct Histogram {
    buckets: HashMap<u64, u64>,
    count: u64,
    max_us: u64,
}

impl Histogram {
    fn add(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        *self.buckets.entry(us / BUCKET_US).or_default() += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    fn line(&self, what: &str) -> String {
        let mut keys: Vec<_> = self.buckets.iter().collect();
        keys.sort_unstable();
        let body: Vec<String> = keys.iter().map(|(b, c)| format!("{b}:{c}")).collect();
        format!("hist {what} max_us={} {}", self.max_us, body.join(" "))
    }

    fn merge_line(&mut self, words: &[&str]) {
        for word in words {
            if let Some(max) = word.strip_prefix("max_us=") {
                self.max_us = self.max_us.max(max.parse().unwrap_or(0));
            } else if let Some((b, c)) = word.split_once(':') {
                let (b, c): (u64, u64) = (b.parse().unwrap_or(0), c.parse().unwrap_or(0));
                *self.buckets.entry(b).or_default() += c;
                self.count += c;
            }
        }
    }

    /// The p-th quantile in ms: the middle of its bucket (the maximum for p = 1).
    fn quantile_ms(&self, p: f64) -> f64 {
        if p >= 1.0 {
            return self.max_us as f64 / 1000.0;
        }
        let rank = ((self.count.saturating_sub(1)) as f64 * p).round() as u64;
        let mut keys: Vec<_> = self.buckets.iter().collect();
        keys.sort_unstable();
        let mut seen = 0;
        for (b, c) in keys {
            seen += c;
            if seen > rank {
                return (*b * BUCKET_US + BUCKET_US / 2) as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// One worker, as the bench process drives it.
struct Worker {
    child: std::process::Child,
    stdin: ChildStdin,
    first: usize,
    count: usize,
}

impl Worker {
    fn send(&mut self, line: &str) {
        if writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).is_err() {
            fail(&format!("worker of members {}.. is gone", self.first));
        }
    }

    fn holds(&self, i: usize) -> bool {
        (self.first..self.first + self.count).contains(&i)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench process: relays, bus, workers; prints the figures.
pub async fn coordinate(n: usize, workers: usize) {
    let relays = arg("--relays", 1).max(1);
    let probes = arg("--probes", 20);
    let sustained_secs = arg("--sustained-secs", 0);
    let rate = arg("--rate", 2).max(1);
    for refused in ["--verify", "--bad-poster", "--slow-percent"] {
        if std::env::args().any(|a| a == refused) {
            fail(&format!("{refused} is measured in one process: leave out --workers"));
        }
    }
    let workers = workers.max(n.div_ceil(PER_WORKER));
    let per_relay = n.div_ceil(relays);
    // Tens of thousands of handshakes at once on two cores: a member's
    // turn may come long after it connected, so the relays wait for it.
    let handshake_secs = arg("--handshake-timeout", 300) as u64;
    super::HANDSHAKE_SECS.store(handshake_secs, std::sync::atomic::Ordering::Relaxed);
    println!("relays_handshake_timeout_s={handshake_secs}");
    // Each relay inherits this process's limit.
    raise_open_files(per_relay);
    let bus = if relays > 1 { Some(start_bus().await) } else { None };
    let mut servers = Vec::new();
    for r in 0..relays {
        let server = start_server(per_relay, r, bus.as_ref(), servers.first()).await;
        servers.push(server);
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let bus_pid = bus.as_ref().map(|b| b.child.id());
    let ports: Vec<String> = servers.iter().map(|s| s.addr.port().to_string()).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect();
    let cpu_before = cpu_all(&pids);

    // The join storm: every worker at once, each connecting all its members at once.
    let epoch = unix_ns();
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&format!("the bench's own path: {e}")));
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<(usize, String)>();
    let share = n.div_ceil(workers);
    let mut pool = Vec::new();
    let start = Instant::now();
    for w in 0..workers {
        let first = w * share;
        let count = share.min(n - first.min(n));
        if count == 0 {
            break;
        }
        let mut child = Command::new(&exe)
            .args(["--worker", "--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--members", &n.to_string(), "--epoch-ns", &epoch.to_string()])
            .args(["--ports", &ports.join(",")])
            .arg("--ca")
            .arg(&servers[0].ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start a worker: {e}")));
        super::CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(child.id());
        let stdin = child.stdin.take().unwrap_or_else(|| fail("no worker stdin"));
        let stdout = child.stdout.take().unwrap_or_else(|| fail("no worker stdout"));
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((w, line)).is_err() {
                    break;
                }
            }
        });
        pool.push(Worker { child, stdin, first, count });
    }
    let mut seated = vec![0usize; pool.len()];
    let (mut retries, mut told) = (0usize, 0usize);
    while seated.iter().sum::<usize>() < n {
        match tokio::time::timeout(Duration::from_secs(120), lines.recv()).await {
            Ok(Some((w, line))) => {
                if let Some(k) = line.strip_prefix("seated ") {
                    seated[w] = k.parse().unwrap_or(0);
                }
                if let Some(k) = line.strip_prefix("join_retries ") {
                    retries += k.parse::<usize>().unwrap_or(0);
                    told += 1;
                }
            }
            _ => fail(&format!("only {} of {n} members were seated", seated.iter().sum::<usize>())),
        }
    }
    let joined = start.elapsed();
    // Each worker says how many connections it tried again right after its last seat.
    while told < pool.len() {
        match tokio::time::timeout(Duration::from_secs(10), lines.recv()).await {
            Ok(Some((_, line))) => {
                if let Some(k) = line.strip_prefix("join_retries ") {
                    retries += k.parse::<usize>().unwrap_or(0);
                    told += 1;
                }
            }
            _ => break,
        }
    }
    println!("members={n}");
    println!("join_connections_tried_again={retries}");
    println!("store={}", if super::memory_only() { "memory" } else { "disk" });
    println!("relays={relays}");
    println!("load_processes={}", pool.len());
    println!("members_check_signatures=no");
    println!("join_all_seated_s={:.2}", joined.as_secs_f64());
    println!("join_handshakes_per_s={:.0}", n as f64 / joined.as_secs_f64());
    println!(
        "join_server_cpu_us_per_member={:.0}",
        (cpu_all(&pids) - cpu_before) as f64 * 10_000.0 / n as f64
    );

    tokio::time::sleep(Duration::from_secs(arg("--settle-secs", 15) as u64)).await;
    let rss_idle: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect();
    println!("idle_server_rss_before_kib={}", rss_before.iter().sum::<u64>());
    println!("idle_server_rss_with_members_kib={}", rss_idle.iter().sum::<u64>());
    for r in 0..relays {
        // Relay r holds members r, r + R, r + 2R, ...
        let on = (n + relays - 1 - r) / relays;
        let per = rss_idle[r].saturating_sub(rss_before[r]) as f64 / on.max(1) as f64;
        println!("idle_relay{r}_members={on}");
        println!("idle_relay{r}_rss_kib={}", rss_idle[r]);
        println!("idle_relay{r}_kib_per_member={per:.2}");
    }
    let all_rss: u64 = rss_idle.iter().sum::<u64>().saturating_sub(rss_before.iter().sum());
    println!("idle_server_kib_per_member={:.2}", all_rss as f64 / n as f64);

    // Fan-out: member 0 speaks, every other member, in every worker, hears.
    let cpu_fanout = cpu_all(&pids);
    let bus_cpu_fanout = bus_pid.map_or(0, cpu_ticks);
    let author = pool.iter().position(|w| w.holds(0)).unwrap_or_else(|| fail("nobody holds member 0"));
    for k in 0..probes {
        pool[author].send(&format!("probe {k}"));
        let mut done = vec![false; pool.len()];
        while done.iter().any(|d| !d) {
            match tokio::time::timeout(Duration::from_secs(60), lines.recv()).await {
                Ok(Some((w, line))) => {
                    if line == format!("probe_done {k}") {
                        done[w] = true;
                    } else if line.starts_with("probe_missing") {
                        fail(&format!("worker {w}: {line}"));
                    }
                }
                _ => fail(&format!("probe {k}: not every member heard it")),
            }
        }
        // Below the author's rate limit (5 a second after a burst of 20).
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cpu_used = cpu_all(&pids) - cpu_fanout;
    let bus_cpu_used = bus_pid.map_or(0, cpu_ticks) - bus_cpu_fanout;

    let (mut load, mut load_hist) = ((0u64, 0u64, 0u64, 0u64), Histogram::default());
    let mut sustained_cpu = 0;
    let mut bus_sustained = 0;
    if sustained_secs > 0 {
        let total = sustained_secs * rate;
        let (cpu_start, bus_start) = (cpu_all(&pids), bus_pid.map_or(0, cpu_ticks));
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
        for k in 0..total {
            tick.tick().await;
            // Authors in turn; member 0 is the probes' author, so start at 1.
            let m = 1 + k % (n - 1);
            let w = pool.iter().position(|w| w.holds(m)).unwrap_or_else(|| fail("an author is missing"));
            pool[w].send(&format!("load {k} {m}"));
        }
        for w in &mut pool {
            w.send(&format!("load_end {total}"));
        }
        let mut reported = 0;
        while reported < pool.len() {
            match tokio::time::timeout(Duration::from_secs(120), lines.recv()).await {
                Ok(Some((_, line))) => {
                    if let Some(rest) = line.strip_prefix("load ") {
                        let field = |name: &str| -> u64 {
                            rest.split(' ')
                                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0)
                        };
                        load.0 += field("delivered");
                        load.1 += field("expected");
                        load.2 += field("duplicated");
                        load.3 += field("out_of_order");
                        reported += 1;
                    }
                }
                _ => fail("the workers did not report the sustained load"),
            }
        }
        sustained_cpu = cpu_all(&pids) - cpu_start;
        bus_sustained = bus_pid.map_or(0, cpu_ticks) - bus_start;
        println!("sustained_secs={sustained_secs}");
        println!("sustained_rate_per_s={rate}");
        println!("sustained_messages={total}");
    }

    // The histograms.
    for w in &mut pool {
        w.send("report");
    }
    let mut probe_hist = Histogram::default();
    let mut finished = 0;
    while finished < pool.len() {
        match tokio::time::timeout(Duration::from_secs(60), lines.recv()).await {
            Ok(Some((_, line))) => {
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["hist", "probe", rest @ ..] => probe_hist.merge_line(rest),
                    ["hist", "load", rest @ ..] => load_hist.merge_line(rest),
                    ["done"] => finished += 1,
                    _ => {}
                }
            }
            _ => fail("the workers did not report their latencies"),
        }
    }
    println!("fanout_probes={probes}");
    println!("fanout_deliveries={}", probe_hist.count);
    println!("fanout_deliveries_expected={}", probes * (n - 1));
    println!("fanout_p50_ms={:.2}", probe_hist.quantile_ms(0.50));
    println!("fanout_p99_ms={:.2}", probe_hist.quantile_ms(0.99));
    println!("fanout_max_ms={:.2}", probe_hist.quantile_ms(1.0));
    println!(
        "fanout_server_cpu_us_per_delivery={:.2}",
        cpu_used as f64 * 10_000.0 / probe_hist.count.max(1) as f64
    );
    if let Some(bus_pid) = bus_pid {
        println!("bus_cpu_us_per_message={:.1}", bus_cpu_used as f64 * 10_000.0 / probes.max(1) as f64);
        println!("bus_rss_kib={}", rss_kib(bus_pid));
    }
    if sustained_secs > 0 {
        let (delivered, expected, duplicated, out_of_order) = load;
        println!("sustained_deliveries_expected={expected}");
        println!("sustained_deliveries={delivered}");
        println!("sustained_lost={}", expected.saturating_sub(delivered - duplicated));
        println!("sustained_duplicated={duplicated}");
        println!("sustained_out_of_order={out_of_order}");
        println!("sustained_p50_ms={:.2}", load_hist.quantile_ms(0.50));
        println!("sustained_p99_ms={:.2}", load_hist.quantile_ms(0.99));
        println!("sustained_max_ms={:.2}", load_hist.quantile_ms(1.0));
        println!(
            "sustained_server_cpu_us_per_delivery={:.2}",
            sustained_cpu as f64 * 10_000.0 / delivered.max(1) as f64
        );
        if bus_pid.is_some() {
            let messages = (sustained_secs * rate).max(1);
            println!(
                "bus_sustained_cpu_us_per_message={:.1}",
                bus_sustained as f64 * 10_000.0 / messages as f64
            );
        }
    }
    println!("relays_rss_end_kib={}", rss_all(&pids));
    drop(pool);
    drop(servers);
    drop(bus);
}

/// A worker: members `first..first + count` of `members`, connected to
/// the relays on `ports` (member i to port i mod R); see the module.
pub async fn work() {
    let (first, count, n) = (arg("--first", 0), arg("--count", 0), arg("--members", 0));
    let epoch_ns: u128 = value("--epoch-ns").parse().unwrap_or_else(|_| fail("--epoch-ns takes a number"));
    let ports: Vec<u16> = value("--ports").split(',').filter_map(|p| p.parse().ok()).collect();
    if ports.is_empty() || count == 0 || n < 2 {
        fail("a worker needs --ports, --count and --members");
    }
    raise_open_files(count);
    let pem = std::fs::read_to_string(value("--ca")).unwrap_or_else(|e| fail(&e.to_string()));
    let roots = RootStore::from_pem(&pem).unwrap_or_else(|e| fail(&e.to_string()));
    // The bench's epoch on this process's monotonic clock.
    let behind = Duration::from_nanos(unix_ns().saturating_sub(epoch_ns) as u64);
    let epoch = Instant::now().checked_sub(behind).unwrap_or_else(Instant::now);
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut intents = HashMap::new();
    for i in first..first + count {
        let port = ports[i % ports.len()];
        intents.insert(i, member_at(i, port, roots.clone(), epoch, reports_tx.clone()));
    }
    drop(reports_tx);
    let out = |line: String| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    };
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let (mut seated, mut told) = (0usize, Instant::now());
    while seated < count {
        match tokio::time::timeout(SILENCE * 4, reports.recv()).await {
            Ok(Some(Report::Seated)) => {
                seated += 1;
                if seated == count || told.elapsed() > Duration::from_millis(500) {
                    out(format!("seated {seated}"));
                    told = Instant::now();
                }
            }
            Ok(Some(_)) => {}
            _ => fail(&format!("worker {first}: only {seated} of {count} seated")),
        }
    }
    out(format!("join_retries {}", super::JOIN_RETRIES.load(std::sync::atomic::Ordering::Relaxed)));
    // Member 0's worker hears each probe from one member fewer.
    let hearers = if (first..first + count).contains(&0) { count - 1 } else { count };
    let (mut probe_hist, mut load_hist) = (Histogram::default(), Histogram::default());
    let mut heard_probes = 0usize;
    // The sustained load: per member of this worker, which messages arrived.
    let mut got: Vec<Vec<bool>> = vec![Vec::new(); count];
    let mut last_seq = vec![0u64; count];
    let (mut delivered, mut duplicated, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut authored = 0u64;
    let mut load_end: Option<usize> = None;
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            report = reports.recv() => match report {
                Some(Report::Latency(d)) => {
                    probe_hist.add(d);
                    heard_probes += 1;
                    if hearers > 0 && heard_probes.is_multiple_of(hearers) {
                        out(format!("probe_done {}", heard_probes / hearers - 1));
                    }
                }
                Some(Report::Load { member, k, room_seq, latency }) => {
                    idle_since = Instant::now();
                    let at = member - first;
                    let seen = &mut got[at];
                    if seen.len() <= k {
                        seen.resize(k + 1, false);
                    }
                    if std::mem::replace(&mut seen[k], true) {
                        duplicated += 1;
                    }
                    if room_seq <= last_seq[at] {
                        out_of_order += 1;
                    }
                    last_seq[at] = room_seq;
                    delivered += 1;
                    load_hist.add(latency);
                }
                Some(Report::Seated) => {}
                None => fail("every member of a worker is gone"),
            },
            line = commands.next_line() => {
                let Ok(Some(line)) = line else { return };
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["probe", k] => {
                        let text = format!("probe {k} {}", epoch.elapsed().as_nanos());
                        if let Some(author) = intents.get(&0) {
                            let _ = author.send(Intent::Say { kind: Kind::Text, text, to: None }).await;
                        }
                        if hearers == 0 {
                            out(format!("probe_done {k}"));
                        }
                    }
                    ["load", k, m] => {
                        let m: usize = m.parse().unwrap_or(usize::MAX);
                        let text = format!("load {k} {}", epoch.elapsed().as_nanos());
                        if let Some(author) = intents.get(&m) {
                            authored += 1;
                            let _ = author.send(Intent::Say { kind: Kind::Text, text, to: None }).await;
                        }
                    }
                    ["load_end", total] => {
                        load_end = total.parse().ok();
                        idle_since = Instant::now();
                    }
                    ["report"] => {
                        out(probe_hist.line("probe"));
                        out(load_hist.line("load"));
                        out("done".to_owned());
                    }
                    _ => {}
                }
            },
            () = tokio::time::sleep(Duration::from_millis(200)), if load_end.is_some() => {}
        }
        if let Some(total) = load_end {
            // Each message is heard by every member here but its author.
            let expected = (total * count) as u64 - authored;
            if delivered - duplicated >= expected || idle_since.elapsed() > SILENCE {
                out(format!(
                    "load delivered={delivered} expected={expected} duplicated={duplicated} out_of_order={out_of_order}"
                ));
                load_end = None;
            }
        }
    }
}

/// The text after `name` on the command line.
fn value(name: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| fail(&format!("{name} is missing")))
}
