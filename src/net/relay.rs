//! The room's task: the one owner of the [`Relay`], so the room has one
//! total order. Connections register here when their handshake completes
//! and hand over what their peers send; the task carries out the relay's
//! decisions: each seat has a bounded queue of frames (or lines) that its
//! connection writes, and a seat whose queue is full is disconnected
//! rather than allowed to hold up the room.
//!
//! The task only orders. A post's signature is checked by the task of
//! the seat that sent it, which hands the room the proof
//! ([`crate::chat::relay::Inbound`]). The host, `tlschat listen`'s own
//! user, is a seat like any other, with a task of its own
//! ([`super::host`]) where its [`Member`] signs what it types and checks
//! what the room sends it. The operator's screen is sent what the room
//! has to say without waiting ([`super::screen`]: what does not fit is
//! counted, and the count told). The rate limits count on a monotonic
//! clock.
//!
//! A room with its log on disk ([`start_durable`]) hands each message to
//! the log's writer thread ([`crate::store::room_log::Writer`]) and holds back what
//! the relay decided, in order, until the writer has committed the
//! `room_seq` it carries: an `Ack`, a delivery or a presence is never
//! sent for a `room_seq` a crash could take back. The room's task itself
//! never waits on the disk; only when [`MAX_UNCOMMITTED`] room sequence
//! numbers wait for the disk does it stop taking inputs until it catches up.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, watch};

use super::screen::Screen;
use super::{Intent, NetEvent};
use crate::chat::frame::RefusalCode;
use crate::chat::peers::{self, Asked, Done, Peers};
use crate::chat::relay::{self, BusEntry, Decision, HOST, Inbound, Joiner, Relay, Remote, SeatId, Transport};
use crate::chat::{ChatEvent, Frame, Member};
use crate::clock::unix_now_ms;
use crate::net::cluster::{Cluster, Entries, Ordered, Signal, Signals};
use crate::store::room_log::{Batch, Progress, RoomLog, StoreError, Writer};
use crate::teach::lab::DeliveryHook;
use crate::tls::OsRng;
use crate::tls::{Ed25519Key, Fingerprint};

/// Frames waiting for one seat's connection. A member this far behind has
/// stopped reading: it is disconnected, and the room goes on.
pub const SEAT_QUEUE: usize = 512;

/// Inputs waiting for the room task.
const ROOM_QUEUE: usize = 1024;

/// Room sequence numbers given but not yet on disk, at most: past this the
/// room takes no input until the log's writer catches up (a disk that
/// stalls or fails stalls the room rather than growing its memory).
pub const MAX_UNCOMMITTED: u64 = 4096;

/// The most members a `/who` lists in a room on a bus (the count says
/// all): half a seat's queue of roster frames.
const MAX_WHO: usize = SEAT_QUEUE / 2 * crate::chat::frame::MAX_ROSTER;

/// How often the room lets go of messages older than its retention.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// What the room asks of one connection.
#[derive(Debug)]
pub(super) enum ToSeat {
    /// Send these bytes (one frame, or one guest line).
    Bytes(Arc<[u8]>),
    /// Send a KeyUpdate (the host's `/rekey`).
    KeyUpdate,
    /// Close: what was queued before is sent first.
    Close,
}

/// What a connection tells the room.
#[derive(Debug)]
pub(super) enum RoomInput {
    /// The handshake completed: seat it.
    Join {
        id: SeatId,
        joiner: Joiner,
        transport: Transport,
        out: mpsc::Sender<ToSeat>,
        kick: Arc<Notify>,
        from: IpAddr,
    },
    /// A frame from a member, a post's signature checked by its seat's task.
    Frame { id: SeatId, frame: Inbound },
    /// A member sent bytes that are not a frame: it is expelled.
    Malformed { id: SeatId, why: String },
    /// A line from a guest.
    Line { id: SeatId, line: String },
    /// The connection is over.
    Leave { id: SeatId, reason: String },
    /// What only the room can do for its host (`/kick`, `/ban`,
    /// `/invite`, `/rekey`), from the host's seat.
    Host(Intent),
}

/// Binds members' names to their keys as they take their seats (the
/// room's names, [`crate::store::names::NameBindings`]). The handshake has
/// already refused names that can never be admitted; what is left to say
/// no to is a new name from an address that binds too many.
pub trait Binder: Send + Sync + std::fmt::Debug {
    /// Binds `name` to `key` for a member connecting from `from` at `now`
    /// (Unix seconds), or says why not, in one line.
    fn bind(&self, name: &str, key: &Fingerprint, from: IpAddr, now: u64) -> Result<(), String>;

    /// Keeps the host's ban of `key` (known here as `name`), so that it
    /// outlasts the room's process.
    fn ban(&self, name: &str, key: &[u8; 32]) -> Result<(), String>;

    /// Binds `name` to `key` at the host's word (`/invite`), so that a
    /// closed room admits it.
    fn invite(&self, name: &str, key: &Fingerprint) -> Result<(), String>;

