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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use tlschat::app::Command as Typed;
use tlschat::chat::relay;
use tlschat::home::Home;
use tlschat::identity::{IdentityStore, Loaded};
use tlschat::keylog::KeyLogFile;
use tlschat::logfile::{self, LogFile};
use tlschat::net::{self, Intent, NetError, NetEvent, Service};
use tlschat::pki::{self, RoomCa};
use tlschat::report;
use tlschat::room::{Members, RoomStore};
use tlschat::tls::{
    self, CipherSuite, ClientAuth, ClientConfig, ClientTrust, Ed25519Key, Fingerprint, KeyLog, OsRng,
    RootStore, ServerConfig, ServerName, ServerTrust,
};
use tlschat::trust::{self, FirstContact, KnownRooms, Plan, TrustError};

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

    /// Headless, one JSON object per event per line (see the README for the schema)
    #[arg(long, global = true)]
    json: bool,

    /// Do not ring the terminal bell when a line mentions you
    #[arg(long, global = true)]
    no_bell: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a chat room (or, with --echo, an echo server)
    Listen(ListenArgs),
    /// Join a room: verify the server, then chat
    Connect(ConnectArgs),
    /// The one-command tour: a room on a loopback port, a bot in it that answers, and you joined
    Demo(DemoArgs),
    /// Show your identity (display name and key fingerprint); made on first use
    Id(IdArgs),
    /// Show or forget the pinned keys of the rooms you joined
    Trust(TrustArgs),
}

#[derive(Args)]
struct IdArgs {
    /// Replace your key with a new one (asks first; rooms will refuse the new key under your old name)
    #[arg(long)]
    new: bool,

    /// With --new: do not ask (required without a terminal)
    #[arg(long, requires = "new")]
    yes: bool,

    /// Set your display name (1-32 ASCII letters, digits, '.', '_', '-')
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Args)]
struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Subcommand)]
enum TrustCommand {
    /// List the pinned rooms and their key fingerprints
    List,
    /// Forget the pinned key of a room (after its key really changed)
    Forget {
        /// The room, as you connect to it
        #[arg(value_name = "HOST:PORT")]
        room: String,
    },
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

    /// Also copy the room CA certificate here (it lives in the room's data directory)
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    ca_out: Option<PathBuf>,

    /// Refuse clients without an identity certificate (openssl s_client, curl) instead of admitting them as guests
    #[arg(long, conflicts_with = "echo")]
    require_identity: bool,

    /// Also write the generated server certificate chain (PEM, leaf then CA) here
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    cert_out: Option<PathBuf>,

    /// Messages replayed to a member who joins
    #[arg(long, value_name = "N", default_value = "100")]
    history: usize,

    /// Members at most (the host not counted); more are refused with a reason
    #[arg(long, value_name = "N", default_value = "1000")]
    max_members: usize,

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

    /// Trust exactly the server key with this fingerprint (64 hex digits, as `listen` prints), and pin it
    #[arg(long, value_name = "FP")]
    fingerprint: Option<String>,

    /// On first contact (no pin, no --ca, no --fingerprint), trust and pin the key the server shows
    #[arg(long, conflicts_with = "ca")]
    trust_on_first_use: bool,

    /// The name the certificate must be for (default: HOST)
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,

    #[command(flatten)]
    pace: PaceArgs,

    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    pace: PaceArgs,

    #[command(flatten)]
    tls: TlsArgs,
}

/// The teaching pace of a client's full-screen interface.
#[derive(Args)]
struct PaceArgs {
    /// Show the handshake panel's messages MS milliseconds apart (only the display waits; demo: 250)
    #[arg(long, value_name = "MS")]
    step_delay: Option<u64>,

    /// Hold each of the client's handshake flights until Space is pressed (full-screen only)
    #[arg(long)]
    step: bool,
}

