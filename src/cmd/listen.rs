//! `tlschat listen [ADDR]`: a room on a port, its CA and server certificate
//! made on first use (see `crate::store::room_keys`), the host seated in it under
//! their identity; or, with `--echo`, a server that answers each record
//! with its own bytes.
//!
//! It prints how to join (the address, the CA, the key's fingerprint and a
//! ready-made `connect` line), then runs until Ctrl-C (headless) or the
//! host quits (TUI), giving its connections time to say close_notify.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::{
    Context, EVENT_QUEUE, Error, INPUT_QUEUE, Presentation, TlsOptions, intent_of, load_identity,
    log_to_file, read_private_key, read_stdin_lines, read_text, secrets_to, unix_now, warn_capture,
    warn_keylog, write_public,
};
use crate::chat::relay;
use crate::net::cluster::{self, Cluster};
use crate::net::{self, HostPort, Intent, Service};
use crate::present::report::Audience;
use crate::store::home::Home;
use crate::store::names::NameBindings;
use crate::store::pki;
use crate::store::room_keys::RoomStore;
use crate::store::room_log::{self, RoomLog};
use crate::tls::{self, ClientAuth, ClientTrust, OsRng, ServerConfig, ServerName};
use crate::tui::app::Typist;

/// How long `listen` waits for its connections to close after Ctrl-C.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// What `tlschat listen` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen, as typed: `PORT`, `HOST:PORT` or `[IPv6]:PORT`.
    pub addr: String,
    /// Echo each application-data record instead of serving a room.
    pub echo: bool,
    /// Serve this certificate chain (PEM, leaf first) instead of the room's own.
    pub cert: Option<PathBuf>,
    /// The PKCS#8 Ed25519 private key of `cert`.
    pub key: Option<PathBuf>,
    /// Also copy the room CA certificate here.
    pub ca_out: Option<PathBuf>,
    /// Refuse clients without an identity certificate instead of admitting them as guests.
    pub require_identity: bool,
    /// Also write the room's server certificate chain here.
    pub cert_out: Option<PathBuf>,
    /// Messages replayed to a member who joins.
    pub history: usize,
    /// How much of the room's log is kept.
    pub keep: relay::Retention,
    /// The room's log in memory only, not in `DATA/room/log.redb`.
    pub memory_only: bool,
    /// Members at most, the host not counted.
    pub max_members: usize,
    /// New names one address may bind an hour.
    pub new_names_per_address: u32,
    /// Only names already bound (or invited) are admitted.
    pub closed: bool,
    /// Guests are refused.
    pub no_guests: bool,
    /// Seats one key may hold at once.
    pub seats_per_key: usize,
    /// Names unused this many days are freed at start (0: never).
    pub name_expiry_days: u32,
    /// Connections at most, and unverified ones per address.
    pub limits: net::Limits,
    /// Suites, key log, handshake limit.
    pub tls: TlsOptions,
    /// Share the room with other relays through the NATS server at this
    /// address (`nats://HOST:PORT`): see [`crate::net::cluster`].
    pub cluster: Option<String>,
    /// The room is end to end (`--e2e`): see `crate::chat::group`.
    pub e2e: bool,
}

