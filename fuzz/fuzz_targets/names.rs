//! Names and peer text, the Unicode the relay and members judge: any UTF-8
//! through `chat::name` (prepare, check, key, skeleton, the contacts' index of looks) and
//! `printable`. Besides not crashing: a prepared name prepares to itself
//! and passes `check`, and what `printable` shows it shows again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlschat::chat::{Contacts, name, printable};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(prepared) = name::prepare(text) {
        assert_eq!(name::prepare(prepared.as_str()).as_ref(), Ok(&prepared), "{text:?}");
        assert_eq!(name::check(prepared.as_str()).as_ref(), Ok(&prepared), "{text:?}");
    }
    let (a, b) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    assert_eq!(name::is_confusable_with(a, b), name::is_confusable_with(b, a), "{text:?}");
    // The member's index by look: a look-alike it finds is confusable and
    // another name.
    let mut contacts = Contacts::new();
    contacts.learn(b, [1; 32], 0);
    if let Some(found) = contacts.look_alike(a) {
        assert!(name::is_confusable_with(a, &found.name) && name::key(a) != name::key(&found.name), "{text:?}");
    }
    let shown = printable(text);
    assert_eq!(printable(&shown), shown, "{text:?}");
});
