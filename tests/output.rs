//! `--output PATH` that does not exist yet: a directory when the path ends in `/` or the
//! sender offers a directory or several entries (created, one level, and the report says so);
//! one file to a missing path is that file; missing parents are never created.

use std::fs;
use std::path::Path;

use crate::util::{Receiver, assert_exit, assert_file_holds, assert_says, send_paths, subdir};

/// Sends `paths` to a receiver writing to `output` and returns the receiver's stderr.
fn receive(output: &Path, paths: &[&Path]) -> String {
    let receiver = Receiver::start(output, &[]);
    let sent = send_paths(paths, &receiver.dest(), &[]);
    assert_exit(&sent, 0, "sender");
    let received = receiver.wait();
    assert_exit(&received, 0, "receiver");
    received.stderr
}

#[test]
fn missing_output_becomes_a_directory_for_a_tree() {
    let work = tempfile::tempdir().expect("tempdir");
    let photos = subdir(work.path(), "photos");
    fs::write(photos.join("one.jpg"), b"one").expect("a source");
    fs::write(photos.join("two.jpg"), b"two").expect("a source");
    let incoming = work.path().join("incoming");
    let stderr = receive(&incoming, &[&photos]);
    assert_file_holds(&incoming.join("photos/one.jpg"), b"one", "the first photo");
    assert_file_holds(&incoming.join("photos/two.jpg"), b"two", "the second photo");
    assert!(stderr.contains("created directory"), "receiver:\n{stderr}");
}

#[test]
fn missing_output_becomes_a_directory_for_several_files() {
    let work = tempfile::tempdir().expect("tempdir");
    let (a, b) = (work.path().join("a.txt"), work.path().join("b.txt"));
    fs::write(&a, b"a").expect("a source");
    fs::write(&b, b"b").expect("a source");
    let incoming = work.path().join("incoming");
    receive(&incoming, &[&a, &b]);
    assert_file_holds(&incoming.join("a.txt"), b"a", "a.txt");
    assert_file_holds(&incoming.join("b.txt"), b"b", "b.txt");
}

#[test]
fn missing_output_with_a_slash_is_a_directory_for_one_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let a = work.path().join("a.txt");
    fs::write(&a, b"a").expect("a source");
    let incoming = work.path().join("incoming");
    let mut with_slash = incoming.clone().into_os_string();
    with_slash.push("/");
    let stderr = receive(Path::new(&with_slash), &[&a]);
    assert_file_holds(&incoming.join("a.txt"), b"a", "a.txt");
    assert!(stderr.contains("created directory"), "receiver:\n{stderr}");
}

#[test]
fn one_file_to_a_missing_output_stays_a_file() {
    let work = tempfile::tempdir().expect("tempdir");
    let a = work.path().join("a.txt");
    fs::write(&a, b"a").expect("a source");
    let copy = work.path().join("copy.txt");
    let stderr = receive(&copy, &[&a]);
    assert_file_holds(&copy, b"a", "the copy");
    assert!(!stderr.contains("created directory"), "receiver:\n{stderr}");
}

#[test]
fn missing_parents_of_the_output_are_not_created() {
    let work = tempfile::tempdir().expect("tempdir");
    let nope = work.path().join("nope");
    let mut deeper = nope.join("deeper").into_os_string();
    deeper.push("/");
    let failed = match Receiver::try_start(Path::new(&deeper), &[]) {
        Ok(r) => panic!("receiver listens on {} with a missing parent", r.addr()),
        Err(f) => f,
    };
    assert_exit(&failed, 7, "receiver");
    assert_says(&failed, "nope", "receiver");
    assert!(!nope.exists(), "the receiver created the parent");
}
