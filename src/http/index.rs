//! What `zcp send --http` serves: the files the paths name, by their relative names (as a zcp
//! session would offer them), the URL path of each, and the plain index at `/` that lists them.

use std::collections::HashMap;
use std::path::PathBuf;

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
    }
}
