//! The `tlschat` binary: command line, setup and the headless log.
//!
//! Everything that talks to the network lives in the library
//! ([`tlschat::net`] over the [`tlschat::tls`] engine); this file parses the
//! command line, builds the TLS configuration (certificates, trust, suites,
//! key log), wires stdin and the [`NetEvent`] channel to the connection tasks
//! and prints what they report. It is the only home of `anyhow`: every
//! failure ends here as one line on stderr, `tlschat: <reason>`, and a
//! non-zero exit.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

use tlschat::keylog::KeyLogFile;
use tlschat::net::{self, Closer, Intent, NetEvent, Service};
use tlschat::pki::{self, RoomCa};
use tlschat::tls::{
    self, CipherSuite, ClientConfig, Direction, Ed25519Key, Fingerprint, KeyLog, OsRng, RootStore,
    ServerConfig, ServerName, ServerTrust,
};

/// Events waiting for the log; connections wait (not drop) when it is full.
const EVENT_QUEUE: usize = 256;
/// Lines typed ahead of a connection that cannot send yet.
const INPUT_QUEUE: usize = 64;
/// How long `listen` waits for its connections to close after Ctrl-C.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

#[derive(Parser)]
#[command(
    name = "tlschat",
    version,
    about = "A terminal secure messenger over a hand-written, watchable TLS 1.3"
)]
struct Cli {
    /// Plain lines on stdout instead of the full-screen interface (also
    /// chosen when stdin or stdout is not a terminal).
    #[arg(long, global = true)]
    headless: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a chat room (or, with --echo, an echo server)
    Listen(ListenArgs),
    /// Join a room: verify the server, then chat over stdin/stdout
    Connect(ConnectArgs),
}

#[derive(Args)]
struct ListenArgs {
    /// Where to listen: PORT, HOST:PORT or [IPv6]:PORT; port 0 picks a free port
    #[arg(default_value = "0.0.0.0:8443", value_name = "ADDR")]
    addr: String,

    /// Answer each application-data record with the same bytes (diagnostics, benchmarks)
    #[arg(long)]
    echo: bool,

    /// Serve this certificate chain (PEM, leaf first) instead of generating one
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,

    /// The PKCS#8 Ed25519 private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,

    /// Where to write the generated room CA (default: the data directory, listen-PORT-ca.pem)
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    ca_out: Option<PathBuf>,

    /// Also write the generated server certificate chain (PEM, leaf then CA) here
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    cert_out: Option<PathBuf>,

    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Args)]
struct ConnectArgs {
    /// The room: HOST:PORT or [IPv6]:PORT
    #[arg(value_name = "HOST:PORT")]
    target: String,

    /// Trust servers whose certificate chains to this CA (PEM), e.g. the file `listen` wrote
    #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
    ca: Option<PathBuf>,

    /// Trust exactly the server key with this fingerprint (64 hex digits, as `listen` prints)
    #[arg(long, value_name = "FP")]
    fingerprint: Option<String>,

    /// The name the certificate must be for (default: HOST)
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,

    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Args)]
struct TlsArgs {
    /// Append session secrets to FILE in the NSS key log format, for Wireshark (default: $SSLKEYLOGFILE)
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,

    /// Allow only this cipher suite; repeat for several, most preferred first (default: chacha20, aes128)
    #[arg(long = "suite", value_enum, value_name = "SUITE")]
    suites: Vec<Suite>,

    /// Abandon a handshake that has not completed after SECS seconds
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    handshake_timeout: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// TLS_CHACHA20_POLY1305_SHA256
    Chacha20,
    /// TLS_AES_128_GCM_SHA256
    Aes128,
}

impl TlsArgs {
    fn suites(&self) -> Vec<CipherSuite> {
        if self.suites.is_empty() {
            return tls::SUPPORTED_SUITES.to_vec();
        }
        let mut suites = Vec::new();
        for suite in &self.suites {
            let suite = match suite {
                Suite::Chacha20 => CipherSuite::TLS_CHACHA20_POLY1305_SHA256,
                Suite::Aes128 => CipherSuite::TLS_AES_128_GCM_SHA256,
            };
            if !suites.contains(&suite) {
                suites.push(suite);
            }
        }
        suites
    }

