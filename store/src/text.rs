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

/// `text` when it has at most `max_chars` characters; else cut there, back to the last white
/// space when one is in the second half, with an ellipsis: how a description is kept for search
/// (the indexer) and shown in lists (the marketplace).
pub fn cut_at_word(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => {
            let cut = &text[..end];
            let cut = match cut.rfind(char::is_whitespace) {
                Some(space) if space > end / 2 => &cut[..space],
                _ => cut,
            };
            format!("{}…", cut.trim_end())
        }
    }
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

    #[test]
    fn a_long_text_is_cut_at_a_word_and_an_unbroken_one_at_the_limit() {
        assert_eq!(cut_at_word("short", 10), "short");
        assert_eq!(cut_at_word("one two three four", 10), "one two…");
        assert_eq!(cut_at_word("abcdefghijklmnop", 10), "abcdefghij…");
        // A space early on is not worth losing most of the text for.
        assert_eq!(cut_at_word("a bcdefghijklmnop", 10), "a bcdefghi…");
        assert_eq!(cut_at_word("ééééé ééééé", 8), "ééééé…");
    }
}
