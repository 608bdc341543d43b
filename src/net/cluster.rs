//! A room served by several relays at once, through NATS JetStream
//! (`tlschat listen --cluster nats://HOST:PORT`).
//!
//! Every relay of a room terminates TLS for its own members and checks
//! what they post exactly as a lone relay does; what it accepts it does
//! not order itself, it publishes it here. The room's order is the order
//! of one JetStream stream per room:
//!
//! - **The stream's sequence is the room's sequence** (`room_seq`). A relay
//!   publishes an entry (a `Deliver`, `Guest` or `Presence` frame whose
//!   `room_seq` is still 0) on the subject `tlschat.<room id>.log`; the
//!   server stores it under the next sequence number of the stream, and
//!   every relay reads the stream in order and fans each entry out to its
//!   own members with that number. No relay is special: the stream's
//!   leader orders concurrent publishes from every relay, one after the
//!   other. A publish therefore carries no expected-last-sequence: that
//!   header is for a writer that numbers entries itself and wants the
//!   server to refuse it when someone else wrote first, which would make
//!   every relay retry under contention for no gain, since nobody here
//!   chooses a number. What a publish does carry is a message id
//!   (`Nats-Msg-Id`, this relay's id and a counter), so that within the
//!   stream's two-minute duplicate window a second copy of one publish
//!   would be dropped. The relay does not retry: a publish the bus does
//!   not acknowledge within `PUBLISH_TIMEOUT` is refused to its author.
//! - **Who published an entry** rides in a header (`Tlschat-Origin`: the
//!   relay's id and the seat), so that the relay that took a post can
//!   acknowledge it to its author with the number the bus gave it, once
//!   the entry is in the stream, and skip the author in the fan-out, as a
//!   lone relay does. Other relays see an origin that is not theirs.
//! - **Names** are bound in a key-value store per room, written with
//!   create-if-absent: two relays can never bind one name to two keys,
//!   because only one create of a name's key can succeed. Each look of a
//!   name (see [`crate::chat::name`]) is taken the same way, so that a
//!   look-alike of a bound name is refused on every relay too. The store
//!   is a second stream (`TLSCHAT_NAMES_<room id>`), one subject per key
//!   holding at most one entry, and a create is a publish that the server
//!   accepts only while that subject is empty (expected last subject
//!   sequence 0): what the NATS key-value API does underneath. The
//!   key-value API itself is not used because async-nats 0.52 cannot read
//!   the answer of nats-server 2.9 (Debian's) when it makes a bucket
//!   ("data did not match any variant"); two stream operations can.
//!
//! - **Beside the stream**, core NATS subjects (not stored) carry what is
//!   about the relays rather than the room's history (see
//!   `crate::chat::peers`): each relay's list of who is seated on it,
//!   with heartbeats (`tlschat.<room id>.roster.<relay id>`); questions to
//!   one relay (`tlschat.<room id>.relay.<relay id>.fetch` for a key
//!   package, `….sealed` for an MLS message to one of its seats) and their
//!   answers (`tlschat.<room id>.reply.<relay id>.<n>`); and the hosts'
//!   kicks and bans (`tlschat.<room id>.remove.<relay id>`). A ban is also kept in
//!   the names' stream (`b.<key hex>`), so that every relay refuses the
//!   key on joining, including relays started later.
//! - **Guests** are numbered by a third stream (`TLSCHAT_GUESTS_<room
//!   id>`, one entry kept): a relay seating a guest publishes to it, and
//!   the sequence the stream gives is the guest's number, unique across
//!   the room's relays (`guest-1`, `guest-2`, … whichever relay they are on).
//!
//! The bus is as untrusted as a relay for what was said: entries carry the
//! members' signed bytes unchanged, every member checks every signature,
//! the author's chain and the room's order itself, and a relay checks the
//! signature of every entry another relay published before fanning it out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::chat::name;
pub use crate::chat::relay::Retention;
use crate::chat::relay::SeatId;
use crate::tls::Fingerprint;
use crate::tls::crypto::hex;

/// The header that says which relay and seat published an entry.
pub const ORIGIN: &str = "Tlschat-Origin";

