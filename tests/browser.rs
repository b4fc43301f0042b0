//! A browser fetching from `zcp send --http`, with headless Chromium: the URL printed at start
//! carries the token in its path, the index is HTML with a link per file, a link downloads the
//! file byte-identical, and the token never reaches the log. Plus what a browser meets besides:
//! `Content-Type` by extension, a quiet `404` for `favicon.ico`, no line for an unused
//! connection. Skipped, with the reason, where Chromium or curl is missing.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{
    Process, STARTUP, TOKEN, TOKEN_ENV, ZCP, assert_exit, assert_file_holds, skip, subdir,
    unusable, write_random_file,
};

/// Chromium's flags for a throwaway headless run as root on a machine with no network but
/// loopback.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Skips the test (returning from it) where `program --version` cannot run.
macro_rules! require {
    ($program:expr) => {
        if let Some(why) = unusable($program, &["--version"]) {
            return skip(&why);
        }
    };
}

/// The DOM Chromium made of `url`, after loading it (`--dump-dom`), in a profile of its own.
fn dump_dom(url: &str) -> String {
    dump_dom_after(url, &[])
}

/// `dump_dom` with more of Chromium's flags (`--virtual-time-budget` lets scripts finish).
fn dump_dom_after(url: &str, flags: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("a Chromium profile");
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "chromium"]).args(CHROMIUM_FLAGS).args(flags);
    cmd.arg(format!("--user-data-dir={}", profile.path().display()));
    cmd.env("HOME", profile.path()).args(["--dump-dom", url]);
    let out = cmd.output().expect("running chromium");
    assert!(out.status.success(), "chromium --dump-dom {url}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The links of a page: each `href` and the link's text.
fn links(dom: &str) -> Vec<(String, String)> {
    dom.split("<a ")
        .skip(1)
        .filter_map(|a| {
            let href = a.split_once("href=\"")?.1.split_once('"')?.0;
            let text = a.split_once('>')?.1.split_once("</a>")?.0;
            Some((href.to_string(), text.to_string()))
        })
        .collect()
}

/// `curl -sS ARGS…` run to the end.
fn curl(args: &[&str]) -> Output {
    Command::new("curl").arg("-sS").args(args).output().expect("running curl")
}

/// `zcp send --http PATH --listen 127.0.0.1:0 EXTRA…`, with a token it makes itself when
/// `token` is None; with the origin (`http://127.0.0.1:PORT`).
fn serve(path: &Path, token: Option<&str>, extra: &[&str]) -> (Process, String) {
    let mut cmd = Command::new(ZCP);
    cmd.args(["send", "--http"]).arg(path).args(["--listen", "127.0.0.1:0"]).args(extra);
    match token {
        Some(token) => cmd.env(TOKEN_ENV, token),
        None => cmd.env_remove(TOKEN_ENV),
    };
    let mut process = Process::spawn(cmd);
    let addr = process.listening();
    (process, format!("http://{addr}"))
}

#[test]
fn a_browser_opens_the_printed_url_and_a_link_downloads_the_file() {
    require!("chromium");
    require!("curl");
    let work = tempfile::tempdir().expect("tempdir");
    let shared = subdir(work.path(), "shared");
    let words = "plain words for a browser to show\n";
    fs::write(shared.join("notes.txt"), words).expect("a text file");
    let data = write_random_file(&subdir(&shared, "sub").join("data 1.bin"), 300_000, 41);
    let (mut server, origin) = serve(&shared, None, &["--json"]);
    let page = server.wait_line("open in a browser: ");
    let page = page.trim_start_matches("open in a browser: ").to_string();
    assert!(page.starts_with(&format!("{origin}/t/")), "{page}");
    let token = page.trim_start_matches(&format!("{origin}/t/")).trim_end_matches('/');

    let dom = dump_dom(&page);
    let links = links(&dom);
    let texts: Vec<&str> = links.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["shared/notes.txt", "shared/sub/data 1.bin"], "{dom}");
    // Chromium shows a text/plain page in the DOM (an octet stream would be a download).
    let notes = dump_dom(&format!("{origin}{}", links[0].0));
    assert!(notes.contains(words.trim()), "{notes}");
    // The link, exactly as the page has it, with no header: the token is in its path.
    let got = work.path().join("got.bin");
    let href = format!("{origin}{}", links[1].0);
    let out = curl(&["-f", "-o", got.to_str().expect("utf-8"), &href]);
    assert!(out.status.success(), "{href}: {out:?}");
    assert_file_holds(&got, &data, "the file behind the link");

    let done = server.wait_for(Duration::from_secs(20));
    assert_exit(&done, 0, "zcp send --http once both files were fetched");
    for line in done.stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let target = entry["target"].as_str().expect("a target");
        assert!(target.starts_with("/t/…/"), "the token in the log: {line}");
    }
    let logged = done.stderr.lines().filter(|l| !l.starts_with("open in a browser: "));
    let logged: Vec<&str> = logged.filter(|l| !l.contains("Authorization: Bearer")).collect();
    assert!(!logged.iter().any(|l| l.contains(token)), "the token in the log: {logged:#?}");
    assert!(logged.iter().any(|l| l.starts_with("GET /t/…/ 200")), "{logged:#?}");
}

