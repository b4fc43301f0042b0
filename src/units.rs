//! Byte counts as users type them (`64K`, `1M`, `2GiB`): the parsers clap calls for sizes and
//! rates. A leaf: it imports nothing of zcp's, so the command line and the configs share it.

use anyhow::bail;

/// Largest buffer of the buffered path (and so of one chunk it sends).
pub const MAX_BUFFER: u64 = 16 << 20;

/// `n` and `noun`, plural unless `n` is 1: "1 session", "2 sessions", "0 calls".
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Parses a buffer size with `parse_bytes`, between 1 byte and 16 MiB.
pub fn parse_buffer_size(text: &str) -> anyhow::Result<u64> {
    match parse_bytes(text)? {
        n if (1..=MAX_BUFFER).contains(&n) => Ok(n),
        _ => bail!("buffer size {text:?} is out of range (1 byte to 16M)"),
    }
}

/// Parses a byte count: `4096`, `64K`, `1M`, `2G`, `1T` (binary units; `KiB`, `k`, `MB` also
/// read as powers of 1024).
pub fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    if number.is_empty() {
        bail!("{text:?} is not a size (expected e.g. 4096, 64K, 1M)");
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => bail!("unknown size unit {other:?} in {text:?} (use K, M, G or T)"),
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(1u64 << shift)) {
        Some(n) => Ok(n),
        None => bail!("size {text:?} is too large"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(counted(1, "session"), "1 session");
        assert_eq!(counted(0, "upload"), "0 uploads");
        assert_eq!(counted(16, "call"), "16 calls");
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("64K").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("1m").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_buffer_size("16M").unwrap(), 16 << 20);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("K").is_err());
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("99999999999999999999").is_err());
        assert!(parse_buffer_size("0").is_err());
        assert!(parse_buffer_size("17M").is_err());
    }
}