    /// The names bound or freed since the last call, for a room whose log
    /// is on disk to commit in its next batch, before anything that
    /// follows is sent. None where names are kept elsewhere.
    fn take_changes(&self) -> Vec<crate::store::room_log::NameChange> {
        Vec::new()
    }

    /// The number of the next guest, when the room's guests are numbered
    /// by something shared with other relays (a cluster's bus); `None`:
    /// the relay numbers its own.
    fn guest(&self) -> Option<Result<u64, String>> {
        None
    }
}

/// The host's identity in its room.
#[derive(Debug)]
pub struct Host {
    /// The display name, bound to `key` in the room's names.
    pub name: String,
    /// The identity key its messages are signed with.
    pub key: Ed25519Key,
    /// What the host types: [`Intent::Say`], [`Intent::Who`],
    /// [`Intent::KeyUpdate`] (every member).
    pub intents: mpsc::Receiver<Intent>,
}

/// A running room: where connections register, and how many are in.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    pub(super) inputs: mpsc::Sender<RoomInput>,
    members: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl RoomHandle {
    /// Everyone present, the host included (the status page says it).
    pub fn members(&self) -> usize {
        self.members.load(Ordering::Relaxed)
    }

    /// Events the operator's screen was too far behind to be sent: the
    /// room went on without them (the operator is told how many).
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn next_seat(&self) -> SeatId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Starts the room's task. `local` names the host's seat in its events;
/// `binder` binds members' names as they take their seats.
///
/// The room's log is kept in memory only: lost when the room stops.
pub fn start(
    config: relay::Config,
    host: Option<Host>,
    binder: Option<Arc<dyn Binder>>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
) -> RoomHandle {
    spawn(Relay::new(config), None, host, binder, local, events, None, None)
}

/// Like [`start`], for the tamper lab's room (`demo`): every frame the
/// room delivers to a seat passes through `hook` first, which may send
/// another in its place (see `crate::teach::lab::LyingRelay`). No other
/// room has a hook.
pub fn start_with_hook(
    config: relay::Config,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    hook: Arc<dyn DeliveryHook>,
) -> RoomHandle {
    spawn(Relay::new(config), None, None, None, local, events, None, Some(hook))
}

/// What a room found in its log when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reopened {
    /// The last `room_seq` it had given: the room goes on from the next.
    pub(crate) room_seq: u64,
    /// Messages of history it kept (within the retention).
    pub(crate) messages: usize,
}

/// Like [`start`], with the room's log kept in `log`: the room goes on
/// from the `room_seq` and the messages the log holds (compacted to the
/// retention first), and from then on acknowledges a message, and sends
/// anything carrying its `room_seq`, only once it is committed there.
pub fn start_durable(
    config: relay::Config,
    mut log: RoomLog,
    host: Option<Host>,
    binder: Option<Arc<dyn Binder>>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
) -> Result<(RoomHandle, Reopened), StoreError> {
    let stored = log.load()?;
    log.compact()?;
    let committed = stored.room_seq;
    let relay = Relay::restore(config, stored.room_seq, stored.forgotten, stored.entries, unix_now_ms());
    let reopened = Reopened { room_seq: relay.room_seq(), messages: relay.log().len() };
    let writer = Writer::start(log, committed)?;
    let durable = Durable {
        progress: writer.progress(),
        writer,
        handed: committed,
        batches: 0,
        forgotten: stored.forgotten,
        waiting: VecDeque::new(),
        told: false,
    };
    Ok((spawn(relay, Some(durable), host, binder, local, events, None, None), reopened))
}

/// The bus a room shares with other relays (`listen --cluster`, see
/// [`crate::net::cluster`]): its entries from some sequence on, and the last
/// sequence it held when the relay started, which the room reads up to
/// (its history) before it seats anyone.
#[derive(Debug)]
pub struct Bus {
    /// The room's stream and names.
    pub(crate) cluster: Arc<Cluster>,
    /// The stream's entries, in order.
    pub(crate) entries: Entries,
    /// The stream's last sequence when the relay started.
    pub(crate) upto: u64,
    /// What the room's other relays send this one (see
    /// [`crate::chat::peers`]).
    pub(crate) signals: Signals,
}

