//! The names a room's members claimed: [`NameBindings`] binds each display
//! name to the first key that proves it owns it (mutual TLS with a
//! self-signed identity certificate, see `crate::store::identity`) and
//! refuses every other key that claims it. It is the server's
//! [`Admission`] policy, so the refusal is an access_denied alert during
//! the handshake, before the client's first line.
//!
//! The bindings live in the room's store ([`crate::store::room_log`]) or,
//! for `--memory-only` and a relay of a cluster, in memory; the `banned`
//! file beside the store lists the keys the host banned.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::chat::name;
use crate::store::home::{self, Access, FileError};
use crate::store::identity;
use crate::store::room_keys::RoomError;
use crate::store::room_log::{Binding, NameChange, RoomLog};
use crate::tls::{Admission, CertSummary, Fingerprint};

/// A member as the room knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    /// The name as first claimed.
    name: String,
    fingerprint: Fingerprint,
    /// When the name was last used (bound or joined with), Unix seconds.
    last_used: u64,
}

impl Bound {
    fn into_binding(self) -> Binding {
        Binding { name: self.name, key: self.fingerprint.0, last_used: self.last_used }
    }

    fn from_binding(b: Binding) -> Self {
        Self { name: b.name, fingerprint: Fingerprint(b.key), last_used: b.last_used }
    }
}

/// The most names a room binds: its names stay few enough for `listen` to
/// read at start, whatever a flood of new keys tries.
pub(crate) const MAX_NAMES: usize = 100_000;

/// How the room keeps its names.
#[derive(Debug)]
enum Keep {
    /// In memory only (`listen --memory-only`, a relay of a cluster, whose
    /// names are on the bus): what the home held when the room started,
    /// then what it binds until it stops.
    Memory,
    /// In the room's store ([`crate::store::room_log`]): changes wait here until the
    /// room hands them to its log's writer with its next batch
    /// ([`NameBindings::take_changes`]).
    Store(Mutex<Vec<NameChange>>),
}

/// The room's names: each bound to the first key that proved it owns it,
/// kept in the room's store (`DATA/room/log.redb`, beside its log; see
/// [`crate::store::room_log`]), or in memory only.
///
/// A binding takes effect at once in memory; for the store it waits to be
/// taken by the room's task with the batch that carries the member's join,
/// so it is committed before the member is welcomed, and the handshakes'
/// workers never wait on the disk.
#[derive(Debug)]
pub struct NameBindings {
    /// The room's directory: its `banned` file.
    dir: PathBuf,
    /// By comparison key and by look.
    bound: Mutex<Bindings>,
    keep: Keep,
    /// New names bound per address: since when, how many.
    new_names: Mutex<HashMap<IpAddr, (u64, u32)>>,
    /// How many new names one address may bind in an hour.
    per_address: u32,
    /// `listen --closed`: only names already bound (or invited) are admitted.
    closed: bool,
    /// Keys the host banned, kept in the `banned` file beside the store.
    banned: Mutex<HashSet<[u8; 32]>>,
}

/// The older members file in a room's directory, imported once into its
/// store, then renamed [`IMPORTED_MEMBERS`].
pub(crate) const MEMBERS_FILE: &str = "members";
/// What the members file is called once imported.
pub(crate) const IMPORTED_MEMBERS: &str = "members.imported";

impl NameBindings {
    /// The names of the room in `dir` kept in `log` (its store). The first
    /// time, the directory's members file (`NAME FINGERPRINT LAST-USED`
    /// lines), if there is one, is imported into the store and renamed
    /// `members.imported`; the note says so.
    pub(crate) fn in_store(dir: &Path, log: &mut RoomLog) -> Result<(Self, Option<String>), RoomError> {
        home::private_dir(dir)?;
        let mut note = None;
        if !log.names_imported()? {
            let file = dir.join(MEMBERS_FILE);
            let bindings: Vec<Binding> =
                load_members(&file)?.into_values().map(Bound::into_binding).collect();
            log.import_names(&bindings)?;
            if file.exists() {
                let to = dir.join(IMPORTED_MEMBERS);
                std::fs::rename(&file, &to).map_err(|error| FileError::Write { path: to.clone(), error })?;
                note = Some(format!(
                    "imported {} name binding(s) from {} into the room's store {}; the file is kept as {}",
                    bindings.len(),
                    file.display(),
                    log.path().display(),
                    to.display()
                ));
            }
        }
        let bound = log.names()?.into_iter().map(Bound::from_binding).collect();
        Ok((Self::with(dir, bound, Keep::Store(Mutex::new(Vec::new())))?, note))
    }

