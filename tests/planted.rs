//! Part files planted in the output directory before a session (`.NAME.zcp-part` as a hard
//! link to a file outside, another user's file, a symlink, a FIFO): the receiver neither
//! reads, writes, chmods nor resumes from them; it refuses that file, naming the problem, and
//! leaves the planted file and whatever it points at as they were.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::util::protocol::Answer;
use crate::util::{
    Finished, Receiver, assert_exit, assert_says, file_entry, finish, offer, part_of, send,
    set_mode, skip, subdir, write_random_file, zcp_client,
};

const NAME: &str = "f.bin";
/// What the file outside the output directory holds, and must still hold afterwards.
const PRECIOUS: &[u8] = b"precious contents that no sender may touch\n";

/// `work/src/f.bin` (large enough to be written through its part file), an empty
/// `work/dst`, and `work/outside.txt` holding `PRECIOUS` with mode 0640.
fn setup(work: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let src = subdir(work, "src").join(NAME);
    write_random_file(&src, 300 << 10, 11);
    let dst = subdir(work, "dst");
    let outside = work.join("outside.txt");
    fs::write(&outside, PRECIOUS).expect("writing the outside file");
    set_mode(&outside, 0o640);
    (src, dst, outside)
}

/// Sends `src` to a receiver writing into `dst` and returns how both ended.
fn send_into(src: &Path, dst: &Path) -> (Finished, Finished) {
    let recv = Receiver::start(dst, &[]);
    let sent = send(src, &recv.dest(), &[]);
    (sent, recv.wait())
}

#[track_caller]
fn assert_refused_for(sent: &Finished, received: &Finished, why: &str, dst: &Path) {
    assert_exit(sent, 5, "sender");
    assert_exit(received, 5, "receiver");
    let part = part_of(dst, NAME);
    for (f, who) in [(sent, "sender"), (received, "receiver")] {
        assert_says(f, &format!("part file {} is not safe to use", part.display()), who);
        assert_says(f, why, who);
    }
    assert!(!dst.join(NAME).exists(), "the file landed through a planted part file");
}

#[track_caller]
fn assert_untouched(outside: &Path) {
    assert_eq!(fs::read(outside).expect("reading the outside file"), PRECIOUS, "outside bytes");
    let mode = fs::metadata(outside).expect("outside metadata").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "the outside file's mode changed to {mode:o}");
}

#[test]
fn a_part_file_hard_linked_outside_is_refused_and_the_outside_file_untouched() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, outside) = setup(work.path());
    fs::hard_link(&outside, part_of(&dst, NAME)).expect("planting a hard link");
    let (sent, received) = send_into(&src, &dst);
    assert_refused_for(&sent, &received, "2 hard links", &dst);
    assert_untouched(&outside);
}

#[test]
fn a_hard_linked_part_file_is_never_hashed_into_a_resume_offer() {
    plan_refuses_a_planted_part(|outside, part| fs::hard_link(outside, part), "hard links");
}

#[test]
fn a_symlinked_part_file_is_never_hashed_into_a_resume_offer() {
    let plant = |outside: &Path, part: &Path| std::os::unix::fs::symlink(outside, part);
    plan_refuses_a_planted_part(plant, "symbolic link");
}

/// Plants a part file with `plant(outside, part)` and asks a receiver's plan for the file: the
/// answer must be a refusal naming `why`, never a resume offer hashed from the planted bytes.
#[track_caller]
fn plan_refuses_a_planted_part(plant: impl FnOnce(&Path, &Path) -> std::io::Result<()>, why: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let (_, dst, outside) = setup(work.path());
    plant(&outside, &part_of(&dst, NAME)).expect("planting a part file");
    let recv = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(recv.addr());
    let plan = offer(&mut socket, vec![file_entry(NAME.as_bytes(), Some(1 << 20))]);
    match &plan.answers[0] {
        Answer::Refuse { reason, .. } => assert!(reason.contains(why), "{reason}"),
        other => panic!("a planted part file ({why}) was answered {other:?}"),
    }
    finish(&mut socket);
    assert_exit(&recv.wait(), 5, "receiver");
    assert_untouched(&outside);
}

#[test]
fn a_part_file_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        skip("planting a part file owned by another user needs root (chown)");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path());
    let part = part_of(&dst, NAME);
    fs::write(&part, b"planted by uid 4242").expect("planting a part file");
    set_mode(&part, 0o666);
    let other = Some(nix::unistd::Uid::from_raw(4242));
    nix::unistd::chown(&part, other, Some(nix::unistd::Gid::from_raw(4242))).expect("chown");
    let (sent, received) = send_into(&src, &dst);
    assert_refused_for(&sent, &received, "owned by uid 4242", &dst);
    assert_eq!(fs::read(&part).expect("the planted file"), b"planted by uid 4242");
    let meta = fs::metadata(&part).expect("the planted file");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (4242, 0o666), "the planted file was changed");
}

#[test]
fn a_part_file_that_is_a_symlink_is_refused_and_not_followed() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, outside) = setup(work.path());
    std::os::unix::fs::symlink(&outside, part_of(&dst, NAME)).expect("planting a symlink");
    let (sent, received) = send_into(&src, &dst);
    assert_refused_for(&sent, &received, "symbolic link", &dst);
    assert_untouched(&outside);
}

#[test]
fn a_part_file_that_is_a_fifo_is_refused_without_hanging() {
    let work = tempfile::tempdir().expect("tempdir");
    let (src, dst, _) = setup(work.path());
    let part = part_of(&dst, NAME);
    nix::unistd::mkfifo(&part, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let (sent, received) = send_into(&src, &dst);
    assert_refused_for(&sent, &received, "FIFO", &dst);
    assert!(fs::symlink_metadata(&part).expect("the FIFO").file_type().is_fifo());
}

#[test]
fn a_part_file_swapped_for_a_symlink_after_the_plan_is_not_followed() {
    // The plan found an honest part file and offered a resume; then, before the data, the part
    // is swapped for a symlink to a file outside. Opening it for writing must not follow it
    // (else the resume would cut the outside file to the offset and write into it).
    let work = tempfile::tempdir().expect("tempdir");
    let (_, dst, outside) = setup(work.path());
    let data = crate::util::pseudo_random(64 << 10, 12);
    let part = part_of(&dst, NAME);
    fs::write(&part, &data[..1000]).expect("an honest part file");
    let recv = Receiver::start(&dst, &[]);
    let mut socket = zcp_client(recv.addr());
    let plan = offer(&mut socket, vec![file_entry(NAME.as_bytes(), Some(data.len() as u64))]);
    assert!(matches!(plan.answers[0], Answer::Resume { offset: 1000, .. }), "{plan:?}");
    fs::remove_file(&part).expect("removing the part file");
    std::os::unix::fs::symlink(&outside, &part).expect("planting a symlink");
    let start = crate::util::protocol::Message::FileStart { index: 0, offset: 1000 };
    let _ = crate::util::protocol::write_message(&mut socket, &start);
    let _ = std::io::Write::write_all(&mut socket, &data[1000..]);
    let received = recv.wait();
    assert_exit(&received, 5, "receiver");
    assert_says(&received, "symbolic link", "receiver");
    assert_untouched(&outside);
    assert!(!dst.join(NAME).exists(), "the file landed through a swapped part file");
}