/// The largest entry the stream takes: a frame of the chat protocol.
const MAX_ENTRY: i32 = (crate::chat::frame::MAX_FRAME + crate::chat::frame::HEADER) as i32;

/// How long a publish may wait for the bus's acknowledgement.
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with the bus.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The address is not `nats://HOST:PORT`.
    #[error("{0:?} is not a NATS address (expected nats://HOST:PORT)")]
    Address(String),
    /// The server did not answer.
    #[error("cannot reach the NATS server at {url}: {why}")]
    Connect {
        /// The address.
        url: String,
        /// Why.
        why: String,
    },
    /// JetStream refused or failed an operation.
    #[error("the NATS server's JetStream {what}: {why} (is it started with -js?)")]
    JetStream {
        /// What was asked.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
}

fn js_error(what: &'static str) -> impl FnOnce(String) -> ClusterError {
    move |why| ClusterError::JetStream { what, why }
}

/// One entry of the room as the bus ordered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// Its stream sequence: the room_seq.
    pub seq: u64,
    /// The frame as it was published (room_seq 0).
    pub frame: Vec<u8>,
    /// The seat that said it, when it was this relay's.
    pub origin: Option<SeatId>,
}

/// A relay's link to its room's stream and names.
#[derive(Debug)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    /// The room's id in hex, which starts every subject.
    room: String,
    /// The guests' stream's subject.
    guests: String,
    stream: String,
    subject: String,
    /// The names' stream, and the start of its subjects.
    names: stream::Stream,
    names_prefix: String,
    /// This relay's id among the room's relays: random, for this process.
    relay: String,
    published: AtomicU64,
}

/// The stream of the room `room`: `TLSCHAT_<hex>`.
pub(crate) fn stream_name(room: &[u8; 32]) -> String {
    format!("TLSCHAT_{}", hex(room))
}

/// The subject entries are published on: `tlschat.<hex>.log`.
pub(crate) fn subject(room: &[u8; 32]) -> String {
    format!("tlschat.{}.log", hex(room))
}

/// The stream of the room's names: `TLSCHAT_NAMES_<hex>`.
pub(crate) fn names_stream_name(room: &[u8; 32]) -> String {
    format!("TLSCHAT_NAMES_{}", hex(room))
}

/// The subjects of the room's names start so: `tlschat.<hex>.names`.
fn names_prefix(room: &[u8; 32]) -> String {
    format!("tlschat.{}.names", hex(room))
}

