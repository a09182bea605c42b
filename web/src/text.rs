//! Publisher text and catalogue addresses as pages and the JSON API show them: pure functions
//! of their arguments (no state, no I/O), so every other module may use them and they use none.

/// `s` for a query string value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/packages/<repository>`.
pub fn package_url(repository: &str) -> String {
    format!("/packages/{repository}")
}

/// `/packages/<repository>/versions/<tag or digest>`.
pub fn version_url(repository: &str, version: &str) -> String {
    format!("/packages/{repository}/versions/{version}")
}

/// `/packages/<repository>/versions/<version>/apis/<group>/<kind>`: an API's page within a
/// version.
pub fn api_url(repository: &str, version: &str, group: &str, kind: &str) -> String {
    format!(
        "{}/apis/{}/{}",
        version_url(repository, version),
        urlencode(group),
        urlencode(kind)
    )
}

/// A publisher's text as pages show it: without the Unicode bidirectional controls
/// (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), with which a name can be made to
/// read as another (`provider-\u{202E}swa` shows as `provider-aws`) or reorder what follows it
/// in a title. Escaping cannot help: they are ordinary text to HTML.
pub fn plain_text(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            )
        })
        .collect()
}

/// Where a package's `source` annotation links to: an http(s) URL as it is, and the scheme-less
/// `github.com/org/repo` form most packages use as https; anything else is shown, not linked.
pub fn source_link(source: &str) -> Option<String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return Some(source.to_owned());
    }
    let (host, path) = source.split_once('/')?;
    let host_like = host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    (host_like && !path.is_empty() && !source.contains(char::is_whitespace))
        .then(|| format!("https://{source}"))
}

/// An RFC 3339 UTC time (`2026-11-28T03:17:05Z`, as the queries write it) as pages show it:
/// `2026-11-28 03:17 UTC`. Anything else is shown as it is.
pub fn human_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) if rfc3339.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {time} UTC")
        }
        _ => rfc3339.to_owned(),
    }
}

/// Longest description a list (home cards, search hits) shows, in characters.
pub const SUMMARY_CHARS: usize = 280;

/// A description as a list shows it: at most [`SUMMARY_CHARS`] characters, cut at a word
/// boundary where there is one near the end, with an ellipsis. The package page shows it whole.
pub fn summary(text: &str) -> String {
    shimmer_store::text::cut_at_word(plain_text(text).trim(), SUMMARY_CHARS)
}

/// Splits `acme/provider-x/versions/v1.0.0` into repository and version. A repository whose
/// own name ends in `/versions/<x>` is found by trying the whole path first (the caller does).
pub fn split_version_path(path: &str) -> Option<(&str, &str)> {
    let (repo, version) = path.rsplit_once("/versions/")?;
    (!repo.is_empty() && !version.is_empty() && !version.contains('/')).then_some((repo, version))
}

/// A byte count as people write it (`1.5 KiB`).
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
