//! Text a peer chose, made fit for a terminal.
//!
//! Names, certificate subjects, SANs, chat text and alert text all come
//! from the network. Before any of it is formatted for a person (the TUI,
//! headless output, stderr, the log file) it goes through [`printable`],
//! so that no escape sequence a peer wrote can move a cursor, retitle a
//! window or hide text.
//!
//! What is escaped comes from the Unicode Character Database as ICU4X
//! ships it (`icu_properties`, the Unicode Consortium's tables), not from a
//! list kept here: the General_Category and Default_Ignorable_Code_Point
//! properties of the Unicode version that crate carries.

use std::borrow::Cow;
use std::fmt::Write as _;

use icu_properties::props::{
    DefaultIgnorableCodePoint, Emoji, EmojiModifier, ExtendedPictographic, GeneralCategory,
};
use icu_properties::{CodePointMapData, CodePointSetData};

/// The most combining marks (nonspacing or enclosing) kept on one base
/// character; more are escaped. Four covers every letter of every script
/// in use (Vietnamese stacks two, Tibetan and Indic clusters fewer than
/// four on one base) and stops a flood of marks from painting over the
/// lines above and below.
pub(crate) const MAX_MARKS: usize = 4;

/// `text` fit for a terminal, whoever wrote it, with these written as
/// `\u{..}` escapes, which show that they were there without letting them
/// act:
///
/// - control characters (General_Category Cc: C0, DEL, C1, the start of
///   every escape sequence), except tab;
/// - format characters (Cf: bidirectional overrides and isolates,
///   zero-width characters, the soft hyphen, tag characters) and the line
///   and paragraph separators (Zl, Zp);
/// - every Default_Ignorable_Code_Point (variation selectors, the Hangul
///   fillers, the combining grapheme joiner, unassigned ones too), with
///   one exception for emoji: a variation selector 15/16 (U+FE0E, U+FE0F)
///   right after an emoji, and a zero-width joiner (U+200D) between two
///   emoji, are kept, so that `❤️` and `👩‍💻` show as people wrote them
///   (they change only how an emoji is drawn, and hide nothing);
/// - combining marks beyond `MAX_MARKS` in a row on one base.
pub fn printable(text: &str) -> Cow<'_, str> {
    let mut escaped: Option<String> = None;
    let mut marks = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let escape = match class(c) {
            Class::Plain => {
                marks = 0;
                false
            }
            Class::Mark => {
                marks += 1;
                marks > MAX_MARKS
            }
            Class::Hidden => {
                marks = 0;
                !kept_in_emoji(prev, c, next)
            }
        };
        // An escaped character is no emoji for the next one to join.
        prev = (!escape).then_some(c);
        match (&mut escaped, escape) {
            (Some(out), true) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            (Some(out), false) => out.push(c),
            (None, true) => {
                let mut out = String::with_capacity(text.len() + 16);
                out.push_str(&text[..i]);
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                escaped = Some(out);
            }
            (None, false) => {}
        }
    }
    escaped.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// How [`printable`] treats a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Shown as it is.
    Plain,
    /// A combining mark that stacks on its base (Mn, Me): shown up to
    /// [`MAX_MARKS`] in a row.
    Mark,
    /// Acts without showing (Cc but tab, Cf, Zl, Zp, Default_Ignorable):
    /// escaped, but for the emoji exception.
    Hidden,
}

