//! What `zcp send --http` serves: the files the paths name, by their relative names (as a zcp
//! session would offer them), the URL path of each, and the index at `/` that lists them: plain
//! text, one path a line (curl, wget, `xargs`), or HTML with links for a client that asks for
//! `text/html` by name (a browser).

use std::collections::HashMap;
use std::path::PathBuf;

use super::request::TOKEN_PREFIX;
use crate::protocol::EntryKind;
use crate::send::manifest::{Manifest, Origin};

/// The files served and where each comes from.
#[derive(Debug)]
pub struct Catalog {
    /// Relative names (`dir/a.txt`) in manifest order, with their source paths.
    pub files: Vec<(String, PathBuf)>,
    by_name: HashMap<Vec<u8>, usize>,
}

impl Catalog {
    /// The regular files of a manifest (directories are only listed through their files).
    pub fn new(manifest: &Manifest) -> anyhow::Result<Catalog> {
        let mut files = Vec::new();
        let mut by_name = HashMap::new();
        for item in &manifest.items {
            let (EntryKind::File, Origin::Path(path)) = (item.entry.kind, &item.origin) else {
                continue;
            };
            if item.entry.size.is_none() {
                return Err(crate::error::SessionError::Usage(format!(
                    "--http serves files of known length; {} is a stream",
                    path.display()
                ))
                .into());
            }
            by_name.insert(item.entry.name.clone(), files.len());
            files.push((String::from_utf8_lossy(&item.entry.name).into_owned(), path.clone()));
        }
        Ok(Catalog { files, by_name })
    }

    /// The index of the file a decoded URL path (without its leading `/`) names.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The index page: one URL path per line, for people and for `xargs`.
    pub fn listing(&self) -> String {
        self.files.iter().map(|(name, _)| format!("/{}\n", encode(name))).collect()
    }

    /// The index page for a browser: a link to each file under `base` (the `/t/TOKEN` prefix
    /// the page was fetched with, or nothing), which downloads it when clicked.
    pub fn html(&self, base: &str) -> String {
        let items: String = self
            .files
            .iter()
            .map(|(name, _)| {
                let (href, text) = (format!("{base}/{}", encode(name)), escape_html(name));
                format!("<li><a href=\"{href}\" download>{text}</a></li>\n")
            })
            .collect();
        let title = format!("zcp: {}", crate::units::counted(self.files.len() as u64, "file"));
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
             <body><h1>{title}</h1>\n<ul>\n{items}</ul></body></html>\n"
        )
    }
}

/// Text as HTML character data or an attribute value.
fn escape_html(text: &str) -> String {
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

/// The path prefix that carries `token` in a URL (`/t/TOKEN`): the token as one segment, like
/// `encode`, and `/` as `%2F` too.
pub fn token_prefix(token: &str) -> String {
    format!("{TOKEN_PREFIX}{}", encode(token).replace('/', "%2F"))
}

/// A relative name as a URL path: bytes other than unreserved characters and `/` as `%XX`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_become_url_paths() {
        assert_eq!(super::encode("dir/a b#?.txt"), "dir/a%20b%23%3F.txt");
        assert_eq!(super::encode("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(super::token_prefix("a/b c"), "/t/a%2Fb%20c");
    }

    #[test]
    fn the_html_index_links_each_file_and_escapes_its_name() {
        let catalog = super::Catalog {
            files: vec![("d/<b> & \"c\".txt".into(), "x".into())],
            by_name: Default::default(),
        };
        let page = catalog.html("/t/tok");
        let link = "<a href=\"/t/tok/d/%3Cb%3E%20%26%20%22c%22.txt\" download>\
                    d/&lt;b&gt; &amp; &quot;c&quot;.txt</a>";
        assert!(page.contains(link), "{page}");
        assert!(page.contains("<title>zcp: 1 file</title>"), "{page}");
    }
}
