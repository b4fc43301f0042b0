//! The naming rule for offered entries, shared by both ends: the sender checks `--name` with
//! it, the receiver every offered name before anything touches the disk.

use super::MAX_NAME;

/// Longest component of a name: NAME_MAX (255) less the receiver's part-file decoration
/// (`.` before, `.zcp-part` after), so every accepted name has a part file too.
pub const MAX_COMPONENT: usize = 255 - ".".len() - ".zcp-part".len();

/// Checks an offered name and returns its components: a relative path of 1 to 4096 bytes
/// whose `/`-separated components are all normal (not empty, not `.` or `..`), without NUL,
/// each at most `MAX_COMPONENT` bytes. The error says what is wrong with it.
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
        let exactly = [b"d/".repeat(MAX_NAME / 2 - 1).as_slice(), b"xx"].concat();
        assert_eq!(exactly.len(), MAX_NAME);
        assert!(components(&exactly).is_ok());
    }
}
