//! Markdown from packages (readmes, schema descriptions) to HTML that is safe to show: rendered
//! with pulldown-cmark (raw HTML in the source passes through to the sanitiser), then cleaned by
//! ammonia, which keeps formatting and drops scripts, event handlers, styles, frames and any
//! URL whose scheme is not http, https or mailto. Links get `rel="noopener noreferrer nofollow"`.
//!
//! Rendering cost is bounded by the input, never by what it asks for: a document is cut at
//! [`MAX_MARKDOWN_BYTES`], elements nest at most [`MAX_NESTING`] deep (deeper ones keep their
//! text, not their element), and at most [`MAX_RAW_HTML_TAGS`] raw HTML tags pass to the
//! sanitiser (the rest show as text). HTML tree building costs time in the depth of the open
//! elements for every new one: `">" * 200_000` took 201 s and 100,000 nested `<b><i><u><s>` 87 s
//! before these bounds. Callers run it off the async runtime ([`crate::render`]).

use std::sync::LazyLock;

use pulldown_cmark::{CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd, html};

/// What every id from a publisher's markdown starts with.
const ID_PREFIX: &str = "readme-";

/// Bytes of one markdown document rendered; the rest is left out with a note saying so.
pub const MAX_MARKDOWN_BYTES: usize = 256 * 1024;
/// Deepest nesting of elements (block quotes, lists, emphasis, links) rendered.
pub const MAX_NESTING: usize = 32;
/// Raw HTML tags (`<` in raw HTML) passed to the sanitiser per document; later raw HTML is
/// shown as text.
pub const MAX_RAW_HTML_TAGS: usize = 1_000;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"))
        // A relative link (`docs/usage.md`) means a file of the package's source repository,
        // not of this site: the text stays, the link goes. An in-page link (`#install`, a
        // readme's table of contents) points at a heading's id, prefixed as the ids are.
        .url_relative(ammonia::UrlRelative::Custom(Box::new(in_page_link)))
        // Headings keep the ids `render` gives them, prefixed so that no publisher's id can
        // collide with the page's own (a docs page's field anchors, say).
        .add_tag_attributes("h4", ["id"])
        .add_tag_attributes("h5", ["id"])
        .add_tag_attributes("h6", ["id"])
        .id_prefix(Some(ID_PREFIX))
        // Remote images would let a package track its readers: raw `<img>` goes (markdown
        // images are turned into their alt text before this, in `render`).
        .rm_tags(["img"]);
    b
});

/// A relative URL kept: only `#fragment`, pointed at the prefixed id.
fn in_page_link(url: &str) -> Option<std::borrow::Cow<'_, str>> {
    url.strip_prefix('#')
        .filter(|fragment| !fragment.is_empty())
        .map(|fragment| format!("#{ID_PREFIX}{fragment}").into())
}

/// Markdown rendered and sanitised. Before the sanitiser: a markdown image becomes its alt text,
/// a task-list box a ☑ or ☐ (the sanitiser drops `<input>`, which made done and open items
/// look alike), and headings move three levels down, under the `<h3>` a readme sits in. Unicode
/// bidirectional controls are dropped first, as from every publisher's text
/// ([`crate::text::plain_text`]).
pub fn render(source: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let (source, cut) = bounded(source);
    let source = crate::text::plain_text(source);
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut depth = Nesting::default();
    let mut raw_tags = 0usize;
    // Index in `events` of the open heading's start, and the text seen since.
    let mut heading: Option<(usize, String)> = None;
    let mut slugs = std::collections::HashMap::<String, usize>::new();
    // Inside a link or a code block, a URL stays text.
    let mut literal = 0usize;
    for event in Parser::new_ext(&source, options) {
        let Some(event) = depth.admit(event) else {
            continue;
        };
        match event {
            Event::Html(ref raw) | Event::InlineHtml(ref raw) => {
                raw_tags += raw.matches('<').count();
                if raw_tags > MAX_RAW_HTML_TAGS {
                    events.push(Event::Text(raw.clone()));
                } else {
                    events.push(event);
                }
            }
            Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => {}
            Event::TaskListMarker(done) => {
                events.push(Event::Text(if done { "☑ " } else { "☐ " }.into()));
            }
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => {
                heading = Some((events.len(), String::new()));
                events.push(Event::Start(Tag::Heading {
                    level: lower(level),
                    id,
                    classes,
                    attrs,
                }));
            }
            Event::End(TagEnd::Heading(level)) => {
                // GitHub's anchor for the heading, so a readme's `[x](#install)` finds it.
                if let Some((start, text)) = heading.take()
                    && let Event::Start(Tag::Heading { id: id @ None, .. }) = &mut events[start]
                {
                    *id = Some(slug(&text, &mut slugs).into());
                }
                events.push(Event::End(TagEnd::Heading(lower(level))));
            }
            Event::Start(Tag::Link { .. } | Tag::CodeBlock(_)) => {
                literal += 1;
                events.push(event);
            }
            Event::End(TagEnd::Link | TagEnd::CodeBlock) => {
                literal = literal.saturating_sub(1);
                events.push(event);
            }
            Event::Text(ref t) if literal == 0 && heading.is_none() => autolink(t, &mut events),
            Event::Text(ref t) | Event::Code(ref t) => {
                if let Some((_, text)) = &mut heading {
                    text.push_str(t);
                }
                events.push(event);
            }
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    if let Some(total) = cut {
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "<p class=\"note\">This document is {total} bytes long; the first \
                 {MAX_MARKDOWN_BYTES} are shown.</p>"
            ),
        );
    }
    CLEANER.clean(&out).to_string()
}

