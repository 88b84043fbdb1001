//! HTML building blocks: escaping of every piece of text that reaches a page, query-string encoding for links, the
//! page frame with its inline style and copy-button script, and the Content-Security-Policy that allows only those.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine as _;
use layerstore::Digest;

/// Escapes text for an HTML element body or a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string component (everything but RFC 3986's unreserved characters).
pub fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The link to a repository's page.
pub fn repository_link(name: &str) -> String {
    format!("/ui/repo?name={}", encode_query(name))
}

/// The link to an image's page (`reference` a tag or a digest).
pub fn image_link(name: &str, reference: &str) -> String {
    format!(
        "/ui/image?name={}&ref={}",
        encode_query(name),
        encode_query(reference)
    )
}

/// A size in bytes as Docker prints it (decimal units, four significant digits), e.g. `1.235MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        let decimals = 3usize.saturating_sub(value.log10().floor() as usize);
        format!("{value:.decimals$}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// A size with its exact byte count as a tooltip.
pub fn size_cell(bytes: u64) -> String {
    format!("<span title=\"{bytes} bytes\">{}</span>", human_size(bytes))
}

/// A digest shortened for display, the whole digest as a tooltip.
pub fn short_digest(digest: &Digest) -> String {
    let text = digest.to_string();
    let short: String = text.chars().take(19).collect();
    format!(
        "<code title=\"{}\">{}</code>",
        escape(&text),
        escape(&short)
    )
}

/// A command line with a button that copies it (the button needs JavaScript; the text is selectable without).
pub fn copy_line(command: &str) -> String {
    let command = escape(command);
    format!(
        "<div class=\"copy\"><code class=\"cmd\">{command}</code> <button type=\"button\" data-copy=\"{command}\">copy</button></div>"
    )
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}\
header{background:#1d3557;color:#fff;padding:.7em 1.5em}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:1em 1.5em;max-width:72em}nav.crumbs{margin-bottom:.8em;color:#555}nav.crumbs a{color:#1d5fa8}\
table{border-collapse:collapse;width:100%;background:#fff;margin:.4em 0 1.2em}\
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e2e5e9;vertical-align:top}\
th{background:#eef1f4;font-weight:600}td code,li code{font-size:.9em}a{color:#1d5fa8}\
code{font-family:ui-monospace,monospace;word-break:break-all}.cmd{background:#fff;border:1px solid #ccd;padding:.3em .5em}\
.copy{margin:.6em 0 1em}button{font:inherit;padding:.15em .7em}form.search input{font:inherit;padding:.3em;width:22em}\
.muted{color:#666}h2{font-size:1.15em;margin-top:1.4em}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:.6em}\
dt{font-weight:600}dd{margin:0}";

const SCRIPT: &str = "document.querySelectorAll('button[data-copy]').forEach(function(b){b.addEventListener('click',function(){navigator.clipboard.writeText(b.getAttribute('data-copy')).then(function(){b.textContent='copied';});});});";

/// The Content-Security-Policy of every page: no source of anything but the inline style and the one script above,
/// so that even text that escaped escaping could not run.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = hex::decode(Digest::sha256_of(SCRIPT.as_bytes()).hex()).unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'; img-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
});

/// A whole page: `title` (escaped here), breadcrumbs (already HTML) and body (already HTML).
pub fn page(title: &str, crumbs: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · lade registry</title><style>{STYLE}</style></head>\n<body><header><a href=\"/ui\">lade registry</a></header>\n\
<main><nav class=\"crumbs\">{crumbs}</nav>\n{body}</main><script>{SCRIPT}</script></body></html>\n",
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(encode_query("a/b c&d=é"), "a%2Fb%20c%26d%3D%C3%A9");
        assert_eq!(
            image_link("lib/app", "sha256:ab"),
            "/ui/image?name=lib%2Fapp&ref=sha256%3Aab"
        );
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(5_000_000_000), "5GB");
        assert_eq!(human_size(252_166), "252.2kB");
    }

    #[test]
    fn the_policy_allows_exactly_the_page_script() {
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'sha256-"));
        let script = CONTENT_SECURITY_POLICY.split("script-src").nth(1).unwrap();
        assert!(!script.split(';').next().unwrap().contains("unsafe"));
        assert!(page("<t>", "", "").contains("&lt;t&gt; · lade registry"));
    }
}