fn class(c: char) -> Class {
    if c == '\t' || (c.is_ascii() && !c.is_ascii_control()) {
        return Class::Plain;
    }
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    if matches!(
        category,
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
    {
        Class::Hidden
    } else if matches!(category, GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark) {
        Class::Mark
    } else {
        Class::Plain
    }
}

/// The emoji exception of [`printable`]: a presentation selector after an
/// emoji, or a zero-width joiner inside an emoji ZWJ sequence (an emoji,
/// perhaps with its selector or skin tone, then the joiner, then a
/// pictograph).
fn kept_in_emoji(prev: Option<char>, c: char, next: Option<char>) -> bool {
    let Some(prev) = prev else { return false };
    match c {
        '\u{fe0e}' | '\u{fe0f}' => CodePointSetData::new::<Emoji>().contains(prev),
        '\u{200d}' => {
            let emoji_before = prev == '\u{fe0f}'
                || CodePointSetData::new::<ExtendedPictographic>().contains(prev)
                || CodePointSetData::new::<EmojiModifier>().contains(prev);
            emoji_before && next.is_some_and(|n| CodePointSetData::new::<ExtendedPictographic>().contains(n))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hidden(c: char) -> bool {
        class(c) == Class::Hidden
    }

    #[test]
    fn controls_bidi_and_invisible_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain \u{1b}]0;title\u{7}"), "plain \\u{1b}]0;title\\u{7}");
        assert_eq!(printable("a\u{202e}b\u{200b}c\td\u{9b}"), "a\\u{202e}b\\u{200b}c\td\\u{9b}");
        assert!(matches!(printable("caf\u{e9} \u{2713} 中文"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_gaps_of_issue_15_are_escaped() {
        // Tag characters (ASCII smuggled in invisible ink), the soft hyphen,
        // line and paragraph separators, the Hangul filler, variation selectors.
        assert_eq!(printable("hi\u{e0041}\u{e007f}"), "hi\\u{e0041}\\u{e007f}");
        assert_eq!(printable("ad\u{ad}min"), "ad\\u{ad}min");
        assert_eq!(printable("a\u{2028}b\u{2029}c"), "a\\u{2028}b\\u{2029}c");
        assert_eq!(printable("\u{3164}"), "\\u{3164}");
        assert_eq!(printable("x\u{fe00}\u{e0100}"), "x\\u{fe00}\\u{e0100}");
        assert_eq!(printable("a\u{34f}b"), "a\\u{34f}b");
        // Unassigned default ignorables and Arabic number signs (Cf) too.
        assert_eq!(printable("\u{e0fff}\u{600}1"), "\\u{e0fff}\\u{600}1");
    }

    #[test]
    fn combining_marks_beyond_four_on_one_base_are_escaped() {
        assert_eq!(printable("e\u{301}\u{302}\u{303}\u{304}"), "e\u{301}\u{302}\u{303}\u{304}");
        assert_eq!(
            printable("e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}x\u{301}"),
            "e\u{301}\u{302}\u{303}\u{304}\\u{305}\\u{306}x\u{301}"
        );
        // Vietnamese stacks two; Devanagari and Arabic vowel marks one or two.
        for text in ["Việt Nam", "Tiếng Việt", "हिन्दी", "مُحَمَّد", "ཀྲྀ"] {
            assert!(matches!(printable(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn emoji_keep_their_selectors_and_joiners_and_nothing_else_does() {
        for text in [
            "\u{2764}\u{fe0f}",
            "\u{1f469}\u{200d}\u{1f4bb}",
            "\u{1f469}\u{1f3fd}\u{200d}\u{1f4bb}",
            "\u{1f3f3}\u{fe0f}\u{200d}\u{1f308}",
            "1\u{fe0f}\u{20e3}",
        ] {
            assert!(matches!(printable(text), Cow::Borrowed(_)), "{text:?}");
        }
        // A joiner between letters, or at an end, or a selector after a letter.
        assert_eq!(printable("a\u{200d}b"), "a\\u{200d}b");
        assert_eq!(printable("\u{1f469}\u{200d}"), "\u{1f469}\\u{200d}");
        assert_eq!(printable("\u{200d}\u{1f469}"), "\\u{200d}\u{1f469}");
        assert_eq!(printable("a\u{fe0f}"), "a\\u{fe0f}");
        // Subdivision flags are tag sequences: the tags are escaped.
        assert_eq!(printable("\u{1f3f4}\u{e0067}\u{e007f}"), "\u{1f3f4}\\u{e0067}\\u{e007f}");
    }

    #[test]
    fn plain_text_in_many_scripts_is_unchanged() {
        for text in [
            "The quick brown fox, 42 times: done!",
            "José and józef met Алиса and Ελένη.",
            "李雷和韩梅梅 さくら カタカナ 한국어",
            "مرحبا يا محمد",
            "שלום עולם",
            "\u{2713} \u{1f600} tab\there",
        ] {
            assert!(matches!(printable(text), Cow::Borrowed(_)), "{text}");
        }
    }

    fn text_with_hidden_characters() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                any::<char>(),
                proptest::char::range('\u{300}', '\u{36f}'),
                proptest::char::range('\u{200b}', '\u{206f}'),
                proptest::char::range('\u{fe00}', '\u{fe0f}'),
                proptest::char::range('\u{e0000}', '\u{e01ef}'),
                proptest::char::range('\u{1f300}', '\u{1f6ff}'),
                Just('\u{ad}'),
                Just('\u{3164}'),
                Just('a'),
            ],
            0..60,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn the_output_hides_nothing(text in text_with_hidden_characters()) {
            let out = printable(&text);
            let chars: Vec<char> = out.chars().collect();
            let mut marks = 0;
            for (i, &c) in chars.iter().enumerate() {
                if hidden(c) {
                    // Only an emoji's selector or joiner, right after an emoji.
                    let before = i.checked_sub(1).map(|j| chars[j]);
                    let emoji = |p: char| {
                        CodePointSetData::new::<Emoji>().contains(p)
                            || CodePointSetData::new::<ExtendedPictographic>().contains(p)
                            || CodePointSetData::new::<EmojiModifier>().contains(p)
                            || p == '\u{fe0f}'
                    };
                    prop_assert!(matches!(c, '\u{fe0e}' | '\u{fe0f}' | '\u{200d}'), "{c:?} in {out:?}");
                    prop_assert!(before.is_some_and(emoji), "{c:?} in {out:?}");
                }
                marks = if class(c) == Class::Mark { marks + 1 } else { 0 };
                prop_assert!(marks <= MAX_MARKS, "{out:?}");
            }
            // Text without any of them is returned as it came.
            if !text.chars().any(|c| class(c) != Class::Plain) {
                prop_assert!(matches!(out, Cow::Borrowed(_)));
            }
            // What is shown is shown again unchanged.
            prop_assert_eq!(printable(&out), out.clone());
        }

        #[test]
        fn letters_of_latin_cjk_and_arabic_are_kept(text in "[a-zA-Z0-9 .,!?\u{e0}-\u{ff}\u{4e00}-\u{9fff}\u{3041}-\u{3096}\u{30a1}-\u{30fa}\u{621}-\u{64a}]{0,80}") {
            prop_assert!(matches!(printable(&text), Cow::Borrowed(_)));
        }
    }
}
