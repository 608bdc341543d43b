//! `tlschat connect HOST:PORT`: decide how the server is trusted (see
//! `crate::store::pins`), present the user's identity, and chat: in the TUI, or
//! headless with stdin's lines sent and every event printed.
//!
//! `join` is the client half that `demo` shares: the connection task, the
//! trust gate between it and the user, and the interface in front.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::lab::{Lab, Mitm};
use super::{
    Context, EVENT_QUEUE, Error, INPUT_QUEUE, Presentation, TlsOptions, intent_of, load_identity,
    log_to_file, read_stdin_lines, read_text, secrets_to, unix_now, warn_capture, warn_keylog,
};
use crate::net::{self, HostPort, Intent, NetError, NetEvent};
use crate::present::report::Audience;
use crate::store::home::Home;
use crate::store::pins::{self, FirstContact, KnownRooms, Plan, TrustError};
use crate::teach::pcap::Capture;
use crate::tls::{self, ClientConfig, Fingerprint, OsRng, RootStore, ServerName};
use crate::tui::app::Typist;

/// What `tlschat connect` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The room as typed: `HOST:PORT` or `[IPv6]:PORT`.
    pub target: String,
    /// Other addresses of the same room, tried in turn when one fails
    /// (the room's key is the same at each).
    pub also: Vec<String>,
    /// Trust servers whose chain ends at this CA (PEM), and use no pin.
    pub ca: Option<PathBuf>,
    /// Trust exactly the key with this fingerprint (64 hex digits), and pin it.
    pub fingerprint: Option<String>,
    /// On first contact, trust and pin the key the server shows.
    pub trust_on_first_use: bool,
    /// The name the certificate must be for (default: the host).
    pub server_name: Option<String>,
    /// How far apart the handshake panel shows messages (default: at once).
    pub step_delay: Option<Duration>,
    /// Hold each handshake flight until the user releases it (TUI only).
    pub step: bool,
    /// Suites, key log, handshake limit.
    pub tls: TlsOptions,
    /// The tamper lab (`/tamper`): off unless asked for.
    pub lab: bool,
}

/// `tlschat connect`: joins the room and chats until either side closes.
pub async fn run(opts: Options, out: Presentation) -> Result<(), Error> {
    let tui = out.tui;
    let target = HostPort::parse(&opts.target)?;
    let (host, port) = (target.host(), target.port());
    let also = opts
        .also
        .iter()
        .map(|a| HostPort::parse(a).map(|a| (a.host().to_owned(), a.port())))
        .collect::<Result<Vec<_>, _>>()?;
    let server_name = match &opts.server_name {
        Some(name) => ServerName::parse(name),
        None => target.server_name(),
    }
    .context("--server-name")?;
    let home = Home::locate()?;
    // Trust in the server: --ca, else --fingerprint, else the pin, else first contact (see `trust`).
    let ca = match &opts.ca {
        Some(path) => {
            let pem = read_text(path)?;
            Some(
                RootStore::from_pem(&pem)
                    .with_context(|| format!("{} is not a usable CA", path.display()))?,
            )
        }
        None => None,
    };
    let fingerprint = match &opts.fingerprint {
        Some(fp) => Some(
            Fingerprint::parse(fp)
                .ok_or_else(|| Error::msg(format!("{fp:?} is not a fingerprint (64 hex digits)")))?,
        ),
        None => None,
    };
    // --ca does not use pins: a damaged pins file must not stand in its way.
    let known =
        if ca.is_some() { KnownRooms::none(home.pins_file()) } else { KnownRooms::load(home.pins_file())? };
    let first_contact = match (opts.trust_on_first_use, tui) {
        (true, _) => FirstContact::Trust,
        (false, true) => FirstContact::Ask,
        (false, false) => FirstContact::Refuse,
    };
    let plan = Plan::decide(pins::room_id(host, port), ca, fingerprint, &known, first_contact)?;
    // Our identity answers the room's CertificateRequest.
    let identity = load_identity(&home, !tui)?;
    let keylog = opts.tls.keylog()?;
    let capture = opts.tls.capture("this connection")?;
    let mut config = ClientConfig::new(plan.trust.clone());
    config.suites = opts.tls.suites.clone();
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    config.keylog = secrets_to(keylog.as_ref(), capture.as_ref());
    config.reveal = opts.tls.reveal(false);
    config.client_cert = Some(identity.certificate(&mut OsRng, unix_now())?.into());
    // First contact: the certificate above (who we are) waits for the trust gate.
    config.hold_for_trust = plan.holds_flight();

    let lab = if opts.lab {
        // The man in the middle: its own CA, its own key, the room's name.
        let now = unix_now();
        let ca = crate::store::pki::RoomCa::generate("tlschat lab interceptor CA", &mut OsRng, now)?;
        let names = [opts.server_name.clone().unwrap_or_else(|| host.to_owned())];
        let cert = ca.issue_server(tls::Ed25519Key::generate(&mut OsRng), &names, &mut OsRng, now)?;
        let about = "an interceptor with its own key and its own CA".to_owned();
        let mitm = Mitm::start(cert, opts.tls.suites.clone(), None, about)
            .await
            .context("cannot start the lab's interceptor on a loopback port")?;
        Some(Lab::new(Some(mitm), None))
    } else {
        None
    };
    let dial = Dial {
        lab,
        target: &opts.target,
        host,
        port,
        server_name,
        config,
        handshake_timeout: opts.tls.handshake_timeout,
        plan: Some(plan),
        identity: Some(identity.name().to_owned()),
        capture: capture.clone(),
        contacts_dir: Some(home.contacts_dir()),
        reveal_out: opts.tls.reveal_out(out),
        also,
        reconnect: true,
    };
    let result = join(dial, opts.step_delay.unwrap_or(Duration::ZERO), opts.step, out).await;
    warn_keylog(keylog.as_deref());
    warn_capture(capture.as_deref());
    result
}