/// Starts the room's task for a room ordered by `bus` (its
/// `relay::Config::bus` is set here): what the relay accepts is
/// published, and what the bus orders is fanned out.
pub fn start_on_bus(
    mut config: relay::Config,
    host: Option<Host>,
    binder: Option<Arc<dyn Binder>>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    bus: Bus,
) -> RoomHandle {
    config.bus = true;
    spawn(Relay::new(config), None, host, binder, local, events, Some(bus), None)
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    relay: Relay,
    durable: Option<Durable>,
    host: Option<Host>,
    binder: Option<Arc<dyn Binder>>,
    local: SocketAddr,
    events: mpsc::Sender<NetEvent>,
    bus: Option<Bus>,
    hook: Option<Arc<dyn DeliveryHook>>,
) -> RoomHandle {
    let (inputs, rx) = mpsc::channel(ROOM_QUEUE);
    let bus = bus.map(|bus| {
        let (ordered_tx, ordered) = mpsc::channel(ROOM_QUEUE);
        let (refused_tx, refused) = mpsc::channel(ROOM_QUEUE);
        let (signals_tx, signals) = mpsc::channel(ROOM_QUEUE);
        tokio::spawn(read_bus(bus.entries, ordered_tx, events.clone()));
        tokio::spawn(read_signals(bus.signals, signals_tx));
        BusLink {
            cluster: bus.cluster,
            ordered: Some(ordered),
            refused: Some(refused),
            refused_tx,
            upto: bus.upto,
            signals: Some(signals),
            peers: Peers::default(),
            asked: Asked::default(),
            told: None,
            beats: 0,
            due: true,
            complained_ms: None,
        }
    });
    let members = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let handle = RoomHandle {
        inputs: inputs.clone(),
        members: members.clone(),
        dropped: dropped.clone(),
        next_id: Arc::new(1.into()),
    };
    let task = RoomTask {
        relay,
        durable,
        seats: HashMap::new(),
        binder,
        screen: Screen::new(events, local, dropped),
        inputs: inputs.downgrade(),
        started: Instant::now(),
        members,
        hook,
        bus,
    };
    tokio::spawn(task.run(rx, host));
    handle
}

/// The room's log on disk, as the room's task drives it.
struct Durable {
    writer: Writer,
    progress: watch::Receiver<Progress>,
    /// The last `room_seq` handed to the writer.
    handed: u64,
    /// Batches handed to the writer.
    batches: u64,
    /// The last `forgotten` handed to it.
    forgotten: u64,
    /// What the relay decided, in order, each held until the `room_seq`
    /// with it, and the batches handed before it, are committed.
    waiting: VecDeque<((u64, u64), Vec<Decision>)>,
    /// Whether the operator was told that writing fails.
    told: bool,
}

impl Durable {
    fn committed(&self) -> u64 {
        self.progress.borrow().committed
    }

    /// Whether what was decided at `mark` (a `room_seq` and the batches
    /// handed then) is on disk.
    fn covers(&self, (room_seq, batches): (u64, u64)) -> bool {
        let progress = self.progress.borrow();
        room_seq <= progress.committed && batches <= progress.batches
    }
}