    /// The names of the room in `dir` kept in memory only: it starts with
    /// those the home keeps (its store, read while anyone may be writing
    /// it, or else a members file not yet imported), and forgets what it
    /// binds when it stops.
    pub fn in_memory(dir: &Path) -> Result<Self, RoomError> {
        home::private_dir(dir)?;
        let path = dir.join(crate::store::room_log::FILE);
        let stored = match crate::store::room_log::read_names(&path) {
            Ok(names) => names,
            // A store left by a killed room is repaired by its next writer:
            // this one, unless a room is running there (then it reads).
            Err(e) => match RoomLog::open(&path) {
                Ok(log) => Some(log.names()?),
                Err(_) => return Err(e.into()),
            },
        };
        let bound = match stored {
            Some(names) if !names.is_empty() => names.into_iter().map(Bound::from_binding).collect(),
            _ => load_members(&dir.join(MEMBERS_FILE))?.into_values().collect(),
        };
        Self::with(dir, bound, Keep::Memory)
    }

    fn with(dir: &Path, bound: Vec<Bound>, keep: Keep) -> Result<Self, RoomError> {
        let mut bindings = Bindings::default();
        for b in bound {
            bindings.insert(b);
        }
        Ok(Self {
            dir: dir.to_owned(),
            bound: Mutex::new(bindings),
            keep,
            new_names: Mutex::new(HashMap::new()),
            per_address: NEW_NAMES_PER_ADDRESS,
            closed: false,
            banned: Mutex::new(load_banned(&dir.join(BANNED_FILE))?),
        })
    }