/// `tlschat listen`: serves the room until Ctrl-C or the host quits.
pub async fn run(opts: Options, out: Presentation) -> Result<(), Error> {
    let tui = out.tui && !opts.echo;
    let (listener, host) = bind(&opts.addr).await?;
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
    let (certified, ca_path) = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let certified = pki::load_certified_key(&read_text(cert)?, &read_private_key(key)?)
                .with_context(|| format!("cannot serve {} with {}", cert.display(), key.display()))?;
            (certified, None)
        }
        _ => {
            let (certified, path) = open_room(&opts, &room, host.as_ref(), out)?;
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

    let keylog = opts.tls.keylog()?;
    if opts.tls.reveal_script.is_some() {
        return Err(Error::msg(
            "--reveal-script writes a client's connection (connect, demo); a room has many",
        ));
    }
    let capture = opts.tls.capture("every connection")?;
    let mut config = ServerConfig::new(certified.into());
    config.suites = opts.tls.suites.clone();
    config.keylog = secrets_to(keylog.as_ref(), capture.as_ref());
    config.reveal = opts.tls.reveal(false);
    let config_reveal = config.reveal;
    let (event_tx, mut event_rx) = mpsc::channel(EVENT_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut host_intents = None;
    let service = if opts.echo {
        // The benchmark target: no ALPN, no step events to format.
        config.emit_steps = false;
        Service::Echo
    } else {
        // The room's stream and names on the bus, when it is shared.
        let cluster = match &opts.cluster {
            Some(url) => {
                let cluster = Cluster::join(url, &fingerprint.0, opts.keep)
                    .await
                    .map_err(|e| Error::msg(e.to_string()))?;
                out.info(&format!("cluster: {url}, stream {}", cluster::stream_name(&fingerprint.0)));
                Some(Arc::new(cluster))
            }
            None => None,
        };
        // The room's store (its log and its names), unless the room keeps
        // them in memory, or on the bus.
        let store_path = room.dir().join(room_log::FILE);
        let refuse = |e: room_log::StoreError| {
            Error::msg(format!("cannot keep the room's history: {e} (--memory-only runs without it)"))
        };
        let mut log = match (&cluster, opts.memory_only) {
            (None, false) => {
                crate::store::home::private_dir(room.dir())?;
                Some(RoomLog::open(&store_path).map_err(refuse)?)
            }
            _ => None,
        };
        // Mutual TLS: members prove their identity key, and each name stays with the first key that used it.
        let members = match log.as_mut() {
            Some(log) => {
                let (members, note) = NameBindings::in_store(room.dir(), log)?;
                if let Some(note) = note {
                    out.info(&note);
                }
                members
            }
            None => NameBindings::in_memory(room.dir())?,
        };
        let members = Arc::new(
            members
                .with_new_names_per_address(opts.new_names_per_address)
                .closed(opts.closed && cluster.is_none()),
        );
        let freed = members.expire_unused(opts.name_expiry_days, unix_now());
        if freed > 0 {
            out.info(&format!(
                "freed {freed} name(s) unused for more than {} days (--name-expiry-days)",
                opts.name_expiry_days
            ));
        }
        // The host is a member too, under its own identity.
        let identity = load_identity(&home, !tui)?;
        let claimed = match &cluster {
            Some(cluster) => cluster.bind(identity.name(), &identity.fingerprint()).await.map(|_| ()),
            None => members.claim(identity.name(), &identity.fingerprint()),
        };
        claimed.map_err(|why| {
            Error::msg(format!(
                "you cannot host this room as {}: {why}; pick another name with `tlschat id --name`",
                identity.name()
            ))
        })?;
        let binder: Arc<dyn net::Binder> = match &cluster {
            Some(cluster) => {
                Arc::new(cluster::Names::new(cluster.clone(), members.clone()).closed(opts.closed))
            }
            None => members.clone(),
        };
        let banned = members.banned();
        config.client_auth = if opts.require_identity {
            ClientAuth::Required(ClientTrust::Admit(members))
        } else {
            ClientAuth::Optional(ClientTrust::Admit(members))
        };
        config.alpn = vec![tls::ALPN_TLSCHAT.to_vec(), tls::ALPN_HTTP11.to_vec()];
        let (intents_tx, intents) = mpsc::channel(INPUT_QUEUE);
        let host = net::Host { name: identity.name().to_owned(), key: identity.key().clone(), intents };
        let mut room_config = relay::Config::new(fingerprint.0);
        room_config.history = opts.history;
        room_config.keep = opts.keep;
        room_config.max_members = opts.max_members;
        room_config.guests = !opts.no_guests;
        room_config.seats_per_key = opts.seats_per_key.max(1);
        room_config.banned = banned;
        room_config.e2e = opts.e2e;
        if opts.e2e {
            out.info(
                "end to end room (--e2e): one MLS group the relay orders and cannot read; members only, \
                 at most 100, no history; you host it but are not in its group",
            );
        }
        let room = match (cluster, log) {
            (Some(cluster), _) => {
                // The room's history comes from the stream: what it keeps.
                let (first, last) = cluster.bounds().await.map_err(|e| Error::msg(e.to_string()))?;
                let from = first.max((last + 1).saturating_sub(opts.keep.messages.max(1) as u64));
                let entries = cluster.entries(from).await.map_err(|e| Error::msg(e.to_string()))?;
                let upto = if first > last { 0 } else { last };
                let signals = cluster.signals().await.map_err(|e| Error::msg(e.to_string()))?;
                let bus = net::Bus { cluster, entries, upto, signals };
                net::start_room_on_bus(room_config, Some(host), Some(binder), local, event_tx.clone(), bus)
            }
            (None, None) => {
                out.info(
                    "the room's log and new names are kept in memory only (--memory-only): they start over with the room",
                );
                net::start_room(room_config, Some(host), Some(binder), local, event_tx.clone())
            }
            (None, Some(log)) => {
                let (room, reopened) =
                    net::start_durable(room_config, log, Some(host), Some(binder), local, event_tx.clone())
                        .map_err(refuse)?;
                out.info(&format!(
                    "log: {} ({} message(s) of history kept; the room goes on from room_seq {})",
                    store_path.display(),
                    reopened.messages,
                    reopened.room_seq
                ));
                room
            }
        };
        host_intents = Some(intents_tx);
        Service::Room { room, about: about.clone().into() }
    };

    let server = net::Server {
        listener,
        config: Arc::new(config),
        service,
        handshake_timeout: opts.tls.handshake_timeout,
        events: event_tx,
        shutdown: shutdown_rx,
        limits: opts.limits,
        next_config: None,
        capture: capture.clone(),
    };
    tokio::spawn(server.run());
    if let (true, Some(host)) = (tui, host_intents.clone()) {
        let events = log_to_file(event_rx, Audience::RoomLog, &format!("tlschat: room on {local}"));
        let prefs =
            crate::tui::Prefs { bell: out.bell, reveal: config_reveal, clock: out.clock, e2e_room: opts.e2e };
        // The screen, unlike the status page, says where the CA file is.
        let ca = ca_path.as_ref().map_or_else(String::new, |path| {
            format!("ca: {}\njoin: tlschat connect {join_addr} --ca {}\n", path.display(), path.display())
        });
        let shown = format!("{about}{ca}");
        let key = fingerprint.short().to_string();
        crate::tui::run_room(local.to_string(), &shown, key, events, host, shutdown_tx, prefs).await?;
        warn_keylog(keylog.as_deref());
        warn_capture(capture.as_deref());
        return Ok(());
    }
    if let Some(host) = host_intents {
        // The host's lines: said in the room, or commands (/who, /me, /msg).
        read_stdin_lines(move |line| match intent_of(&String::from_utf8_lossy(&line), Typist::Host) {
            Some(Intent::Close) => false,
            Some(intent) => host.blocking_send(intent).is_ok(),
            None => true,
        });
    }

    // One listener for the whole loop: a Ctrl-C that arrives while an event
    // is being printed is still heard (a listener made anew each turn would
    // miss it).
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(event) => out.print(&event, Audience::Room),
                None => break,
            },
            _ = &mut interrupt => {
                out.info("closing the room");
                let _ = shutdown_tx.send(true);
                if !opts.echo {
                    // Let each connection send close_notify and hear the answer.
                    let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
                        while let Some(event) = event_rx.recv().await {
                            out.print(&event, Audience::Room);
                        }
                    })
                    .await;
                }
                break;
            }
        }
    }
    warn_keylog(keylog.as_deref());
    warn_capture(capture.as_deref());
    Ok(())
}

