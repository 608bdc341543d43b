//! The `tlschat` binary: the command line, and nothing else.
//!
//! clap reads the arguments; each command's options go to its `run` in
//! [`tlschat::cmd`], where the work is done; a failure comes back as one
//! [`cmd::Error`] and ends here as one line on stderr, `tlschat: <reason>`,
//! and a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use tlschat::cmd::{self, Presentation, TlsOptions};
use tlschat::tls::{self, CipherSuite};
use tlschat::tui::app::Clock;

/// jemalloc, with its background thread returning the pages that a room's
/// join storms free (see the note on the dependency in Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "tlschat",
    version,
    about = "A terminal secure messenger over a hand-written, watchable TLS 1.3"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a command that chats shows what happens (listen, connect, demo:
/// the commands with a screen; `id` and `trust` print a few lines).
#[derive(Args)]
struct PresentationArgs {
    /// Plain lines on stdout instead of the full-screen interface (also
    /// chosen when stdin or stdout is not a terminal).
    #[arg(long)]
    headless: bool,

    /// Headless, one JSON object per event per line (see the README for the schema)
    #[arg(long)]
    json: bool,

    /// Do not ring the terminal bell when a line mentions you
    #[arg(long)]
    no_bell: bool,

    /// Show the chat's times in UTC (default: local time)
    #[arg(long)]
    utc: bool,
}

impl PresentationArgs {
    fn presentation(&self, local_offset: Option<i32>) -> Presentation {
        let tui = tlschat::tui::wanted(self.headless || self.json);
        let clock = if self.utc { Clock::UTC } else { Clock::local(local_offset) };
        Presentation { tui, json: self.json, bell: !self.no_bell, clock }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve a chat room (or, with --echo, an echo server)
    Listen(ListenArgs),
    /// Join a room: verify the server, then chat; a dropped connection is made again by itself, and what was missed is caught up
    Connect(ConnectArgs),
    /// The one-command tour: a room on a loopback port with two bots (each with its own key), and you joined
    Demo(DemoArgs),
    /// Show your identity (display name and key fingerprint); made on first use
    Id(IdArgs),
    /// Show or forget the pinned keys of the rooms you joined, and the members you know there
    Trust(TrustArgs),
    /// Bind NAME to a key in the room you host, so that `listen --closed` admits it
    Invite {
        /// The member's name
        name: String,
        /// The member's key fingerprint (64 hex digits, as their `tlschat id` prints)
        fingerprint: String,
    },
}

#[derive(Args)]
struct IdArgs {
    /// Replace your key with a new one (asks first; rooms will refuse the new key under your old name)
    #[arg(long)]
    new: bool,

    /// With --new: do not ask (required without a terminal)
    #[arg(long, requires = "new")]
    yes: bool,

    /// Set your display name (one word of 1-32 letters, marks and digits of one script, and '.', '_', '-')
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
    /// List the pinned rooms; with a room, the members whose keys you know there
    List {
        /// The room, as you connect to it (or its 64-hex-digit key fingerprint)
        #[arg(value_name = "HOST:PORT")]
        room: Option<String>,
    },
    /// Forget the pinned key of a room (after its key really changed); with NAME, forget that member's key
    Forget {
        /// The room, as you connect to it
        #[arg(value_name = "HOST:PORT")]
        room: String,
        /// A member of the room: the next key seen under the name is new to you
        name: Option<String>,
    },
    /// Accept the new key of a member whose key CHANGED (after checking it with them)
    Accept {
        /// The room, as you connect to it (or its key fingerprint)
        #[arg(value_name = "HOST:PORT")]
        room: String,
        /// The member
        name: String,
    },
    /// Show your safety number and a member's, and mark the member verified once you compared them
    Verify {
        /// The room, as you connect to it (or its key fingerprint)
        #[arg(value_name = "HOST:PORT")]
        room: String,
        /// The member
        name: String,
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

    /// The room's log (history and what members resume from) keeps at most this many messages
    #[arg(long, value_name = "N", default_value = "10000")]
    keep_messages: usize,

    /// The room's log keeps no message older than this many days (0: whatever their age)
    #[arg(long, value_name = "DAYS", default_value = "30")]
    keep_days: u32,

    /// The room's log keeps at most this many MiB of messages
    #[arg(long, value_name = "MIB", default_value = "64")]
    keep_mib: usize,

    /// Keep the room's log in memory only: no file, history and room sequence numbers start over when the room does (messages are acknowledged without waiting for the disk)
    #[arg(long, conflicts_with = "echo")]
    memory_only: bool,

    /// Members at most (the host not counted); more are refused with a reason
    #[arg(long, value_name = "N", default_value = "1000")]
    max_members: usize,

    /// New names one address may bind an hour (names already bound always pass)
    #[arg(long, value_name = "N", default_value = "10")]
    new_names_per_address: u32,

    /// Admit only members whose name is already bound here or invited (`/invite NAME FINGERPRINT`); with --cluster, bound on the bus
    #[arg(long, conflicts_with = "echo")]
    closed: bool,

    /// Refuse guests (clients without a key) with a line that says why, after the handshake
    #[arg(long, conflicts_with = "echo")]
    no_guests: bool,

    /// Names not used for this many days are freed when the room starts (0: never)
    #[arg(long, value_name = "DAYS", default_value = "365")]
    name_expiry_days: u32,

    /// Seats one key may hold at once (one per device)
    #[arg(long, value_name = "N", default_value = "4")]
    seats_per_key: usize,

    /// Connections at most, of every kind (default: the open-file limit, raised to the hard limit, less 64)
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Connections from one address that have not proved a key (in the handshake, or guests)
    #[arg(long, value_name = "N", default_value = "64")]
    max_unverified_per_address: usize,

    /// Serve the room with other relays through this NATS JetStream server (nats://HOST:PORT): the bus orders the room, binds its names, keeps its history and bans, numbers its guests, and carries who is on which relay and /msg between them; every relay must hold the room's keys (docs/SCALING.md)
    #[arg(long, value_name = "URL", conflicts_with = "echo")]
    cluster: Option<String>,

    /// Make the room end to end: one MLS group (RFC 9420) that the relay orders and cannot read; members only (guests refused), one seat per key, at most 100 members, no history (a member reads from its join on); the host is not in the group (docs/PROTOCOL.md, "End-to-end rooms")
    #[arg(long, conflicts_with_all = ["echo", "cluster"])]
    e2e: bool,

    #[command(flatten)]
    tls: TlsArgs,

    #[command(flatten)]
    presentation: PresentationArgs,
}

#[derive(Args)]
struct ConnectArgs {
    /// The room: HOST:PORT or [IPv6]:PORT; more than one for a room served at several addresses (tried in turn when one fails)
    #[arg(value_name = "HOST:PORT", required = true, num_args = 1..)]
    targets: Vec<String>,

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

    /// Enable the tamper lab: /tamper flip|replay|reorder|finished|mitm breaks this connection on purpose and shows which check catches it, then reconnects
    #[arg(long)]
    lab: bool,

    #[command(flatten)]
    pace: PaceArgs,

    #[command(flatten)]
    tls: TlsArgs,

    #[command(flatten)]
    presentation: PresentationArgs,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    pace: PaceArgs,

    #[command(flatten)]
    tls: TlsArgs,

    #[command(flatten)]
    presentation: PresentationArgs,
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
    fn step_delay(&self) -> Option<Duration> {
        self.step_delay.map(Duration::from_millis)
    }
}

#[derive(Args)]
struct TlsArgs {
    /// Append session secrets to FILE in the NSS key log format, for Wireshark (default: $SSLKEYLOGFILE)
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,

    /// Write the session to FILE (made 0600) as a pcapng capture that Wireshark and tshark open decrypted: the real TLS bytes in TCP/IP frames, the secrets embedded. listen: every connection, each its own TCP stream; demo: your own connection
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,

    /// Allow only this cipher suite; repeat for several, most preferred first (default: chacha20, aes128)
    #[arg(long = "suite", value_enum, value_name = "SUITE")]
    suites: Vec<Suite>,

    /// Show this session's secret values: in the handshake panel, the key schedule view (F4) with a command to recompute each, and headless lines (demo: on by default)
    #[arg(long, overrides_with = "no_reveal")]
    reveal: bool,

    /// Hide secret values (demo shows them unless this is given)
    #[arg(long, overrides_with = "reveal")]
    no_reveal: bool,

    /// Write the key schedule's commands (those of F4) to FILE (made 0600) as a shell script that runs each and checks it prints the engine's value (`sh FILE`); implies --reveal. Headless, --reveal also prints them
    #[arg(long, value_name = "FILE", conflicts_with = "no_reveal")]
    reveal_script: Option<PathBuf>,

    /// Abandon a handshake that has not completed after SECS seconds (a client does not count the time it waits for you: --step, the first-contact question)
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

    fn options(&self) -> TlsOptions {
        TlsOptions {
            keylog: self.keylog.clone(),
            pcap: self.pcap.clone(),
            suites: self.suites(),
            handshake_timeout: self.handshake_timeout,
            reveal: match (self.reveal, self.no_reveal) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            reveal_script: self.reveal_script.clone(),
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() && secs < 1e9 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn main() -> ExitCode {
    // The local time's offset is read while this is the only thread: the
    // time crate reads it only then, as the C library's tz reading is not
    // thread-safe.
    let local_offset = time::UtcOffset::current_local_offset().ok().map(time::UtcOffset::whole_seconds);
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tlschat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Listen(args) => {
                let out = args.presentation.presentation(local_offset);
                cmd::listen::run(args.options(), out).await
            }
            Command::Connect(args) => {
                let out = args.presentation.presentation(local_offset);
                cmd::connect::run(args.options(), out).await
            }
            Command::Demo(args) => {
                let out = args.presentation.presentation(local_offset);
                cmd::demo::run(args.options(), out).await
            }
            Command::Id(args) => cmd::id::run(args.options(), tlschat::tui::wanted(false)),
            Command::Trust(args) => cmd::trust::run(args.options()),
            Command::Invite { name, fingerprint } => cmd::listen::invite(&name, &fingerprint),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The causes go on the same line: one line, as promised.
            eprintln!("tlschat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl ListenArgs {
    fn options(self) -> cmd::listen::Options {
        cmd::listen::Options {
            tls: self.tls.options(),
            addr: self.addr,
            echo: self.echo,
            cert: self.cert,
            key: self.key,
            ca_out: self.ca_out,
            require_identity: self.require_identity,
            cert_out: self.cert_out,
            history: self.history,
            keep: tlschat::chat::relay::Retention {
                messages: self.keep_messages,
                bytes: self.keep_mib.saturating_mul(1 << 20),
                age_ms: u64::from(self.keep_days) * tlschat::chat::relay::Retention::DAY_MS,
            },
            memory_only: self.memory_only,
            max_members: self.max_members,
            new_names_per_address: self.new_names_per_address,
            closed: self.closed,
            no_guests: self.no_guests,
            seats_per_key: self.seats_per_key,
            name_expiry_days: self.name_expiry_days,
            cluster: self.cluster,
            e2e: self.e2e,
            limits: {
                // A room's connections are its members: as many as the
                // system allows. Where it cannot be raised, the cap says so
                // in the first refusal.
                let _ = tlschat::net::raise_open_file_limit();
                let default = tlschat::net::Limits::default();
                tlschat::net::Limits {
                    max_connections: self.max_connections.unwrap_or(default.max_connections),
                    unverified_per_address: self.max_unverified_per_address,
                }
            },
        }
    }
}

impl ConnectArgs {
    fn options(self) -> cmd::connect::Options {
        cmd::connect::Options {
            tls: self.tls.options(),
            step_delay: self.pace.step_delay(),
            step: self.pace.step,
            target: self.targets.first().cloned().unwrap_or_default(),
            also: self.targets.into_iter().skip(1).collect(),
            ca: self.ca,
            fingerprint: self.fingerprint,
            trust_on_first_use: self.trust_on_first_use,
            server_name: self.server_name,
            lab: self.lab,
        }
    }
}

impl DemoArgs {
    fn options(self) -> cmd::demo::Options {
        cmd::demo::Options {
            step_delay: self.pace.step_delay(),
            step: self.pace.step,
            tls: self.tls.options(),
        }
    }
}

impl IdArgs {
    fn options(self) -> cmd::id::Options {
        cmd::id::Options { new: self.new, yes: self.yes, name: self.name }
    }
}

impl TrustArgs {
    fn options(self) -> cmd::trust::Options {
        match self.command {
            TrustCommand::List { room: None } => cmd::trust::Options::List,
            TrustCommand::List { room: Some(room) } => cmd::trust::Options::Members { room },
            TrustCommand::Forget { room, name: None } => cmd::trust::Options::Forget { room },
            TrustCommand::Forget { room, name: Some(name) } => {
                cmd::trust::Options::ForgetMember { room, name }
            }
            TrustCommand::Accept { room, name } => cmd::trust::Options::Accept { room, name },
            TrustCommand::Verify { room, name } => cmd::trust::Options::Verify { room, name },
        }
    }
}
