//! Display names: the one place they are judged, by the relay when a
//! member takes a seat and by a member when the relay names an author.
//!
//! A name is prepared with the PRECIS Nickname profile (RFC 8266 over the
//! FreeformClass of RFC 8264): non-ASCII spaces become ASCII spaces, spaces
//! at the ends go, NFKC folds compatibility forms (full-width `Ｊｏｓé` is
//! `José`, the ligature `ﬁ` is `fi`). On that form tlschat adds the rules
//! that make a name safe to show beside a check mark:
//!
//! - one word of at most `MAX_NAME` characters, starting with a letter or
//!   digit: letters, combining marks (at most `MAX_MARKS` on one letter)
//!   and digits of scripts in current use (UTS #39's General Security
//!   Profile: `Identifier_Status=Allowed`), and `.`, `_`, `-`;
//! - one script (UTS #39 "Highly Restrictive"): Common and Inherited
//!   characters go with any script, and the combinations a language needs
//!   are allowed (Latin with Han, Hiragana and Katakana; with Han and
//!   Bopomofo; with Han and Hangul), but `аlice` with a Cyrillic `а` is not.
//!
//! Names are compared by a key (PRECIS case mapping and NFKC: `JOSÉ` and
//! `josé` are one name) and by how they look: the UTS #39 confusable
//! skeleton, lower-cased, with tlschat's folds for the letters a terminal
//! font confuses (`I`, `l`, `1`, `i`; `O`, `0`; `rn`, `m`; `vv`, `w`) and
//! the separators left out. A name that looks like a name another key holds
//! is refused by the relay and flagged by members (`looks`).

use std::borrow::Cow;

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;
use precis_profiles::Nickname;
use precis_profiles::precis_core::profile::{Profile, Rules, stabilize};
use precis_profiles::precis_core::{Error as PrecisError, UnexpectedError};
use unicode_script::{Script, UnicodeScript};
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

/// The longest name, in characters (Unicode scalar values) of its
/// prepared form: 32 letters of any script, at most 128 bytes of UTF-8.
pub(crate) const MAX_NAME: usize = 32;

/// The most combining marks (nonspacing or enclosing) on one letter.
pub(crate) const MAX_MARKS: usize = 4;

/// Input longer than this (bytes) is refused before any work: no prepared
/// name of [`MAX_NAME`] characters comes from more, whatever spaces or
/// decomposed letters it is written with.
const MAX_INPUT: usize = 16 * MAX_NAME;

/// Why a name is refused: one line each, said to the person who chose it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing left once spaces are trimmed.
    #[error("a name cannot be empty")]
    Empty,
    /// More than `MAX_NAME` characters.
    #[error("a name has at most {MAX_NAME} characters")]
    TooLong,
    /// A space inside: names are words in commands (`/msg NAME TEXT`).
    #[error("a name is one word, without spaces (use '.', '_' or '-')")]
    Space,
    /// A character no name may hold.
    #[error(
        "{0:?} is not allowed in a name (letters, marks and digits of a script in current use, and '.', '_', '-')"
    )]
    BadChar(char),
    /// Starts with punctuation or a mark.
    #[error("a name must start with a letter or digit")]
    BadStart,
    /// A pile of combining marks.
    #[error("a name has at most {MAX_MARKS} combining marks on one letter")]
    TooManyMarks,
    /// Letters of scripts that do not go together.
    #[error(
        "a name is written in one script (Japanese, Chinese and Korean may add Latin), but this one mixes {0}"
    )]
    MixedScripts(String),
    /// A valid name written in another form than its prepared one, where
    /// the prepared form is required (a certificate, a stored binding).
    #[error("the name must be written in its prepared form {0:?}")]
    NotPrepared(String),
}

/// A name that passed [`prepare`]: the form to show and store, the key it
/// is compared by, and how it looks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    shown: String,
    key: String,
    looks: Looks,
}

/// The skeletons of a name as written and of its key: two names look
/// alike when any of these agree (`ВОВ` in Cyrillic capitals looks like
/// `BOB` and so like `bob`, though its key `вов` does not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Looks {
    written: String,
    keyed: String,
}