/// Binds `PORT`, `HOST:PORT` or `[IPv6]:PORT` (see [`HostPort::parse_listen`]).
/// Returns the host as a name for the certificate, unless it is the
/// unspecified address.
async fn bind(text: &str) -> Result<(TcpListener, Option<ServerName>), Error> {
    let bad = || Error::msg(format!("cannot listen on {text:?}: expected PORT, HOST:PORT or [IPv6]:PORT"));
    let addr = HostPort::parse_listen(text).map_err(|e| match e {
        crate::net::BadHostPort::PortOutOfRange { .. } => Error::msg(format!("cannot listen: {e}")),
        crate::net::BadHostPort::Form(_) => bad(),
    })?;
    let host = match addr.socket_addr() {
        Some(socket) => ServerName::Ip(socket.ip()),
        None => addr.server_name().map_err(|_| bad())?,
    };
    let target = addr.to_string();
    let listener = TcpListener::bind(&target).await.with_context(|| format!("cannot listen on {target}"))?;
    let host = Some(host).filter(|h| !matches!(h, ServerName::Ip(ip) if ip.is_unspecified()));
    Ok((listener, host))
}

/// Opens the room (made on first use) with a server certificate for
/// localhost, 127.0.0.1, ::1 and `host`, copies its CA to `--ca-out` and
/// its chain to `--cert-out` if asked, and returns the chain and the CA
/// file to show.
fn open_room(
    opts: &Options,
    room: &RoomStore,
    host: Option<&ServerName>,
    out: Presentation,
) -> Result<(pki::CertifiedKey, PathBuf), Error> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Some(host) = host.map(ToString::to_string).filter(|h| !names.contains(h)) {
        names.push(host);
    }
    let keys = room.open_or_create(&names, &mut OsRng, unix_now())?;
    for note in &keys.notes {
        out.info(note);
    }
    let ca_path = match &opts.ca_out {
        Some(path) => {
            write_public(path, &keys.ca.cert_pem)?;
            path.clone()
        }
        None => keys.ca_path.clone(),
    };
    if let Some(path) = &opts.cert_out {
        write_public(path, &keys.server.chain_pem)?;
    }
    Ok((keys.server, ca_path))
}

