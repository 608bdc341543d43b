//! `tlschat demo`: a room on an ephemeral loopback port, two bots in it
//! (each a real member over TLS with a key of its own; see
//! `crate::teach::demo`), and the user joined to it, all in this process.
//!
//! Nothing is written to disk: the room's CA and every key live in memory
//! for the session, and the user's own identity is left alone.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use super::connect::{Dial, join};
use super::lab::{DemoLab, Lab, Mitm};
use super::{
    Context, EVENT_QUEUE, Error, Presentation, TlsOptions, login_name, secrets_to, unix_now, warn_capture,
    warn_keylog,
};
use crate::chat::relay;
use crate::net::{self, Service};
use crate::store::pki::{self, RoomCa};
use crate::teach::demo::{BOTS, Persona};
use crate::teach::lab::LyingRelay;
use crate::tls::{
    self, ClientAuth, ClientConfig, ClientTrust, Ed25519Key, OsRng, RootStore, ServerConfig, ServerName,
    ServerTrust,
};

/// How far apart the demo's panel shows handshake messages, unless
/// `--step-delay` says otherwise: slow enough to watch, quick enough not to bore.
const DEMO_STEP_DELAY: Duration = Duration::from_millis(250);

/// How long the demo room waits for a `--step` client's handshake: the user
/// may read each step for as long as they like.
const DEMO_STEP_PATIENCE: Duration = Duration::from_secs(3600);

/// How long the demo waits for its bots to be in the room before the user joins.
const DEMO_BOTS_READY: Duration = Duration::from_secs(5);

/// What `tlschat demo` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// How far apart the handshake panel shows messages (default: 250 ms).
    pub step_delay: Option<Duration>,
    /// Hold each handshake flight until the user releases it (TUI only).
    pub step: bool,
    /// Suites, key log, handshake limit.
    pub tls: TlsOptions,
}

/// `tlschat demo`: runs the room, its bots and the user's client until the
/// user leaves.
pub async fn run(opts: Options, out: Presentation) -> Result<(), Error> {
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

    let serve = |cert: pki::CertifiedKey| {
        let mut server = ServerConfig::new(cert.into());
        server.suites = opts.tls.suites.clone();
        server.alpn = vec![tls::ALPN_TLSCHAT.to_vec(), tls::ALPN_HTTP11.to_vec()];
        // Members prove their keys; in a throwaway room any key is welcome.
        server.client_auth = ClientAuth::Optional(ClientTrust::AnyKey);
        server
    };
    let server = serve(certified);
    // The tamper lab's certificates: one from another CA, one from the
    // room's CA for another name, and the man in the middle's, from the
    // room's own CA (as a CA that issued to the wrong party would): only
    // the pin tells it from the room.
    let other_ca = RoomCa::generate("another CA (tlschat lab)", &mut rng, now)?;
    let other_ca = serve(other_ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, now)?);
    let other_name = ["www.example.org".to_owned()];
    let other_name = serve(ca.issue_server(Ed25519Key::generate(&mut rng), &other_name, &mut rng, now)?);
    let mitm_cert = ca.issue_server(Ed25519Key::generate(&mut rng), &names, &mut rng, now)?;
    let next_config: net::NextConfig = Arc::default();
    // The room's own events are not shown: the user watches its client.
    let (room_events, mut room_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(async move { while room_rx.recv().await.is_some() {} });
    let (shutdown_tx, shutdown) = watch::channel(false);
    // The lab's `sig`: the room's relay, told to, lies about what the
    // demo's bot says (see [`crate::teach::demo::LIED_ABOUT`]).
    let lying = Arc::new(LyingRelay::new(crate::teach::demo::LIED_ABOUT.name()));
    let room =
        net::start_room_with_hook(relay::Config::new(room_id.0), local, room_events.clone(), lying.clone());
    let about = format!("tlschat demo room on 127.0.0.1:{port}, with two bots\n");
    let server = net::Server {
        listener,
        config: Arc::new(server),
        service: Service::Room { room, about: about.into() },
        handshake_timeout: if opts.step { DEMO_STEP_PATIENCE } else { opts.tls.handshake_timeout },
        events: room_events,
        shutdown,
        limits: net::Limits::default(),
        next_config: Some(next_config.clone()),
        // `--pcap` records the user's own connection, not the room's side.
        capture: None,
    };
    tokio::spawn(server.run());

    let roots = RootStore::from_pem(&ca.cert_pem).context("the demo room's CA")?;
    let server_name = ServerName::parse("localhost").context("the demo's server name")?;
    let mut config = ClientConfig::new(ServerTrust::Roots(roots));
    config.suites = opts.tls.suites.clone();
    config.alpn = vec![tls::ALPN_TLSCHAT.to_vec()];
    let mut lied_about = None;
    for persona in Persona::ALL {
        let (ready_tx, ready) = oneshot::channel();
        let says = crate::teach::demo::spawn(
            persona,
            "127.0.0.1".into(),
            port,
            server_name.clone(),
            config.clone(),
            ready_tx,
        )?;
        if persona == crate::teach::demo::LIED_ABOUT {
            lied_about = Some(says);
        }
        // Each bot in before the next, and both before the user: they greet whoever comes.
        let _ = tokio::time::timeout(DEMO_BOTS_READY, ready).await;
    }

    let keylog = opts.tls.keylog()?;
    let capture = opts.tls.capture("your connection to the demo room")?;
    config.keylog = secrets_to(keylog.as_ref(), capture.as_ref());
    // The demo's keys are throwaway and in this process: shown unless --no-reveal.
    config.reveal = opts.tls.reveal(true);
    // A throwaway identity: the demo leaves the user's own key alone.
    let name = crate::store::identity::default_name(login_name().as_deref(), &room_id);
    let you = pki::self_signed_client(Ed25519Key::generate(&mut rng), &name, &mut rng, now)?;
    config.client_cert = Some(you.into());
    let target = format!("demo room 127.0.0.1:{port}");
    if !tui {
        out.info(&format!(
            "{target}: a room in this process with two bots, {} and {}; type lines, end input to leave",
            BOTS[0], BOTS[1]
        ));
    }
    let about = "a man in the middle with its own key (certified by the demo's CA, as a CA that issued to \
                 the wrong party would: for this connection your client checks the key it pins, the room's)"
        .to_owned();
    let mitm =
        Mitm::start(mitm_cert, opts.tls.suites.clone(), Some(ServerTrust::Fingerprint(room_id)), about)
            .await
            .context("cannot start the lab's man in the middle on a loopback port")?;
    let demo = lied_about.map(|author| DemoLab {
        next_config,
        other_ca: Arc::new(other_ca),
        other_name: Arc::new(other_name),
        relay: lying,
        author,
        line: crate::teach::demo::LIED_ABOUT.lab_line().to_owned(),
    });
    let dial = Dial {
        lab: Some(Lab::new(Some(mitm), demo)),
        target: &target,
        host: "127.0.0.1",
        port,
        server_name,
        config,
        handshake_timeout: opts.tls.handshake_timeout,
        plan: None,
        identity: None,
        capture: capture.clone(),
        contacts_dir: None,
        reveal_out: opts.tls.reveal_out(out),
        also: Vec::new(),
        reconnect: false,
    };
    let result = join(dial, opts.step_delay.unwrap_or(DEMO_STEP_DELAY), opts.step, out).await;
    let _ = shutdown_tx.send(true);
    warn_keylog(keylog.as_deref());
    warn_capture(capture.as_deref());
    result
}