impl Looks {
    fn of(name: &str, key: &str) -> Self {
        Self { written: skeleton(name), keyed: skeleton(key) }
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.written.as_str())
            .chain((self.keyed != self.written).then_some(self.keyed.as_str()))
    }

    fn meet(&self, other: &Self) -> bool {
        self.iter().any(|a| other.iter().any(|b| a == b))
    }
}

impl Name {
    /// The prepared form: what is shown, stored and put in certificates.
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// The comparison key: two names with one key are the same name.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The skeletons this name is compared by for look-alikes (one or two).
    pub(crate) fn looks(&self) -> impl Iterator<Item = &str> {
        self.looks.iter()
    }

    /// Whether `other` is this name or could pass for it.
    #[cfg(test)]
    pub(crate) fn is_confusable_with(&self, other: &Self) -> bool {
        self.key == other.key || self.looks.meet(&other.looks)
    }

    /// The prepared form, owned.
    pub(crate) fn into_string(self) -> String {
        self.shown
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.shown
    }
}

/// Prepares `input` as a name (see the module doc for the rules): the
/// form to show and store, or the one rule it breaks.
pub fn prepare(input: &str) -> Result<Name, NameError> {
    if input.len() > MAX_INPUT {
        return Err(NameError::TooLong);
    }
    let bad = |cp: u32| NameError::BadChar(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
    let shown = Nickname::new().enforce(input).map_err(|e| match e {
        PrecisError::BadCodepoint(info)
        | PrecisError::Unexpected(
            UnexpectedError::ContextRuleNotApplicable(info) | UnexpectedError::MissingContextRule(info),
        ) => bad(info.cp),
        // Empty, or (never seen) a form that does not settle.
        PrecisError::Invalid | PrecisError::Unexpected(_) => {
            if input.trim().is_empty() {
                NameError::Empty
            } else {
                bad(0xfffd)
            }
        }
    })?;
    check_rules(&shown)?;
    let shown = shown.into_owned();
    let key = key(&shown);
    let looks = Looks::of(&shown, &key);
    Ok(Name { shown, key, looks })
}

/// Checks a name that must already be in its prepared form (a certificate's
/// common name, a stored binding): [`prepare`], and the form
/// must be the one given.
pub fn check(name: &str) -> Result<Name, NameError> {
    let prepared = prepare(name)?;
    if prepared.as_str() != name {
        return Err(NameError::NotPrepared(prepared.into_string()));
    }
    Ok(prepared)
}

/// tlschat's rules on a PRECIS-enforced form.
fn check_rules(name: &str) -> Result<(), NameError> {
    let gc = CodePointMapData::<GeneralCategory>::new();
    let mut chars = 0;
    let mut marks = 0;
    for c in name.chars() {
        chars += 1;
        if c == ' ' {
            return Err(NameError::Space);
        }
        if !allowed_char(c) {
            return Err(NameError::BadChar(c));
        }
        let mark = matches!(gc.get(c), GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark);
        marks = if mark { marks + 1 } else { 0 };
        if marks > MAX_MARKS {
            return Err(NameError::TooManyMarks);
        }
    }
    if chars > MAX_NAME {
        return Err(NameError::TooLong);
    }
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if !(is_letter(gc.get(first)) || gc.get(first) == GeneralCategory::DecimalNumber) {
        return Err(NameError::BadStart);
    }
    // ASCII punctuation is Common, whatever the script; the level is told
    // on the rest (the crate counts only identifier characters).
    let letters: String = name.chars().filter(|c| !matches!(c, '.' | '_' | '-')).collect();
    if letters.as_str().detect_restriction_level() > RestrictionLevel::HighlyRestrictive {
        return Err(NameError::MixedScripts(scripts_of(name)));
    }
    Ok(())
}

/// Whether a name may hold `c` (in its prepared form): ASCII letters,
/// digits, `.`, `_` and `-`; beyond ASCII, letters, marks and decimal
/// digits that UTS #39's General Security Profile allows in identifiers.
pub(crate) fn allowed_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    } else {
        is_letter_mark_or_digit(CodePointMapData::<GeneralCategory>::new().get(c)) && c.identifier_allowed()
    }
}

fn is_letter(category: GeneralCategory) -> bool {
    matches!(
        category,
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
    )
}