/// The stream `config` names, made if it is not there. Relays of one room
/// may start at the same moment: when another made it between our look and
/// our create (the server then refuses ours), the one it made is taken.
async fn open_stream(
    js: &jetstream::Context,
    config: stream::Config,
    what: &'static str,
) -> Result<stream::Stream, ClusterError> {
    let mut tries = 0;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                if let Ok(stream) = js.get_stream(&config.name).await {
                    return Ok(stream);
                }
                tries += 1;
                if tries == 3 {
                    return Err(js_error(what)(e.to_string()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a name's binding on the bus says of `key`: not bound (false), bound
/// to it (true), or bound to another key (refused, saying whose it is).
fn owned_by(held: Option<(Fingerprint, String)>, key: &Fingerprint) -> Result<bool, String> {
    match held {
        None => Ok(false),
        Some(held) if held.0 == *key => Ok(true),
        Some(held) => Err(format!(
            "the name {} belongs to the key {} in this room; refused the key {} that claimed it",
            held.1,
            held.0.short(),
            key.short()
        )),
    }
}

impl Cluster {
    /// Connects to the NATS server at `url` (`nats://HOST:PORT`) and opens
    /// (making them on first use) the room's stream and names.
    /// The stream keeps what `keep` allows (`listen --keep-*`, as a lone
    /// relay's log does): the oldest entries go first once a limit is
    /// reached.
    pub async fn join(url: &str, room: &[u8; 32], keep: Retention) -> Result<Self, ClusterError> {
        let rest = url.strip_prefix("nats://").ok_or_else(|| ClusterError::Address(url.to_owned()))?;
        if rest.is_empty() || rest.contains(['/', '@', ' ']) {
            return Err(ClusterError::Address(url.to_owned()));
        }
        let client = async_nats::ConnectOptions::new()
            .name("tlschat relay")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| ClusterError::Connect { url: url.to_owned(), why: e.to_string() })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_TIMEOUT)
            .ack_timeout(PUBLISH_TIMEOUT)
            .build(client);
        let config = stream::Config {
            name: stream_name(room),
            description: Some("a tlschat room's ordered log: the sequence is the room_seq".to_owned()),
            subjects: vec![subject(room)],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_messages: i64::try_from(keep.messages).unwrap_or(i64::MAX),
            max_age: Duration::from_millis(keep.age_ms),
            max_bytes: i64::try_from(keep.bytes).unwrap_or(i64::MAX),
            max_message_size: MAX_ENTRY,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        open_stream(&js, config, "stream").await?;
        // The names: one subject per name and per look, one entry each,
        // kept for good (a full stream refuses new names, never forgets one).
        let names_config = stream::Config {
            name: names_stream_name(room),
            description: Some("a tlschat room's names, each bound to the first key".to_owned()),
            subjects: vec![format!("{}.>", names_prefix(room))],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            max_messages_per_subject: 1,
            max_bytes: 64 << 20,
            max_message_size: 512,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let names = open_stream(&js, names_config, "names stream").await?;
        // The guests' numbers: the stream's sequence, one entry kept.
        let guests_config = stream::Config {
            name: format!("TLSCHAT_GUESTS_{}", hex(room)),
            description: Some("a tlschat room's guest numbers: the sequence is the last given".to_owned()),
            subjects: vec![format!("tlschat.{}.guests", hex(room))],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_messages: 1,
            max_message_size: 64,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        open_stream(&js, guests_config, "guests stream").await?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| js_error("relay id")(e.to_string()))?;
        Ok(Self {
            client: js.client(),
            js,
            room: hex(room),
            guests: format!("tlschat.{}.guests", hex(room)),
            stream: stream_name(room),
            subject: subject(room),
            names,
            names_prefix: names_prefix(room),
            relay: hex(&id),
            published: AtomicU64::new(0),
        })
    }

    /// This relay's id in the `Tlschat-Origin` header.
    pub fn relay_id(&self) -> &str {
        &self.relay
    }

    /// The stream's first and last sequence numbers now (0 and 0 when it
    /// has never held anything).
    pub async fn bounds(&self) -> Result<(u64, u64), ClusterError> {
        let mut stream =
            self.js.get_stream(&self.stream).await.map_err(|e| js_error("stream")(e.to_string()))?;
        let info = stream.info().await.map_err(|e| js_error("stream info")(e.to_string()))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// Sends `frame` (an entry with room_seq 0) from `seat` to the stream,
    /// in this relay's order of calls, and returns what waits for the
    /// bus's acknowledgement (the entry's sequence number).
    pub async fn publish(&self, frame: Vec<u8>, seat: SeatId) -> Result<Pending, ClusterError> {
        let n = self.published.fetch_add(1, Ordering::Relaxed);
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, format!("{} {seat}", self.relay).as_str());
        let publish = jetstream::message::PublishMessage::build()
            .payload(frame.into())
            .headers(headers)
            .message_id(format!("{}-{n}", self.relay));
        let ack = self
            .js
            .send_publish(self.subject.clone(), publish)
            .await
            .map_err(|e| js_error("publish")(e.to_string()))?;
        Ok(Pending(ack))
    }

    /// The room's entries from sequence `from` on, in the stream's order,
    /// for as long as the bus is there.
    pub async fn entries(&self, from: u64) -> Result<Entries, ClusterError> {
        let stream = self.js.get_stream(&self.stream).await.map_err(|e| js_error("stream")(e.to_string()))?;
        let config = consumer::pull::OrderedConfig {
            filter_subject: self.subject.clone(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from.max(1) },
            ..Default::default()
        };
        let messages = stream
            .create_consumer(config)
            .await
            .map_err(|e| js_error("consumer")(e.to_string()))?
            .messages()
            .await
            .map_err(|e| js_error("consumer")(e.to_string()))?;
        Ok(Entries { messages, relay: self.relay.clone() })
    }

    /// Binds `name` to `key` in the room's names, or says why not in one
    /// line: `Ok(true)` when it was bound to that key already, `Ok(false)`
    /// when this call bound it. Create-if-absent: of two relays binding one
    /// name at once, one wins and the other sees the winner's key.
    pub async fn bind(&self, name: &str, key: &Fingerprint) -> Result<bool, String> {
        let checked = name::check(name).map_err(|e| e.to_string())?;
        let value = format!("{} {}", hex(&key.0), checked.as_str());
        let name_key = format!("n.{}", hex(checked.key().as_bytes()));
        if self.held(&format!("b.{}", hex(&key.0))).await?.is_some() {
            return Err(BANNED.to_owned());
        }
        // Already bound: to this key (welcome) or another (refused).
        if let Some(held) = self.held(&name_key).await? {
            return owned_by(Some(held), key);
        }
        // Its looks first, so that a name's binding never exists without
        // them; a look taken by another key refuses the name.
        for look in checked.looks() {
            let look_key = format!("l.{}", hex(look.as_bytes()));
            if let Some(held) = self.create_or_held(&look_key, &value).await?
                && held.0 != *key
            {
                if name::key(&held.1) == checked.key() {
                    // The same name, bound first through another relay.
                    return owned_by(Some(held), key);
                }
                return Err(format!(
                    "the name {} looks like {}, which belongs to the key {} in this room; refused the key {}",
                    checked.as_str(),
                    held.1,
                    held.0.short(),
                    key.short()
                ));
            }
        }
        owned_by(self.create_or_held(&name_key, &value).await?, key)
    }

    /// Whether `name` is bound to `key` already (a name bound to another
    /// key is refused, saying whose it is).
    pub(crate) async fn is_bound(&self, name: &str, key: &Fingerprint) -> Result<bool, String> {
        let checked = name::check(name).map_err(|e| e.to_string())?;
        owned_by(self.held(&format!("n.{}", hex(checked.key().as_bytes()))).await?, key)
    }

    /// Keeps the ban of the key whose fingerprint is `key` (known as
    /// `name`) on the bus: every relay
    /// refuses it on joining from now on ([`Self::bind`]).
    pub(crate) async fn ban(&self, name: &str, key: &Fingerprint) -> Result<(), String> {
        let value = format!("{} {}", hex(&key.0), crate::chat::printable(name));
        self.create_or_held(&format!("b.{}", hex(&key.0)), &value).await.map(|_| ())
    }

    /// The next guest's number, unique among the room's relays.
    pub(crate) async fn guest_number(&self) -> Result<u64, String> {
        let stored = match self.js.publish(self.guests.clone(), self.relay.clone().into()).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        stored.map(|ack| ack.sequence).map_err(|e| format!("the room's guest numbers on the bus: {e}"))
    }

    /// Tells the other relays who is seated here: `payload` is a heartbeat
    /// (empty) or one frame of the list (see [`crate::chat::peers`]).
    pub(crate) async fn announce(&self, payload: Vec<u8>) -> Result<(), String> {
        let subject = format!("tlschat.{}.roster.{}", self.room, self.relay);
        self.client.publish(subject, payload.into()).await.map_err(|e| e.to_string())
    }

    /// Asks the relay `relay` a question (`what`: [`FETCH`] or [`SEALED`])
    /// whose answer comes back as [`Signal::Answer`] with `id`.
    pub(crate) async fn ask(&self, relay: &str, what: &str, id: u64, payload: Vec<u8>) -> Result<(), String> {
        let subject = format!("tlschat.{}.relay.{relay}.{what}", self.room);
        let reply = format!("tlschat.{}.reply.{}.{id}", self.room, self.relay);
        self.client.publish_with_reply(subject, reply, payload.into()).await.map_err(|e| e.to_string())
    }

    /// Sends the relay `relay` a message that wants no answer.
    pub(crate) async fn tell(&self, relay: &str, what: &str, payload: Vec<u8>) -> Result<(), String> {
        let subject = format!("tlschat.{}.relay.{relay}.{what}", self.room);
        self.client.publish(subject, payload.into()).await.map_err(|e| e.to_string())
    }

    /// Answers a question another relay asked; only to a reply subject of
    /// this room's relays.
    pub(crate) async fn answer(&self, reply: &str, payload: Vec<u8>) -> Result<(), String> {
        if !reply.starts_with(&format!("tlschat.{}.reply.", self.room)) {
            return Err(format!(
                "an answer asked on a subject not for answers: {:?}",
                crate::chat::printable(reply)
            ));
        }
        self.client.publish(reply.to_owned(), payload.into()).await.map_err(|e| e.to_string())
    }

    /// Tells every relay that the host removed a key (see
    /// [`crate::chat::peers::removal`]).
    pub(crate) async fn remove(&self, payload: Vec<u8>) -> Result<(), String> {
        let subject = format!("tlschat.{}.remove.{}", self.room, self.relay);
        self.client.publish(subject, payload.into()).await.map_err(|e| e.to_string())
    }

    /// What the other relays send this one, from now on.
    pub(crate) async fn signals(&self) -> Result<Signals, ClusterError> {
        let sub = |subject: String| {
            let client = self.client.clone();
            async move { client.subscribe(subject).await.map_err(|e| js_error("subscribe")(e.to_string())) }
        };
        let room = &self.room;
        let me = &self.relay;
        let subscribers = vec![
            sub(format!("tlschat.{room}.roster.*")).await?,
            sub(format!("tlschat.{room}.relay.{me}.*")).await?,
            sub(format!("tlschat.{room}.reply.{me}.*")).await?,
            sub(format!("tlschat.{room}.remove.*")).await?,
        ];
        Ok(Signals {
            merged: futures_util::stream::select_all(subscribers),
            room: room.clone(),
            me: me.clone(),
        })
    }

    /// Creates `bucket_key` with `value` if absent; else returns what holds it.
    async fn create_or_held(
        &self,
        bucket_key: &str,
        value: &str,
    ) -> Result<Option<(Fingerprint, String)>, String> {
        let trouble = |e: &dyn std::fmt::Display| format!("the room's names on the bus: {e}");
        // Accepted only while the subject holds nothing (its last sequence is 0).
        let publish = jetstream::message::PublishMessage::build()
            .payload(value.to_owned().into())
            .expected_last_subject_sequence(0);
        let subject = format!("{}.{bucket_key}", self.names_prefix);
        let stored = match self.js.send_publish(subject, publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(_) => Ok(None),
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                self.held(bucket_key).await?.map(Some).ok_or_else(|| "the name's binding vanished".to_owned())
            }
            Err(e) => Err(trouble(&e)),
        }
    }

    /// The key and name a binding holds.
    async fn held(&self, bucket_key: &str) -> Result<Option<(Fingerprint, String)>, String> {
        let subject = format!("{}.{bucket_key}", self.names_prefix);
        let message = match self.names.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(format!("the room's names on the bus: {e}")),
        };
        let text = String::from_utf8_lossy(&message.payload);
        let (fp, name) = text.split_once(' ').ok_or("a damaged name binding on the bus")?;
        let fp = Fingerprint::parse(fp).ok_or("a damaged name binding on the bus")?;
        Ok(Some((fp, crate::chat::printable(name).into_owned())))
    }
}

/// A publish on its way: resolves to the entry's sequence number once the
/// stream has stored it.
#[derive(Debug)]
pub struct Pending(jetstream::context::PublishAckFuture);

impl Pending {
    /// The entry's sequence number, or why the bus did not take it.
    pub async fn stored(self) -> Result<u64, String> {
        let ack = self.0.await.map_err(|e| e.to_string())?;
        Ok(ack.sequence)
    }
}

/// The room's entries in the stream's order.
pub struct Entries {
    messages: consumer::pull::Ordered,
    relay: String,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entries").field("relay", &self.relay).finish_non_exhaustive()
    }
}

impl Entries {
    /// The next entry; `None` when the bus is gone for good.
    pub async fn next(&mut self) -> Option<Result<Ordered, ClusterError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(js_error("consumer")(e.to_string()))),
        };
        let seq = match message.info() {
            Ok(info) => info.stream_sequence,
            Err(e) => return Some(Err(js_error("consumer")(e.to_string()))),
        };
        let origin = message
            .headers
            .as_ref()
            .and_then(|h| h.get(ORIGIN))
            .and_then(|v| v.as_str().split_once(' ').map(|(r, s)| (r.to_owned(), s.to_owned())))
            .filter(|(relay, _)| *relay == self.relay)
            .and_then(|(_, seat)| seat.parse().ok());
        Some(Ok(Ordered { seq, frame: message.payload.to_vec(), origin }))
    }
}