    /// The key log: `--keylog`, else a non-empty `SSLKEYLOGFILE`.
    fn keylog(&self) -> anyhow::Result<Option<Arc<KeyLogFile>>> {
        let path = self
            .keylog
            .clone()
            .or_else(|| std::env::var_os("SSLKEYLOGFILE").filter(|p| !p.is_empty()).map(PathBuf::from));
        let Some(path) = path else { return Ok(None) };
        let file =
            KeyLogFile::open(&path).with_context(|| format!("cannot open the key log {}", path.display()))?;
        Ok(Some(Arc::new(file)))
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let tui = tlschat::tui::wanted(cli.headless);
    let result = match cli.command {
        Command::Listen(args) => listen(args, tui).await,
        Command::Connect(args) => connect(args, tui).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the causes on the same line: one line, as promised.
            eprintln!("tlschat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one line of the headless log. A closed stdout (`tlschat … | head`)
/// must not crash the program, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stdout().lock(), $($arg)*);
    }};
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------
// connect

async fn connect(args: ConnectArgs, tui: bool) -> anyhow::Result<()> {
    let (host, port) = split_host_port(&args.target)?;
    let name_text = args.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::parse(name_text).context("--server-name")?;
    let trust = match (&args.ca, &args.fingerprint) {
        (Some(path), _) => {
            let pem = read_text(path)?;
            let roots = RootStore::from_pem(&pem)
                .with_context(|| format!("{} is not a usable CA", path.display()))?;
            ServerTrust::Roots(roots)
        }
        (None, Some(fp)) => ServerTrust::Fingerprint(
            Fingerprint::parse(fp).with_context(|| format!("{fp:?} is not a fingerprint (64 hex digits)"))?,
        ),
        (None, None) => bail!(
            "connect needs --ca FILE or --fingerprint FP to know it reaches the right server (`tlschat listen` prints both)"
        ),
    };
    let keylog = args.tls.keylog()?;
    let mut config = ClientConfig::new(trust);
    config.suites = args.tls.suites();
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.keylog = keylog.clone().map(|k| k as Arc<dyn KeyLog>);

    let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
    let (intent_tx, intent_rx) = mpsc::channel(INPUT_QUEUE);
    if tui {
        let session = net::connect(
            host,
            port,
            server_name,
            Arc::new(config),
            args.tls.handshake_timeout,
            intent_rx,
            event_tx,
        );
        let failure = tlschat::tui::run_client(args.target.clone(), session, event_rx, intent_tx).await?;
        warn_keylog(keylog.as_deref());
        return failure.map_or(Ok(()), |reason| Err(anyhow::anyhow!(reason)));
    }
    // Weak, so that the end of stdin (its reader dropping the last sender) still closes.
    let interrupt = intent_tx.downgrade();
    // Each line typed becomes one record; end of input closes the connection.
    read_stdin_lines(move |line| intent_tx.blocking_send(Intent::Send(line)).is_ok());
    // Ctrl-C closes politely, with close_notify (once the handshake is
    // done); a second Ctrl-C does not wait for that.
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        if let Some(intents) = interrupt.upgrade() {
            let _ = intents.try_send(Intent::Close);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });

    let session = net::connect(
        host,
        port,
        server_name,
        Arc::new(config),
        args.tls.handshake_timeout,
        intent_rx,
        event_tx,
    );
    let log = async {
        while let Some(event) = event_rx.recv().await {
            log_client(event);
        }
    };
    let (result, ()) = tokio::join!(session, log);
    warn_keylog(keylog.as_deref());
    Ok(result?)
}

fn log_client(event: NetEvent) {
    match event {
        NetEvent::Step { step, .. } => say!("[tls] {step}"),
        NetEvent::Connected { summary, .. } => {
            let peer = match &summary.peer {
                Some(cert) => format!("peer {} (fingerprint {})", cert.subject, cert.fingerprint.short()),
                None => "no peer certificate".to_owned(),
            };
            say!(
                "[tls] connected: {}, {}, {}, {peer}",
                summary.suite,
                summary.group,
                summary.signature_scheme
            );
        }
        NetEvent::KeyUpdated { direction, update_requested, generation, .. } => {
            say!("[tls] {}", key_update_line(direction, update_requested, generation));
        }
        NetEvent::AlertSent { alert, .. } => say!("[tls] sent alert {alert}"),
        NetEvent::Text { line, .. } => say!("{line}"),
        NetEvent::Closed { by: Closer::Peer, .. } => {
            say!("[tls] the server closed the connection (close_notify)")
        }
        NetEvent::Closed { by: Closer::Us, .. } => say!("[tls] closed (close_notify)"),
        // A client's failure is connect's result, printed by main.
        _ => {}
    }
}

fn key_update_line(direction: Direction, update_requested: bool, generation: u64) -> String {
    let (whose, verb) = match direction {
        Direction::Sent => ("our sending", "sent"),
        Direction::Received => ("the peer's", "received"),
    };
    let asked = if update_requested { ", update requested" } else { "" };
    format!("KeyUpdate {verb}{asked}: {whose} keys are now generation {generation}")
}

/// Splits `HOST:PORT` or `[IPv6]:PORT`; the host comes back without brackets.
fn split_host_port(target: &str) -> anyhow::Result<(&str, u16)> {
    let bad = || anyhow::anyhow!("{target:?} is not HOST:PORT (IPv6 addresses go in brackets: [::1]:8443)");
    let (host, port) = target.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port.parse().map_err(|_| bad())?))
}

