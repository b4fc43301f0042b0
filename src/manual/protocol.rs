//! The zcp wire protocol, version 2: the byte layout, the handshake and the argument for why
//! it holds. The code is in `protocol` (encoding) and `link` (the handshake).
//!
//! # Overview
//!
//! One TCP connection carries one session. The sender speaks first (also when it is the end
//! that listens, with `zcp send --listen`). When both greet with the AUTH flag, the key
//! exchange follows: the end that *accepted* the connection sends its SPAKE2 message, the end
//! that *connected* answers with its own and its proof, and only then does the accepting end
//! prove itself (see [Authentication](#authentication)). With the sender connecting:
//!
//! ```text
//! sender (connected)                       receiver (accepted)
//!   HELLO (nonce S) ─────────────────────────▶
//!   ◀─────────────────────────── HELLO (nonce R)
//!   ◀──────────────────────── PAKE (receiver's)      only when both greet with the AUTH flag
//!   PAKE (sender's), AUTH (connector proof) ─▶
//!   ◀────────────────── AUTH (acceptor proof)
//!   OFFER (manifest of every entry) ─────────▶
//!   ◀──────────── PLAN (one answer per entry)
//!   for each entry answered "send" or "resume", in manifest order:
//!     FILE_START (index, offset) ────────────▶
//!     file bytes offset..size, raw (or chunked) ▶
//!     FILE_END (xxh3-128 of the whole file) ─▶
//!   FINISH (sender's statistics) ────────────▶
//!   ◀──── SUMMARY (per-file verdicts, receiver's statistics)
//! ```
//!
//! With `zcp send --listen` the roles of the key exchange swap: after both greetings the
//! sender sends its PAKE, the receiver its PAKE and proof, the sender its proof, then the OFFER.
//!
//! So a session costs one round trip for the plan (two with authentication) however many entries
//! the offer holds, and each file's bytes travel as one raw run that `sendfile(2)` can push in a
//! few calls.
//!
//! # Encoding
//!
//! All integers are big-endian and unsigned unless marked `i`. `str16` is a `u16` byte length
//! followed by that many bytes (UTF-8 for text; raw bytes for names, which are Unix paths).
//!
//! ## HELLO (46 bytes, not framed)
//!
//! | bytes | field                                                          |
//! |-------|----------------------------------------------------------------|
//! | 8     | magic `89 5A 43 50 0D 0A 1A 0A` (`\x89ZCP\r\n\x1a\n`)           |
//! | 2     | protocol version, `2`                                          |
//! | 4     | flags: bit 0 AUTH (sender: will prove a token; receiver: requires one); bit 1 NO_AUTH (this end runs with `--no-auth`); bit 2 SPARSE (this end takes the sparse data form); bit 3 ENCRYPT (this end runs with `--encrypt`, see Encryption); other bits ignored |
//! | 32    | nonce: fresh random bytes when AUTH is set, else zero          |
//!
//! The magic's first byte is not ASCII, so a line of text (`hello` from netcat, an HTTP request)
//! is told apart at its first byte and refused as "not a zcp peer". A receiver that sees
//! another version answers with its greeting (so the peer learns this end's version too) and
//! an ERROR frame (code 2) naming both versions, and closes; a sender that reads another
//! version stops with the same message. Version 1's HMAC proofs were unsafe, and
//! versions 1 and 2 do not interoperate. When the two ends' AUTH flags differ, the receiver
//! sends ERROR code 5 and both ends stop: a sender with a token never talks to a receiver that
//! cannot prove it, and a receiver that requires one never plans for a sender without it. An end
//! without a token talks only to a peer whose greeting says NO_AUTH: both ends must say
//! `--no-auth` (a sender that simply has no token is refused). The
//! nonce is kept in version 2 as part of the transcript; the key exchange brings its own
//! freshness.
//!
//! A listening end (`zcp recv --listen`, `zcp send --listen`) takes the first peer that
//! completes this handshake. A connection that fails it (closes, stays silent past the 10 s
//! handshake deadline, speaks another protocol or version, proves a wrong token) is closed and
//! logged, and the end goes on waiting; it never counts toward `--max-conns`.
//!
//! ## Frames
//!
//! Every later message is a frame: `u8 type`, `u32 payload length`, payload. A payload longer
//! than its type's limit is refused before anything is allocated (the buffer grows only as bytes
//! arrive), and a payload must be exactly as long as its fields.
//!
//! | type | name       | direction | limit  | payload                                         |
//! |------|------------|-----------|--------|-------------------------------------------------|
//! | 0x01 | OFFER      | → recv    | 64 MiB | `u32 count`, then `count` entries               |
//! | 0x02 | PLAN       | → send    | 64 MiB | `u32 count`, then one answer per offered entry  |
//! | 0x03 | FILE_END   | → recv    | 1 MiB  | `u8 algorithm` (1 = xxh3-128), 16-byte digest   |
//! | 0x04 | FINISH     | → recv    | 1 MiB  | statistics                                      |
//! | 0x05 | SUMMARY    | → send    | 64 MiB | `u32 count`, verdicts, statistics               |
//! | 0x06 | AUTH       | either    | 1 MiB  | 32-byte key confirmation (HMAC-SHA256)          |
//! | 0x07 | FILE_START | → recv    | 1 MiB  | `u32 entry index`, `u64 offset`                 |
//! | 0x08 | PAKE       | either    | 1 MiB  | 33-byte SPAKE2 message: side byte, Ed25519 point |
//! | 0x09 | SPARSE_START | → recv  | 1 MiB  | `u32 entry index`, `u64 offset`: as FILE_START, the bytes in the sparse form |
//! | 0x7F | ERROR      | either    | 1 MiB  | `u16 code`, `str16 message`                     |
//!
//! **Entry**: `u8 kind` (1 = regular file, 2 = directory), `u8 flags` (bit 0: size known),
//! `u64 size`, `u32 mode` (permission bits), `i64 mtime seconds`, `u32 mtime nanoseconds`,
//! `str16 name`. An offer holds at most 1,000,000 entries; a name is 1 to 4096 bytes: a relative
//! `/`-separated path whose components are all normal (no empty, `.` or `..` component, no NUL).
//! A name that is empty or longer than 4096 bytes makes the whole OFFER malformed; any other
//! name that is not such a path is refused entry by entry (the other entries still land), as
//! is a name offered twice, and a name that lies inside a file entry of the same offer (`a` and
//! `a/b`, either order: the later one is refused). Accepted names are resolved below the output
//! directory without following symlinks. Directories come before their contents.
//!
//! Per-session bounds, checked by the receiver on the whole offer before anything is planned or
//! created: at most 1,000,000 entries (`MAX_ENTRIES`; a larger count field makes the OFFER
//! malformed before anything is allocated), 32 MiB of names in all (`MAX_OFFER_NAMES`), and 256
//! components in any one name (`MAX_DEPTH`). An offer past the name or depth bound is answered
//! with ERROR code 7 naming the bound, and the session ends with nothing written (both ends
//! exit 5).
//!
//! **Answer**: `u8 action`, `u64 offset`, 16-byte `prefix digest`, `u16 refusal code`,
//! `str16 reason`. Actions: 1 = send from 0; 2 = skip (nothing to send: a directory, or a file
//! the receiver already has); 3 = refuse (code and reason say why); 4 = resume: the receiver
//! holds the first `offset` bytes, whose xxh3-128 is the prefix digest. The sender resumes when
//! its own prefix hashes the same, else sends from 0; FILE_START says which. Refusal codes:
//! 1 exists, 2 invalid name, 3 not writable, 4 no space (or over the receiver's size limit),
//! 5 unsupported entry, 6 other.
//!
//! **Verdict**, one per file sent, in order: `u8 status` (1 = ok, 2 = checksum mismatch,
//! 3 = failed: checked, but refused when it was to be put in place, the reason in `detail`),
//! `str16 detail`. Status 1 with the detail `unchanged` says the receiver kept its own copy,
//! which held the same content: `zcp recv --checksum` answers an existing file of the offered
//! size with a resume from its last byte and the digest of its contents, so a sender (of any
//! build of version 2) whose file hashes the same sends FILE_START at that offset and no bytes;
//! one whose file differs sends it from 0. A sender that does not know the detail reads an `ok`.
//!
//! **Statistics** (what one end measured): `u8 path` (0 = none: no data call was made,
//! 1 = sendfile, 2 = splice, 3 = buffered),
//! `u64 bytes`, `u64 data syscalls`, `u64 checksum syscalls`, `u32 pipe bytes`,
//! `u64 elapsed µs`, `u64 user CPU µs`, `u64 system CPU µs`, `u64 peak RSS KiB`,
//! `u64 voluntary context switches`, `u64 involuntary context switches`, `u16 count`, then
//! per fallback `u8 from path`, `i32 errno` (0 = none), `str16 reason`.
//!
//! **ERROR codes**: 1 protocol violation, 2 unsupported version, 3 I/O failure on that end,
//! 4 interrupted (receiver shut down), 5 authentication failed or missing, 6 busy (too many
//! sessions), 7 a limit or timeout was hit.
//!
//! ## Authentication
//!
//! Both ends hold a token (a shared secret, often typed by a person and so possibly weak). The
//! handshake must let each end know that the other holds it, without giving anyone without it
//! a way in, a way to check guesses offline, or a proof usable anywhere else. It is SPAKE2
//! (RFC 9382's construction; the `spake2` crate of RustCrypto, Ed25519 group) followed by key
//! confirmation, as in RFC 9382 §4:
//!
//! 1. Roles and direction. SPAKE2 side A is the end that **connected**, side B the end that
//!    **accepted**. Its identities are `zcp/2 <role> connected` for A and `zcp/2 <role>
//!    accepted` for B, `<role>` being `sender` or `receiver`: a connecting sender and an
//!    accepting receiver use `zcp/2 sender connected` / `zcp/2 receiver accepted`; with
//!    `send --listen`, `zcp/2 receiver connected` / `zcp/2 sender accepted`. Each end derives
//!    them from what it knows itself (its role, and whether it called `connect` or `accept`).
//! 2. PAKE frames. The accepting end sends its SPAKE2 message (`'B'`, then `y·G + w·N`); the
//!    connecting end answers with its own (`'A'`, `x·G + w·M`); `w` is derived from the token.
//!    Each end computes the shared key `K = SHA-256(SHA-256(token), SHA-256(idA), SHA-256(idB),
//!    X, Y, Z)` (the crate's transcript hash).
//! 3. Transcript. `T = SHA-256` over, each part preceded by its `u32` length: the label
//!    `zcp/2 handshake transcript`, idA, idB, both greetings as sent (the sender's 46 bytes
//!    first; with `--encrypt` followed by `zcp/2 tls exporter` and the 32-byte TLS exporter
//!    value, see Encryption), the connector's PAKE, the acceptor's PAKE.
//! 4. Confirmation keys: `Kc = HMAC-SHA256(K, "zcp/2 connector confirmation")` and
//!    `Ka = HMAC-SHA256(K, "zcp/2 acceptor confirmation")` (each input length-prefixed, as
//!    below).
//! 5. AUTH frames. The connecting end sends `HMAC(Kc, T)` together with its PAKE. The accepting
//!    end checks it (constant time); on failure it answers ERROR code 5 `wrong token` and
//!    closes. Only on success does it send `HMAC(Ka, T ‖ connector proof)`, which the connecting
//!    end checks before it goes on. Every HMAC input part is preceded by its `u32` length.
//!
//! What each message proves, and to whom:
//!
//! - The PAKE messages prove nothing and reveal nothing: each is a uniformly random group
//!   element to anyone who does not know the secret scalars, whatever the token. They can be
//!   sent to anyone.
//! - The connector's AUTH proves to the acceptor that the connector knows the token **and**
//!   computed the same `K` over the same identities (so agrees on who connected, and on the
//!   roles), and saw the same greetings and PAKE messages (the transcript): nothing on the way
//!   was changed.
//! - The acceptor's AUTH proves the same to the connector, and in addition that the acceptor
//!   checked the connector's proof (it covers it).
//!
//! Against each attack class:
//!
//! - **Offline guessing.** An eavesdropper sees two PAKE messages and two MACs under a key it
//!   cannot compute without solving Diffie-Hellman: nothing to test a guess against. An
//!   active attacker that runs the protocol with a guessed token learns, from the answer, only
//!   whether that one guess was right: one online guess per connection. A listening end
//!   (`recv --listen`, `send --listen`) never sends a checkable value (an AUTH) to a peer that
//!   has not proved the token first; a connecting end proves first, but to an impostor that
//!   still gets it one guess, since its own PAKE message fixes one candidate token. (A Noise
//!   PSK pattern was the alternative: its first message is an AEAD tag under a key derived
//!   from the PSK, which lets anyone who receives it test token guesses offline — fine for
//!   random keys, wrong for typed tokens. Hence a PAKE.)
//! - **Reflection.** Each end's proof is under its own key (`Kc` or `Ka`) and covers a
//!   different input; an end never accepts a proof of its own kind. SPAKE2 itself refuses a
//!   message from its own side (`'A'` to an A, `'B'` to a B). An accepting end has nothing to
//!   reflect before its peer proved.
//! - **Relay**. An attacker connected to two listening ends (a `send --listen` and
//!   a `recv --listen` with the same token) and ferrying bytes between them: both ends
//!   accepted, so both are side B and both send a `'B'` message; each refuses the other's
//!   (wrong side). Rewriting the side byte does not help: the ends then disagree on the
//!   identities and on the points, so their keys differ, and each waits for a connector proof
//!   that only the token holder could make. The same holds for two connecting ends. An
//!   attacker between one connecting and one accepting end that forwards bytes unchanged is
//!   just a network path; it cannot change the handshake (the transcript), but see below for
//!   what it can do afterwards.
//! - **Replay.** Each end's SPAKE2 scalar is fresh per connection, so `K`, and every proof,
//!   is too: a recorded handshake replayed to a fresh end fails at the first AUTH.
//! - **Downgrade.** The greetings (version, flags, nonces) are in the transcript, so an
//!   attacker who rewrites them in flight makes the proofs fail; an end that requires a token
//!   never proceeds without one (the AUTH flag must match, else ERROR code 5).
//!
//! Not covered without `--encrypt`: after the handshake the data stream is plaintext and not
//! integrity-protected by the session key; an attacker on the network path between two honest
//! ends can read, and could change, the files after authentication. The token is never sent; a
//! stolen token lets its holder act as either end.
//!
//! ## Encryption (`--encrypt`)
//!
//! Both ends must say `--encrypt`; then the whole session, handshake included, runs inside one
//! TLS 1.3 connection (RFC 8446; rustls with ring; suites AES-128-GCM, AES-256-GCM,
//! ChaCha20-Poly1305, the client's order in that preference; no TLS 1.2, no resumption, no
//! 0-RTT, no session tickets):
//!
//! 1. The **accepting** end writes a plaintext greeting at once: a HELLO with ENCRYPT set
//!    (and SPARSE, as every greeting of this build; zero nonce). The **connecting** end is the
//!    TLS client and sends its ClientHello at once; it reads the 46-byte greeting before the server's first TLS record and requires
//!    ENCRYPT in it. The accepting end requires the first byte it receives to be `0x16` (a TLS
//!    handshake record).
//! 2. TLS handshake. The server's key is an Ed25519 key made fresh per process; its
//!    "certificate" is the bare SubjectPublicKeyInfo. The client accepts any key and checks
//!    only that the handshake is signed by it (CertificateVerify): no authority vouches for
//!    anything, by design. The server asks for no client certificate.
//! 3. Inside the tunnel, the handshake above runs unchanged (greetings with ENCRYPT set, PAKE,
//!    AUTH), except that the transcript `T` also covers the TLS exporter value
//!    `E = TLS-Exporter("EXPORTER-zcp/2 channel binding", no context, 32)` (RFC 8446 §7.5),
//!    each end computing it from its own TLS connection.
//! 4. Then frames and file data as below, as TLS application data. Each end hands its TLS keys
//!    to the kernel (kTLS: `TCP_ULP` `tls`, `SOL_TLS` `TLS_TX`/`TLS_RX`) when it can, so
//!    `sendfile`/`splice` keep working, or seals records in user space (`link::records`). This
//!    is local: the bytes on the wire are the same, and the two ends may differ. Records carry
//!    application data (type 23) and, at the end, a close_notify alert; no key updates or
//!    tickets are sent, and a user-space end stops after 2^24 records in one direction.
//!
//! What each part proves, to whom, against what:
//!
//! - **The TLS handshake proves nothing about who the peer is.** Anyone can complete it. It
//!   gives each end a channel whose keys only the two TLS endpoints know, and an exporter `E`
//!   that is the same at both endpoints of one TLS connection and, with overwhelming
//!   probability, different for any other (it derives from the master secret, which covers
//!   both key shares and the whole TLS transcript).
//! - **The AUTH proofs tie the token to the channel.** The connector's AUTH proves to the
//!   acceptor that an end holding the token computed the same `T`, hence the same `E`: that
//!   end is the other endpoint of *this* TLS connection. The acceptor's AUTH proves the same
//!   the other way. So both ends know that the peer they authenticated is the one holding the
//!   TLS keys that protect everything that follows.
//! - **Machine in the middle with two TLS sessions.** An attacker who terminates TLS towards
//!   each end (it can: no certificate is checked) holds two connections with exporters `E1`
//!   and `E2 ≠ E1`. Forwarding the inner handshake unchanged, each end's proof covers its own
//!   `E`, so the acceptor rejects the connector's proof ("wrong token", exit 8 on the
//!   connecting end), and the acceptor never proves itself. To pass, the attacker would have
//!   to make proofs over its own `E`, which needs the token: it gets one online guess per
//!   connection, as without TLS. It learns nothing from the PAKE messages it relays.
//! - **Eavesdropping and tampering.** After the handshake every byte is an AEAD record under
//!   keys only the two authenticated ends hold; a changed, dropped, reordered or replayed
//!   record fails authentication (the sequence number is in the nonce): that end sends an
//!   alert and stops, exit 9, nothing put in place (the part file is kept for a resume). A
//!   connection cut without TLS close_notify is reported as a cut, not as the end of data.
//! - **Downgrade.** An `--encrypt` end never sends anything but the ENCRYPT greeting (accepting)
//!   or a ClientHello (connecting) in the clear, and never reads frames outside TLS: an
//!   attacker cannot make it talk plaintext, only fail. A plaintext end that meets an
//!   `--encrypt` peer reads the ENCRYPT flag or the `0x16` byte and stops with "the peer runs
//!   with --encrypt: this end must use --encrypt too" (exit 9); an `--encrypt` end that meets a
//!   plaintext one says "the peer does not use --encrypt" (exit 9). Inside the tunnel, both
//!   greetings must carry ENCRYPT, and they are in `T`. Reflection, replay, relay between two
//!   listening ends and offline guessing are covered by the handshake as above; TLS does not
//!   weaken them (the inner messages are the same, `T` only gains a part).
//! - **`--encrypt --no-auth`** gives confidentiality and integrity against a **passive**
//!   eavesdropper only: no token proves who is at the other end, so an active attacker can sit
//!   in the middle with two TLS sessions, read and change everything. Use it only where nobody
//!   can intercept connections (or alter DNS) on the path.
//! - Not covered: traffic analysis (sizes and timing of records, the greetings' flags and the
//!   server's per-process key are visible); a stolen token, as before; the keys of a running
//!   session in the memory (or, with kTLS, the kernel) of either end. The exporter and the
//!   keys are never logged.