/// The refusal of a banned key.
const BANNED: &str = "the host banned this key from the room";

/// A question for a key package.
pub(crate) const FETCH: &str = "fetch";
/// A message routed to a seat.
pub(crate) const SEALED: &str = "sealed";

/// What another relay sent this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// A relay's heartbeat or a frame of its list.
    Roster {
        /// Whose.
        relay: String,
        /// What it said.
        payload: Vec<u8>,
    },
    /// A question for a key package of the key in `payload`.
    Fetch {
        /// The key (32 bytes, unchecked).
        payload: Vec<u8>,
        /// Where to answer.
        reply: Option<String>,
    },
    /// A message for a seat here (see [`crate::chat::peers::route`]).
    Sealed {
        /// The route.
        payload: Vec<u8>,
        /// Where to answer, if an answer is wanted.
        reply: Option<String>,
    },
    /// The answer to question `id`.
    Answer {
        /// The question.
        id: u64,
        /// What was answered.
        payload: Vec<u8>,
    },
    /// A host removed a key.
    Remove {
        /// See [`crate::chat::peers::removal`].
        payload: Vec<u8>,
    },
}

/// What a message on `subject` means for the relay `me` of `room`; `None`
/// for what is not for it (its own list, an unknown subject).
pub(crate) fn signal(
    room: &str,
    me: &str,
    subject: &str,
    reply: Option<&str>,
    payload: &[u8],
) -> Option<Signal> {
    let rest = subject.strip_prefix("tlschat.")?.strip_prefix(room)?.strip_prefix('.')?;
    let payload = payload.to_vec();
    let reply = reply.map(str::to_owned);
    let parts: Vec<&str> = rest.split('.').collect();
    match parts.as_slice() {
        ["roster", relay] if *relay != me => Some(Signal::Roster { relay: (*relay).to_owned(), payload }),
        ["relay", relay, what] if *relay == me => match *what {
            FETCH => Some(Signal::Fetch { payload, reply }),
            SEALED => Some(Signal::Sealed { payload, reply }),
            _ => None,
        },
        ["reply", relay, id] if *relay == me => Some(Signal::Answer { id: id.parse().ok()?, payload }),
        ["remove", relay] if *relay != me => Some(Signal::Remove { payload }),
        _ => None,
    }
}

