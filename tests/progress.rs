//! What a session shows while it runs and when it is stopped: the receiver's own Ctrl-C told as
//! a stop, with sizes people read.

use nix::sys::signal::Signal;

use crate::util::{
    Process, Receiver, assert_exit, part_of, send_cmd, subdir, wait_for_bytes, write_random_file,
};

const MIB: usize = 1 << 20;

/// Ctrl-C on the receiver shuts its session's socket: what breaks then is the consequence. The
/// line says it was stopped, and how far, not that a connection was lost or reset.
#[test]
fn a_receivers_own_ctrl_c_reads_as_stopped_not_as_a_lost_connection() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("big.bin");
    write_random_file(&src, 8 * MIB, 51);
    let dst = subdir(work.path(), "dst");
    let mut receiver = Receiver::start(&dst, &[]);
    let args = ["--limit-rate", "2M"];
    let sender = Process::spawn(send_cmd(&[&src], &receiver.dest(), &args, &[]));
    wait_for_bytes(&part_of(&dst, "big.bin"), MIB as u64);
    receiver.process().signal(Signal::SIGINT);
    let done = receiver.wait();
    assert_exit(&done, 130, "zcp recv after its own Ctrl-C");
    let said = done.stderr.to_lowercase();
    assert!(said.contains("stopped by sigint"), "{}", done.stderr);
    for wrong in ["connection lost", "reset", "os error", " bytes"] {
        assert!(!said.contains(wrong), "{wrong:?} in: {}", done.stderr);
    }
    sender.kill();
}
