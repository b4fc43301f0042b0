//! What reaches the terminal: every line zcp writes to stderr goes through `line` (or `lines`
//! for a summary it built), which shows control characters escaped. Text from a peer (an ERROR
//! frame before or after authentication, a name, a reason, a request target) therefore cannot
//! move the cursor, set the title or draw a fake line, whichever path printed it; `.clippy.toml`
//! forbids `eprintln!` elsewhere so that no path can forget. Machine output (`--json`,
//! `--events`) keeps the exact text and is not written here.

use std::borrow::Cow;
use std::fmt::Display;

/// Text fit for a terminal: control characters shown escaped (`\e`, `\r`, `\n`, `\t`,
/// `\x07`, `\u{9b}`), everything else as it is.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes `text` to stderr as one line, every control character in it escaped (a line break
/// too: a peer's text cannot start a line of its own).
pub fn line(text: impl Display) {
    line_block(&shown(&text.to_string()));
}

/// Writes `text`, lines zcp built (a session's summary), to stderr: the line breaks stay,
/// any other control character is escaped. Peer text inside is escaped where it was put in
/// (`shown`), line breaks included; this is the net under it. The block goes out in one
/// write, so two processes sharing a terminal (a receiver and a sender on one machine) do not
/// interleave their summaries line by line.
pub fn lines(text: &str) {
    let block: Vec<Cow<'_, str>> = text.split('\n').map(shown).collect();
    line_block(&block.join("\n"));
}

/// Writes an already escaped block and its final line break with one `write(2)` (`eprintln!`
/// writes the text and the line break apart, so another process's line could come between).
fn line_block(block: &str) {
    use std::io::Write;
    let mut out = String::with_capacity(block.len() + 1);
    out.push_str(block);
    out.push('\n');
    // A closed or full stderr has nowhere to be reported.
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(shown("big.iso"), "big.iso");
        assert!(matches!(shown("plain name"), Cow::Borrowed(_)));
        assert_eq!(shown("a\x1b]0;t\x07\r\n\tz"), "a\\e]0;t\\x07\\r\\n\\tz");
        assert_eq!(shown("del\x7f c1\u{9b}"), "del\\x7f c1\\u{9b}");
        assert_eq!(shown("naïve 日本"), "naïve 日本");
    }
}
