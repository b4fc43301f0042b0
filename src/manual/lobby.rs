//! # Connections that have not authenticated: why they cannot lock a real peer out
//!
//! A listening end (`zcp recv`, `zcp recv --keep-open`, `zcp send --listen`) must accept
//! connections from anyone who can reach its port before it knows who holds the token. The
//! lobby (`link::lobby`) is where they wait; this note says what it bounds, against which
//! attack, and with what numbers. HTTP mode's heads and slots (`http::heads`) follow the same
//! idea; their section is last.
//!
//! ## The bounds
//!
//! 1. **At most 64 handshakes at once** (`MAX_WAITING`), each on its own thread, each within
//!    one 10 s deadline for the whole exchange (`HANDSHAKE_TIMEOUT`: greeting, key exchange,
//!    proofs, offer; trickling a byte at a time does not stretch it). Whatever an attacker
//!    holds open, unauthenticated peers cost at most 64 threads and about 3 × 64 descriptors.
//!    Authenticated sessions are not counted here (they count toward `--max-conns`).
//! 2. **A greeting is 46 bytes.** The first thing a real peer sends is a greeting of
//!    `HELLO_LEN` = 46 bytes (with `--encrypt`, a TLS ClientHello, longer): a sender sends it
//!    right after connecting; a receiver that connects to `send --listen` sends it one round
//!    trip after ours. The lobby reads the fact from the kernel (`TCP_INFO`'s count of bytes
//!    received, `sys::tcp`), not from a guess about time. A connection whose peer has sent
//!    fewer is *silent*. A peer trickling a byte a second needs 46 s, past the 10 s deadline:
//!    it is silent for all of its life.
//! 3. **A full lobby makes room at once.** When 64 handshakes run and another connection
//!    waits, the oldest handshake that is silent or has run 2 s (`GRACE`) is shut and the
//!    newcomer is accepted in its place. So the kernel's accept queue holds nobody behind idle
//!    connections: the accept loop takes each connection as it comes. Measured on loopback
//!    (debug build, two busy cores), a 65th connection saw the oldest idle one shut 1 to 18 ms
//!    after it connected.
//! 4. **A peer that greeted keeps its place for 2 s.** Honest handshakes take a few round
//!    trips (milliseconds on a LAN); 2 s is only the time before it may be pushed out for a
//!    newcomer, not a deadline.
//!
//! ## What each guarantees
//!
//! - **Idle and trickling connections, any number, opened once or re-opened at any pace the
//!   accept loop keeps up with, never lock a real peer out.** It is accepted as it arrives
//!   (bound 3), greets within one round trip and then holds its place (bound 4). While it is
//!   silent it is the newest candidate, pushed out only once every silent connection older
//!   than it has gone: with a lobby of 63 older silent ones, an attacker needs 64 new
//!   connections within that one round trip. Measured with `zcp send` behind 64 idle
//!   connections and an attacker re-opening 20 or 200 a second (holding each open): the
//!   send finished in 0.01 to 0.03 s; `zcp recv --connect` to a `send --listen` behind the
//!   same, in 0.03 to 0.07 s. Before this lobby (8 handshakes, the oldest pushed out after
//!   2 s, so about 4 admitted a second), 48 idle connections made a real sender give up
//!   after its 10 s wait for a greeting (exit 3), and re-opening 8 a second kept every
//!   sender out. The test `preauth::a_crowd_of_idle_and_reopened_connections_*` runs 64 idle
//!   connections plus a re-opener (20 a second, each trickling a real greeting) against all
//!   three listening modes.
//! - **Connections that greet and then stall** keep a place at most 2 s while others wait
//!   (10 s otherwise). To keep all 64 places from a real peer they must send a valid
//!   46-byte greeting 32 times a second, sustained; then a newcomer waits in the kernel's
//!   queue, first come first served, about 2 s per 64 ahead of it. That is the residual: an
//!   attacker who speaks the start of the protocol at that rate can delay a peer, and each of
//!   its connections costs a log line (`pushed out by a newer connection: it ran 2 s`).
//! - **Nothing an unauthenticated peer does ends the listening process or takes a session's
//!   place**: a failed or pushed-out handshake costs one escaped line on stderr
//!   (`zcp: ignored a connection from ADDR: why`, `terminal::line`) and its thread.
//!
//! ## HTTP mode: heads and slots
//!
//! `zcp send --http` and `zcp recv --http` answer requests in 16 slots (`--max-conns` for
//! `recv`). A connection takes a slot only once its whole request head arrived (within 10 s,
//! at most 16 KiB); until then it is one of at most 64 heads arriving at once, and a newcomer
//! past 64 shuts the oldest, the slowest, since curl sends its head in one write. A head that
//! could not be read is answered (`400`, `408`, `431`) while it still counts among the 64,
//! so malformed requests cannot pile up threads either. So trickling heads, any number, never
//! hold a slot, and a complete request gets `503` only when complete requests hold all 16.
//! Measured (debug build, loopback, `send --http --keep-open` of a 200 kB file): behind 16
//! heads trickling a byte a second, 20 of 20 curls with the token got `200`, the slowest in
//! 0.03 s; behind 200 such heads (re-opened as they were shut), 20 of 20, the slowest in
//! 0.21 s. Before, 16 trickling heads held every slot and 11 to 16 of 20 curls got `503`.
//! Requests that arrive whole but without the token hold a slot while answered `401`, at most
//! 2 s (the bounded drain after an answer).
//!
//! ## Not here, and why
//!
//! - A budget per peer address: loopback, NAT and one host running many senders at once (32
//!   concurrent senders is a test of `--keep-open`) share an address, so it would shed real
//!   peers alongside an attacker; the silent-first rule tells them apart by what they sent.
//! - SYN floods, which never reach `accept`: the kernel's SYN cookies are the defence.
