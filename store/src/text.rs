//! Untrusted text kept or logged: every string a publisher controls that the store keeps whole
//! in a column shown to people (a rejection, a note) or that a process logs passes through
//! [`shorten`] first, so a 150 MiB tar path costs a line, not 150 MiB per row, page and log.

use std::borrow::Cow;

/// Most bytes of a rejection or note kept on a version (`versions.rejection`).
pub const MAX_KEPT_TEXT_BYTES: usize = 4 * 1024;

/// `text` when it is at most `max` bytes; else its first `max` bytes (cut at a character
/// boundary) and a marker saying how much was left out.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… [{} more bytes not shown]",
        &text[..end],
        text.len() - end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_with_a_marker() {
        assert_eq!(shorten("short", 10), "short");
        let cut = shorten("ééé", 3);
        assert_eq!(cut, "é… [4 more bytes not shown]");
        let long = "x".repeat(150 * 1024 * 1024);
        assert!(shorten(&long, MAX_KEPT_TEXT_BYTES).len() < MAX_KEPT_TEXT_BYTES + 64);
    }
}
