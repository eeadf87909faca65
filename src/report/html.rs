//! The page's building blocks: the one escaping helper, inline pictures, links, small tables.
//! Convention: a `&str` argument is plain text (escaped here); a returned `String` is HTML.

use std::path::{Component, Path};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Escape text for HTML content and quoted attribute values: the page's only escaping helper.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Base64 of `bytes` (pictures inline, the script's CSP hash).
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A picture with its bytes inline, so the page needs nothing else.
pub fn img(bytes: &[u8], mime: &str, alt: &str) -> String {
    format!("<img src=\"data:{mime};base64,{}\" alt=\"{}\">", base64(bytes), esc(alt))
}

/// A `<figure>` around a picture, with a caption.
pub fn figure(img_html: &str, caption: &str) -> String {
    format!("<figure>{img_html}<figcaption>{}</figcaption></figure>", esc(caption))
}

/// `<section>` with a heading of `level` (2 on a run's page, 3 inside a sweep's best-run part).
pub fn section(level: u8, id: &str, title: &str, body: &str) -> String {
    format!("<section id=\"{}\"><h{level}>{}</h{level}>{body}</section>\n", esc(id), esc(title))
}

/// A piece that does not exist yet, with the command that makes it.
pub fn not_yet(what: &str, command: &str) -> String {
    format!(
        "<p class=\"missing\"><strong>Not yet:</strong> {}. Make it with <code>{}</code></p>",
        esc(what),
        esc(command)
    )
}

/// A piece that exists but cannot be read; the message says how to fix it.
pub fn unreadable(msg: &str) -> String {
    format!("<p class=\"missing\"><strong>Unreadable:</strong> {}</p>", esc(msg))
}

/// `d2l-mlp SUB --artifacts DIR`, with DIR quoted for a POSIX shell when it needs it.
pub fn command(sub: &str, dir: &Path) -> String {
    format!("d2l-mlp {sub} --artifacts {}", shell_quote(&dir.to_string_lossy()))
}

pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Two-column table of labels and HTML values.
pub fn kv_table(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table class=\"kv\"><tbody>");
    for (label, value) in rows {
        s.push_str(&format!("<tr><th scope=\"row\">{}</th><td>{value}</td></tr>", esc(label)));
    }
    s.push_str("</tbody></table>");
    s
}

/// A relative link (`base` is already a URL prefix ending in `/`, or empty).
pub fn link(base: &str, file: &str, label: &str) -> String {
    format!("<a href=\"{}{}\">{}</a>", esc(base), esc(&url_encode(file)), esc(label))
}

/// Percent-encode a relative path for an `href` (keeps `/` between segments).
pub fn url_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// URL prefix that leads from the folder of the page (`from`) to `to`: `""` when they are the
/// same folder, else a relative path ending in `/`. Falls back to `to` as given when either
/// folder cannot be resolved.
pub fn relative_base(from: &Path, to: &Path) -> String {
    let rel = match (from.canonicalize(), to.canonicalize()) {
        (Ok(f), Ok(t)) => {
            let (f, t): (Vec<Component>, Vec<Component>) = (f.components().collect(), t.components().collect());
            let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
            let ups = std::iter::repeat_n("..".to_string(), f.len() - common);
            let downs = t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned());
            ups.chain(downs).collect::<Vec<_>>().join("/")
        }
        _ => to.to_string_lossy().into_owned(),
    };
    if rel.is_empty() { rel } else { format!("{}/", url_encode(&rel)) }
}

/// A file size for people: `532 B`, `12.3 KB`, `1.4 MB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{:.1} MB", b as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_quotes() {
        assert_eq!(esc("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(esc("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
        assert_eq!(esc("plain text 0.5"), "plain text 0.5");
    }

    #[test]
    fn commands_quote_odd_folders() {
        assert_eq!(command("eval", Path::new("runs/a-1")), "d2l-mlp eval --artifacts runs/a-1");
        assert_eq!(command("eval", Path::new("my run")), "d2l-mlp eval --artifacts 'my run'");
        assert_eq!(command("eval", Path::new("it's")), r"d2l-mlp eval --artifacts 'it'\''s'");
    }

    #[test]
    fn links_are_relative_and_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a b").join("best");
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(relative_base(&run, &run), "");
        assert_eq!(relative_base(&dir.path().join("a b"), &run), "best/");
        assert_eq!(relative_base(&run, dir.path()), "../../");
        assert_eq!(relative_base(dir.path(), &run), "a%20b/best/");
        assert_eq!(link("best/", "x&y.csv", "x&y"), "<a href=\"best/x%26y.csv\">x&amp;y</a>");
    }

    #[test]
    fn pictures_are_inline_with_alt_text() {
        let s = img(b"\x89PNG", "image/png", "a \"grid\"");
        assert!(s.starts_with("<img src=\"data:image/png;base64,iVBORw==\""), "{s}");
        assert!(s.contains("alt=\"a &quot;grid&quot;\""), "{s}");
        assert_eq!(size(532), "532 B");
        assert_eq!(size(12_345), "12.3 KB");
    }
}