/// Hands the bus's entries to the room task, in order, until the bus is
/// gone: each decoded and its post's signature checked here
/// ([`BusEntry::check`]), so that the room's task only orders.
async fn read_bus(mut entries: Entries, ordered: mpsc::Sender<BusEntry>, events: mpsc::Sender<NetEvent>) {
    while let Some(entry) = entries.next().await {
        match entry {
            Ok(Ordered { seq, frame, origin }) => {
                if ordered.send(BusEntry::check(seq, &frame, origin)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ =
                    events.send(NetEvent::RoomNote { note: format!("reading the room's bus: {e}") }).await;
            }
        }
    }
    let note = "the room's bus is gone: nothing said from now on reaches the room".to_owned();
    let _ = events.send(NetEvent::RoomNote { note }).await;
}

/// Hands the other relays' signals to the room task, until the bus is gone.
async fn read_signals(mut signals: Signals, tx: mpsc::Sender<Signal>) {
    while let Some(signal) = signals.next().await {
        if tx.send(signal).await.is_err() {
            return;
        }
    }
}

/// A publish the bus did not take: the seat, the entry and why.
type Unpublished = (SeatId, Arc<[u8]>, String);

/// The room task's side of its [`Bus`].
struct BusLink {
    cluster: Arc<Cluster>,
    /// Taken by the task's loop.
    ordered: Option<mpsc::Receiver<BusEntry>>,
    /// Publishes the bus did not take.
    refused: Option<mpsc::Receiver<Unpublished>>,
    refused_tx: mpsc::Sender<Unpublished>,
    upto: u64,
    /// What the other relays send; taken by the task's loop.
    signals: Option<mpsc::Receiver<Signal>>,
    /// Who is seated on the other relays.
    peers: Peers,
    /// Questions to the other relays.
    asked: Asked,
    /// The relay's count of joins and leaves when its list was last sent.
    told: Option<u64>,
    /// Heartbeats sent.
    beats: u32,
    /// A relay appeared: the whole list goes with the next heartbeat.
    due: bool,
    /// When the operator was last told of something another relay sent
    /// that was refused (told at most every [`COMPLAIN_EVERY_MS`]).
    complained_ms: Option<u64>,
}

/// How often the operator hears of what other relays sent that was refused.
const COMPLAIN_EVERY_MS: u64 = 10_000;

impl BusLink {
    /// A note of something another relay sent that was refused, unless
    /// one was made in the last [`COMPLAIN_EVERY_MS`].
    fn complain(&mut self, now: u64, note: String) -> Option<Decision> {
        if self.complained_ms.is_some_and(|at| now.saturating_sub(at) < COMPLAIN_EVERY_MS) {
            return None;
        }
        self.complained_ms = Some(now);
        Some(Decision::Note(note))
    }
}

/// How long the room waits for the bus's next entry while it reads the
/// room's history at start, before it opens without the rest.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How the room reaches one seat's connection.
struct SeatLink {
    out: mpsc::Sender<ToSeat>,
    kick: Arc<Notify>,
}

struct RoomTask {
    relay: Relay,
    /// The room's log on disk; `None`: in memory only.
    durable: Option<Durable>,
    seats: HashMap<SeatId, SeatLink>,
    binder: Option<Arc<dyn Binder>>,
    /// The operator's screen, never waited for.
    screen: Screen,
    /// The room's own inputs, for the host's seat's task.
    inputs: mpsc::WeakSender<RoomInput>,
    /// The rate limits' clock: time since the room started.
    started: Instant,
    members: Arc<AtomicUsize>,
    /// The tamper lab's hook on what is delivered to seats (`demo` only).
    hook: Option<Arc<dyn DeliveryHook>>,
    /// The bus that orders the room, when it is shared by several relays.
    bus: Option<BusLink>,
}

impl RoomTask {
    async fn run(mut self, mut inputs: mpsc::Receiver<RoomInput>, host: Option<Host>) {
        let (mut ordered, mut refused, mut signals) = match self.bus.as_mut() {
            Some(bus) => (bus.ordered.take(), bus.refused.take(), bus.signals.take()),
            None => (None, None, None),
        };
        let mut beat = tokio::time::interval(Duration::from_millis(peers::HEARTBEAT_MS));
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The room as the bus holds it, before anyone is seated.
        let upto = self.bus.as_ref().map_or(0, |bus| bus.upto);
        while self.relay.room_seq() < upto {
            let Some(rx) = ordered.as_mut() else { break };
            match tokio::time::timeout(CATCH_UP_WAIT, rx.recv()).await {
                Ok(Some(entry)) => self.bus_entry(entry).await,
                _ => {
                    let note = format!(
                        "read the room's bus up to {} of {upto}; opening with that",
                        self.relay.room_seq()
                    );
                    self.screen.note(note);
                    break;
                }
            }
        }
        if let Some(host) = host {
            self.seat_host(host).await;
        }
        let mut progress = self.durable.as_ref().map(|d| d.progress.clone());
        let mut expiry = tokio::time::interval(EXPIRE_EVERY);
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A disk this far behind holds the room's inputs back.
            let open = self
                .durable
                .as_ref()
                .is_none_or(|d| self.relay.room_seq().saturating_sub(d.committed()) < MAX_UNCOMMITTED);
            tokio::select! {
                input = inputs.recv(), if open => match input {
                    Some(input) => self.input(input).await,
                    None => return,
                },
                () = progressed(&mut progress) => self.committed().await,
                _ = expiry.tick() => {
                    self.screen.tell_dropped();
                    if self.relay.expire(unix_now_ms()) {
                        self.hand_to_log();
                    }
                    let out = self.relay.group_tick(unix_now_ms());
                    self.carry_out(out).await;
                }
                entry = next_of(&mut ordered) => match entry {
                    Some(entry) => self.bus_entry(entry).await,
                    None => ordered = None,
                },
                signal = next_of(&mut signals) => match signal {
                    Some(signal) => self.signal(signal).await,
                    None => signals = None,
                },
                _ = beat.tick(), if self.bus.is_some() => self.beat().await,
                failed = next_of(&mut refused) => match failed {
                    Some((id, entry, why)) => {
                        let out = self.relay.unpublished(id, &entry, &why, unix_now_ms());
                        self.carry_out(out).await;
                    }
                    None => refused = None,
                },
            }
        }
    }

    /// Hands the writer what the relay logged since last time: new
    /// messages, the room's `room_seq`, how far the retention let go, and
    /// the names bound meanwhile.
    fn hand_to_log(&mut self) {
        let Some(durable) = self.durable.as_mut() else { return };
        let (room_seq, forgotten) = (self.relay.room_seq(), self.relay.log().forgotten());
        let names = self.binder.as_ref().map(|b| b.take_changes()).unwrap_or_default();
        if room_seq == durable.handed && forgotten == durable.forgotten && names.is_empty() {
            return;
        }
        let entries = self.relay.entries_after(durable.handed).0.cloned().collect();
        durable.batches += 1;
        if !durable.writer.write(Batch { entries, room_seq, forgotten, names }) && !durable.told {
            durable.told = true;
            let note = "the room's log writer has stopped: nothing more is acknowledged".to_owned();
            self.screen.note(note);
        }
        durable.handed = room_seq;
        durable.forgotten = forgotten;
    }

    /// The writer committed more (or failed to): sends what waited for it.
    async fn committed(&mut self) {
        let Some(durable) = self.durable.as_mut() else { return };
        let Progress { failing, .. } = durable.progress.borrow().clone();
        let mut notes = Vec::new();
        match (&failing, durable.told) {
            (Some(why), false) => {
                durable.told = true;
                notes.push(Decision::Note(format!(
                    "{why}; messages wait, unacknowledged, until it can be written (tried every second)"
                )));
            }
            (None, true) => {
                durable.told = false;
                notes.push(Decision::Note("the room's log is written again".to_owned()));
            }
            _ => {}
        }
        let mut ready = Vec::new();
        while durable.waiting.front().is_some_and(|(mark, _)| durable.covers(*mark)) {
            if let Some((_, outputs)) = durable.waiting.pop_front() {
                ready.extend(outputs);
            }
        }
        let follow = self.execute(notes).await;
        self.carry_out(follow).await;
        let follow = self.execute(ready).await;
        self.carry_out(follow).await;
        self.members.store(self.relay.present(), Ordering::Relaxed);
    }

    /// The time for the relay: the wall clock for what it keeps and
    /// shows, the room's monotonic clock for its rate limits.
    fn now(&self) -> relay::Now {
        relay::Now { unix_ms: unix_now_ms(), mono: self.started.elapsed() }
    }

    async fn input(&mut self, input: RoomInput) {
        let clock = self.now();
        let now = clock.unix_ms;
        let out = match input {
            RoomInput::Join { id, joiner, transport, out, kick, from } => {
                let bound = match (&joiner, &self.binder) {
                    (Joiner::Verified { name, key }, Some(binder)) => {
                        binder.bind(name, &Fingerprint::of_ed25519(key), from, now / 1000)
                    }
                    (Joiner::Guest, Some(binder)) => match binder.guest() {
                        Some(Ok(n)) => {
                            self.relay.number_next_guest(n);
                            Ok(())
                        }
                        Some(Err(why)) => Err(why),
                        None => Ok(()),
                    },
                    _ => Ok(()),
                };
                let seated = bound.map_err(|why| (RefusalCode::Disconnected, why)).and_then(|()| {
                    let joined = self.relay.join(id, joiner, transport, clock);
                    joined.map_err(|e| {
                        let code = match e {
                            relay::JoinError::Full(_) => RefusalCode::RoomFull,
                            _ => RefusalCode::Disconnected,
                        };
                        (code, e.to_string())
                    })
                });
                match seated {
                    Ok(outputs) => {
                        self.seats.insert(id, SeatLink { out, kick });
                        outputs
                    }
                    Err((code, refusal)) => {
                        let _ = out.try_send(ToSeat::Bytes(relay::refusal(transport, code, refusal.clone())));
                        let _ = out.try_send(ToSeat::Close);
                        vec![Decision::Note(format!("refused a member: {refusal}"))]
                    }
                }
            }
            RoomInput::Frame { id, frame } if self.bus.is_some() && frame.as_frame() == Some(&Frame::Who) => {
                self.who(id, now)
            }
            RoomInput::Frame { id, frame } => self.relay.frame(id, frame, clock),
            RoomInput::Malformed { id, why } => self.relay.expel(id, RefusalCode::BadMessage, &why, now),
            RoomInput::Line { id, line } => self.relay.guest_line(id, &line, clock),
            RoomInput::Leave { id, reason } => {
                self.seats.remove(&id);
                self.relay.leave(id, &reason, now)
            }
            RoomInput::Host(intent) => self.host_intent(intent, now).await,
        };
        self.carry_out(out).await;
    }

    /// An entry the bus ordered: numbered and fanned out by the relay.
    async fn bus_entry(&mut self, entry: BusEntry) {
        let out = self.relay.ordered(entry, unix_now_ms());
        self.carry_out(out).await;
    }

    /// What only the room can do for its host; the host's seat's task
    /// hands these on (see [`super::host`]).
    async fn host_intent(&mut self, intent: Intent, now: u64) -> Vec<Decision> {
        match intent {
            Intent::Remove { name, ban } => match self.relay.remove(&name, ban, now) {
                Ok((key, mut out)) => {
                    out.extend(self.spread_removal(key, ban, &name).await);
                    if ban {
                        let kept = match &self.binder {
                            Some(binder) => binder.ban(&name, &key),
                            None => {
                                Err("this room keeps no names, so the ban lasts until it stops".to_owned())
                            }
                        };
                        if let Err(why) = kept {
                            out.push(Decision::Note(format!("the ban of {name} is not kept: {why}")));
                        }
                    }
                    out
                }
                Err(why) => match self.bus.as_ref().and_then(|bus| bus.peers.named(&name)) {
                    // Seated on another relay of the room: removed there.
                    Some(key) => self.remove_elsewhere(key, ban, &name, now).await,
                    None => {
                        self.screen.host(ChatEvent::Refused { code: RefusalCode::NoSuchMember, text: why });
                        Vec::new()
                    }
                },
            },
            Intent::Invite { name, fingerprint } => {
                let done = match &self.binder {
                    Some(binder) => binder.invite(&name, &fingerprint),
                    None => Err("this room keeps no names to invite into".to_owned()),
                };
                match done {
                    Ok(()) => {
                        vec![Decision::Note(format!("invited {name} with the key {}", fingerprint.short()))]
                    }
                    Err(why) => {
                        let text = format!("not invited: {why}");
                        self.screen.host(ChatEvent::Refused { code: RefusalCode::BadMessage, text });
                        Vec::new()
                    }
                }
            }
            Intent::KeyUpdate { .. } => {
                for seat in self.seats.values() {
                    let _ = seat.out.try_send(ToSeat::KeyUpdate);
                }
                Vec::new()
            }
            // What the host's seat does itself.
            _ => Vec::new(),
        }
    }

    /// Seats the host, with a task of its own (see [`super::host`]). An
    /// end-to-end room's host runs its relay and is not in its group: it
    /// is not seated, and its task refuses what it says.
    async fn seat_host(&mut self, host: Host) {
        let (member, from_room) = if self.relay.e2e() {
            (None, None)
        } else {
            let joiner = Joiner::Host { name: host.name, key: host.key.public_key() };
            let member = Member::new(self.relay.room(), host.key, &mut OsRng);
            let (out, from_room) = mpsc::channel(SEAT_QUEUE);
            self.seats.insert(HOST, SeatLink { out, kick: Arc::new(Notify::new()) });
            if let Ok(out) = self.relay.join(HOST, joiner, Transport::Frames, self.now()) {
                self.carry_out(out).await;
            }
            (Some(member), Some(from_room))
        };
        let seat = super::host::HostSeat {
            member,
            from_room,
            intents: host.intents,
            room: self.inputs.clone(),
            screen: self.screen.sibling(),
        };
        tokio::spawn(seat.run());
    }

    /// Carries out the relay's decisions, in order: at once, or, with the
    /// log on disk, once the room's last `room_seq` is committed (behind
    /// anything already waiting). A seat whose queue is full is expelled,
    /// which may decide more.
    async fn carry_out(&mut self, outputs: Vec<Decision>) {
        let mut next = outputs;
        while !next.is_empty() {
            self.hand_to_log();
            if let Some(durable) = self.durable.as_mut() {
                let mark = (self.relay.room_seq(), durable.batches);
                if !durable.covers(mark) || !durable.waiting.is_empty() {
                    durable.waiting.push_back((mark, next));
                    break;
                }
            }
            next = self.execute(next).await;
        }
        self.members.store(self.relay.present(), Ordering::Relaxed);
    }

    /// Carries out `outputs` now, in order; returns what the relay decided
    /// meanwhile (seats expelled as too slow).
    async fn execute(&mut self, outputs: Vec<Decision>) -> Vec<Decision> {
        let mut work = VecDeque::from(outputs);
        let mut follow = Vec::new();
        while let Some(output) = work.pop_front() {
            match output {
                Decision::Send(id, mut bytes) => {
                    if let Some(forged) = self.hook.as_ref().and_then(|hook| hook.deliver(&bytes)) {
                        bytes = forged.into();
                    }
                    let Some(seat) = self.seats.get(&id) else { continue };
                    match seat.out.try_send(ToSeat::Bytes(bytes)) {
                        Ok(()) => {}
                        // The host's seat is not cut off: what its screen
                        // could not keep up with is counted, and told.
                        Err(TrySendError::Full(_)) if id == HOST => self.screen.missed(),
                        Err(TrySendError::Full(_)) => {
                            // Too slow to read: it goes, the room does not wait.
                            // Its connection stops writing and closes.
                            seat.kick.notify_one();
                            self.seats.remove(&id);
                            let reason = format!("too slow: {SEAT_QUEUE} messages waiting unread");
                            follow.extend(self.relay.leave(id, &reason, unix_now_ms()));
                        }
                        // The connection has ended; what it said before it
                        // did is still on its way here, then its Leave.
                        Err(TrySendError::Closed(_)) => {}
                    }
                }
                Decision::Close(id, _) => {
                    if let Some(seat) = self.seats.remove(&id) {
                        // After what is queued; a member whose queue is full
                        // is cut at once.
                        if seat.out.try_send(ToSeat::Close).is_err() {
                            seat.kick.notify_one();
                        }
                    }
                }
                Decision::Note(note) => self.screen.note(note),
                Decision::Remote(id, remote) => {
                    let more = self.remote(id, remote).await;
                    work.extend(more);
                }
                Decision::Publish(id, entry) => {
                    let Some(bus) = &self.bus else { continue };
                    // Sent in the relay's order; the acknowledgement is
                    // awaited apart, so that the room goes on meanwhile.
                    match bus.cluster.publish(entry.to_vec(), id).await {
                        Ok(pending) => {
                            let refused = bus.refused_tx.clone();
                            tokio::spawn(async move {
                                if let Err(why) = pending.stored().await {
                                    let _ = refused.send((id, entry, why)).await;
                                }
                            });
                        }
                        Err(e) => {
                            work.extend(self.relay.unpublished(id, &entry, &e.to_string(), unix_now_ms()))
                        }
                    }
                }
            }
        }
        follow
    }

    /// `/who` in a room on a bus: this relay's seats, then those the other
    /// relays listed, [`MAX_WHO`] at most (the count says all).
    fn who(&self, id: SeatId, now: u64) -> Vec<Decision> {
        let Some(bus) = &self.bus else { return Vec::new() };
        if self.relay.name(id).is_none() {
            return Vec::new();
        }
        let mut members = self.relay.roster(now);
        let total = members.len() + bus.peers.count();
        let room = MAX_WHO.saturating_sub(members.len());
        members.extend(bus.peers.members().take(room).cloned());
        members.truncate(MAX_WHO);
        peers::roster_frames(&members, total).into_iter().map(|f| Decision::Send(id, f.into())).collect()
    }

    /// A heartbeat: relays gone quiet are forgotten, questions unanswered
    /// too long are answered no, and the other relays hear that this one
    /// is alive, with its whole list when it changed (or is due).
    async fn beat(&mut self) {
        let now = unix_now_ms();
        let changes = self.relay.changes();
        let Some(bus) = self.bus.as_mut() else { return };
        let mut out = Vec::new();
        let gone = bus.peers.expire(now);
        for (relay, n) in &gone {
            out.push(Decision::Note(format!(
                "the relay {relay} of this room went quiet: its {n} member(s) are no longer listed"
            )));
        }
        if !gone.is_empty() {
            self.relay.seated_elsewhere(bus.peers.members(), bus.peers.count());
        }
        out.extend(bus.asked.expire(now).into_iter().flat_map(done));
        bus.beats = bus.beats.wrapping_add(1);
        let whole = bus.due || bus.told != Some(changes) || bus.beats % peers::SNAPSHOT_EVERY == 0;
        let payloads = if whole {
            bus.told = Some(changes);
            bus.due = false;
            let roster = self.relay.roster(now);
            peers::roster_frames(&roster, roster.len())
        } else {
            vec![Vec::new()]
        };
        let cluster = bus.cluster.clone();
        for payload in payloads {
            // A bus that is gone is said once, by the stream's reader.
            if cluster.announce(payload).await.is_err() {
                break;
            }
        }
        self.carry_out(out).await;
    }

    /// What another relay of the room sent this one.
    async fn signal(&mut self, signal: Signal) {
        let now = unix_now_ms();
        let Some(bus) = self.bus.as_mut() else { return };
        let cluster = bus.cluster.clone();
        let mut out = Vec::new();
        match signal {
            Signal::Roster { relay, payload } => match bus.peers.heard(&relay, &payload, now) {
                Ok(heard) => {
                    if heard.new {
                        bus.due = true;
                        out.push(Decision::Note(format!(
                            "another relay of this room is on the bus: {relay}"
                        )));
                    }
                    if heard.listed {
                        self.relay.seated_elsewhere(bus.peers.members(), bus.peers.count());
                    }
                }
                Err(why) => {
                    let relay = crate::chat::printable(&relay);
                    out.extend(bus.complain(now, format!("from the relay {relay}: {why}")));
                }
            },
            Signal::Answer { id, payload } => {
                out.extend(bus.asked.answer(id, &payload).into_iter().flat_map(done))
            }
            Signal::Fetch { payload, reply } => {
                let Ok(key) = <[u8; 32]>::try_from(payload.as_slice()) else { return };
                let package = self.relay.take_package(SeatId::MAX, key, &mut out);
                if let Some(reply) = reply
                    && let Err(why) = cluster.answer(&reply, peers::package_answer(key, package)).await
                {
                    out.push(Decision::Note(format!("answering another relay's fetch: {why}")));
                }
            }
            Signal::Sealed { payload, reply } => {
                let reached = match peers::open_route(&payload) {
                    Ok((to, frame)) => self.relay.deliver_to_key(to, &frame, &mut out),
                    Err(why) => {
                        out.extend(
                            bus.complain(now, format!("refused a message another relay routed: {why}")),
                        );
                        0
                    }
                };
                if let Some(reply) = reply {
                    let _ = cluster.answer(&reply, peers::route_answer(reached)).await;
                }
            }
            Signal::Remove { payload } => match peers::open_removal(&payload) {
                Ok((ban, key, name)) => {
                    let reason = if ban { "banned by the host" } else { "removed by the host" };
                    out.extend(self.relay.remove_key(key, ban, reason, now));
                    if ban && let Some(binder) = &self.binder {
                        // Kept in this relay's members file too (and the
                        // bus, where it is already).
                        if let Err(why) = binder.ban(&name, &key) {
                            out.push(Decision::Note(format!("the ban of {name} is not kept: {why}")));
                        }
                    }
                    let what = if ban { "banned" } else { "removed" };
                    out.push(Decision::Note(format!("{name} was {what} by the host of another relay")));
                }
                Err(why) => out.extend(bus.complain(now, format!("refused another relay's removal: {why}"))),
            },
        }
        self.carry_out(out).await;
    }

    /// The host removed (or banned) `key`, known as `name`: every relay
    /// of the room is told to do the same.
    async fn spread_removal(&self, key: [u8; 32], ban: bool, name: &str) -> Vec<Decision> {
        let Some(bus) = &self.bus else { return Vec::new() };
        if key == [0; 32] {
            return Vec::new();
        }
        match bus.cluster.remove(peers::removal(&key, ban, name)).await {
            Ok(()) => Vec::new(),
            Err(why) => {
                vec![Decision::Note(format!("the other relays were not told to remove {name}: {why}"))]
            }
        }
    }

    /// The host removes `name`, seated on another relay only, as `key`.
    async fn remove_elsewhere(&mut self, key: [u8; 32], ban: bool, name: &str, now: u64) -> Vec<Decision> {
        let mut out = Vec::new();
        if ban {
            out.extend(self.relay.remove_key(key, true, "banned by the host", now));
            if let Some(Err(why)) = self.binder.as_ref().map(|binder| binder.ban(name, &key)) {
                out.push(Decision::Note(format!("the ban of {name} is not kept: {why}")));
            }
        }
        out.extend(self.spread_removal(key, ban, name).await);
        let what = if ban { "banned" } else { "removed" };
        out.push(Decision::Note(format!("{name} {what} (seated on another relay of the room)")));
        out
    }

    /// An end-to-end request for seats of another relay: asked of the
    /// relays holding the key (see [`crate::chat::peers`]), answered when
    /// they answer; or answered now when none holds it.
    async fn remote(&mut self, id: SeatId, remote: Remote) -> Vec<Decision> {
        let now = unix_now_ms();
        let Some(bus) = self.bus.as_mut() else { return Vec::new() };
        match remote {
            Remote::Fetch { key } => {
                // One relay is asked: a key's packages are on each of its seats.
                let relay = bus.peers.holding(&key).into_iter().next();
                if let Some((relay, q)) = relay.and_then(|r| bus.asked.fetch(id, key, now).map(|q| (r, q))) {
                    if bus.cluster.ask(&relay, crate::net::cluster::FETCH, q, key.to_vec()).await.is_ok() {
                        return Vec::new();
                    }
                    return bus.asked.answer(q, &[]).into_iter().flat_map(done).collect();
                }
                vec![Decision::Send(id, Frame::KeyPackage { key, package: Vec::new() }.wire())]
            }
            Remote::Seal { to, seq, frame, here } => {
                let relays = bus.peers.holding(&to);
                let route = peers::route(&to, &frame);
                if here {
                    // Delivered here already: the other seats are told, unanswered.
                    for relay in &relays {
                        let _ = bus.cluster.tell(relay, crate::net::cluster::SEALED, route.clone()).await;
                    }
                    return done(Done::Sealed { seat: id, seq, reached: true });
                }
                let Some(questions) = bus.asked.seal(id, seq, relays.len(), now) else {
                    return vec![Decision::Send(id, relay::sealed_nowhere())];
                };
                let mut out = Vec::new();
                for (relay, q) in relays.iter().zip(questions) {
                    if bus.cluster.ask(relay, crate::net::cluster::SEALED, q, route.clone()).await.is_err() {
                        out.extend(bus.asked.answer(q, &[]).into_iter().flat_map(done));
                    }
                }
                out
            }
        }
    }
}

/// What an answer from another relay (or its absence) means for a seat.
fn done(done: Done) -> Vec<Decision> {
    match done {
        Done::Package { seat, key, package } => {
            vec![Decision::Send(seat, Frame::KeyPackage { key, package }.wire())]
        }
        Done::Sealed { seat, seq, reached: true } if seq != 0 => {
            vec![Decision::Send(seat, Frame::Ack { room_seq: 0, seq, private: true }.wire())]
        }
        Done::Sealed { reached: true, .. } => Vec::new(),
        Done::Sealed { seat, reached: false, .. } => vec![Decision::Send(seat, relay::sealed_nowhere())],
    }
}

/// Returns when the log's writer has more to say; never, without a log
/// (or once its writer is gone). Cancel-safe.
async fn progressed(progress: &mut Option<watch::Receiver<Progress>>) {
    let changed = match progress {
        Some(rx) => rx.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

/// The next item of a channel; never, without one. Cancel-safe.
async fn next_of<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
