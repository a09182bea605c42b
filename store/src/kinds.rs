//! The closed sets the store keeps as text: what a version is, and where a job stands. Each is
//! an enum in code and its lower-case name in the database (no migration: the columns stay
//! `text`), so a typo is a compile error rather than a row no query finds.

use sqlx::{
    Decode, Encode, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef},
};

/// A closed set stored as its name: `as_str`/`FromStr`, `Display`, comparison with a `&str`
/// (tests read rows as text), serde and sqlx through the name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("{other:?} is not a {}", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Ok(text.parse::<Self>()?)
            }
        }
    };
}

text_enum! {
    /// What a stored manifest is.
    VersionKind {
        /// A Crossplane package (`io.crossplane.xpkg: base` layer read).
        Package => "package",
        /// A container image, or an index of them.
        Image => "image",
        /// A Helm chart.
        Helm => "helm",
        /// Any other OCI artifact.
        Artifact => "artifact",
        /// An index whose children are indexed on their own.
        Index => "index",
        /// A package that could not be read (the reason is stored with it).
        Rejected => "rejected",
    }
}

text_enum! {
    /// Where an index job stands.
    JobState {
        Queued => "queued",
        Running => "running",
        Done => "done",
        Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for kind in [
            VersionKind::Package,
            VersionKind::Image,
            VersionKind::Helm,
            VersionKind::Artifact,
            VersionKind::Index,
            VersionKind::Rejected,
        ] {
            assert_eq!(kind.as_str().parse::<VersionKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(JobState::Done, "done");
        assert!("Package".parse::<VersionKind>().is_err());
        assert!("finished".parse::<JobState>().is_err());
    }
}