fn is_letter_mark_or_digit(category: GeneralCategory) -> bool {
    is_letter(category)
        || matches!(
            category,
            GeneralCategory::NonspacingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::EnclosingMark
                | GeneralCategory::DecimalNumber
        )
}

/// The scripts of a name's letters in the order they appear, for a
/// refusal: `Cyrillic and Latin`.
fn scripts_of(name: &str) -> String {
    let mut seen: Vec<Script> = Vec::new();
    for c in name.chars() {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited | Script::Unknown) && !seen.contains(&script)
        {
            seen.push(script);
        }
    }
    let names: Vec<&str> = seen.iter().map(|s| s.full_name()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((only, _)) => (*only).to_owned(),
        None => "scripts".to_owned(),
    }
}

/// The comparison key of any string: the PRECIS Nickname comparison's
/// case mapping (Unicode `toLowerCase`) and NFKC, repeated until stable.
/// Two names are the same name when their keys are equal.
pub fn key(name: &str) -> String {
    let profile = Nickname::new();
    let fold = |s: &str| -> Result<Cow<'_, str>, PrecisError> {
        let lower = profile.case_mapping_rule(s)?;
        Ok(Cow::Owned(profile.normalization_rule(lower)?.into_owned()))
    };
    match stabilize(name, |s| fold(s)) {
        Ok(key) => key.into_owned(),
        // Never seen: a string that does not settle keeps its last form.
        Err(_) => fold(&name.to_lowercase()).map_or_else(|_| name.to_lowercase(), Cow::into_owned),
    }
}

/// What a name looks like: its UTS #39 confusable skeleton, lower-cased,
/// with the letters a terminal font confuses folded together and the
/// separators `.`, `_`, `-` left out. Two names with one skeleton could
/// pass for each other (`аlice` with a Cyrillic `а`, `aIice`, `a1ice` and
/// `a.lice` all look like `alice`).
pub(crate) fn skeleton(name: &str) -> String {
    let prototype: String = unicode_security::skeleton(name).collect();
    let folded: String = prototype
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '.' | '_' | '-'))
        .map(|c| match c {
            'i' | '1' | '|' => 'l',
            '0' => 'o',
            '5' => 's',
            other => other,
        })
        .collect();
    folded.replace("rn", "m").replace("vv", "w")
}

/// Whether `a` and `b` are the same name or could pass for each other.
/// Any strings may be compared; names need not be prepared.
pub fn is_confusable_with(a: &str, b: &str) -> bool {
    let (ka, kb) = (key(a), key(b));
    ka == kb || Looks::of(a, &ka).meet(&Looks::of(b, &kb))
}

/// The skeletons any string is compared by for look-alikes: of the string
/// as written and of its comparison key (one or two). Two names look alike
/// when these meet; an index by them finds a look-alike in one lookup per
/// look (the member's contacts keep one).
pub(crate) fn looks(name: &str) -> Vec<String> {
    Looks::of(name, &key(name)).iter().map(str::to_owned).collect()
}

