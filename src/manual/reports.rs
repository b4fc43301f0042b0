//! The reports: every key of `--json` and every event of `--events`, with examples. The code is in
//! `report`.
//!
//! The summary goes to stderr; `--json` prints one object on stdout (one per session with
//! `--keep-open`). Example (`zcp send big.iso … --json`):
//!
//! ```json
//! {
//!   "role": "send",
//!   "files": [
//!     { "name": "big.iso", "kind": "file", "status": "sent", "bytes": 1073741824, "resumed_from": 0, "hole_bytes": 0,
//!       "path": "sendfile", "checksum_ok": true, "saved_as": null, "reason": null }
//!   ],
//!   "bytes": 1073741824, "resumed_bytes": 0, "hole_bytes": 0, "files_sent": 1, "dirs": 0, "skipped": 0, "refused": 0,
//!   "elapsed_s": 0.62,
//!   "throughput_bytes_per_s": 1731842322.5,
//!   "checksum": { "algorithm": "xxh3-128", "ok": true },
//!   "send": {
//!     "path": "sendfile", "bytes": 1073741824, "syscalls": 16, "bytes_per_call": 67108864.0,
//!     "checksum_syscalls": 4096, "pipe_bytes": 0, "elapsed_s": 0.62, "user_cpu_s": 0.04,
//!     "sys_cpu_s": 0.33, "cpu_s_per_gib": 0.37, "peak_rss_bytes": 4759552,
//!     "voluntary_context_switches": 40, "involuntary_context_switches": 12, "fallbacks": []
//!   },
//!   "recv": { "path": "splice", "...": "same keys as send" }
//! }
//! ```
//!
//! The receiver's report (`zcp recv --json`) has the same keys; `role` is `recv` and each file
//! says where it was saved (its `send` side is what the sender measured and sent over):
//!
//! ```json
//! {
//!   "role": "recv",
//!   "files": [
//!     { "name": "ten.bin", "kind": "file", "status": "sent", "bytes": 10485760, "resumed_from": 0, "hole_bytes": 0,
//!       "path": "splice", "checksum_ok": true, "saved_as": "/dev/shm/dst/ten.bin", "reason": null }
//!   ],
//!   "bytes": 10485760, "resumed_bytes": 0, "hole_bytes": 0, "files_sent": 1, "dirs": 0, "skipped": 0, "refused": 0,
//!   "elapsed_s": 0.011, "throughput_bytes_per_s": 959531478.8,
//!   "checksum": { "algorithm": "xxh3-128", "ok": true },
//!   "send": { "path": "sendfile", "syscalls": 1, "checksum_syscalls": 40, "...": "" },
//!   "recv": {
//!     "path": "splice", "bytes": 10485760, "syscalls": 39, "bytes_per_call": 268865.6,
//!     "checksum_syscalls": 68, "pipe_bytes": 1048576, "elapsed_s": 0.011, "user_cpu_s": 0.0026,
//!     "sys_cpu_s": 0.0031, "cpu_s_per_gib": 0.58, "peak_rss_bytes": 4448256,
//!     "voluntary_context_switches": 12, "involuntary_context_switches": 2, "fallbacks": []
//!   }
//! }
//! ```
//!
//! | key | meaning |
//! |---|---|
//! | `role` | `send` or `recv`: which end wrote the report |
//! | `files[]` | per entry: `name` (relative path), `kind` (`file`/`dir`), `status` (`sent`, `created`, `skipped`, `refused`, `checksum_mismatch`), `bytes` moved now, `resumed_from`, `hole_bytes` (holes not sent), `path` (`null` when nothing moved), `checksum_ok` (`null` when nothing moved), `saved_as` (receiver only), `reason` (a refusal, or a note such as a resume that started over) |
//! | `bytes`, `resumed_bytes`, `hole_bytes` | bytes moved in this session; bytes the receiver already held and kept; bytes of sparse files' holes, not sent (see `manual::sparse`) |
//! | `files_sent`, `dirs`, `skipped`, `refused` | counts over `files[]` |
//! | `removed` | receiver only, with `--mirror`: the entries removed because the offer does not hold them, a directory (ending in `/`) after its contents; empty otherwise |
//! | `excluded` | entries the sender's `--exclude`/`--include`/`--exclude-from` left out of the offer (an excluded directory counts once); 0 on the receiver |
//! | `elapsed_s`, `throughput_bytes_per_s` | this end's data phase (after the plan, until the summary) |
//! | `checksum` | `algorithm` (`xxh3-128`) and whether every file that crossed matched |
//! | `created_output` | receiver: the `--output` directory this session created because it did not exist, else `null` |
//! | `encryption`, `cipher`, `encryption_fallback` | this end's `none`, `tls1.3 (kernel)` or `tls1.3 (user space)`; the TLS suite (`TLS13_AES_128_GCM_SHA256`) or `null`; why the kernel does not seal records, with its errno (`null` otherwise) |
//! | `send`, `recv` | each end's own measurements, the peer's sent over the wire: |
//! | `.path` | `sendfile`, `splice` or `buffered`: the path that moved the most bytes (each file's own is in `files[]`; the summary says when files took different paths); `null` when no file moved |
//! | `.syscalls`, `.bytes_per_call` | data-path calls (`sendfile`, `splice`, `read`, `pread` of a batched small file, `write`, `lseek`, socket send/recv) and bytes per call |
//! | `.checksum_syscalls` | calls made only for the checksum: the sender's `pread` of its source; the receiver's `mmap`, `madvise` and `munmap` of the windows it hashes (into a file) or `tee` and `read` of a copy (onto standard output); `pread` of a resumed prefix |
//! | `.pipe_bytes` | capacity of the splice pipe actually granted, 0 without one |
//! | `.user_cpu_s`, `.sys_cpu_s`, `.cpu_s_per_gib` | `getrusage` of that process over the data phase, all threads |
//! | `.peak_rss_bytes` | peak resident memory of that process |
//! | `.voluntary_context_switches`, `.involuntary_context_switches` | over the data phase |
//! | `.fallbacks[]` | every distinct fallback any file took: `from`, `errno` and `errno_name` (`null` when zcp knew without asking), `reason` |
//!
//! With `--raw` the object has `"mode": "raw"`, `name`, `saved_as`, `bytes`, `elapsed_s`,
//! `throughput_bytes_per_s`, `"checksum": null`, `"authenticated": false` and only this end's side.
//! The field names are a contract: renaming one is a breaking change, noted in `CHANGELOG.md`.
//! # Events (`--events`)
//!
//! `--events` writes one JSON object per line while the session runs, on stdout or on the
//! descriptor `--events-fd` names, each line flushed as it is written. Both ends can. Every line
//! has these keys, then the event's own:
//!
//! | key | meaning |
//! |---|---|
//! | `v` | the schema version, `1`. New events and new keys may appear within a version (ignore what you do not know); renaming or removing one, or changing a meaning, makes it `2`, noted in `CHANGELOG.md` |
//! | `session` | the session's number in this process, from 1 (a `--keep-open` receiver's sessions interleave); `0` for an `error` event |
//! | `t` | seconds since the session started (since the stream opened, for `error`) |
//! | `event` | one of the names below |
//!
//! | `event` | keys | when |
//! |---|---|---|
//! | `session_start` | `role` (`send`/`recv`), `entries` offered, `files` to move, `bytes` in all (`null` with a stream of unknown length) | once the plan is agreed; first |
//! | `file_skip` | `index` (in the offer), `name` | after `session_start`, for each file the receiver already has (`--skip-existing`) |
//! | `file_remove` | `name` (a directory ends in `/`) | receiver only, with `--mirror`: after the last `file_end`, for each entry removed because the offer does not hold it (see `manual::mirror`) |
//! | `file_refuse` | `index`, `name`, `reason` | after `session_start`, for each entry the receiver will not write; or in place of `file_end` for a file whose bytes moved and checked but whose name was taken when it was to be put in place (a file came under it meanwhile, or one differing only in case); for a batched small file, which is written after it is checked, after its `file_end` |
//! | `file_start` | `index`, `name`, `size` (`null`: unknown) | as a file's bytes begin to move |
//! | `file_resume` | `index`, `name`, `size`, `offset` | instead of `file_start`, when the receiver kept the first `offset` bytes |
//! | `progress` | `bytes` done (resumed prefixes and sparse holes count as done), `total` (`null`: unknown), `files_started`, `files`, `bytes_per_s` | at once, then every `--events-interval` while bytes move, and once at the end with the final count |
//! | `file_end` | `index`, `name`, `bytes` moved now, `resumed_from`, `hole_bytes` (sparse holes not sent), `path` (data path), `checksum` (`ok` or `mismatch`: then it was not saved), `saved_as` (receiver) | the receiver: as each file is checked; the sender: when the receiver's verdicts arrive, at the end |
//! | `fallback` | `side` (`send`/`recv`), `from`, `errno`, `errno_name`, `reason` | each side's fallbacks (as in the report), at the end |
//! | `summary` | `report`: the object `--json` prints | last of a session that ran to the end |
//! | `error` | `message` (the error, exact), `exit_code` | when the command fails (a session error, a connection that never came, refused or damaged files after the summary); then the process exits with `exit_code` |
//!
//! A sender's stream, one file resumed and one refused (abridged):
//!
//! ```text
//! {"v":1,"session":1,"t":0.00005,"event":"session_start","role":"send","entries":4,"files":2,"bytes":3146728}
//! {"v":1,"session":1,"t":0.00009,"event":"file_refuse","index":3,"name":"t/taken","reason":"dst/t/taken exists (the receiver's --force overwrites it)"}
//! {"v":1,"session":1,"t":0.00014,"event":"file_resume","index":1,"name":"t/big","size":3145728,"offset":1048576}
//! {"v":1,"session":1,"t":0.00139,"event":"progress","bytes":3145728,"total":3146728,"files_started":1,"files":2,"bytes_per_s":2154966515.4}
//! {"v":1,"session":1,"t":0.27495,"event":"file_start","index":2,"name":"t/small","size":1000}
//! {"v":1,"session":1,"t":0.27637,"event":"file_end","index":1,"name":"t/big","bytes":2097152,"resumed_from":1048576,"hole_bytes":0,"path":"sendfile","checksum":"ok","saved_as":null}
//! {"v":1,"session":1,"t":0.27652,"event":"summary","report":{"role":"send","files_sent":2,"refused":1,"...":"as --json"}}
//! {"v":1,"session":0,"t":0.27700,"event":"error","message":"receiver refused t/taken: dst/t/taken exists (the receiver's --force overwrites it)","exit_code":5}
//! ```
//!
//! `--events` and `--json` on stdout together are refused (exit 2): the `summary` event holds the
//! report; with `--events-fd` the two coexist. A reader that goes away ends the stream, not the
//! transfer. Progress is reported when bytes move, so a stalled transfer has gaps (until the idle
//! timeout ends it with an `error`).
//!
//! `NO_COLOR` is respected trivially: zcp prints no colour, and no control codes at all when stderr is
//! not a terminal (the progress bar is drawn only on a terminal).
