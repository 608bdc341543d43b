//! `tlschat id`: shows the user's identity (display name, key fingerprint,
//! safety number), made on first use; renames it, or replaces its key once
//! the user confirms.

use std::io::{self, Write};

use super::{Context, Error, login_name};
use crate::store::home::Home;
use crate::store::identity::{IdentityStore, Loaded};
use crate::tls::OsRng;

/// What `tlschat id` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replace the key with a new one.
    pub new: bool,
    /// With `new`: do not ask first.
    pub yes: bool,
    /// The new display name.
    pub name: Option<String>,
}

/// `tlschat id`: shows the identity, made on first use; `name` renames
/// it; `new` replaces its key once the user confirms (`yes` without a
/// terminal, `interactive` false).
pub fn run(opts: Options, interactive: bool) -> Result<(), Error> {
    let home = Home::locate()?;
    let store = IdentityStore::new(home.identity_dir());
    let login = login_name();
    let identity = if opts.new {
        if !opts.yes {
            confirm_new_identity(&store, interactive)?;
        }
        let identity = store.replace_key(&mut OsRng, login.as_deref())?;
        say!("made a new key; rooms that knew your old key will refuse this one under the same name");
        match &opts.name {
            Some(name) => store.set_name(&mut OsRng, name)?,
            None => identity,
        }
    } else if let Some(name) = &opts.name {
        store.set_name(&mut OsRng, name)?
    } else {
        let (identity, loaded) = store.load_or_create(&mut OsRng, login.as_deref(), None)?;
        if loaded == Loaded::Created {
            say!("made your identity (first use)");
        }
        identity
    };
    say!("name: {}", identity.name());
    say!("fingerprint: {}", identity.fingerprint());
    say!("safety number: {}", identity.fingerprint().short());
    say!("key: {}", store.key_path().display());
    Ok(())
}

/// Asks before `tlschat id --new` throws the old key away.
fn confirm_new_identity(store: &IdentityStore, interactive: bool) -> Result<(), Error> {
    if !interactive {
        return Err(Error::msg(
            "replacing your identity cannot be undone: run `tlschat id --new --yes` to confirm without a terminal; nothing was changed",
        ));
    }
    let current = match store.load() {
        Ok(Some(identity)) => {
            format!("{} (safety number {})", identity.name(), identity.fingerprint().short())
        }
        Ok(None) => "(none yet)".to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    };
    print!(
        "Replace your identity {current} with a new key? Rooms bind your name to your key and will refuse the new one under that name. Type yes to replace: "
    );
    let _ = io::stdout().flush();
    let mut answer = String::new();
    io::stdin().read_line(&mut answer).context("reading the answer")?;
    if answer.trim() != "yes" {
        return Err(Error::msg("kept your identity: nothing was changed"));
    }
    Ok(())
}