    /// The changes to the names since the last call, for the room's store
    /// (none when the names are kept in memory only).
    pub(crate) fn take_changes(&self) -> Vec<NameChange> {
        match &self.keep {
            Keep::Memory => Vec::new(),
            Keep::Store(changes) => {
                std::mem::take(&mut *changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            }
        }
    }

    /// Queues a change for the store, if the names are kept there.
    fn record(&self, change: NameChange) {
        if let Keep::Store(changes) = &self.keep {
            changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(change);
        }
    }

    /// A closed room (`listen --closed`): only names already bound, or
    /// invited by the host, are admitted.
    #[must_use]
    pub(crate) fn closed(mut self, closed: bool) -> Self {
        self.closed = closed;
        self
    }

    /// The keys the host banned.
    pub(crate) fn banned(&self) -> HashSet<[u8; 32]> {
        self.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The members with another limit on new names per address and hour
    /// (`listen --new-names-per-address`).
    #[must_use]
    pub(crate) fn with_new_names_per_address(mut self, limit: u32) -> Self {
        self.per_address = limit;
        self
    }

    /// Whether `name` may be used with `fingerprint`: `Ok(true)` if it is
    /// bound to that key already, `Ok(false)` if it is free, and the reason
    /// if it is refused (bound to another key, too like a bound name, or
    /// the room is full of names).
    pub(crate) fn check(&self, name: &str, fingerprint: &Fingerprint) -> Result<bool, String> {
        let bound = self.bound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        verdict(&bound, name, fingerprint)
    }

    /// Binds `name` to `fingerprint` if the name is free (and records it),
    /// accepts it if it is already bound to that key, and refuses it
    /// otherwise, saying which key holds it. A new name that could pass for
    /// a bound one (`aIice` for `alice`, `b0b` for `bob`) is refused too.
    pub fn claim(&self, name: &str, fingerprint: &Fingerprint) -> Result<(), String> {
        self.bind(name, fingerprint, None)
    }

    /// As [`claim`](Self::claim), for a member connecting from `from` at
    /// `now` (Unix seconds): one address binds at most
    /// [`NEW_NAMES_PER_ADDRESS`] new names an hour (by default), so that
    /// nobody can fill the members file, while names already bound are
    /// always welcome.
    pub(crate) fn claim_from(
        &self,
        name: &str,
        fingerprint: &Fingerprint,
        from: IpAddr,
        now: u64,
    ) -> Result<(), String> {
        self.bind(name, fingerprint, Some((from, now)))
    }

    /// [`claim`](Self::claim), counting a new name against `from`'s hourly
    /// limit when there is one. One look at the bindings, under one lock.
    fn bind(&self, name: &str, fingerprint: &Fingerprint, from: Option<(IpAddr, u64)>) -> Result<(), String> {
        let now = from.map_or_else(crate::clock::unix_now, |(_, now)| now);
        let mut bound = self.bound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verdict(&bound, name, fingerprint)? {
            // In use: recorded once a day at most, so that it does not expire.
            if let Some(b) = bound.by_name.get_mut(&name::key(name))
                && now / 86_400 > b.last_used / 86_400
            {
                b.last_used = now;
                self.record(NameChange::Bound(b.clone().into_binding()));
            }
            return Ok(());
        }
        if let Some((from, now)) = from {
            self.count_new_name(name, from, now)?;
        }
        let b = Bound { name: name.to_owned(), fingerprint: *fingerprint, last_used: now };
        self.record(NameChange::Bound(b.clone().into_binding()));
        bound.insert(b);
        Ok(())
    }

    /// Forgets the bindings not used for `days` days (0: never), as of
    /// `now` (Unix seconds), in the store too. Returns how many names were
    /// freed. Called when the room starts (`listen --name-expiry-days`).
    pub(crate) fn expire_unused(&self, days: u32, now: u64) -> usize {
        if days == 0 {
            return 0;
        }
        let mut bound = self.bound.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let limit = u64::from(days) * 86_400;
        let (kept, freed): (Vec<Bound>, Vec<Bound>) =
            bound.by_name.values().cloned().partition(|b| now.saturating_sub(b.last_used) <= limit);
        *bound = Bindings::default();
        for b in kept {
            bound.insert(b);
        }
        for b in &freed {
            self.record(NameChange::Freed(b.name.clone()));
        }
        freed.len()
    }

    /// Counts one new name from `from`, or refuses it: the address has
    /// bound its limit in the last hour.
    pub(crate) fn count_new_name(&self, name: &str, from: IpAddr, now: u64) -> Result<(), String> {
        let mut limits = self.new_names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if limits.len() >= MAX_TRACKED_ADDRESSES {
            limits.retain(|_, (since, _)| now.saturating_sub(*since) < NAME_WINDOW);
        }
        let from = network_of(from);
        let (since, count) = limits.entry(from).or_insert((now, 0));
        if now.saturating_sub(*since) >= NAME_WINDOW {
            (*since, *count) = (now, 0);
        }
        if *count >= self.per_address {
            return Err(format!(
                "{from}/{} has bound {} new names in the last hour; refused the new name {name}: try again later",
                if from.is_ipv4() { 24 } else { 64 },
                self.per_address
            ));
        }
        *count += 1;
        Ok(())
    }
}

/// The network an address's new names are counted against: its /24 for
/// IPv4, its /64 for IPv6 (what one subscriber usually holds), so that a
/// block of addresses binds no more than one address would.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// New names one network may bind in an hour, unless
/// the room says otherwise.
pub(crate) const NEW_NAMES_PER_ADDRESS: u32 = 10;
/// The window of [`NEW_NAMES_PER_ADDRESS`]: an hour.
const NAME_WINDOW: u64 = 3600;
/// Addresses whose new names are counted; beyond, old windows are forgotten.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// The bindings, by comparison key ([`name::key`]) and by look (see
/// [`name::skeleton`]): both checks a new name needs take one lookup per
/// look, whatever the room's size.
#[derive(Debug, Default)]
struct Bindings {
    by_name: HashMap<String, Bound>,
    /// The first binding of each look.
    by_look: HashMap<String, Bound>,
}

impl Bindings {
    fn insert(&mut self, bound: Bound) {
        for look in name::looks(&bound.name) {
            self.by_look.entry(look).or_insert_with(|| bound.clone());
        }
        self.by_name.insert(name::key(&bound.name), bound);
    }
}

/// What [`NameBindings::check`] says, given the bindings.
fn verdict(bound: &Bindings, name: &str, fingerprint: &Fingerprint) -> Result<bool, String> {
    match bound.by_name.get(&name::key(name)) {
        Some(b) if b.fingerprint == *fingerprint => return Ok(true),
        Some(b) => {
            return Err(format!(
                "the name {} belongs to the key {} in this room; refused the key {} that claimed it",
                b.name,
                b.fingerprint.short(),
                fingerprint.short()
            ));
        }
        None => {}
    }
    let lookalike = name::looks(name).into_iter().find_map(|look| bound.by_look.get(&look));
    if let Some(b) = lookalike.filter(|b| b.fingerprint != *fingerprint) {
        return Err(format!(
            "the name {name} looks like {}, which belongs to the key {} in this room; refused the key {}",
            b.name,
            b.fingerprint.short(),
            fingerprint.short()
        ));
    }
    if bound.by_name.len() >= MAX_NAMES {
        return Err(format!(
            "this room has bound its maximum of {MAX_NAMES} names; refused the new name {name}"
        ));
    }
    Ok(false)
}

impl Admission for NameBindings {
    fn admit(&self, peer: &CertSummary) -> Result<(), String> {
        let name = identity::name_of(peer).ok_or_else(|| {
            let why = match peer.subject.strip_prefix("CN=").map(name::check) {
                Some(Err(why)) => why.to_string(),
                _ => "the subject must be one common name, CN=NAME".to_owned(),
            };
            format!(
                "the client certificate's subject \"{}\" is not one tlschat name: {}",
                crate::chat::printable(&peer.subject),
                crate::chat::printable(&why)
            )
        })?;
        if self.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&peer.public_key) {
            return Err("the host banned this key from the room".to_owned());
        }
        // The handshake refuses what can never be admitted; the room binds
        // a new name once the member takes its seat, where its address is
        // known (see `claim_from`).
        let bound = self.check(name, &peer.fingerprint)?;
        if self.closed && !bound {
            return Err(format!(
                "this room is closed: only members the host invited are admitted (ask for `/invite {name} {}`)",
                crate::tls::crypto::hex(&peer.fingerprint.0)
            ));
        }
        Ok(())
    }
}

impl crate::net::Binder for NameBindings {
    fn bind(&self, name: &str, key: &Fingerprint, from: IpAddr, now: u64) -> Result<(), String> {
        self.claim_from(name, key, from, now)
    }