//! ## File data
//!
//! After its FILE_START, a file whose size is known is one raw run of exactly `size - offset`
//! bytes, no framing. When the size is not known (a pipe, a procfs file), the bytes come as
//! chunks: `u32 length` (at most 16 MiB) and that many bytes, ended by a chunk of length 0.
//! FILE_END follows either form; its digest covers the whole file from byte 0.
//!
//! **Sparse form**, negotiated: a sender may start a file with SPARSE_START
//! instead of FILE_START only when the receiver's greeting carried the SPARSE flag (bit 2;
//! greetings are in the handshake transcript, so the flag cannot be forged in flight on an
//! authenticated session), only for a file of known size, and never for a file the plan lets
//! the receiver batch (up to 64 KiB). Its `size - offset` bytes then come as runs, each a
//! 16-byte header, `u64 hole` and `u64 data`, followed by `data` raw bytes: the file holds
//! `hole` zero bytes (not sent) and then those bytes. Every run covers at least one byte, and
//! the runs cover exactly `size - offset` bytes, ending with the last run (a trailing hole is a
//! run with `data` 0). The receiver leaves holes unwritten (and extends the file to its size at
//! the end), so they stay holes where its file system has them. FILE_END's digest still
//! covers the whole file from byte 0, holes as zeros, and a resume offset is a plain byte
//! offset as ever: either end may send or receive a file in either form. A peer of this
//! version that does not set the flag (an older build) is sent plain FILE_START files, and an
//! unknown frame type (0x09 to an older receiver) could never be sent to it. This is why the
//! version stays 2: the flag, ignored by builds that do not know it, is the negotiation.
//!
//! FILE_START and FILE_END frames are always 17 and 22 bytes long, so from the plan a receiver
//! knows where each file of known size begins and ends in the stream. zcp's receiver uses that
//! to read many small files (and their frames) in one `read(2)` while leaving the bytes of a
//! larger file in the socket for `splice(2)`; the sender gathers small files the same way. The
//! bytes on the wire are the same either way.
