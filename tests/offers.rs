//! What the receiver makes of an offer as a whole: modes under its umask.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::protocol::{Answer, Entry};
use crate::util::{
    Receiver, assert_exit, dir_entry, file_entry, finish, offer, send_file, subdir, zcp_client,
};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode()
        & 0o7777
}

#[test]
fn the_receivers_umask_applies_to_offered_modes() {
    let work = tempfile::tempdir().expect("tempdir");
    let dst = subdir(work.path(), "dst");
    let shell: [&OsStr; 3] =
        ["sh".as_ref(), "-c".as_ref(), r#"umask 022; exec "$0" "$@""#.as_ref()];
    let recv = Receiver::try_start_env(&shell, &dst, &[], &[])
        .unwrap_or_else(|f| panic!("receiver under umask 022: {f:#?}"));
    let mut socket = zcp_client(recv.addr());
    let data = b"mode test\n";
    let entries = vec![
        Entry { mode: 0o777, ..dir_entry(b"open") },
        Entry { mode: 0o777, ..file_entry(b"open/any.txt", Some(data.len() as u64)) },
        Entry { mode: 0o7777, ..file_entry(b"open/setuid.txt", Some(data.len() as u64)) },
    ];
    let plan = offer(&mut socket, entries);
    assert!(plan.answers.iter().skip(1).all(|a| matches!(a, Answer::Send { .. })), "{plan:?}");
    send_file(&mut socket, 1, 0, data);
    send_file(&mut socket, 2, 0, data);
    finish(&mut socket);
    assert_exit(&recv.wait(), 0, "receiver");
    let open = dst.join("open");
    assert_eq!(mode_of(&open), 0o755, "directory offered 0777 under umask 022");
    assert_eq!(mode_of(&open.join("any.txt")), 0o755, "file offered 0777 under umask 022");
    assert_eq!(mode_of(&open.join("setuid.txt")), 0o755, "setuid, setgid and sticky dropped");
}