/// What the other relays send this one, in the order each sent it.
pub(crate) struct Signals {
    merged: futures_util::stream::SelectAll<async_nats::Subscriber>,
    room: String,
    me: String,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").field("me", &self.me).finish_non_exhaustive()
    }
}

impl Signals {
    /// The next signal; `None` when the bus is gone for good.
    pub(crate) async fn next(&mut self) -> Option<Signal> {
        loop {
            let message = self.merged.next().await?;
            let reply = message.reply.as_ref().map(|r| r.as_str());
            if let Some(signal) = signal(&self.room, &self.me, &message.subject, reply, &message.payload) {
                return Some(signal);
            }
        }
    }
}

/// The room's names for a relay in a cluster: bound on the bus
/// (so that every relay agrees), with this relay's own names for what
/// stays local: its limit of new names per address, and a copy of the
/// hosts' bans.
#[derive(Debug)]
pub(crate) struct Names {
    cluster: std::sync::Arc<Cluster>,
    members: std::sync::Arc<crate::store::names::NameBindings>,
    closed: bool,
}

impl Names {
    /// Names bound through `cluster`, with `members` for the local limits.
    pub(crate) fn new(
        cluster: std::sync::Arc<Cluster>,
        members: std::sync::Arc<crate::store::names::NameBindings>,
    ) -> Self {
        Self { cluster, members, closed: false }
    }

