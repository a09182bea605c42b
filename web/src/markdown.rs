//! Markdown from packages (readmes, schema descriptions) to HTML that is safe to show: rendered
//! with pulldown-cmark (raw HTML in the source passes through to the sanitiser), then cleaned by
//! ammonia, which keeps formatting and drops scripts, event handlers, styles, frames and any
//! URL whose scheme is not http, https or mailto. Links get `rel="noopener noreferrer nofollow"`.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        // Remote images would let a package track its readers; alt text stays.
        .rm_tags(["img"]);
    b
});

/// Markdown rendered and sanitised.
pub fn render(source: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(source, options));
    CLEANER.clean(&out).to_string()
}

/// Text escaped for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let html = render(
            "# Title\n\n<script>alert(1)</script>\n\n<a href=\"javascript:alert(2)\">x</a> \
             <b onclick=\"alert(3)\">bold</b> [y](javascript:alert(4)) \
             <img src=x onerror=alert(5)> <iframe src=\"https://evil\"></iframe>\n\n\
             [ok](https://example.com) `code`",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<b>bold</b>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        for bad in [
            "<script",
            "alert(1)",
            "javascript:",
            "onclick",
            "onerror",
            "<iframe",
            "<img",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
    }

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