/// A client connection to make.
pub(super) struct Dial<'a> {
    /// The server as the user named it, for the status bar.
    pub(super) target: &'a str,
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) server_name: ServerName,
    pub(super) config: ClientConfig,
    pub(super) handshake_timeout: Duration,
    /// Where trust in the server came from (none for the demo's own room).
    pub(super) plan: Option<Plan>,
    /// Our display name, to explain a room's refusal.
    pub(super) identity: Option<String>,
    /// The tamper lab (see [`super::lab`]): `None`, `/tamper` only says
    /// how to enable it.
    pub(super) lab: Option<Lab>,
    /// `--pcap`: where the connection is recorded (its secrets reach it
    /// through `config`'s key log).
    pub(super) capture: Option<Arc<Capture>>,
    /// Where the member's contacts are kept (none for the demo, whose room
    /// is new each time).
    pub(super) contacts_dir: Option<PathBuf>,
    /// `--reveal-script`, and headless `--reveal`: the key schedule's commands.
    pub(super) reveal_out: super::RevealOut,
    /// Other addresses of the room, tried in turn when one fails.
    pub(super) also: Vec<(String, u16)>,
    /// Connect again by itself when the connection drops (see [`super::client`]).
    pub(super) reconnect: bool,
}

/// What a failed connection means to the user: a trust error (a changed
/// key, a refused name) where it is one.
fn explain(plan: Option<&Plan>, identity: Option<&str>, error: NetError) -> Error {
    match plan.and_then(|p| p.explain(&error, identity)) {
        Some(reason) => reason.into(),
        None => error.into(),
    }
}

/// The trust gate's side of a client (see [`crate::store::pins::gate`]), when
/// the plan needs one: first contact, or a --fingerprint key to pin.
struct Guard {
    /// First-contact questions for the TUI's dialog.
    questions: Option<mpsc::Receiver<pins::Question>>,
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
        tokio::spawn(pins::gate(plan.clone(), events, ui_events, ui_intents, intents, questions_tx));
    (events_for_ui, intents_from_ui, Some(Guard { questions, verdict }))
}

/// The gate's verdict: the reason the server was not trusted, if it was not.
async fn verdict(guard: Option<Guard>) -> Result<(), Error> {
    match guard {
        Some(guard) => Ok(guard.verdict.await.context("the trust gate stopped")??),
        None => Ok(()),
    }
}

/// Runs a client connection: in the TUI, or headless with each line of
/// stdin sent and every event printed.
pub(super) async fn join(
    dial: Dial<'_>,
    step_delay: Duration,
    step: bool,
    out: Presentation,
) -> Result<(), Error> {
    let tui = out.tui;
    let Dial {
        target,
        host,
        port,
        server_name,
        config,
        handshake_timeout,
        plan,
        identity,
        lab,
        capture,
        contacts_dir,
        reveal_out,
        also,
        reconnect,
    } = dial;
    let reveal = config.reveal;
    // The key schedule's commands, fed by the client's loop as events pass.
    let commands = super::RevealCommands::new(reveal_out);
    let target_conn = net::Dial {
        capture,
        contacts_dir,
        also,
        reconnect,
        ..net::Dial::new(host, port, server_name, Arc::new(config), handshake_timeout)
    };
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let (intent_tx, intent_rx) = mpsc::channel(INPUT_QUEUE);
    // Until the server's key is trusted, lines wait at the gate.
    let (mut event_rx, intent_tx, mut guard) = guard(plan.as_ref(), event_rx, intent_tx, tui);
    let explain = |e| explain(plan.as_ref(), identity.as_deref(), e);
    if tui {
        let (pace, gate) = crate::tui::Pace::new(step_delay, step);
        let session = super::client::run(target_conn, lab, commands, intent_rx, event_tx, gate);
        let session = async { session.await.map_err(|e| explain(e).to_string()) };
        let events = log_to_file(event_rx, Audience::ClientLog, &format!("tlschat: joining {target}"));
        let questions = guard.as_mut().and_then(|g| g.questions.take());
        let prefs = crate::tui::Prefs { bell: out.bell, reveal, clock: out.clock, e2e_room: false };
        let failure =
            crate::tui::run_client(target.to_owned(), session, events, intent_tx, pace, questions, prefs)
                .await?;
        verdict(guard).await?;
        return failure.map_or(Ok(()), |reason| Err(Error::msg(reason)));
    }
    if step {
        return Err(Error::msg(
            "--step needs the full-screen interface: it waits for Space before each flight",
        ));
    }
    // Weak, so that the end of stdin (its reader dropping the last sender) still closes.
    let interrupt = intent_tx.downgrade();
    // Each line typed is said (or is a command); end of input closes the connection.
    read_stdin_lines(move |line| match intent_of(&String::from_utf8_lossy(&line), Typist::Member) {
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

    let session = super::client::run(target_conn, lab, commands, intent_rx, event_tx, None);
    let log = async {
        while let Some(event) = event_rx.recv().await {
            out.print(&event, Audience::Client);
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
