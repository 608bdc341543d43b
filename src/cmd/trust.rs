//! `tlschat trust list` and `tlschat trust forget HOST:PORT`: the rooms
//! whose server key the user pinned (see [`crate::trust`]).

use super::Error;
use crate::home::Home;
use crate::net::BadHostPort;
use crate::tls;
use crate::trust::{self, KnownRooms};

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
            let id = trust::parse_room(&room).ok_or_else(|| BadHostPort::Form(room.clone()))?;
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
    }
    Ok(())
}
