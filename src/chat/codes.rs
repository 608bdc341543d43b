//! Wire code tables declared once: [`code_table!`] writes an enum, its
//! one-byte codes and its names from a single list, so that a code, its
//! variant and its name can never disagree in two hand-written matches.

/// Declares a fieldless enum whose variants each have a one-byte wire code
/// and a name, and writes from that one list:
///
/// - `ALL`, every variant in declaration order;
/// - `code(self) -> u8` and `from_code(u8) -> Option<Self>` (`None` for a
///   code the table does not hold);
/// - `as_str(self) -> &'static str`, the name.
///
/// ```ignore
/// code_table! {
///     /// What a message is.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Kind {
///         /// A line of chat.
///         Text = 1 => "text",
///     }
/// }
/// ```
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $code:literal => $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        #[allow(dead_code)]
        impl $name {
            /// Every variant, in the order the table declares them.
            $vis const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Its code on the wire.
            $vis const fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The variant with this code on the wire, if any.
            $vis const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Its name (in JSON, the docs and refusals).
            $vis const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

pub(crate) use code_table;

#[cfg(test)]
mod tests {
    code_table! {
        /// A table for the macro's own test.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Sample {
            /// One.
            One = 1 => "one",
            /// Two.
            Two = 0x80 => "two",
        }
    }

    #[test]
    fn a_table_maps_codes_variants_and_names_both_ways() {
        assert_eq!(Sample::ALL, [Sample::One, Sample::Two]);
        assert_eq!((Sample::One.code(), Sample::Two.code()), (1, 0x80));
        assert_eq!((Sample::One.as_str(), Sample::Two.as_str()), ("one", "two"));
        for code in 0..=u8::MAX {
            let expected = match code {
                1 => Some(Sample::One),
                0x80 => Some(Sample::Two),
                _ => None,
            };
            assert_eq!(Sample::from_code(code), expected, "{code}");
        }
    }
}