/// `text` with its bare `http://` and `https://` URLs made links, as GitHub's autolinks do
/// (API descriptions are full of them). A URL ends at whitespace, `<`, `>` or a quote; trailing
/// punctuation (`.,;:!?)`) is the sentence's, not the URL's.
fn autolink<'a>(text: &str, events: &mut Vec<Event<'a>>) {
    let mut rest = text;
    while let Some(start) = rest
        .find("https://")
        .into_iter()
        .chain(rest.find("http://"))
        .min()
    {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
            .unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
        if url.len() <= "https://".len() {
            events.push(Event::Text(rest[..start + end.max(1)].to_owned().into()));
            rest = &rest[start + end.max(1)..];
            continue;
        }
        if start > 0 {
            events.push(Event::Text(rest[..start].to_owned().into()));
        }
        let url: CowStr<'a> = url.to_owned().into();
        events.push(Event::Start(Tag::Link {
            link_type: LinkType::Autolink,
            dest_url: url.clone(),
            title: "".into(),
            id: "".into(),
        }));
        events.push(Event::Text(url.clone()));
        events.push(Event::End(TagEnd::Link));
        rest = &rest[start + url.len()..];
    }
    if !rest.is_empty() {
        events.push(Event::Text(rest.to_owned().into()));
    }
}

/// The first [`MAX_MARKDOWN_BYTES`] of `source` (cut at a character boundary), and its full
/// length when it was cut.
fn bounded(source: &str) -> (&str, Option<usize>) {
    if source.len() <= MAX_MARKDOWN_BYTES {
        return (source, None);
    }
    let mut end = MAX_MARKDOWN_BYTES;
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    (&source[..end], Some(source.len()))
}

/// Drops the elements nested deeper than [`MAX_NESTING`] (their start and end; what they hold
/// stays). Events are well nested, so a depth count decides both ends alike.
#[derive(Default)]
struct Nesting {
    depth: usize,
}

impl Nesting {
    fn admit<'a>(&mut self, event: Event<'a>) -> Option<Event<'a>> {
        match event {
            Event::Start(_) => {
                self.depth += 1;
                (self.depth <= MAX_NESTING).then_some(event)
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                (self.depth < MAX_NESTING).then_some(event)
            }
            other => Some(other),
        }
    }
}

/// GitHub's heading anchor: lowercase, letters, digits, `-` and `_` kept, spaces to `-`, the
/// rest dropped; a repeated one gets `-1`, `-2`, …
fn slug(text: &str, seen: &mut std::collections::HashMap<String, usize>) -> String {
    let base: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    let n = seen.entry(base.clone()).or_insert(0);
    let slug = if *n == 0 {
        base.clone()
    } else {
        format!("{base}-{n}")
    };
    *n += 1;
    slug
}

