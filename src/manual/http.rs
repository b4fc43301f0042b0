//! HTTP mode in detail: what `send --http` and `recv --http` do, with the kernel's account of each.
//! The code is in `http`.
//!
//! zcp grew from the way Go's `net/http` serves a static file: a regular file, a TCP socket, a
//! `Content-Length` instead of chunked encoding, and the kernel's `sendfile(2)` does the copying.
//! `--http` does the same for a peer that has only `curl`, `wget` or a browser:
//!
//! ```text
//! $ zcp send --http big.iso
//! listening on 0.0.0.0:7878
//! fetch with: curl -fO -H 'Authorization: Bearer k3fq-x2pa-9wtm-c8de-4hbn' http://10.0.0.2:7878/big.iso
//! GET /big.iso 200 to 10.0.0.5:51234: 1 GiB by sendfile (16 calls) in 1.02 s: the file has now been fetched whole
//! served 1 request; 1 of 1 files fetched whole
//! ```
//!
//! The kernel's account of that download (`strace -f -e trace=sendfile zcp send --http …`, a
//! 5,000,000-byte file): one call, no byte through user space.
//!
//! ```text
//! sendfile(4, 5, [0] => [5000000], 5000000) = 5000000
//! ```
//!
//! And of a 64 MiB `curl -T` into `zcp recv --http` (`strace -f -c -e
//! trace=splice,read,recvfrom,write`): the head is peeked and read (`recvfrom`, `read`), the
//! body never is; it goes socket→pipe→file (the one failed splice is the probe that the file
//! takes splice writes).
//!
//! ```text
//! % time     seconds  usecs/call     calls    errors syscall
//!  99.89    0.023962          13      1801         1 splice
//!   0.05    0.000011           3         3           recvfrom
//!   0.04    0.000010           0        20           write
//!   0.02    0.000005           0         9           read
//! ```
//!
//! - `zcp send --http PATH... [--listen ADDR]` serves the named files, and the files under named
//!   directories by their relative paths (`/photos/a.jpg`), with `GET` and `HEAD`:
//!   `Content-Length` always (never chunked), `Accept-Ranges`, `ETag` (`"SIZE-MTIME_NS"` in hex:
//!   it changes when either does) and `Last-Modified`. A single byte range gets `206` (`curl -r`,
//!   and `curl -C -` resumes); several ranges are answered whole (`200`); one from the very end
//!   gets `416` without `Content-Range`, which `curl -C -` takes as complete, one past it `416`; `If-Range` with a stale validator gets the whole file. `GET /` is a plain-text index,
//!   one URL path per line, or HTML with links for a browser (`Accept: text/html`). Bodies go by `sendfile` (splice, then buffered, with the reason, as
//!   for `zcp send`; `--method`, `--limit-rate` and `--idle-timeout` apply); each request gets one
//!   line on stderr naming the path and calls (with `--json`, one JSON object per request on
//!   stdout: `role`, `peer`, `method`, `target`, `status`, `bytes`, `range`, `path`, `syscalls`,
//!   `elapsed_s`, `saved_as`, `reason`, `fallbacks`).
//! - It ends, exit 0, once every file was sent whole at least once: byte ranges add up, so an
//!   interrupted download finished by `curl -C -` counts, and a `HEAD` or a broken-off transfer
//!   does not. `--keep-open` serves until Ctrl-C (exit 130; SIGTERM 143).
//! - `zcp recv --http --output DIR [--listen ADDR]` takes `curl -T FILE http://HOST:7878/` (curl
//!   puts the file's name in the URL; `/sub/name` lands in `DIR/sub/name`, directories made as
//!   for a zcp session). The body goes by `splice` socket→pipe→file into `.NAME.zcp-part`, renamed
//!   into place when every byte arrived, and the answer is `201`. Everything `zcp recv` enforces
//!   holds: the naming rule (`..`, absolute paths, and their `%2e%2e` spellings get `400`),
//!   `--max-size` (`413`) and the free space (`507`), checked against `Content-Length` before a
//!   byte is read; an existing target `409` without `--force`; part files locked, never followed
//!   through links. A client that sent `Expect: 100-continue` (curl does for large files) gets the
//!   go-ahead only once all of that passed. HTTP carries no checksum and no resume, so a broken-off
//!   upload removes its part file, and the directories made for it, and leaves nothing. A URL ending in `/` names no file (`400`).
//!   A stream (`tar c dir | curl -T - http://HOST:7878/dir.tar`) comes chunked: each chunk's size
//!   line is read, its data spliced to its place in the file; `--max-size` stops it as it passes
//!   (`413`), and the free space cannot be checked up front. A body with neither `Content-Length`
//!   nor chunked coding gets `411`, one with both `400`. It ends after one upload landed (refused
//!   or failed ones do not count) unless `--keep-open`.
//!   With `--fsync` an upload is made durable as a zcp session's files are (see `manual::writing`):
//!   its data synced (`syncfs`) before the part file is renamed into place, then each directory
//!   that gained a name synced (the file's, and the parents of directories made for it), before
//!   the `201`. If a directory sync fails after the rename, the file stays in place and the answer
//!   is `500` with `saved NAME, but syncing DIR: … it is not known to be durable (--fsync)`.
//! - Options `--http` cannot honour are refused (exit 2), never ignored: `--events` (either end;
//!   see Not yet), `--retry` (it listens), `--no-sparse` on `send --http` (an HTTP body always
//!   carries holes as zeros), and `--raw`, `--name`, `--no-resume`, `--connect`,
//!   `--skip-existing`.
//! - The second line is the command to run on the other host, as it is: on a wildcard `--listen`
//!   its URL names the first non-loopback address of this machine's interfaces (IPv4 first; `HOST`
//!   when there is none), and a token is required as everywhere, as `Authorization: Bearer
//!   TOKEN`, which the command carries (the token itself when zcp made it, `$ZCP_TOKEN` when you
//!   gave it). A missing or
//!   wrong token gets `401` and nothing is served or written. **Over plain HTTP the token crosses
//!   the network in clear**, unlike zcp's own handshake (SPAKE2): anyone who can read the traffic
//!   can reuse it while the server runs. Use `--http` on trusted networks or through an SSH tunnel,
//!   and a fresh token each time (the default). A browser, which cannot send the header, carries the token as
//!   the first segment of the path, `/t/TOKEN/` (see `manual::browser`).
//! - Bounds: a request head of at most 16 KiB (`431`), arriving within 10 s (`408`); a malformed
//!   one gets `400` and a log line; 16 requests at once for `send --http` and `--max-conns`
//!   for `recv --http`, counted only once their whole head arrived (the next gets `503`), and at
//!   most 64 heads arriving at once, the oldest shut for a newcomer, so heads trickling in cannot
//!   turn a complete request away; upload paths obey the naming rule, 256 components at most
//!   (`400`); one request per connection (`Connection: close`).