// ---------------------------------------------------------------------------
// listen

async fn listen(args: ListenArgs, tui: bool) -> anyhow::Result<()> {
    let (listener, host) = bind(&args.addr).await?;
    let local = listener.local_addr()?;
    say!("listening on {local}");
    // How clients should name this server: the host given, else localhost.
    let join_host = match &host {
        Some(ServerName::Ip(IpAddr::V6(ip))) => format!("[{ip}]"),
        Some(name) => name.to_string(),
        None => "localhost".to_owned(),
    };
    let join_addr = format!("{join_host}:{}", local.port());

    let (certified, ca_path) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let certified = pki::load_certified_key(&read_text(cert)?, &read_text(key)?)
                .with_context(|| format!("cannot serve {} with {}", cert.display(), key.display()))?;
            (certified, None)
        }
        _ => {
            let (certified, path) = generate_room(&args, host.as_ref(), local.port())?;
            (certified, Some(path))
        }
    };
    let fingerprint = certified.fingerprint();
    let mut about = format!("listening on {local}\n");
    if let Some(path) = &ca_path {
        say!("ca: {}", path.display());
        say!("join: tlschat connect {join_addr} --ca {}", path.display());
        about += &format!("join: tlschat connect {join_addr} --ca {}\n", path.display());
    }
    say!("fingerprint: {fingerprint}");
    say!("  or join: tlschat connect {join_addr} --fingerprint {}", tls::crypto::hex(&fingerprint.0));
    about += &format!("server key fingerprint: {fingerprint}\n");

    let keylog = args.tls.keylog()?;
    let mut config = ServerConfig::new(certified.into());
    config.suites = args.tls.suites();
    config.keylog = keylog.clone().map(|k| k as Arc<dyn KeyLog>);
    // The TUI serves a room; `--echo` stays headless.
    let mut tui_room = None;
    let service = if args.echo {
        // The benchmark target: no ALPN, no step events to format.
        config.emit_steps = false;
        Service::Echo
    } else {
        config.alpn = vec![tls::ALPN_TLSCHAT.to_vec(), tls::ALPN_HTTP11.to_vec()];
        let (lines, _) = broadcast::channel(INPUT_QUEUE);
        let room = lines.clone();
        if tui {
            tui_room = Some((lines.clone(), about.clone()));
        } else {
            read_stdin_lines(move |line| {
                if room.send(Intent::Send(line)).is_err() {
                    say!("(nobody is connected: line not sent)");
                }
                true
            });
        }
        Service::Room { lines, about: about.into() }
    };

    let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server = net::Server {
        listener,
        config: Arc::new(config),
        service,
        handshake_timeout: args.tls.handshake_timeout,
        events: event_tx,
        shutdown: shutdown_rx,
    };
    tokio::spawn(server.run());
    if let Some((lines, about)) = tui_room {
        tlschat::tui::run_room(local.to_string(), &about, event_rx, lines, shutdown_tx).await?;
        warn_keylog(keylog.as_deref());
        return Ok(());
    }

    loop {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(event) => log_server(event),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                say!("closing the room");
                let _ = shutdown_tx.send(true);
                if !args.echo {
                    // Let each connection send close_notify and hear the answer.
                    let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
                        while let Some(event) = event_rx.recv().await {
                            log_server(event);
                        }
                    })
                    .await;
                }
                break;
            }
        }
    }
    warn_keylog(keylog.as_deref());
    Ok(())
}

/// Binds `PORT`, `HOST:PORT` or `[IPv6]:PORT`. Returns the host as a name
/// for the certificate, unless it is the unspecified address.
async fn bind(addr: &str) -> anyhow::Result<(TcpListener, Option<ServerName>)> {
    let (host, target) = if let Ok(port) = addr.parse::<u16>() {
        (None, SocketAddr::from(([0, 0, 0, 0], port)).to_string())
    } else if let Ok(socket) = addr.parse::<SocketAddr>() {
        (Some(ServerName::Ip(socket.ip())), addr.to_owned())
    } else {
        let bad = || anyhow::anyhow!("cannot listen on {addr:?}: expected PORT, HOST:PORT or [IPv6]:PORT");
        let (host, _) = split_host_port(addr).map_err(|_| bad())?;
        (Some(ServerName::parse(host).map_err(|_| bad())?), addr.to_owned())
    };
    let listener = TcpListener::bind(&target).await.with_context(|| format!("cannot listen on {target}"))?;
    let host = host.filter(|h| !matches!(h, ServerName::Ip(ip) if ip.is_unspecified()));
    Ok((listener, host))
}