/// A page served beside the file: it fetches the index as a browser does, follows the file's
/// link there and writes the SHA-256 of the bytes it got into the DOM. Chromium, not curl, then
/// does the download, with the token the link carries.
const FOLLOW_THE_LINK: &str = r#"<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
(async () => {
  const out = document.getElementById('out');
  try {
    const page = await (await fetch('../', {headers: {Accept: 'text/html'}})).text();
    const index = new DOMParser().parseFromString(page, 'text/html');
    const link = [...index.querySelectorAll('a')].find(a => a.textContent.endsWith('data 2.bin'));
    const body = await (await fetch(link.getAttribute('href'))).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    out.textContent = 'sha256 ' + [...digest].map(b => b.toString(16).padStart(2, '0')).join('');
  } catch (e) { out.textContent = 'error ' + e; }
})();
</script></body></html>
"#;

#[test]
fn chromium_follows_the_index_link_and_gets_the_file_byte_identical() {
    use sha2::Digest;
    require!("chromium");
    let work = tempfile::tempdir().expect("tempdir");
    let shared = subdir(work.path(), "shared");
    fs::write(shared.join("follow.html"), FOLLOW_THE_LINK).expect("the page");
    let data = write_random_file(&subdir(&shared, "sub").join("data 2.bin"), 500_000, 42);
    let want: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    let (mut server, _) = serve(&shared, None, &[]);
    let page = server.wait_line("open in a browser: ");
    let page = page.trim_start_matches("open in a browser: ");
    let dom =
        dump_dom_after(&format!("{page}shared/follow.html"), &["--virtual-time-budget=20000"]);
    assert!(dom.contains(&format!("sha256 {want}")), "{dom}");
    // Both files fetched whole, by the browser alone: the one-shot server is done.
    let done = server.wait_for(Duration::from_secs(20));
    assert_exit(&done, 0, "zcp send --http once Chromium fetched both files");
}

#[test]
fn what_a_browser_meets_besides_the_files() {
    require!("curl");
    let work = tempfile::tempdir().expect("tempdir");
    let shared = subdir(work.path(), "site");
    for name in ["a.txt", "b.bin", "c.html", "d.png"] {
        fs::write(shared.join(name), name).expect("a file");
    }
    let (mut server, origin) = serve(&shared, Some(TOKEN), &["--keep-open"]);
    let auth = format!("Authorization: Bearer {TOKEN}");
    let head = |name: &str| {
        let out = curl(&["-I", "-H", &auth, &format!("{origin}/site/{name}")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (name, mime) in [
        ("a.txt", "text/plain"),
        ("b.bin", "application/octet-stream"),
        ("c.html", "text/html"),
        ("d.png", "image/png"),
    ] {
        let answer = head(name);
        assert!(answer.contains(&format!("Content-Type: {mime}\r\n")), "{name}: {answer}");
    }
    // A browser's own request for an icon, without the token: 404, and no log line.
    let status = |args: &[&str]| {
        let out = curl(&[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status(&[&format!("{origin}/favicon.ico")]), "404");
    // A connection opened ahead and never used: no log line either.
    drop(std::net::TcpStream::connect(origin.trim_start_matches("http://")).expect("connect"));
    // A wrong token in the URL is a 401, and is not logged in clear either.
    assert_eq!(status(&[&format!("{origin}/t/{TOKEN}x/site/a.txt")]), "401");
    // Asked for HTML with the header, the links need no token in their path.
    let html = curl(&["-f", "-H", &auth, "-H", "Accept: text/html", &format!("{origin}/")]);
    let html = String::from_utf8_lossy(&html.stdout).into_owned();
    assert!(html.contains("<a href=\"/site/a.txt\" download>site/a.txt</a>"), "{html}");
    // curl's and wget's `*/*` get the plain list.
    let plain = curl(&["-f", "-H", &auth, &format!("{origin}/")]);
    assert!(String::from_utf8_lossy(&plain.stdout).starts_with("/site/a.txt\n"), "{plain:?}");
    server.wait_line_within("GET / 200", STARTUP);
    server.wait_line_within("GET / 200", STARTUP);
    let done = server.kill();
    assert!(!done.stderr.contains("favicon"), "{}", done.stderr);
    assert!(!done.stderr.contains("ignored a request"), "{}", done.stderr);
    assert!(!done.stderr.contains(&format!("{TOKEN}x")), "{}", done.stderr);
    assert!(done.stderr.contains("GET /t/…/site/a.txt 401"), "{}", done.stderr);
}
