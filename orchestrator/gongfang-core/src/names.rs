//! One way to say a name: [`named_enum!`] declares an enum of plain variants together with the
//! stable lowercase word of each, so the word list, the parser and the printer cannot drift.
//!
//! The words are what the database, the API, the scenario file and the logs store; serde uses
//! the same words, so JSON and TOML never disagree with the database.

/// Declares an enum whose variants each have one stable name (and optional aliases accepted
/// when parsing), with:
/// - `ALL` and `NAMES`, in declaration order;
/// - `as_str`, `from_name`, `Display` and `FromStr` (the error lists every accepted name);
/// - `Serialize` and `Deserialize` as that name.
///
/// ```
/// gongfang_core::named_enum! {
///     /// A colour.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
///     pub enum Colour {
///         /// The colour of the sky.
///         Blue = "blue",
///         Grey = "grey" | "gray",
///     }
/// }
/// assert_eq!(Colour::from_name("gray"), Some(Colour::Grey));
/// assert_eq!(Colour::Grey.as_str(), "grey");
/// assert_eq!(Colour::NAMES, ["blue", "grey"]);
/// assert!("red".parse::<Colour>().unwrap_err().to_string().contains("blue, grey"));
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// The stable name used in the database, the API and the logs.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The value named `name` (or one of its aliases).
            pub fn from_name(name: &str) -> ::core::option::Option<$name> {
                match name {
                    $($word $(| $alias)* => ::core::option::Option::Some($name::$variant),)+
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> ::core::result::Result<$name, $crate::names::UnknownName> {
                $name::from_name(s).ok_or_else(|| $crate::names::UnknownName::new(stringify!($name), s, $name::NAMES))
            }
        }

        impl $crate::names::serde::Serialize for $name {
            fn serialize<S: $crate::names::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::names::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::names::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<$name, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as $crate::names::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as $crate::names::serde::de::Error>::custom)
            }
        }
    };
}

#[doc(hidden)]
pub use serde;

/// A word that names no value of an enum declared with [`named_enum!`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of {}", expected.join(", "))]
pub struct UnknownName {
    /// The enum's name, in lowercase words (`verdict`, `report status`).
    pub what: String,
    pub given: String,
    pub expected: &'static [&'static str],
}

impl UnknownName {
    #[doc(hidden)]
    pub fn new(type_name: &str, given: &str, expected: &'static [&'static str]) -> UnknownName {
        UnknownName { what: words(type_name), given: given.to_owned(), expected }
    }
}

/// `ReportStatus` → `report status`.
fn words(type_name: &str) -> String {
    let mut out = String::with_capacity(type_name.len() + 4);
    for (i, c) in type_name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    crate::named_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum ReportColour {
            Red = "red",
            Grey = "grey" | "gray",
        }
    }

    #[test]
    fn names_parse_print_and_serialise_alike() {
        for (value, name) in ReportColour::ALL.iter().zip(ReportColour::NAMES) {
            assert_eq!(value.as_str(), *name);
            assert_eq!(ReportColour::from_name(name), Some(*value));
            assert_eq!(serde_json::to_string(value).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<ReportColour>(&format!("\"{name}\"")).unwrap(), *value);
        }
        assert_eq!(ReportColour::from_name("gray"), Some(ReportColour::Grey));
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = "blue".parse::<ReportColour>().unwrap_err();
        assert_eq!(err.to_string(), "unknown report colour `blue`; expected one of red, grey");
        assert!(serde_json::from_str::<ReportColour>("\"blue\"").is_err());
    }
}