/// Makes a room CA and a server certificate for localhost, 127.0.0.1, ::1
/// and `host`, and writes the CA where clients can pick it up.
fn generate_room(
    args: &ListenArgs,
    host: Option<&ServerName>,
    port: u16,
) -> anyhow::Result<(pki::CertifiedKey, PathBuf)> {
    let now = unix_now();
    let mut rng = OsRng;
    let ca = RoomCa::generate(&format!("tlschat room CA (port {port})"), &mut rng, now)?;
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = host.map(ToString::to_string).filter(|h| !names.contains(h)) {
        names.push(host);
    }
    let certified = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, now)?;

    let ca_path = match &args.ca_out {
        Some(path) => path.clone(),
        None => directories::ProjectDirs::from("", "", "tlschat")
            .context("no home directory to keep the room CA in: give --ca-out FILE")?
            .data_dir()
            .join(format!("listen-{port}-ca.pem")),
    };
    write_public(&ca_path, &ca.cert_pem)?;
    if let Some(path) = &args.cert_out {
        write_public(path, &certified.chain_pem)?;
    }
    Ok((certified, ca_path))
}

fn log_server(event: NetEvent) {
    match event {
        NetEvent::Step { peer, step } => say!("[tls {peer}] {step}"),
        NetEvent::Connected { peer, summary } => {
            let alpn = summary
                .alpn
                .as_deref()
                .map(|p| format!(", alpn {}", String::from_utf8_lossy(p)))
                .unwrap_or_default();
            let retried = if summary.retried { ", after HelloRetryRequest" } else { "" };
            say!(
                "[tls {peer}] connected: {}, {}, {}{alpn}{retried}",
                summary.suite,
                summary.group,
                summary.signature_scheme
            );
        }
        NetEvent::KeyUpdated { peer, direction, update_requested, generation } => {
            say!("[tls {peer}] {}", key_update_line(direction, update_requested, generation));
        }
        NetEvent::AlertSent { peer, alert } => say!("[tls {peer}] sent alert {alert}"),
        NetEvent::Text { peer, line } => say!("[{peer}] {line}"),
        NetEvent::StatusPage { peer } => say!("[{peer}] sent the HTTP status page"),
        NetEvent::Closed { peer, by: Closer::Peer } => say!("[{peer}] left (close_notify)"),
        NetEvent::Closed { peer, by: Closer::Us } => say!("[{peer}] closed (close_notify)"),
        NetEvent::Failed { peer, during_handshake: true, error } => {
            say!("[{peer}] handshake failed: {error}")
        }
        NetEvent::Failed { peer, during_handshake: false, error } => {
            say!("[{peer}] connection failed: {error}")
        }
        NetEvent::AcceptFailed { error } => say!("accept failed: {error}"),
        // NetEvent may grow; a new kind shows up in the log rather than vanishing.
        other => say!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// helpers

/// Reads stdin line by line on a thread of its own and gives each line,
/// with its newline, to `deliver` until it returns false or input ends.
///
/// A plain thread rather than `tokio::io::stdin`: tokio's stdin blocks a
/// runtime thread in a read that cannot be cancelled, which would keep the
/// program from exiting while the terminal is idle.
fn read_stdin_lines(mut deliver: impl FnMut(Arc<[u8]>) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Whatever the terminal ended the line with, send one "\n".
            while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                line.pop();
            }
            line.push(b'\n');
            if !deliver(Arc::from(line.as_slice())) {
                return;
            }
        }
    });
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a certificate file others may read (0644), creating its directory
/// for the owner only (0700): keys may later live beside it.
fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).with_context(context)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path).and_then(|mut f| f.write_all(contents.as_bytes())).with_context(context)
}

/// Tells the user if the key log stopped being written: a capture would then
/// not decrypt.
fn warn_keylog(keylog: Option<&KeyLogFile>) {
    let Some(log) = keylog else { return };
    if let Some(error) = log.take_error() {
        eprintln!("tlschat: warning: the key log {} is incomplete: {error}", log.path().display());
    }
}
