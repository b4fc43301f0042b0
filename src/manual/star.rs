//! One sender, several receivers (`zcp send PATH... --to A --to B …`): how a star shares one
//! read and one hash of each file, what each receiver costs, and what it does not do. The code
//! is in `send::star` (the sessions) and `send::digests` (the shared checksums).
//!
//! # Sessions
//! Each receiver gets a whole session of its own, on a thread of its own: its connection, its
//! handshake (the same token proves itself to each; `--encrypt` applies to every one), its
//! offer and plan, its resume offsets and refusals. Receivers may hold different parts of the
//! tree: each plan says what that receiver needs, and that session sends only that. Nothing
//! one session does waits for another, with one exception, the checksum below.
//!
//! # One read, one hash
//! The end-to-end checksum is the xxh3-128 of the whole file from byte 0, whatever the offset a
//! receiver resumes from, so it is the same for every receiver. The first session to reach a
//! file starts that hash on a thread of its own (a slot per manifest entry: idle, hashing, done
//! or failed), and every session that sends the file waits for the slot at the file's end,
//! before its FILE_END. The thread belongs to no session: a session that fails or a receiver
//! that is slow does not hold it, so the others never wait on a receiver that is not theirs.
//! A hash that fails (the file shrank, a read error) is started again by the next session to
//! wait, once; a thread that died leaves the slot failed, never hashing, so no one waits
//! forever; a signal (Ctrl-C) ends the wait. Meanwhile every session's `sendfile` reads the
//! same pages from the page cache, which the hash thread brought in: the file is read from disk
//! once (while the file fits the page cache: a file larger than memory is read again by each
//! session's `sendfile`, though still hashed once). The summary says `read and hashed once for 3 receivers: …`, and `--json` counts the
//! reads in `hashed_once` (the sessions' own `checksum_syscalls` are then 0 for those files).
//!
//! What is still per receiver: files up to 64 KiB go in batches through user space and are
//! read by each session (their bytes are the payload, and no checksum read is needed); the
//! check of a resumed file's prefix hashes that receiver's prefix; sparse files' data ranges go
//! per session, their digest is shared (the hash thread reads the holes as zeros).
//!
//! # Results
//! One receiver failing (refused, wrong token, cut off) ends that session only. The summary
//! has a line per receiver and a total, `--json` one object (`mode: "star"`, `exit_code`, a
//! `receivers` array of `address`, `exit_code`, `error` and that session's own `report`,
//! `hashed_once`, and `process`: the whole sender's wall time, CPU and peak memory), and each
//! `--events` line of a session carries its `receiver`. The exit code is the highest of the
//! receivers' codes: 0 only when all succeeded, and a stop by a signal (130, 143), an
//! authentication (8) or encryption (9) failure outranks a refusal (5) or a lost connection (3).
//! Each receiver's report counts the process's CPU while that session ran (they overlap); the
//! `process` object is the sender's real total.
//!
//! Running the same command again completes every receiver as a single send would: a receiver
//! run with `--skip-existing` skips what it holds, a part file resumes.
//!
//! # Memory
//! Flat in the file size (nothing holds a file), and per receiver: a thread (its stack is
//! touched only a few KiB deep), the batch buffer for small files (256 KiB, only while small
//! files go), a splice pipe when that path is taken, and the socket's kernel buffers; per file
//! in flight, one hash thread with a 256 KiB read buffer, shared. Measured (`zcp bench --star N
//! --dir /dev/shm`, release build, 2 shared cores): the sender's peak RSS was 5.5 MiB to one
//! receiver and 5.7-5.8 MiB to four, for a 256 MiB and a 1 GiB file alike: under 0.1 MiB per
//! receiver, nothing per byte of file.
//!
//! # Not done
//! No relay chain: the sender's own link carries every copy. A source of unknown length (a
//! FIFO, standard input) is refused with `--to`: it can be read once.