    fn ban(&self, name: &str, key: &[u8; 32]) -> Result<(), String> {
        let mut banned = self.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if banned.insert(*key) {
            let line = format!("{} {name}", crate::tls::crypto::hex(key));
            home::append_line(&self.dir.join(BANNED_FILE), &line, Access::Private)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn invite(&self, name: &str, key: &Fingerprint) -> Result<(), String> {
        identity::check_name(name).map_err(|e| e.to_string())?;
        self.claim(name, key)
    }

    fn take_changes(&self) -> Vec<NameChange> {
        NameBindings::take_changes(self)
    }
}

/// The `banned` file in the room's directory: `KEY NAME` lines, the raw
/// Ed25519 public key in hex and the name it had when banned.
pub(crate) const BANNED_FILE: &str = "banned";

fn load_banned(path: &Path) -> Result<HashSet<[u8; 32]>, RoomError> {
    let mut banned = HashSet::new();
    for (number, line) in records(path)? {
        let bad = || RoomError::BadLine { path: path.to_owned(), line: number, expected: "KEY NAME" };
        let hex = line.split_whitespace().next().ok_or_else(bad)?;
        banned.insert(Fingerprint::parse(hex).ok_or_else(bad)?.0);
    }
    Ok(banned)
}

/// The records of a room file: each line that is neither blank nor a
/// comment, trimmed, with its number from 1; none when there is no file.
fn records(path: &Path) -> Result<Vec<(usize, String)>, RoomError> {
    let Some(text) = home::read(path, Access::Private)? else { return Ok(Vec::new()) };
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| (number, line.to_owned()))
        .collect())
}

fn load_members(path: &Path) -> Result<HashMap<String, Bound>, RoomError> {
    let mut bound = HashMap::new();
    for (number, line) in records(path)? {
        let expected = "NAME FINGERPRINT LAST-USED";
        let bad = || RoomError::BadLine { path: path.to_owned(), line: number, expected };
        let mut words = line.split_whitespace();
        let (Some(name), Some(fp), used, None) = (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        identity::check_name(name).map_err(|_| bad())?;
        let fingerprint = Fingerprint::parse(fp).ok_or_else(bad)?;
        // A line without its time (an older file) counts as used now.
        let last_used = match used {
            Some(used) => used.parse().map_err(|_| bad())?,
            None => crate::clock::unix_now(),
        };
        // The first binding wins, as it did when it was made; a later line
        // of the same binding says it was used since.
        let entry =
            bound.entry(name::key(name)).or_insert(Bound { name: name.to_owned(), fingerprint, last_used });
        if entry.fingerprint == fingerprint {
            entry.last_used = entry.last_used.max(last_used);
        }
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::room_log::Batch;

    fn temp(name: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tlschat-room-unit-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// What the room's task does: hands the changes to the log.
    fn commit(members: &NameBindings, log: &mut RoomLog) {
        log.append(&Batch { names: members.take_changes(), ..Batch::default() }).unwrap();
    }

    fn open_store(dir: &Path) -> (NameBindings, RoomLog) {
        let mut log = RoomLog::open(&dir.join(crate::store::room_log::FILE)).unwrap();
        let (members, _) = NameBindings::in_store(dir, &mut log).unwrap();
        (members, log)
    }

    #[test]
    fn a_name_is_bound_to_the_first_key_and_refused_to_others_also_after_a_restart() {
        let dir = temp("members");
        let (a, b) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        let (members, mut log) = open_store(&dir);
        members.claim("alice", &a).unwrap();
        members.claim("alice", &a).unwrap();
        let refusal = members.claim("ALICE", &b).unwrap_err();
        assert!(refusal.contains(&a.short()) && refusal.contains(&b.short()), "{refusal}");
        for lookalike in ["aIice", "a1ice", "al1ce", "a.lice", "ALlCE", "\u{430}lice"] {
            let refusal = members.claim(lookalike, &b).unwrap_err();
            assert!(refusal.contains("looks like alice"), "{lookalike}: {refusal}");
        }
        members.claim("bob", &b).unwrap();
        // Names in other scripts bind and compare without regard to case.
        members.claim("José", &a).unwrap();
        let refusal = members.claim("JOSÉ", &b).unwrap_err();
        assert!(refusal.contains("the name José belongs to the key"), "{refusal}");
        members.claim("Алиса", &b).unwrap();
        // Cyrillic capitals that spell BOB look like bob, which is b's.
        assert!(members.claim("ВОВ", &a).unwrap_err().contains("looks like bob"));
        commit(&members, &mut log);
        assert!(members.take_changes().is_empty(), "each change is handed once");
        drop((members, log));

        let (again, log) = open_store(&dir);
        assert!(again.claim("Alice", &b).is_err());
        again.claim("alice", &a).unwrap();
        assert!(again.claim("josé", &b).is_err());
        again.claim("алиса", &b).unwrap();
        assert!(again.claim("a1ice", &b).unwrap_err().contains("looks like alice"));
        let mut names: Vec<String> = log.names().unwrap().into_iter().map(|n| n.name).collect();
        names.sort();
        assert_eq!(names, ["José", "alice", "bob", "Алиса"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_members_file_is_imported_into_the_store_once_and_renamed() {
        let dir = temp("import");
        let (a, b) = ("01".repeat(32), "02".repeat(32));
        let text = format!("# names\nalice {a} 1800000000\nbob {b}\nALICE {b} 1800000001\n");
        home::create_new(&dir.join(MEMBERS_FILE), text.as_bytes(), Access::Private).unwrap();
        let mut log = RoomLog::open(&dir.join(crate::store::room_log::FILE)).unwrap();
        let (members, note) = NameBindings::in_store(&dir, &mut log).unwrap();
        assert!(note.is_some_and(|n| n.contains("imported 2 name binding(s)")));
        assert!(!dir.join(MEMBERS_FILE).exists() && dir.join(IMPORTED_MEMBERS).exists());
        // The first binding of a name wins, as it did in the file.
        assert_eq!(members.check("alice", &Fingerprint([1; 32])), Ok(true));
        assert!(members.check("alice", &Fingerprint([2; 32])).is_err());
        assert_eq!(members.check("bob", &Fingerprint([2; 32])), Ok(true));
        drop(members);
        // A members file that appears later is not read again.
        let later = format!("carol {a} 1800000000\n");
        home::create_new(&dir.join(MEMBERS_FILE), later.as_bytes(), Access::Private).unwrap();
        let (members, note) = NameBindings::in_store(&dir, &mut log).unwrap();
        assert!(note.is_none());
        assert_eq!(members.check("carol", &Fingerprint([9; 32])), Ok(false), "carol is free");
        assert_eq!(log.names().unwrap().len(), 2);
        drop((members, log));
        // A room kept in memory starts from the store's names.
        let members = NameBindings::in_memory(&dir).unwrap();
        assert!(members.check("bob", &Fingerprint([1; 32])).is_err());
        members.claim("dave", &Fingerprint([4; 32])).unwrap();
        assert!(members.take_changes().is_empty(), "nothing for a store");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn one_address_binds_a_limited_number_of_new_names_an_hour_and_known_names_always_pass() {
        let dir = temp("per-address");
        let members = NameBindings::in_memory(&dir).unwrap();
        // .1 and .2 are one /24; 127.0.1.1 is another.
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.1.1".parse().unwrap());
        let now = 1_800_000_000;
        for i in 0..NEW_NAMES_PER_ADDRESS {
            members.claim_from(&format!("user{i}x"), &Fingerprint([i as u8; 32]), a, now).unwrap();
        }
        let neighbour: IpAddr = "127.0.0.2".parse().unwrap();
        let refused = members.claim_from("onemore", &Fingerprint([99; 32]), neighbour, now).unwrap_err();
        assert!(refused.contains("127.0.0.0/24 has bound 10 new names"), "{refused}");
        let v6: [IpAddr; 2] = ["2001:db8::1".parse().unwrap(), "2001:db8::ffff:2".parse().unwrap()];
        for i in 0..NEW_NAMES_PER_ADDRESS {
            members.claim_from(&format!("six{i}x"), &Fingerprint([100 + i as u8; 32]), v6[0], now).unwrap();
        }
        let refused = members.claim_from("sixmore", &Fingerprint([200; 32]), v6[1], now).unwrap_err();
        assert!(refused.contains("2001:db8::/64"), "{refused}");
        // A name already bound is not a new one; another address is not limited.
        members.claim_from("user0x", &Fingerprint([0; 32]), a, now).unwrap();
        members.claim_from("onemore", &Fingerprint([99; 32]), b, now).unwrap();
        // An hour later the address may bind again.
        members.claim_from("later", &Fingerprint([98; 32]), a, now + NAME_WINDOW).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn names_unused_for_the_expiry_are_freed_when_the_room_starts_and_use_keeps_them() {
        let dir = temp("expiry");
        let day = 86_400;
        let start = 1_800_000_000;
        let (members, mut log) = open_store(&dir);
        let from: IpAddr = "127.0.0.1".parse().unwrap();
        members.claim_from("alice", &Fingerprint([1; 32]), from, start).unwrap();
        members.claim_from("bob", &Fingerprint([2; 32]), from, start).unwrap();
        // Bob comes back 20 days later: used, and recorded.
        members.claim_from("bob", &Fingerprint([2; 32]), from, start + 20 * day).unwrap();
        commit(&members, &mut log);
        drop(members);
        let (members, _) = NameBindings::in_store(&dir, &mut log).unwrap();
        assert_eq!(members.expire_unused(30, start + 40 * day), 1, "alice, unused for 40 days");
        assert_eq!(members.check("alice", &Fingerprint([9; 32])), Ok(false), "free for anyone");
        assert_eq!(members.check("bob", &Fingerprint([2; 32])), Ok(true));
        commit(&members, &mut log);
        drop(members);
        let names = log.names().unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!((names[0].name.as_str(), names[0].last_used), ("bob", start + 20 * day));
        // 0 days never expires.
        let (members, _) = NameBindings::in_store(&dir, &mut log).unwrap();
        assert_eq!(members.expire_unused(0, start + 4000 * day), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_members_file_names_its_line_and_is_not_imported() {
        let dir = temp("bad-members");
        let path = dir.join(MEMBERS_FILE);
        home::create_new(&path, b"# comment\nalice 00\n", Access::Private).unwrap();
        let mut log = RoomLog::open(&dir.join(crate::store::room_log::FILE)).unwrap();
        let err = NameBindings::in_store(&dir, &mut log).unwrap_err();
        assert!(matches!(err, RoomError::BadLine { line: 2, .. }), "{err}");
        assert!(err.to_string().contains(&format!("{} line 2", path.display())));
        assert!(!log.names_imported().unwrap() && path.exists(), "tried again once it is fixed");
        let err = NameBindings::in_memory(&dir).unwrap_err();
        assert!(matches!(err, RoomError::BadLine { line: 2, .. }), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
