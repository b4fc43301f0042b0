//! # A browser fetching from `zcp send --http`
//!
//! A browser cannot send `Authorization: Bearer TOKEN`, and answers to `401` with a `Bearer`
//! challenge with no prompt. So the token may also come as the first segment of the path:
//! `http://HOST:PORT/t/TOKEN/` is the index, `…/t/TOKEN/NAME` a file. The server prints that
//! URL at start, with the token when it made it, else with `$ZCP_TOKEN`.
//!
//! ## Why it is as strong as the header
//!
//! It is the same token, compared the same way: the whole segment, percent-decoded, against
//! the whole token, in time that does not depend on where they differ (`http::Gate`). A
//! segment that is not the token is a `401`, as a wrong header is; the path is then not
//! served as a file name either. Uploads (`zcp recv --http`) take the header only.
//!
//! What a URL adds is where it is kept: the browser's history, and a `Referer` sent to other
//! sites. Every answer of `zcp send --http` carries `Referrer-Policy: no-referrer`, and the
//! log shows the segment as `/t/…` whether or not it was right (a wrong one is likely a typo
//! of the right one), also in `--json`'s `target` and in the note about a malformed request.
//! A URL is for a trusted network, like the whole of `--http` (no TLS). And as with any
//! static server (`python3 -m http.server`), a served HTML file opened in the browser is a page
//! of the same origin: its scripts can read the other files served. Open only pages you trust,
//! or fetch them with curl.
//!
//! ## What a browser is given
//!
//! - The index at `/` is HTML with one link per file when the request names `text/html` in
//!   `Accept` (every browser does); curl and wget send `*/*` and get the plain list, one URL
//!   path a line, as before. Links carry the `/t/TOKEN` prefix when the page was fetched with
//!   it, and the `download` attribute, so a click saves the file under its name.
//! - `Content-Type` follows the file's extension (`mime_guess`), `application/octet-stream`
//!   when it names none, so a text file or an image opens in the browser when visited.
//! - `GET /favicon.ico` without the token, which every browser asks for on its own, is a quiet
//!   `404`: no `401`, no log line. With the token it is an ordinary request for a file of that
//!   name.
//! - A connection closed without a byte (a browser opens spare ones ahead) leaves no log line.
