//! Authentication and receiver safety: who may write, and what holds whatever arrives on the
//! socket. The wire-level argument is in `manual::protocol`.
//!
//! A `zcp recv` that writes to disk must not be an open door. Authentication is on by default:
//!
//! - The receiver requires a shared token. Without one it generates a fresh token (20 base32
//!   characters, 100 bits, in groups of four: `k3fq-x2pa-9wtm-c8de-4hbn`) and prints it with the command to run on the sender.
//! - The token comes from `ZCP_TOKEN` (recommended, also in CI: command lines show up in `ps`),
//!   `--token-file FILE` (first line), or `--token TOKEN`, on both sides. `--no-auth` wins over
//!   every token option, and `--token-file` over `--token` and `ZCP_TOKEN`, so a token exported in a
//!   shell profile can still be overridden.
//! - Both ends prove the token with SPAKE2 (a password-authenticated key exchange, the `spake2`
//!   crate) followed by key confirmation over the whole handshake (protocol version 2; the
//!   argument is in `manual::protocol`). The token never crosses the wire, and nothing that
//!   does lets anyone test token guesses offline: an attacker gets one guess per connection. The
//!   proofs name each end's role and which end connected, so they cannot be reflected, replayed,
//!   or relayed between two listening ends (`send --listen` and `recv --listen` with one token).
//!   The end that connected proves first; a listening end proves itself only to a peer that
//!   proved the token. The sender knows it reached a receiver that holds the token before it
//!   sends any name. With a wrong or missing token the connecting end exits 8 (told `wrong
//!   token` when its proof failed), the listening end logs it and goes on waiting, and nothing is
//!   written.
//! - A listening end serves the first peer that **authenticates**. A connection that does not (a
//!   port scan, an idle connection, a wrong token, something that is not zcp or speaks another
//!   protocol version) is closed with one line on stderr (`zcp: ignored a connection from ADDR:
//!   why`), and `zcp recv` or `zcp send --listen` goes on waiting: it never ends the process and
//!   never counts toward `--max-conns`.
//! - `--no-auth` on both ends turns it off, and says so on stderr. Both must say it: a `--no-auth`
//!   receiver refuses a sender that merely has no token (the connecting end exits 8, the listening
//!   end logs it as an ignored connection and goes on waiting; the greeting carries a NO_AUTH flag
//!   for this).
//! - Reverse mode (`zcp send --listen ADDR`, `zcp recv --connect HOST:PORT`): the listening sender
//!   makes and prints the token when it has none, then the receiver's command for each address
//!   it can be reached at (`on the receiver: ZCP_TOKEN=… zcp recv --connect 10.0.0.5:7878`); a connecting receiver
//!   without a token exits 8 at once, asking for the one the sender printed.
//!
//! Threat model: the token protects **who may write** through a receiver (and tells the sender it
//! reached the right one). Without `--encrypt` it does **not** protect confidentiality or integrity
//! against someone who can read or alter the traffic: data travels in the clear (the zero-copy
//! default), and the end-to-end xxh3-128 detects corruption, not tampering. Across untrusted
//! networks use `--encrypt` on both ends (below), or run zcp inside WireGuard or an SSH tunnel.
//! The handshake itself holds against an active attacker without the token (no offline guessing,
//! reflection, replay or relay), but without `--encrypt` someone on the path between two honest
//! ends can still read the files, or alter them after the handshake. A user-chosen token is guessed only
//! online, one connection per guess; generated tokens (100 bits) are still the better choice.
//! Anyone who can reach the port can open connections to a listening end, but neither take its
//! place nor keep a real peer out with idle or trickling ones (see below). A receiver that holds
//! the token cannot hold a sender either: its plan and its summary must each arrive whole within
//! `--idle-timeout` (the plan at least 10 s), however slowly it trickles them.
//!
//! Receiver safety, whatever arrives on the socket:
//!
//! - Every name is a relative path of normal components: absolute paths, `..`, empty or `.`
//!   components and NUL are refused, entry by entry, and reported on both sides; a refused entry never
//!   stops the others.
//! - Accepted names are resolved from the held-open output directory one component at a time with
//!   `O_NOFOLLOW`, so a symlink already inside the destination cannot lead a write outside it.
//!   On the sending side (`zcp send`, each `send --http` request) a listed file is opened without
//!   following a symlink put in its place after the walk (unless `--follow-symlinks`), and one that
//!   is no longer a regular file is refused as "changed since it was listed".
//! - The greeting, key exchange, token proof and offer must all arrive within 10 s of the
//!   connection, one deadline for the whole exchange, on both ends (a peer trickling a byte at a
//!   time gains nothing); a transfer with no bytes for `--idle-timeout` (30 s) is aborted, part
//!   files kept, and writes to a peer that stopped reading are bounded the same way.
//! - Connections that have not authenticated get their own budget: at most 64 handshakes at once,
//!   each on its own short-lived thread. When 64 run, the next connection is let in at once in
//!   place of the oldest one whose peer has not sent a 46-byte greeting (as the kernel counts
//!   it) or that has run 2 s; a peer that greeted keeps its place 2 s. So idle or trickling
//!   connections, any number, do not delay a real sender: behind 64 idle ones and an attacker
//!   re-opening 20 or 200 a second, a send took 0.01–0.03 s, and an idle one was shut 1–18 ms
//!   after a newcomer came. Only a peer that sends valid greetings 32 times a second can hold
//!   every place. The argument: `manual::lobby`. Only authenticated sessions count toward
//!   `--max-conns`; a sender that authenticates while all run is told "busy".
//! - A name offered twice in one session is refused the second time, and so is a name inside a
//!   file entry of the same offer (`a` and `a/b`, in either order: the later one), alone: the
//!   rest of the session lands. A directory that already
//!   exists keeps its own mode and mtime (only directories the session created take the offered
//!   ones). Frame sizes are capped (1,000,000 entries, 4096-byte names,
//!   64 MiB manifests) and checked before anything is allocated.
//! - Per-session bounds on the offer: at most 1,000,000 entries, 32 MiB of names in all, 256
//!   components in a name. An offer past one is refused whole with an error naming the bound
//!   (`MAX_ENTRIES`, `MAX_OFFER_NAMES`, `MAX_DEPTH`), nothing written, exit 5 (an entry count past
//!   1,000,000 is a malformed offer, exit 4). Planning is linear in the offer (a directory walk
//!   starts from the parent it just walked); a 1,000,000-entry offer of short names peaks at
//!   about 370 MB in the receiver (it was 510 MB); longer names, up to the 32 MiB bound, add about
//!   three times their bytes.
//! - Before answering, the receiver checks the plan against `--max-size` and the free space
//!   (`statvfs`): a plan that does not fit is refused with "session needs X, Y free", and the
//!   directories planning created are removed again (deepest first, only while empty;
//!   directories that were there before stay). A disk that fills anyway (a stream of unknown
//!   length) is a clear error on both sides, the part file kept.
//! - Two sessions on one target never interleave: per target, planning, writing and placing are
//!   one critical section under the part file's lock (`flock`). A resume's prefix is hashed under
//!   the lock the writes and the rename are then done under, held until the name is in place; a
//!   second session is refused for that file ("another session is writing it"), never made to
//!   wait, so the file in place is always one sender's verified bytes (`manual::locking`;
//!   a 45 s soak of senders killed with `-9` and sent again: 0 mismatches in 1,701 sessions).
//! - `--max-size` bounds every output, standard output included, a hole counted as the zeros it
//!   becomes; Ctrl-C or SIGTERM stops a receiver within one write, even one writing a long run of
//!   zeros to standard output (measured: under 20 ms), and one stuck in a write that does not
//!   return (a pipe nobody reads) exits 1 s after the signal, saying so, part files kept.
//! - A part file is opened
//!   without following links and used (resumed from, written, given a mode) only when it is a
//!   regular file with one link owned by the receiving user; anything else (a hard link to a
//!   file elsewhere, another user's file, a symlink, a FIFO) is refused for that file, named in
//!   the reason, and left as it is: never read, hashed, truncated or removed.