/// Three levels down, below the page's `<h3>` that holds a readme (`h6` stays).
fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H4,
        HeadingLevel::H2 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
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
    fn bare_urls_become_links_but_not_in_code_or_links() {
        let html = render(
            "See https://kubernetes.io/docs/concepts/. Or (http://example.com/a?b=c), \
             `https://in.code/x`, [named](https://named.example/) and https:// alone.\n\n\
             ```\nhttps://in.block/\n```",
        );
        assert!(
            html.contains("<a href=\"https://kubernetes.io/docs/concepts/\"")
                && html.contains(">https://kubernetes.io/docs/concepts/</a>. Or"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"http://example.com/a?b=c\""),
            "{html}"
        );
        assert!(!html.contains("href=\"https://in.code"), "{html}");
        assert!(!html.contains("href=\"https://in.block"), "{html}");
        assert_eq!(
            html.matches("href=\"https://named.example/\"").count(),
            1,
            "{html}"
        );
        assert!(html.contains("https:// alone"), "{html}");
        // A URL made to break out of the attribute is escaped like any other.
        let html = render("https://x.example/\"onmouseover=alert(1)");
        assert!(html.contains("href=\"https://x.example/\""), "{html}");
        assert!(
            html.contains("</a>\"onmouseover"),
            "the quote ends the URL: {html}"
        );
    }

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let html = render(
            "# Title\n\n<script>alert(1)</script>\n\n<a href=\"javascript:alert(2)\">x</a> \
             <b onclick=\"alert(3)\">bold</b> [y](javascript:alert(4)) \
             <img src=x onerror=alert(5)> <iframe src=\"https://evil\"></iframe>\n\n\
             [ok](https://example.com) `code`",
        );
        assert!(
            html.contains("<h4 id=\"readme-title\">Title</h4>"),
            "under the readme's h3: {html}"
        );
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
    fn images_become_alt_text_task_boxes_show_and_relative_links_are_text() {
        let html = render(
            "![build status](https://ci.example/badge.svg)\n\n- [x] done\n- [ ] open\n\n\
             See [usage](docs/usage.md), [install](#install) and [site](https://example.com).",
        );
        assert!(html.contains("build status"), "{html}");
        assert!(
            !html.contains("<img") && !html.contains("ci.example"),
            "{html}"
        );
        assert!(html.contains("☑ done") && html.contains("☐ open"), "{html}");
        assert!(!render("a \u{202E}b").contains('\u{202E}'));
        assert!(!html.contains("docs/usage.md"), "{html}");
        // In-page links reach the headings, both prefixed.
        assert!(html.contains("href=\"#readme-install\""), "{html}");
        assert!(html.contains("usage") && html.contains("install"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
    }

    #[test]
    fn headings_get_github_anchors_that_in_page_links_reach() {
        let html = render(
            "## Install `crossplane`\n\n## Usage & Examples\n\n## Usage & Examples\n\n\
             [to install](#install-crossplane) [again](#usage--examples-1) [empty](#)",
        );
        assert!(
            html.contains(
                "<h5 id=\"readme-install-crossplane\">Install <code>crossplane</code></h5>"
            ),
            "{html}"
        );
        assert!(html.contains("id=\"readme-usage--examples\""), "{html}");
        assert!(html.contains("id=\"readme-usage--examples-1\""), "{html}");
        assert!(
            html.contains("href=\"#readme-install-crossplane\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"#readme-usage--examples-1\""),
            "{html}"
        );
        // A raw HTML id is prefixed too: it cannot take over one of the page's own anchors.
        let raw = render("<h2 id=\"v1.spec\">x</h2>");
        assert!(!raw.contains("id=\"v1.spec\""), "{raw}");
    }

    #[test]
    fn deep_nesting_keeps_its_text_but_not_its_depth() {
        let quotes = render(&format!("{} innermost", ">".repeat(200_000)));
        assert_eq!(quotes.matches("<blockquote>").count(), MAX_NESTING);
        assert!(quotes.contains("innermost"), "{quotes}");
        let lists = render(&format!("{} deep", "- ".repeat(5_000)));
        assert!(lists.matches("<li>").count() <= MAX_NESTING, "{lists}");
        assert!(lists.contains("deep"));
    }

    #[test]
    fn raw_html_past_its_budget_shows_as_text() {
        let html = render(&format!("{}x", "<b><i><u><s>".repeat(100_000)));
        // The sanitiser's tree builder reopens a few formatting elements it closed.
        let bold = html.matches("<b>").count();
        assert!(
            (MAX_RAW_HTML_TAGS / 4..MAX_RAW_HTML_TAGS / 4 + 10).contains(&bold),
            "{bold}"
        );
        assert!(html.contains("&lt;b&gt;&lt;i&gt;"), "later tags are text");
        assert!(
            html.contains("bytes long; the first"),
            "the 1.2 MB source is cut"
        );
    }

    #[test]
    fn a_long_document_is_cut_with_a_note() {
        let long = "é".repeat(MAX_MARKDOWN_BYTES);
        let html = render(&long);
        assert!(html.contains(&format!("This document is {} bytes long", long.len())));
        assert!(html.len() < MAX_MARKDOWN_BYTES + 1_000);
        assert!(!render("short").contains("bytes long"));
    }

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