/// The first of `known` that `name` could pass for without being it (its
/// key differs), by scanning them all: the reference the contacts' index
/// by [`looks`] is tested against.
#[cfg(test)]
pub(crate) fn lookalike<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let k = key(name);
    let looks = Looks::of(name, &k);
    known.into_iter().find(|other| {
        let ko = key(other);
        ko != k && looks.meet(&Looks::of(other, &ko))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shown(name: &str) -> String {
        prepare(name).map(Name::into_string).unwrap_or_else(|e| panic!("{name:?} was refused: {e}"))
    }

    #[test]
    fn names_in_many_scripts_are_accepted_as_written() {
        for name in ["José", "józef", "Алиса", "Ελένη", "李雷", "さくら", "محمد", "alice", "x-1.y_2", "Zoë"]
        {
            assert_eq!(shown(name), name);
            assert_eq!(check(name).map(Name::into_string), Ok(name.to_owned()));
        }
        // Japanese may mix kanji, kana and Latin; Korean Hangul and Latin.
        for name in ["山田さくら", "サクラ2", "さくらSakura", "김민준", "Kim민준"] {
            assert_eq!(shown(name), name);
        }
    }

    #[test]
    fn preparing_maps_widths_spaces_and_compatibility_forms() {
        assert_eq!(shown("Ｊｏｓé"), "José");
        assert_eq!(shown("  alice\u{3000}"), "alice");
        assert_eq!(shown("ﬁona"), "fiona");
        // Decomposed é (e and a combining acute) is composed.
        assert_eq!(shown("Jose\u{301}"), "José");
        assert_eq!(check("Jose\u{301}"), Err(NameError::NotPrepared("José".into())));
    }

    #[test]
    fn refusals_say_which_rule_is_broken() {
        assert_eq!(prepare("").unwrap_err(), NameError::Empty);
        assert_eq!(prepare("   ").unwrap_err(), NameError::Empty);
        assert_eq!(prepare("a b").unwrap_err(), NameError::Space);
        assert_eq!(prepare("-x").unwrap_err(), NameError::BadStart);
        assert_eq!(prepare("\u{301}x").unwrap_err(), NameError::BadStart);
        assert_eq!(prepare("a]b").unwrap_err(), NameError::BadChar(']'));
        assert_eq!(prepare("a\u{1b}[2J").unwrap_err(), NameError::BadChar('\u{1b}'));
        for invisible in ['\u{200b}', '\u{200c}', '\u{200d}', '\u{202e}', '\u{ad}', '\u{e0041}', '\u{feff}'] {
            assert_eq!(
                prepare(&format!("al{invisible}ice")),
                Err(NameError::BadChar(invisible)),
                "{invisible:?}"
            );
        }
        // The Hangul filler is refused as what NFKC makes of it.
        assert!(matches!(prepare("al\u{3164}ice"), Err(NameError::BadChar(_))));
        assert_eq!(prepare("bob\u{1f600}").unwrap_err(), NameError::BadChar('\u{1f600}'));
        assert_eq!(prepare(&"y".repeat(33)).unwrap_err(), NameError::TooLong);
        assert_eq!(prepare(&"李".repeat(33)).unwrap_err(), NameError::TooLong);
        assert_eq!(shown(&"李".repeat(32)), "李".repeat(32));
        assert_eq!(prepare(&"x".repeat(100_000)).unwrap_err(), NameError::TooLong);
        assert_eq!(
            // é composes, then five marks on it.
            prepare(&format!("e{}", "\u{301}\u{302}\u{303}\u{304}\u{306}\u{308}")).unwrap_err(),
            NameError::TooManyMarks
        );
        let mixed = prepare("\u{430}lice").unwrap_err();
        assert_eq!(mixed, NameError::MixedScripts("Cyrillic and Latin".into()));
        assert!(mixed.to_string().contains("mixes Cyrillic and Latin"), "{mixed}");
        assert!(matches!(prepare("Ελένηx"), Err(NameError::MixedScripts(_))));
        for e in [NameError::Empty, NameError::TooLong, NameError::Space, mixed] {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn names_compare_without_regard_to_case_or_width() {
        assert_eq!(prepare("JOSÉ").unwrap().key(), prepare("josé").unwrap().key());
        assert_eq!(prepare("Ｊｏｓé").unwrap().key(), "josé");
        assert_eq!(key("ΕΛΈΝΗ"), key("ελένη"));
        assert_ne!(key("José"), key("Jose"));
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        for lookalike in ["\u{430}lice", "aIice", "a1ice", "al1ce", "a.lice", "ALlCE", "ALICE"] {
            assert!(is_confusable_with(lookalike, "alice"), "{lookalike}");
        }
        // Whole-script look-alikes: Cyrillic capitals that look Latin.
        assert!(is_confusable_with("ВОВ", "bob"));
        assert!(prepare("ВОВ").unwrap().is_confusable_with(&prepare("bob").unwrap()));
        assert!(is_confusable_with("b0b", "bob"));
        assert!(is_confusable_with("rnike", "mike"));
        for (a, b) in
            [("alice", "bob"), ("José", "Jose"), ("Алиса", "alice"), ("李雷", "李電"), ("さくら", "サクラ")]
        {
            assert!(!is_confusable_with(a, b), "{a} {b}");
        }
    }

    #[test]
    fn lookalike_names_the_known_name_a_new_one_could_pass_for() {
        let known = ["bob", "alice", "José"];
        assert_eq!(lookalike("\u{430}lice", known), Some("alice"));
        assert_eq!(lookalike("ВОВ", known), Some("bob"));
        // The same name is not a look-alike of itself, in any case.
        assert_eq!(lookalike("ALICE", known), None);
        assert_eq!(lookalike("carol", known), None);
    }

    #[test]
    fn the_relay_seats_a_unicode_name_and_refuses_a_lookalike_of_a_seated_one() {
        use super::super::relay::{Config, JoinError, Joiner, Relay, Transport};
        let mut relay = Relay::new(Config::new([7; 32]));
        let join = |relay: &mut Relay, id, name: &str, key| {
            relay.join(id, Joiner::Verified { name: name.into(), key: [key; 32] }, Transport::Frames, 1)
        };
        join(&mut relay, 1, "José", 1).unwrap();
        assert_eq!(relay.name(1), Some("José"));
        join(&mut relay, 2, "alice", 2).unwrap();
        // Another device of the same key is welcome.
        join(&mut relay, 3, "alice", 2).unwrap();
        for (id, lookalike) in [(4, "\u{430}lice"), (5, "ALICE"), (6, "a1ice")] {
            let refused = join(&mut relay, id, lookalike, 3).unwrap_err();
            assert!(matches!(refused, JoinError::Name(_)), "{lookalike}: {refused}");
        }
        assert!(join(&mut relay, 7, "JOSE\u{301}", 3).unwrap_err().to_string().contains("prepared form"));
        // The host removes José by any case of his name.
        assert!(relay.remove("JOSÉ", false, 2).is_ok());
        assert_eq!(relay.name(1), None);
        // Once both of alice's seats are gone, the name is free in this room.
        relay.leave(2, "", 2);
        assert!(join(&mut relay, 8, "alice", 3).is_err());
        relay.leave(3, "", 2);
        join(&mut relay, 8, "alice", 3).unwrap();
    }

    #[test]
    fn a_member_flags_a_cyrillic_lookalike_of_a_contacts_name() {
        use super::super::{AuthorCheck, ChatEvent, Contacts, Frame, Kind, Member};
        use crate::tls::{Ed25519Key, SeededRng};
        let room = [7; 32];
        let key = |seed| Ed25519Key::generate(&mut SeededRng::new_for_testing_only(seed));
        let mut contacts = Contacts::new();
        contacts.learn("alice", key(1).public_key(), 1);
        let mut carol =
            Member::new(room, key(3), &mut SeededRng::new_for_testing_only(30)).with_contacts(contacts);
        let joined = 1_800_000_000_000;
        carol
            .receive(Frame::Welcome { name: "carol".into(), room_seq: 10, history: 0, e2e: false }, joined)
            .unwrap();
        let mut mallory = Member::new(room, key(9), &mut SeededRng::new_for_testing_only(90));
        let Frame::Post { signed } = mallory.compose(Kind::Text, "it is me", None, joined).unwrap().0 else {
            panic!("a post")
        };
        let deliver = Frame::Deliver { room_seq: 11, flags: 0, author: "\u{430}lice".into(), signed };
        let events = carol.receive(deliver, joined + 10).unwrap();
        let author = events.iter().find_map(|e| match e {
            ChatEvent::Message(m) => Some(m.author.clone()),
            _ => None,
        });
        assert_eq!(author, Some(AuthorCheck::LookAlike { of: "alice".into() }), "{events:?}");
    }

    /// Mostly names that pass: letters of one script, perhaps with marks,
    /// full-width forms, separators and spaces at the ends.
    fn likely_name() -> impl Strategy<Value = String> {
        let script = prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::char::range('\u{c0}', '\u{ff}'),
            proptest::char::range('\u{ff21}', '\u{ff5a}'),
            proptest::char::range('\u{410}', '\u{44f}'),
            proptest::char::range('\u{3b1}', '\u{3c9}'),
            proptest::char::range('\u{3041}', '\u{3096}'),
            proptest::char::range('\u{4e00}', '\u{9fff}'),
            proptest::char::range('\u{628}', '\u{64a}'),
        ];
        (script, proptest::collection::vec(0u32..40, 1..40), " {0,2}", " {0,2}").prop_map(
            |(first, offsets, lead, tail)| {
                let body: String = offsets
                    .into_iter()
                    .map(|o| match o {
                        0 => '\u{301}',
                        1 => '-',
                        2 => '7',
                        _ => char::from_u32(u32::from(first) + o % 24).unwrap_or(first),
                    })
                    .collect();
                format!("{lead}{first}{body}{tail}")
            },
        )
    }

    fn arbitrary_text() -> impl Strategy<Value = String> {
        prop_oneof![
            likely_name(),
            any::<String>(),
            "\\PC{0,40}",
            // Letters, marks, spaces and format characters from the scripts above.
            proptest::collection::vec(
                prop_oneof![
                    proptest::char::range('a', 'z'),
                    proptest::char::range('A', 'Z'),
                    proptest::char::range('\u{300}', '\u{36f}'),
                    proptest::char::range('\u{391}', '\u{3c9}'),
                    proptest::char::range('\u{410}', '\u{44f}'),
                    proptest::char::range('\u{621}', '\u{64a}'),
                    proptest::char::range('\u{3041}', '\u{30ff}'),
                    proptest::char::range('\u{4e00}', '\u{4e80}'),
                    proptest::char::range('\u{ff01}', '\u{ff5e}'),
                    Just(' '),
                    Just('\u{3000}'),
                    Just('\u{200d}'),
                    Just('.'),
                    Just('-'),
                ],
                0..40
            )
            .prop_map(|cs| cs.into_iter().collect()),
        ]
    }

    proptest! {
        // About one case in ten is a name that passes: enough of both.
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn prepare_never_panics_and_is_idempotent(text in arbitrary_text()) {
            if let Ok(name) = prepare(&text) {
                let again = prepare(name.as_str()).expect("a prepared name prepares again");
                prop_assert_eq!(&again, &name);
                prop_assert_eq!(again.key(), name.key());
                prop_assert_eq!(check(name.as_str()), Ok(name.clone()));
                prop_assert!(name.as_str().chars().count() <= MAX_NAME);
                prop_assert!(name.is_confusable_with(&again));
            }
        }

        /// The relay's index of seated names against a model: a seat is
        /// refused exactly when another key sits under a name that is or
        /// looks like its own, whatever joined and left before.
        #[test]
        fn the_relay_refuses_a_seat_exactly_when_another_key_holds_a_confusable_name(
            steps in proptest::collection::vec((any::<bool>(), 1u64..12, 0usize..8, 1u8..4), 1..80)
        ) {
            use super::super::relay::{Config, JoinError, Joiner, Relay, Transport};
            const NAMES: [&str; 8] = ["alice", "ALICE", "a1ice", "\u{410}\u{43b}\u{438}\u{441}\u{430}", "bob", "\u{412}\u{41e}\u{412}", "Jos\u{e9}", "jos\u{e9}"];
            let mut config = Config::new([7; 32]);
            config.seats_per_key = usize::MAX;
            let mut relay = Relay::new(config);
            let mut seated: std::collections::BTreeMap<u64, (&str, u8)> = std::collections::BTreeMap::new();
            for (join, id, n, k) in steps {
                if join && !seated.contains_key(&id) {
                    let name = NAMES[n];
                    let clash = seated.values().any(|&(other, key)| key != k && is_confusable_with(other, name));
                    let joined = relay.join(id, Joiner::Verified { name: name.into(), key: [k; 32] }, Transport::Frames, 1);
                    match joined {
                        Ok(_) => {
                            prop_assert!(!clash, "{name} seated beside {seated:?}");
                            seated.insert(id, (name, k));
                        }
                        Err(JoinError::Name(why)) => prop_assert!(clash, "{name} refused beside {seated:?}: {why}"),
                        Err(other) => prop_assert!(false, "{other}"),
                    }
                } else if !join {
                    relay.leave(id, "", 2);
                    seated.remove(&id);
                }
            }
        }

        #[test]
        fn key_skeleton_and_lookalike_never_panic_and_key_is_stable(a in arbitrary_text(), b in arbitrary_text()) {
            let k = key(&a);
            prop_assert_eq!(key(&k), k);
            let _ = skeleton(&a);
            prop_assert!(is_confusable_with(&a, &a));
            prop_assert_eq!(is_confusable_with(&a, &b), is_confusable_with(&b, &a));
            let _ = lookalike(&a, [b.as_str()]);
        }
    }
}