    /// A closed room (`listen --closed --cluster`): only names already
    /// bound on the bus (a member seen before through any relay, or one a
    /// host invited with `/invite`) are seated; the members list is the
    /// bus's, shared by every relay.
    pub(crate) fn closed(mut self, closed: bool) -> Self {
        self.closed = closed;
        self
    }

    /// Runs `work` on the bus from the room's task, which waits for it: a
    /// name is bound before its member is seated, as in a relay's store.
    fn wait_for<T>(&self, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "the room's names are on the bus, which needs the async runtime".to_owned())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("the room's names are on the bus, which needs the multi-threaded runtime".to_owned());
        }
        tokio::task::block_in_place(|| handle.block_on(work))
    }
}

impl crate::net::Binder for Names {
    fn bind(&self, name: &str, key: &Fingerprint, from: std::net::IpAddr, now: u64) -> Result<(), String> {
        self.wait_for(async {
            // A name already bound to this key always passes; a new one
            // counts against its address's hourly limit first.
            if !self.cluster.is_bound(name, key).await? {
                if self.closed {
                    return Err(format!(
                        "this room is closed: only members a host invited are admitted (ask for `/invite {name} {}`)",
                        hex(&key.0)
                    ));
                }
                self.members.count_new_name(name, from, now)?;
            }
            self.cluster.bind(name, key).await.map(|_| ())
        })
    }

