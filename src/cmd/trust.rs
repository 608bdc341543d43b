//! `tlschat trust`: the rooms whose server key the user pinned (see
//! `crate::store::pins`), and in each room the members whose keys the user's
//! member learned from their signatures (see `crate::chat::contacts`).

use std::path::PathBuf;

use super::Error;
use crate::chat::{Contacts, printable};
use crate::net::BadHostPort;
use crate::store::home::{self, Access, Home};
use crate::store::pins::{self, KnownRooms};
use crate::tls::{self, Fingerprint};

/// What `tlschat trust` was asked to do.
#[derive(Debug, Clone)]
pub enum Options {
    /// List the pinned rooms and their key fingerprints.
    List,
    /// Forget the pin of this room, `HOST:PORT` as typed.
    Forget {
        /// The room.
        room: String,
    },
    /// List the members known in a room.
    Members {
        /// The room: `HOST:PORT` (through its pin) or its key fingerprint.
        room: String,
    },
    /// Forget one member's key in a room.
    ForgetMember {
        /// The room.
        room: String,
        /// The member.
        name: String,
    },
    /// Accept the new key of a member whose key changed.
    Accept {
        /// The room.
        room: String,
        /// The member.
        name: String,
    },
    /// Show both safety numbers and mark the member verified.
    Verify {
        /// The room.
        room: String,
        /// The member.
        name: String,
    },
}

/// `tlschat trust list` and `tlschat trust forget HOST:PORT`.
pub fn run(opts: Options) -> Result<(), Error> {
    let home = Home::locate()?;
    match opts {
        Options::List => {
            let known = KnownRooms::load(home.pins_file())?;
            if known.pins().is_empty() {
                say!("no pinned rooms yet ({})", known.path().display());
            }
            for (room, fp) in known.pins() {
                say!("{room}  {}  {}", fp.short(), tls::crypto::hex(&fp.0));
            }
        }
        Options::Forget { room } => {
            let id = pins::parse_room(&room).ok_or_else(|| BadHostPort::Form(room.clone()))?;
            let mut known = KnownRooms::load(home.pins_file())?;
            match known.forget(&id)? {
                Some(fp) => say!(
                    "forgot the key of {id} (safety number {}); the next connection shows the key it finds",
                    fp.short()
                ),
                None => {
                    return Err(Error::msg(format!(
                        "{id} is not pinned in {} (see `tlschat trust list`)",
                        known.path().display()
                    )));
                }
            }
        }
        Options::Members { room } => {
            let (path, contacts) = room_contacts(&home, &room)?;
            if contacts.list().is_empty() {
                say!("no members known in {room} yet ({})", path.display());
            }
            for c in contacts.list() {
                let state = match (c.changed_to, c.verified) {
                    (Some(_), _) => "KEY CHANGED (see `tlschat trust accept`)",
                    (None, true) => "verified",
                    (None, false) => "seen",
                };
                let fp = Fingerprint::of_ed25519(&c.key);
                say!("{}  {}  {state}", printable(&c.name), fp.short());
            }
        }
        Options::ForgetMember { room, name } => {
            let (path, mut contacts) = room_contacts(&home, &room)?;
            let gone = contacts.forget(&name).ok_or_else(|| unknown(&name, &room))?;
            save(&path, &contacts)?;
            say!(
                "forgot the key of {} (safety number {}); the next key seen under the name is new to you",
                printable(&gone.name),
                Fingerprint::of_ed25519(&gone.key).short()
            );
        }
        Options::Accept { room, name } => {
            let (path, mut contacts) = room_contacts(&home, &room)?;
            if contacts.get(&name).is_none() {
                return Err(unknown(&name, &room));
            }
            let key = contacts.accept(&name, crate::clock::unix_now_ms()).ok_or_else(|| {
                Error::msg(format!("the key of {} has not changed: nothing to accept", printable(&name)))
            })?;
            save(&path, &contacts)?;
            say!(
                "accepted the new key of {} (safety number {}); compare it with them and run `tlschat trust verify {room} {}`",
                printable(&name),
                Fingerprint::of_ed25519(&key).short(),
                printable(&name)
            );
        }
        Options::Verify { room, name } => {
            let (path, mut contacts) = room_contacts(&home, &room)?;
            let mine = crate::store::identity::IdentityStore::new(home.identity_dir())
                .load()?
                .map(|id| Fingerprint::of_ed25519(&id.key().public_key()));
            let theirs = contacts.verify(&name).ok_or_else(|| unknown(&name, &room))?.clone();
            if theirs.changed_to.is_some() {
                return Err(Error::msg(format!(
                    "the key of {} CHANGED: accept the new key first (`tlschat trust accept {room} {}`), after comparing it",
                    printable(&name),
                    printable(&name)
                )));
            }
            save(&path, &contacts)?;
            if let Some(mine) = mine {
                say!("your safety number:       {}", mine.short());
            }
            say!(
                "{}'s safety number: {}",
                printable(&theirs.name),
                Fingerprint::of_ed25519(&theirs.key).short()
            );
            say!(
                "marked {} verified: compare both numbers with them in person or on a call; if they differ, run `tlschat trust forget {room} {}`",
                printable(&theirs.name),
                printable(&theirs.name)
            );
        }
    }
    Ok(())
}

/// The contacts file of `room`: `HOST:PORT` through its pin, or the
/// room's key fingerprint as 64 hex digits.
fn room_contacts(home: &Home, room: &str) -> Result<(PathBuf, Contacts), Error> {
    let fp = match Fingerprint::parse(room) {
        Some(fp) => fp,
        None => {
            let id = pins::parse_room(room).ok_or_else(|| BadHostPort::Form(room.to_owned()))?;
            let known = KnownRooms::load(home.pins_file())?;
            known.get(&id).ok_or_else(|| {
                Error::msg(format!(
                    "{id} is not pinned in {}: name the room by its key fingerprint instead",
                    known.path().display()
                ))
            })?
        }
    };
    let path = home.contacts_dir().join(format!("{}.txt", tls::crypto::hex(&fp.0)));
    let contacts = match home::read(&path, Access::Private)? {
        Some(text) => Contacts::parse(&text).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?,
        None => Contacts::new(),
    };
    Ok((path, contacts))
}

fn save(path: &std::path::Path, contacts: &Contacts) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        home::private_dir(dir)?;
    }
    home::replace(path, contacts.to_text().as_bytes(), Access::Private)?;
    Ok(())
}

fn unknown(name: &str, room: &str) -> Error {
    Error::msg(format!(
        "no member named {} is known in {room} (see `tlschat trust list {room}`)",
        printable(name)
    ))
}
