//! Which names below a named directory the sender leaves out (`--exclude`, `--include`,
//! `--exclude-from`), by gitignore's rules: the `ignore` crate's matcher, the one ripgrep reads
//! `.gitignore` files with. It decides names only; the walk in `manifest` asks it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::config::FilterRule;
use crate::error::SessionError;

/// The compiled patterns; with none, nothing is left out.
#[derive(Debug, Clone)]
pub struct Filter {
    rules: Gitignore,
}

impl Default for Filter {
    fn default() -> Self {
        Filter { rules: Gitignore::empty() }
    }
}

impl Filter {
    /// Compiles `rules` in order (a later rule wins). A pattern that is not a glob is a usage
    /// error naming it and where it came from.
    pub fn new(rules: &[FilterRule]) -> Result<Filter, SessionError> {
        let mut builder = GitignoreBuilder::new(".");
        // A `[` that is never closed is a mistake here, not a literal `[` (as git reads it).
        builder.allow_unclosed_class(false);
        for rule in rules {
            builder.add_line(None, &rule.line).map_err(|e| {
                SessionError::Usage(format!("{} {:?}: {}", rule.source, rule.pattern(), cause(&e)))
            })?;
        }
        let rules = builder.build().map_err(|e| SessionError::Usage(format!("filters: {e}")))?;
        Ok(Filter { rules })
    }

    /// Whether the walk leaves out the entry offered as `name` (its first component is the
    /// named directory; the rest is matched, relative to it). A named path itself is never
    /// left out.
    pub fn excludes(&self, name: &[u8], is_dir: bool) -> bool {
        let Some(slash) = name.iter().position(|&b| b == b'/') else { return false };
        let rel = Path::new(OsStr::from_bytes(&name[slash + 1..]));
        matches!(self.rules.matched(rel, is_dir), Match::Ignore(_))
    }
}

/// The reason of a pattern error, without the pattern (the message names it already).
fn cause(e: &ignore::Error) -> String {
    match e {
        ignore::Error::Glob { err, .. } => err.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(rules: &[(&str, &str)]) -> Filter {
        let rules: Vec<FilterRule> = rules
            .iter()
            .map(|(flag, pattern)| match *flag {
                "--include" => FilterRule::include(pattern),
                _ => FilterRule::exclude(pattern),
            })
            .collect();
        Filter::new(&rules).expect("valid patterns")
    }

    #[test]
    fn a_pattern_without_a_slash_matches_at_any_depth_and_one_with_a_slash_is_anchored() {
        let f =
            filter(&[("--exclude", "*.o"), ("--exclude", "/build"), ("--exclude", "doc/*.pdf")]);
        assert!(f.excludes(b"p/a.o", false));
        assert!(f.excludes(b"p/src/deep/a.o", false));
        assert!(f.excludes(b"p/build", true));
        assert!(!f.excludes(b"p/src/build", true), "anchored to the named directory");
        assert!(f.excludes(b"p/doc/x.pdf", false));
        assert!(!f.excludes(b"p/src/doc/x.pdf", false));
        assert!(!f.excludes(b"a.o", false), "a named path itself is never left out");
    }

    #[test]
    fn a_trailing_slash_matches_directories_only_and_a_later_include_wins() {
        let f =
            filter(&[("--exclude", "target/"), ("--exclude", "*.log"), ("--include", "keep.log")]);
        assert!(f.excludes(b"p/target", true));
        assert!(!f.excludes(b"p/target", false), "a file named target stays");
        assert!(f.excludes(b"p/a.log", false));
        assert!(!f.excludes(b"p/keep.log", false));
    }

    #[test]
    fn a_bad_glob_is_a_usage_error_naming_it() {
        let err = Filter::new(&[FilterRule::exclude("a[b")]).expect_err("unclosed class");
        let text = err.to_string();
        assert!(text.contains("--exclude \"a[b\""), "{text}");
        assert!(matches!(err, SessionError::Usage(_)));
    }
}
