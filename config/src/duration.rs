//! Durations written as `500ms`, `30s`, `10m`, `2h`, `7d` (or a bare number of seconds).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error};

/// A duration as written in the file: a bare number of seconds or text (`"30s"`, `"never"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Raw {
    Secs(u64),
    Text(String),
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse(&t).ok_or_else(|| {
            D::Error::custom(format!(
                "invalid duration {t:?}: expected a number with ms, s, m or h (e.g. \"30s\")"
            ))
        }),
    }
}

/// The same for optional durations (`Option<Duration>`).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(deserialize_with = "super::deserialize")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`.
pub fn parse(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        "d" => Some(Duration::from_secs(n.checked_mul(86400)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("10"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse("5d"), Some(Duration::from_secs(5 * 86400)));
        assert_eq!(parse("5w"), None);
    }
}