/// `tlschat invite NAME FINGERPRINT`: binds NAME to that key in the room
/// this home serves, so that `listen --closed` admits it. The binding is
/// written to the room's store, which a running room holds: there, the
/// host's `/invite` does it.
pub fn invite(name: &str, fingerprint: &str) -> Result<(), Error> {
    let digits: String = fingerprint.split_whitespace().collect();
    let fp = tls::Fingerprint::parse(&digits).ok_or_else(|| {
        Error::msg(format!("{fingerprint:?} is not a fingerprint (64 hex digits, as `tlschat id` prints)"))
    })?;
    let home = Home::locate()?;
    let room = RoomStore::new(home.room_dir());
    crate::store::home::private_dir(room.dir())?;
    let path = room.dir().join(room_log::FILE);
    let mut log = RoomLog::open(&path).map_err(|e| {
        Error::msg(format!("cannot invite {name}: {e}; in a running room, the host's /invite does it"))
    })?;
    let (members, note) = NameBindings::in_store(room.dir(), &mut log)?;
    if let Some(note) = note {
        say!("{note}");
    }
    net::Binder::invite(&members, name, &fp).map_err(Error::msg)?;
    let batch = room_log::Batch { names: members.take_changes(), ..room_log::Batch::default() };
    log.append(&batch).map_err(|e| Error::msg(e.to_string()))?;
    say!(
        "invited {name} with the key {} (safety number {}) into the room in {}",
        tls::crypto::hex(&fp.0),
        fp.short(),
        room.dir().display()
    );
    Ok(())
}
