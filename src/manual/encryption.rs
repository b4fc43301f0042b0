//! `--encrypt`: the tunnel, its threat model, kernel TLS and its cost. The code is in
//! `link::tls`, `ktls`, `pump` and `records`.
//!
//! ```sh
//! zcp recv --encrypt --output ./incoming/          # prints the token and the sender's command
//! ZCP_TOKEN=… zcp send --encrypt big.iso host:7878
//! ```
//!
//! Both ends must say `--encrypt` (also `send --listen` / `recv --connect`). The whole session,
//! the token handshake included, then runs inside one TLS 1.3 connection (rustls with the `ring`
//! provider; AES-128-GCM preferred, AES-256-GCM and ChaCha20-Poly1305 accepted). There are no
//! certificates to manage: the listening end makes a fresh key per process, the connecting end
//! accepts any key, and the token decides who the peer is: the SPAKE2 proofs run inside the tunnel
//! and cover the TLS exporter (RFC 8446 §7.5), so a machine in the middle that terminates TLS
//! towards each end cannot pass them (the argument is in `manual::protocol`). The summary
//! and `--json` name it:
//!
//! ```text
//!   encryption: tls1.3 (user space), TLS13_AES_128_GCM_SHA256
//!   encryption: kernel TLS not used: setsockopt(TCP_ULP, "tls") failed: the kernel has no kTLS (ENOENT)
//! ```
//!
//! - **Threat model.** With a token, `--encrypt` protects the files' content and integrity
//!   against anyone on the network, passive or active: they see sizes and timing, nothing else,
//!   and a changed record ends the session (exit 9 on both ends, `a TLS record did not
//!   authenticate: the data was altered on the way`; the file is not put in place, its part file
//!   is kept). The end that refuses a record tells the other with the fatal alert RFC 8446
//!   prescribes: `bad_record_mac` for one that does not authenticate, `record_overflow` for one
//!   too long, `unexpected_message` for a record of another type. A connection cut without TLS's close_notify (a network failure, or a forged FIN
//!   or reset) can only stop the session, whose own framing tells a cut from an end: it is a
//!   broken connection, exit 3, and the same command resumes it. `--encrypt --no-auth` stops
//!   only passive eavesdroppers: without a token nobody proves who is at the other end, so an
//!   active attacker can sit in the middle.
//! - **No silent downgrade.** An `--encrypt` end never talks plaintext. Facing a plaintext peer it
//!   stops with `the receiver does not use --encrypt: use it on both ends, or on neither`; a
//!   plaintext end facing an `--encrypt` peer stops with `the receiver runs with --encrypt: this
//!   end must use --encrypt too` (or `sender`). Exit 9 on the end that stops; a listening end
//!   logs the connection as ignored and goes on waiting, as for any failed handshake.
//! - **Kernel TLS.** After the handshake each end offers its keys to the kernel
//!   (`setsockopt(TCP_ULP, "tls")`, then `SOL_TLS` `TLS_TX`/`TLS_RX`). Where it takes them the
//!   session keeps `sendfile` and `splice` (the kernel seals records as it copies) and reports
//!   `tls1.3 (kernel)`. Where it does not, the errno is in the report, and the records are sealed
//!   in user space: rustls runs the handshake only; the session's data path then writes into a
//!   private Unix socket pair, and two threads seal and open TLS 1.3 records in place with the
//!   extracted keys (ring's AEAD): the sender `readv`s up to 16 records' worth (16 KiB each, the
//!   TLS maximum) straight into their slots and writes them in one call, the receiver opens what
//!   one `read` brought and hands the plaintext on in one `writev`. The `send:`/`recv:` paths
//!   and syscall counts of the report are then those of the session's data path into the socket
//!   pair (`sendfile`/`splice` there, as strace shows them); the record layer's own `readv`,
//!   `write`, `read` and `writev` are not in those counts, and its copy through user space is
//!   what `(user space)` says. `zcp doctor` says whether this kernel has kTLS and which ciphers
//!   it takes (`ktls
//!   not available: setsockopt(TCP_ULP, "tls") fails (ENOENT) (tcp_available_ulp: mptcp)`; in
//!   `--json`, `ktls` with `available`, `errno_name`, `ciphers`, `available_ulp`). The
//!   development VM has none (`/proc/sys/net/ipv4/tcp_available_ulp` lists only `mptcp`), so the
//!   kernel path is written and its key layout unit-tested, but not yet run end to end here.
//! - **Cost.** In user space every byte is copied into user space and sealed in place once on the
//!   sender, opened in place once on the receiver, and crosses the Unix socket pair (one more
//!   kernel copy each side); `zcp bench --encrypt` measures it.
//! - **The checksum stays.** TLS authenticates each record between the two sockets; xxh3-128
//!   checks the file as read from the source against the file as written at the destination
//!   (offsets, resumed prefixes, the disk path), and resume needs it anyway (prefix digests).
//!   Measured on the development VM: xxh3-128 hashes at 0.08–0.16 s/GiB, against 0.17–0.31 s/GiB
//!   for AES-GCM sealing alone; the checksum is a small share of an encrypted session's CPU (see
//!   `zcp bench --encrypt`), so it is kept.
//! - Raw mode (`--raw`) refuses `--encrypt` (exit 2): it exists to talk to `nc` and `socat`,
//!   which do not speak zcp's TLS.
