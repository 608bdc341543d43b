//! Text a peer chose, made fit for a terminal.
//!
//! Names, certificate subjects, SANs, chat text and alert text all come
//! from the network. Before any of it is formatted for a person (the TUI,
//! headless output, stderr, the log file) it goes through [`printable`],
//! so that no escape sequence a peer wrote can move a cursor, retitle a
//! window or hide text.

use std::borrow::Cow;

/// `text` fit for a terminal, whoever wrote it: control characters
/// (C0, DEL, C1: the start of every escape sequence), bidirectional
/// overrides and invisible characters are written as `\u{..}` escapes,
/// which shows that they were there without letting them act. Tabs stay.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width characters, LRM, RLM
            | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{feff}' // zero-width no-break space
            | '\u{061c}' // Arabic letter mark
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_invisible_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain \u{1b}]0;title\u{7}"), "plain \\u{1b}]0;title\\u{7}");
        assert_eq!(printable("a\u{202e}b\u{200b}c\td\u{9b}"), "a\\u{202e}b\\u{200b}c\td\\u{9b}");
        assert!(matches!(printable("caf\u{e9} \u{2713} 中文"), Cow::Borrowed(_)));
    }
}
