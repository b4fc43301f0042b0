//! # A one-shot receiver waits for its sender to come back
//!
//! `zcp recv` without `--keep-open` serves one sender. When that session breaks off after file
//! data began to flow (the sender was killed, stopped with Ctrl-C, or lost its connection), the
//! receiver does not exit at once: it listens again on the same address, with the same token,
//! for `--resume-wait` seconds (600 by default; `0` restores the old exit), and says so on
//! stderr. This is what makes the sender's advice, "run the same command again to resume",
//! true with the receiver the README starts: that receiver made its token, so a restarted one
//! would make another, and the pasted command would no longer match.
//!
//! ## What counts as a break
//!
//! The session must have ended with a connection failure (exit 3) after data flowed. A refusal,
//! a checksum mismatch, a local I/O error or a signal to the receiver itself ends the receiver
//! as before: nothing is left that the same command could finish. Nor does a receiver into
//! standard output wait: what it wrote cannot be taken back, and a second run would repeat it.
//!
//! ## The session that comes back
//!
//! It is admitted like the first (the token proof in the lobby) and runs with
//! `--skip-existing`: the files that arrived whole before the break have the offered size and
//! mtime and are skipped, not refused as existing; the file that was cut resumes from its part
//! file as any resume does (its prefix is checked against the sender's). The receiver's exit
//! code is that of its last session, so a sender that came back and finished makes it exit 0.
//!
//! ## Listening again
//!
//! Once its one sender is admitted, a one-shot receiver shuts its listener so that a second
//! sender is refused at once. To wait again it binds a new listener to the address the first
//! one had (the port is still held by the shut socket; both set `SO_REUSEADDR`). A session cut
//! off before the serving loop shut the first listener keeps that one.
//!
//! ## Who may come back
//!
//! Any sender that proves the token, as for the first session: the wait widens the time a
//! receiver listens, not who may write through it. A receiver run with `--no-auth` waits too,
//! as open as it was before; `--resume-wait 0` is for those who want it gone at once.
