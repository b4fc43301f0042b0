//! The naming rule for offered entries, shared by both ends: the sender checks `--name` with
//! it, the receiver every offered name before anything touches the disk.

use super::{Entry, MAX_DEPTH, MAX_ENTRIES, MAX_NAME, MAX_OFFER_NAMES};

/// Longest component of a name: NAME_MAX (255) less the receiver's part-file decoration
/// (`.` before, `.zcp-part` after), so every accepted name has a part file too.
pub const MAX_COMPONENT: usize = 255 - ".".len() - ".zcp-part".len();

/// Checks an offered name and returns its components: a relative path of 1 to 4096 bytes
/// whose `/`-separated components are all normal (not empty, not `.` or `..`), without NUL,
/// each at most `MAX_COMPONENT` bytes, at most `MAX_DEPTH` of them. The error says what is
/// wrong with it. (An upload of `zcp recv --http` is one name, held to this rule alone.)
pub fn components(name: &[u8]) -> Result<Vec<&[u8]>, String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name is {} bytes long, more than {MAX_NAME}", name.len()));
    }
    if name.contains(&0) {
        return Err(format!("name {shown:?} contains a NUL byte"));
    }
    if name.starts_with(b"/") {
        return Err(format!("name {shown:?} is an absolute path"));
    }
    let deep = depth(name);
    if deep > MAX_DEPTH {
        return Err(format!(
            "name is {deep} components deep, more than the {MAX_DEPTH} a session takes (MAX_DEPTH)"
        ));
    }
    name.split(|&b| b == b'/')
        .map(|c| match c {
            b"" => Err(format!("name {shown:?} has an empty component")),
            b"." | b".." => {
                Err(format!("name {shown:?} has a {:?} component", String::from_utf8_lossy(c)))
            }
            c if c.len() > MAX_COMPONENT => {
                Err(format!("name {shown:?} has a component longer than {MAX_COMPONENT} bytes"))
            }
            c => Ok(c),
        })
        .collect()
}

/// Checks an offer against the per-session bounds a receiver holds it to: at most
/// `MAX_ENTRIES` entries, `MAX_OFFER_NAMES` name bytes in all, and `MAX_DEPTH` components in
/// any name. The error names the bound that was passed.
pub fn offer_bounds(entries: &[Entry]) -> Result<(), String> {
    if entries.len() > MAX_ENTRIES as usize {
        return Err(format!(
            "the offer holds {} entries, more than the {MAX_ENTRIES} a session takes (MAX_ENTRIES)",
            entries.len()
        ));
    }
    let bytes = entries.iter().map(|e| e.name.len()).fold(0usize, usize::saturating_add);
    if bytes > MAX_OFFER_NAMES {
        return Err(format!(
            "the offer's names add up to {bytes} bytes, more than the {MAX_OFFER_NAMES} a session takes (MAX_OFFER_NAMES)"
        ));
    }
    let deepest = entries.iter().map(|e| depth(&e.name)).max().unwrap_or(0);
    if deepest > MAX_DEPTH {
        return Err(format!(
            "the offer names a path {deepest} components deep, more than the {MAX_DEPTH} a session takes (MAX_DEPTH)"
        ));
    }
    Ok(())
}

/// Components in a name: one more than its separators.
fn depth(name: &[u8]) -> usize {
    1 + name.iter().filter(|&&b| b == b'/').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &[u8]) -> String {
        components(name).expect_err("refused")
    }

    #[test]
    fn relative_paths_of_normal_components_pass() {
        assert_eq!(components(b"a").unwrap(), vec![b"a".as_slice()]);
        assert_eq!(components(b"dir/sub/f.txt").unwrap(), [&b"dir"[..], b"sub", b"f.txt"]);
        assert_eq!(components(b"..hidden/.x").unwrap(), [&b"..hidden"[..], b".x"]);
        assert_eq!(components("naïve/\u{1F600}".as_bytes()).unwrap().len(), 2);
        let longest = vec![b'x'; MAX_COMPONENT];
        assert!(components(&longest).is_ok());
    }

    #[test]
    fn names_that_could_leave_the_destination_are_refused() {
        assert!(refused(b"/etc/passwd").contains("absolute path"));
        assert!(refused(b"..").contains("\"..\" component"));
        assert!(refused(b"a/../../b").contains("\"..\" component"));
        assert!(refused(b"./a").contains("\".\" component"));
        assert!(refused(b"a//b").contains("empty component"));
        assert!(refused(b"a/").contains("empty component"));
        assert!(refused(b"a\0b").contains("NUL byte"));
        assert_eq!(refused(b""), "empty file name");
    }

    #[test]
    fn names_too_long_for_a_part_file_or_the_protocol_are_refused() {
        assert!(refused(&vec![b'x'; MAX_COMPONENT + 1]).contains("longer than 245 bytes"));
        let long = [b"d/".repeat(MAX_NAME / 2).as_slice(), b"x"].concat();
        assert!(refused(&long).contains("more than 4096"));
        let exactly = [b"ddddddddddddddd/".repeat(MAX_DEPTH - 1).as_slice(), &[b'x'; 16]].concat();
        assert_eq!(exactly.len(), MAX_NAME);
        assert!(components(&exactly).is_ok());
    }

    #[test]
    fn names_deeper_than_max_depth_are_refused() {
        let deepest = [b"d/".repeat(MAX_DEPTH - 1).as_slice(), b"f"].concat();
        assert_eq!(components(&deepest).map(|c| c.len()), Ok(MAX_DEPTH));
        let deeper = [b"d/".as_slice(), &deepest].concat();
        assert!(refused(&deeper).contains("257 components deep"), "{}", refused(&deeper));
        let upload = [b"a/".repeat(2047).as_slice(), b"a"].concat();
        assert!(refused(&upload).contains("(MAX_DEPTH)"));
    }

    fn named(name: &[u8]) -> Entry {
        Entry {
            kind: super::super::EntryKind::File,
            name: name.to_vec(),
            size: Some(0),
            mode: 0o644,
            mtime_sec: 0,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn offers_within_the_bounds_pass_and_each_bound_is_named_when_passed() {
        let deepest = b"d/".repeat(MAX_DEPTH - 1).into_iter().chain(*b"f").collect::<Vec<_>>();
        assert_eq!(offer_bounds(&[named(b"a"), named(&deepest)]), Ok(()));
        let deeper = [b"d/".as_slice(), &deepest].concat();
        assert!(offer_bounds(&[named(&deeper)]).unwrap_err().contains("(MAX_DEPTH)"));
        let long = named(&vec![b'n'; MAX_NAME]);
        let mut many = vec![long.clone(); MAX_OFFER_NAMES / MAX_NAME];
        assert_eq!(MAX_OFFER_NAMES % MAX_NAME, 0);
        assert_eq!(offer_bounds(&many), Ok(()), "exactly MAX_OFFER_NAMES bytes of names pass");
        many.push(long);
        assert!(offer_bounds(&many).unwrap_err().contains("(MAX_OFFER_NAMES)"));
        let mut count = vec![named(b"a"); MAX_ENTRIES as usize];
        assert_eq!(offer_bounds(&count), Ok(()), "exactly MAX_ENTRIES entries pass");
        count.push(named(b"a"));
        assert!(offer_bounds(&count).unwrap_err().contains("(MAX_ENTRIES)"));
    }
}