    fn ban(&self, name: &str, key: &[u8; 32]) -> Result<(), String> {
        // On the bus for every relay, and in this relay's members file.
        let on_bus = self.wait_for(self.cluster.ban(name, &Fingerprint::of_ed25519(key)));
        let here = crate::net::Binder::ban(&*self.members, name, key);
        on_bus.and(here)
    }

    fn guest(&self) -> Option<Result<u64, String>> {
        Some(self.wait_for(self.cluster.guest_number()))
    }

    fn invite(&self, name: &str, key: &Fingerprint) -> Result<(), String> {
        crate::store::identity::check_name(name).map_err(|e| e.to_string())?;
        self.wait_for(async { self.cluster.bind(name, key).await.map(|_| ()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "ab12";
    const ME: &str = "00112233445566aa";
    const OTHER: &str = "00112233445566bb";

    fn at(subject: &str, reply: Option<&str>) -> Option<Signal> {
        signal(ROOM, ME, subject, reply, b"x")
    }

    #[test]
    fn a_subject_says_what_another_relay_sent_and_what_is_not_for_this_one_is_dropped() {
        let payload = b"x".to_vec();
        assert_eq!(
            at(&format!("tlschat.ab12.roster.{OTHER}"), None),
            Some(Signal::Roster { relay: OTHER.into(), payload: payload.clone() })
        );
        // Its own list, another relay's questions and answers: not for it.
        assert_eq!(at(&format!("tlschat.ab12.roster.{ME}"), None), None);
        assert_eq!(at(&format!("tlschat.ab12.relay.{OTHER}.fetch"), Some("r")), None);
        assert_eq!(at(&format!("tlschat.ab12.reply.{OTHER}.4"), None), None);
        assert_eq!(at(&format!("tlschat.ab12.remove.{ME}"), None), None);
        assert_eq!(
            at(&format!("tlschat.ab12.relay.{ME}.fetch"), Some("tlschat.ab12.reply.b.1")),
            Some(Signal::Fetch { payload: payload.clone(), reply: Some("tlschat.ab12.reply.b.1".into()) })
        );
        assert_eq!(
            at(&format!("tlschat.ab12.relay.{ME}.sealed"), None),
            Some(Signal::Sealed { payload: payload.clone(), reply: None })
        );
        assert_eq!(at(&format!("tlschat.ab12.relay.{ME}.other"), None), None);
        assert_eq!(
            at(&format!("tlschat.ab12.reply.{ME}.42"), None),
            Some(Signal::Answer { id: 42, payload: payload.clone() })
        );
        assert_eq!(at(&format!("tlschat.ab12.reply.{ME}.-1"), None), None);
        assert_eq!(
            at(&format!("tlschat.ab12.remove.{OTHER}"), None),
            Some(Signal::Remove { payload: payload.clone() })
        );
        // Another room, or no room at all.
        assert_eq!(at(&format!("tlschat.ab123.roster.{OTHER}"), None), None);
        assert_eq!(at("tlschat.ab12", None), None);
        assert_eq!(at("elsewhere.ab12.remove.x", None), None);
    }
}
