//! Fieldless enums whose values are stored in PostgreSQL and sent on the wire as fixed strings.
//! One macro writes `as_str`, `FromStr`, `Display` and `ALL` for each, so a value has exactly one
//! spelling in Rust (the repository edge decodes it; an unknown stored value is an error, never
//! a default).

/// A stored string that names no value of the enum it was decoded into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value")]
pub struct UnknownValue {
    /// The enum's name.
    pub kind: &'static str,
}

/// Defines a text enum (see the module doc).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::text_enum::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::domain::text_enum::UnknownValue { kind: stringify!($name) }),
                }
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        /// A test enum.
        pub enum Colour {
            /// Red.
            Red => "red",
            /// Dark blue.
            DarkBlue => "dark_blue",
        }
    }

    #[test]
    fn values_round_trip_and_unknown_is_an_error() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(
            "green".parse::<Colour>(),
            Err(super::UnknownValue { kind: "Colour" })
        );
    }
}
