//! What tlschat keeps on disk, and the keys and certificates it makes.
//!
//! - `home`: where the files live, and how they are written (0600, whole
//!   files renamed into place);
//! - `identity`: the user's Ed25519 key and display name;
//! - `pins`: how `connect` decides to trust a room's server, and the pins
//!   of the rooms the user joined;
//! - `room_keys`: the keys and certificates of the room `listen` serves;
//! - [`names`]: the names its members claimed, each bound to a key;
//! - [`room_log`]: the room's log and name bindings in redb, written off
//!   the room's task;
//! - [`pki`]: making keys and certificates (rcgen), loading PEM files.

pub(crate) mod home;
pub(crate) mod identity;
pub mod names;
pub mod pins;
pub mod pki;
pub(crate) mod room_keys;
pub mod room_log;