impl PaceArgs {
    fn step_delay(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.step_delay.unwrap_or(default_ms))
    }
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
    let tui = tlschat::tui::wanted(cli.headless || cli.json);
    let out = Output { tui, json: cli.json, bell: !cli.no_bell };
    let result = match cli.command {
        Command::Listen(args) => listen(args, out).await,
        Command::Connect(args) => connect(args, out).await,
        Command::Demo(args) => demo(args, out).await,
        Command::Id(args) => id(args, tui),
        Command::Trust(args) => trust_command(args),
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

/// How a command shows what happens: the TUI, plain lines, or JSON lines.
#[derive(Clone, Copy)]
struct Output {
    tui: bool,
    json: bool,
    bell: bool,
}

impl Output {
    /// Prints an event's lines (headless only): `lines` makes the plain ones.
    fn print(self, event: &NetEvent, lines: fn(&NetEvent) -> Vec<String>) {
        if self.json {
            if let Some(value) = report::json(event) {
                say!("{value}");
            }
        } else {
            for line in lines(event) {
                say!("{line}");
            }
        }
    }

    /// Prints a line of setup information: as `{"type":"info"}` in JSON.
    fn info(self, text: &str) {
        if self.json {
            say!("{}", serde_json::json!({"type": "info", "text": text}));
        } else {
            say!("{text}");
        }
    }
}

/// What a typed line (stdin or the TUI's) asks of a connection, if anything.
fn intent_of(line: &str) -> Option<Intent> {
    match Typed::parse(line) {
        Typed::Say { kind, text, to } => Some(Intent::Say { kind, text, to }),
        Typed::Who => Some(Intent::Who),
        Typed::Rekey => Some(Intent::KeyUpdate { request_peer: true }),
        Typed::Quit => Some(Intent::Close),
        Typed::Empty | Typed::Help => None,
        Typed::Wrong(why) => {
            eprintln!("tlschat: {why}");
            None
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------
// connect

async fn connect(args: ConnectArgs, out: Output) -> anyhow::Result<()> {
    let tui = out.tui;
    let (host, port) = split_host_port(&args.target)?;
    let name_text = args.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::parse(name_text).context("--server-name")?;
    let home = Home::locate()?;
    // Trust in the server: --ca, else --fingerprint, else the pin, else first contact (see `trust`).
    let ca = match &args.ca {
        Some(path) => {
            let pem = read_text(path)?;
            Some(
                RootStore::from_pem(&pem)
                    .with_context(|| format!("{} is not a usable CA", path.display()))?,
            )
        }
        None => None,
    };
    let fingerprint = match &args.fingerprint {
        Some(fp) => Some(
            Fingerprint::parse(fp).with_context(|| format!("{fp:?} is not a fingerprint (64 hex digits)"))?,
        ),
        None => None,
    };
    // --ca does not use pins: a damaged pins file must not stand in its way.
    let known =
        if ca.is_some() { KnownRooms::none(home.pins_file()) } else { KnownRooms::load(home.pins_file())? };
    let first_contact = match (args.trust_on_first_use, tui) {
        (true, _) => FirstContact::Trust,
        (false, true) => FirstContact::Ask,
        (false, false) => FirstContact::Refuse,
    };
    let plan = Plan::decide(trust::room_id(host, port), ca, fingerprint, &known, first_contact)?;
    // Our identity answers the room's CertificateRequest.
    let identity = load_identity(&home, !tui)?;
    let keylog = args.tls.keylog()?;
    let mut config = ClientConfig::new(plan.trust.clone());
    config.suites = args.tls.suites();
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.keylog = keylog.clone().map(|k| k as Arc<dyn KeyLog>);
    config.client_cert = Some(identity.certificate(&mut OsRng, unix_now())?.into());

    let dial = Dial {
        target: &args.target,
        host,
        port,
        server_name,
        config,
        handshake_timeout: args.tls.handshake_timeout,
        plan: Some(plan),
        identity: Some(identity.name().to_owned()),
    };
    let result = join(dial, args.pace.step_delay(0), args.pace.step, out).await;
    warn_keylog(keylog.as_deref());
    result
}

/// The user's identity, made on first use (and said so when `say` is set:
/// in the TUI the screen is not ours to print on).
fn load_identity(home: &Home, say: bool) -> anyhow::Result<tlschat::identity::Identity> {
    let store = IdentityStore::new(home.identity_dir());
    let (identity, loaded) = store.load_or_create(&mut OsRng, login_name().as_deref(), None)?;
    if loaded == Loaded::Created && say {
        say!(
            "made your identity {} (safety number {}) in {}; `tlschat id --name NAME` renames it",
            identity.name(),
            identity.fingerprint().short(),
            store.key_path().display()
        );
    }
    Ok(identity)
}

/// A client connection to make.
struct Dial<'a> {
    /// The server as the user named it, for the status bar.
    target: &'a str,
    host: &'a str,
    port: u16,
    server_name: ServerName,
    config: ClientConfig,
    handshake_timeout: Duration,
    /// Where trust in the server came from (none for the demo's own room).
    plan: Option<Plan>,
    /// Our display name, to explain a room's refusal.
    identity: Option<String>,
}

/// What a failed connection means to the user: a trust error (a changed
/// key, a refused name) where it is one.
fn explain(plan: Option<&Plan>, identity: Option<&str>, error: NetError) -> anyhow::Error {
    match plan.and_then(|p| p.explain(&error, identity)) {
        Some(reason) => reason.into(),
        None => error.into(),
    }
}

/// The trust gate's side of a client (see `tlschat::trust::gate`), when
/// the plan needs one: first contact, or a --fingerprint key to pin.
struct Guard {
    /// First-contact questions for the TUI's dialog.
    questions: Option<mpsc::Receiver<trust::Question>>,
    /// The gate's verdict, once the connection is over.
    verdict: tokio::task::JoinHandle<Result<(), TrustError>>,
}

/// Puts the gate between the connection (`events`, `intents`) and its user,
/// and returns the user's ends of both.
fn guard(
    plan: Option<&Plan>,
    events: mpsc::Receiver<NetEvent>,
    intents: mpsc::Sender<Intent>,
    tui: bool,
) -> (mpsc::Receiver<NetEvent>, mpsc::Sender<Intent>, Option<Guard>) {
    let Some(plan) = plan.filter(|p| p.needs_gate()) else { return (events, intents, None) };
    let (ui_events, events_for_ui) = mpsc::channel(EVENT_QUEUE);
    let (intents_from_ui, ui_intents) = mpsc::channel(INPUT_QUEUE);
    let (questions_tx, questions) = if tui {
        let (tx, rx) = mpsc::channel(1);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let verdict =
        tokio::spawn(trust::gate(plan.clone(), events, ui_events, ui_intents, intents, questions_tx));
    (events_for_ui, intents_from_ui, Some(Guard { questions, verdict }))
}

/// The gate's verdict: the reason the server was not trusted, if it was not.
async fn verdict(guard: Option<Guard>) -> anyhow::Result<()> {
    match guard {
        Some(guard) => Ok(guard.verdict.await.context("the trust gate stopped")??),
        None => Ok(()),
    }
}

/// Runs a client connection: in the TUI, or headless with each line of
/// stdin sent and every event printed.
async fn join(dial: Dial<'_>, step_delay: Duration, step: bool, out: Output) -> anyhow::Result<()> {
    let tui = out.tui;
    let Dial { target, host, port, server_name, config, handshake_timeout, plan, identity } = dial;
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let (intent_tx, intent_rx) = mpsc::channel(INPUT_QUEUE);
    // Until the server's key is trusted, lines wait at the gate.
    let (mut event_rx, intent_tx, mut guard) = guard(plan.as_ref(), event_rx, intent_tx, tui);
    let explain = |e| explain(plan.as_ref(), identity.as_deref(), e);
    if tui {
        let (pace, gate) = tlschat::tui::Pace::new(step_delay, step);
        let session = net::connect(
            host,
            port,
            server_name,
            Arc::new(config),
            handshake_timeout,
            intent_rx,
            event_tx,
            gate,
        );
        let session = async { session.await.map_err(|e| explain(e).to_string()) };
        let events = log_to_file(event_rx, report::client_lines, &format!("tlschat: joining {target}"));
        let questions = guard.as_mut().and_then(|g| g.questions.take());
        let failure = tlschat::tui::run_client(
            target.to_owned(),
            session,
            events,
            intent_tx,
            pace,
            questions,
            out.bell,
        )
        .await?;
        verdict(guard).await?;
        return failure.map_or(Ok(()), |reason| Err(anyhow::anyhow!(reason)));
    }
    if step {
        bail!("--step needs the full-screen interface: it waits for Space before each flight");
    }
    // Weak, so that the end of stdin (its reader dropping the last sender) still closes.
    let interrupt = intent_tx.downgrade();
    // Each line typed is said (or is a command); end of input closes the connection.
    read_stdin_lines(move |line| match intent_of(&String::from_utf8_lossy(&line)) {
        Some(intent) => intent_tx.blocking_send(intent).is_ok(),
        None => true,
    });
    // Ctrl-C closes politely, with close_notify (at once, even
    // mid-handshake); a second Ctrl-C does not wait for the peer's answer.
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

    let session =
        net::connect(host, port, server_name, Arc::new(config), handshake_timeout, intent_rx, event_tx, None);
    let log = async {
        while let Some(event) = event_rx.recv().await {
            out.print(&event, report::client_lines);
        }
    };
    let (result, ()) = tokio::join!(session, log);
    verdict(guard).await?;
    let result = result.map_err(explain);
    if let (Err(e), true) = (&result, out.json) {
        say!("{}", serde_json::json!({"type": "error", "error": format!("{e:#}")}));
    }
    result
}

/// In the TUI the screen is the interface's: the headless log's lines go
/// to the log file instead (see `tlschat::logfile`), `first` at the top.
fn log_to_file(
    events: mpsc::Receiver<NetEvent>,
    format: fn(&NetEvent) -> Vec<String>,
    first: &str,
) -> mpsc::Receiver<NetEvent> {
    match LogFile::open_default() {
        Ok(mut log) => {
            let _ = log.line(unix_now(), first);
            logfile::tee(events, log, format)
        }
        Err(e) => {
            // Printed before the interface takes the screen, and still there after.
            eprintln!("tlschat: warning: no log file ({e}); this session is not logged");
            events
        }
    }
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
// id and trust

/// The login name, for a new identity's default display name.
fn login_name() -> Option<String> {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).ok()
}

/// `tlschat id`: shows the identity, made on first use; `--name` renames
/// it; `--new` replaces its key once the user confirms (`--yes` without a
/// terminal).
fn id(args: IdArgs, interactive: bool) -> anyhow::Result<()> {
    let home = Home::locate()?;
    let store = IdentityStore::new(home.identity_dir());
    let login = login_name();
    let identity = if args.new {
        if !args.yes {
            confirm_new_identity(&store, interactive)?;
        }
        let identity = store.replace_key(&mut OsRng, login.as_deref())?;
        say!("made a new key; rooms that knew your old key will refuse this one under the same name");
        match &args.name {
            Some(name) => store.set_name(&mut OsRng, name)?,
            None => identity,
        }
    } else if let Some(name) = &args.name {
        store.set_name(&mut OsRng, name)?
    } else {
        let (identity, loaded) = store.load_or_create(&mut OsRng, login.as_deref(), None)?;
        if loaded == Loaded::Created {
            say!("made your identity (first use)");
        }
        identity
    };
    say!("name: {}", identity.name());
    say!("fingerprint: {}", identity.fingerprint());
    say!("safety number: {}", identity.fingerprint().short());
    say!("key: {}", store.key_path().display());
    Ok(())
}

/// Asks before `tlschat id --new` throws the old key away.
fn confirm_new_identity(store: &IdentityStore, interactive: bool) -> anyhow::Result<()> {
    if !interactive {
        bail!(
            "replacing your identity cannot be undone: run `tlschat id --new --yes` to confirm without a terminal; nothing was changed"
        );
    }
    let current = match store.load() {
        Ok(Some(identity)) => {
            format!("{} (safety number {})", identity.name(), identity.fingerprint().short())
        }
        Ok(None) => "(none yet)".to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    };
    print!(
        "Replace your identity {current} with a new key? Rooms bind your name to your key and will refuse the new one under that name. Type yes to replace: "
    );
    let _ = io::stdout().flush();
    let mut answer = String::new();
    io::stdin().read_line(&mut answer).context("reading the answer")?;
    if answer.trim() != "yes" {
        bail!("kept your identity: nothing was changed");
    }
    Ok(())
}

/// `tlschat trust list` and `tlschat trust forget HOST:PORT`.
fn trust_command(args: TrustArgs) -> anyhow::Result<()> {
    let home = Home::locate()?;
    match args.command {
        TrustCommand::List => {
            let known = KnownRooms::load(home.pins_file())?;
            if known.pins().is_empty() {
                say!("no pinned rooms yet ({})", known.path().display());
            }
            for (room, fp) in known.pins() {
                say!("{room}  {}  {}", fp.short(), tls::crypto::hex(&fp.0));
            }
        }
        TrustCommand::Forget { room } => {
            let id = trust::parse_room(&room).with_context(|| {
                format!("{room:?} is not HOST:PORT (IPv6 addresses go in brackets: [::1]:8443)")
            })?;
            let mut known = KnownRooms::load(home.pins_file())?;
            match known.forget(&id)? {
                Some(fp) => say!(
                    "forgot the key of {id} (safety number {}); the next connection shows the key it finds",
                    fp.short()
                ),
                None => bail!("{id} is not pinned in {} (see `tlschat trust list`)", known.path().display()),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// listen

async fn listen(args: ListenArgs, out: Output) -> anyhow::Result<()> {
    let tui = out.tui && !args.echo;
    let (listener, host) = bind(&args.addr).await?;
    let local = listener.local_addr()?;
    out.info(&format!("listening on {local}"));
    // How clients should name this server: the host given, else localhost.
    let join_host = match &host {
        Some(ServerName::Ip(IpAddr::V6(ip))) => format!("[{ip}]"),
        Some(name) => name.to_string(),
        None => "localhost".to_owned(),
    };
    let join_addr = format!("{join_host}:{}", local.port());

    let home = Home::locate()?;
    let room = RoomStore::new(home.room_dir());
    let (certified, ca_path) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let certified = pki::load_certified_key(&read_text(cert)?, &read_text(key)?)
                .with_context(|| format!("cannot serve {} with {}", cert.display(), key.display()))?;
            (certified, None)
        }
        _ => {
            let (certified, path) = open_room(&args, &room, host.as_ref(), out)?;
            (certified, Some(path))
        }
    };
    let fingerprint = certified.fingerprint();
    if let Some(path) = &ca_path {
        out.info(&format!("ca: {}", path.display()));
        out.info(&format!("join: tlschat connect {join_addr} --ca {}", path.display()));
    }
    // The key clients pin, in full and in the short form read aloud, and
    // the one line to send people so that they pin it from the start.
    let invite = format!("tlschat connect {join_addr} --fingerprint {}", tls::crypto::hex(&fingerprint.0));
    out.info(&format!("fingerprint: {fingerprint}"));
    out.info(&format!("safety number: {}", fingerprint.short()));
    out.info(&format!("invite: {invite}"));
    // The status page says how to join, never where files live.
    let about = format!(
        "listening on {local}\nserver key fingerprint: {fingerprint}\nsafety number: {}\ninvite: {invite}\n",
        fingerprint.short()
    );

    let keylog = args.tls.keylog()?;
    let mut config = ServerConfig::new(certified.into());
    config.suites = args.tls.suites();
    config.keylog = keylog.clone().map(|k| k as Arc<dyn KeyLog>);
    let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut host_intents = None;
    let service = if args.echo {
        // The benchmark target: no ALPN, no step events to format.
        config.emit_steps = false;
        Service::Echo
    } else {
        // Mutual TLS: members prove their identity key, and each name stays with the first key that used it.
        let members = Arc::new(Members::open(room.members_path())?);
        // The host is a member too, under its own identity.
        let identity = load_identity(&home, !tui)?;
        members.claim(identity.name(), &identity.fingerprint()).map_err(|why| {
            anyhow::anyhow!(
                "you cannot host this room as {}: {why}; pick another name with `tlschat id --name`",
                identity.name()
            )
        })?;
        let binder: Arc<dyn net::Binder> = members.clone();
        config.client_auth = if args.require_identity {
            ClientAuth::Required(ClientTrust::Admit(members))
        } else {
            ClientAuth::Optional(ClientTrust::Admit(members))
        };
        config.alpn = vec![tls::ALPN_TLSCHAT.to_vec(), tls::ALPN_HTTP11.to_vec()];
        let (intents_tx, intents) = mpsc::channel(INPUT_QUEUE);
        let host = net::Host { name: identity.name().to_owned(), key: identity.key().clone(), intents };
        let mut room_config = relay::Config::new(fingerprint.0);
        room_config.history = args.history;
        room_config.max_members = args.max_members;
        let room = net::start_room(room_config, Some(host), Some(binder), local, event_tx.clone());
        host_intents = Some(intents_tx);
        Service::Room { room, about: about.clone().into() }
    };

    let server = net::Server {
        listener,
        config: Arc::new(config),
        service,
        handshake_timeout: args.tls.handshake_timeout,
        events: event_tx,
        shutdown: shutdown_rx,
    };
    tokio::spawn(server.run());
    if let (true, Some(host)) = (tui, host_intents.clone()) {
        let events = log_to_file(event_rx, report::server_lines, &format!("tlschat: room on {local}"));
        tlschat::tui::run_room(local.to_string(), &about, events, host, shutdown_tx, out.bell).await?;
        warn_keylog(keylog.as_deref());
        return Ok(());
    }
    if let Some(host) = host_intents {
        // The host's lines: said in the room, or commands (/who, /me, /msg).
        read_stdin_lines(move |line| match intent_of(&String::from_utf8_lossy(&line)) {
            Some(Intent::Close) => false,
            Some(intent) => host.blocking_send(intent).is_ok(),
            None => true,
        });
    }

    loop {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(event) => out.print(&event, report::server_lines),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                out.info("closing the room");
                let _ = shutdown_tx.send(true);
                if !args.echo {
                    // Let each connection send close_notify and hear the answer.
                    let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
                        while let Some(event) = event_rx.recv().await {
                            out.print(&event, report::server_lines);
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

/// Opens the room (made on first use) with a server certificate for
/// localhost, 127.0.0.1, ::1 and `host`, copies its CA to `--ca-out` and
/// its chain to `--cert-out` if asked, and returns the chain and the CA
/// file to show.
fn open_room(
    args: &ListenArgs,
    room: &RoomStore,
    host: Option<&ServerName>,
    out: Output,
) -> anyhow::Result<(pki::CertifiedKey, PathBuf)> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = host.map(ToString::to_string).filter(|h| !names.contains(h)) {
        names.push(host);
    }
    let keys = room.open_or_create(&names, &mut OsRng, unix_now())?;
    for note in &keys.notes {
        out.info(note);
    }
    let ca_path = match &args.ca_out {
        Some(path) => {
            write_public(path, &keys.ca.cert_pem)?;
            path.clone()
        }
        None => keys.ca_path.clone(),
    };
    if let Some(path) = &args.cert_out {
        write_public(path, &keys.server.chain_pem)?;
    }
    Ok((keys.server, ca_path))
}

// ---------------------------------------------------------------------------
// demo

/// How far apart the demo's panel shows handshake messages, unless
/// `--step-delay` says otherwise: slow enough to watch, quick enough not to bore.
const DEMO_STEP_DELAY_MS: u64 = 250;

/// How long the demo room waits for a `--step` client's handshake: the user
/// may read each step for as long as they like.
const DEMO_STEP_PATIENCE: Duration = Duration::from_secs(3600);

/// How long the demo waits for its bots to be in the room before the user joins.
const DEMO_BOTS_READY: Duration = Duration::from_secs(5);

/// `tlschat demo`: a room on an ephemeral loopback port, two bots in it
/// (each a real member over TLS with a key of its own), and the user joined
/// to it, all in this process. Nothing is written to disk: the room's CA
/// and every key live in memory for the session.
async fn demo(args: DemoArgs, out: Output) -> anyhow::Result<()> {
    let tui = out.tui;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot open the demo room on a loopback port")?;
    let local = listener.local_addr()?;
    let port = local.port();
    let now = unix_now();
    let mut rng = OsRng;
    let ca = RoomCa::generate("tlschat demo room CA", &mut rng, now)?;
    let names = ["localhost", "127.0.0.1"].map(String::from);
    let certified = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, now)?;
    let room_id = certified.fingerprint();

    let mut server = ServerConfig::new(certified.into());
    server.suites = args.tls.suites();
    server.alpn = vec![tls::ALPN_TLSCHAT.to_vec(), tls::ALPN_HTTP11.to_vec()];
    // Members prove their keys; in a throwaway room any key is welcome.
    server.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
    // The room's own events are not shown: the user watches its client.
    let (room_events, mut room_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(async move { while room_rx.recv().await.is_some() {} });
    let (shutdown_tx, shutdown) = watch::channel(false);
    let room = net::start_room(relay::Config::new(room_id.0), None, None, local, room_events.clone());
    let about = format!("tlschat demo room on 127.0.0.1:{port}, with two bots\n");
    let server = net::Server {
        listener,
        config: Arc::new(server),
        service: Service::Room { room, about: about.into() },
        handshake_timeout: if args.pace.step { DEMO_STEP_PATIENCE } else { args.tls.handshake_timeout },
        events: room_events,
        shutdown,
    };
    tokio::spawn(server.run());

    let roots = RootStore::from_pem(&ca.cert_pem).context("the demo room's CA")?;
    let server_name = ServerName::parse("localhost").context("the demo's server name")?;
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.suites = args.tls.suites();
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    for persona in [tlschat::demo::Persona::Alice, tlschat::demo::Persona::Bob] {
        let (ready_tx, ready) = oneshot::channel();
        tlschat::demo::spawn(
            persona,
            "127.0.0.1".into(),
            port,
            server_name.clone(),
            config.clone(),
            ready_tx,
        )?;
        // Each bot in before the next, and both before the user: they greet whoever comes.
        let _ = tokio::time::timeout(DEMO_BOTS_READY, ready).await;
    }

    let keylog = args.tls.keylog()?;
    config.keylog = keylog.clone().map(|k| k as Arc<dyn KeyLog>);
    // A throwaway identity: the demo leaves the user's own key alone.
    let name = tlschat::identity::default_name(login_name().as_deref(), &room_id);
    let you = pki::self_signed_client(Ed25519Key::generate(&mut rng), &name, &mut rng, now)?;
    config.client_cert = Some(you.into());
    let target = format!("demo room 127.0.0.1:{port}");
    if !tui {
        out.info(&format!(
            "{target}: a room in this process with two bots, alice and bob; type lines, end input to leave"
        ));
    }
    let dial = Dial {
        target: &target,
        host: "127.0.0.1",
        port,
        server_name,
        config,
        handshake_timeout: args.tls.handshake_timeout,
        plan: None,
        identity: None,
    };
    let result = join(dial, args.pace.step_delay(DEMO_STEP_DELAY_MS), args.pace.step, out).await;
    let _ = shutdown_tx.send(true);
    warn_keylog(keylog.as_deref());
    result
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
