
use builtin;
use str;

set edit:completion:arg-completer[zcp] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'zcp'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'zcp'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand send 'Send files and directories to a `zcp recv` (or wait for one with --listen)'
            cand recv 'Receive files: listen for a sender (or fetch with --connect) and write what it sends'
            cand bench 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine'
            cand doctor 'Tell which data path zcp will take for these paths, and why'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Print the man page (roff) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'zcp;send'= {
            cand --to 'Send to this receiver too: repeat for several at once (then every positional is a path)'
            cand --listen 'Wait for a receiver to connect here (`zcp recv --connect`) instead of connecting to one; with --http, where to serve [default: 0.0.0.0:7878]'
            cand --name 'Name to offer for standard input (`-`)'
            cand --exclude 'Leave out what matches GLOB below the named directories (gitignore''s rules; repeatable)'
            cand --include 'Send what matches GLOB although an exclude matched it (repeatable; see --exclude)'
            cand --exclude-from 'Read exclude patterns from FILE, one a line, in .gitignore syntax (repeatable)'
            cand --method 'Which data path moves the bytes'
            cand --buffer-size 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)'
            cand --limit-rate 'Cap the sending rate, in bytes per second (e.g. 100M); stays zero-copy'
            cand --token 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)'
            cand --token-file 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)'
            cand --connect-timeout 'Give up connecting after SECS seconds per attempt [default: 10]'
            cand --retry 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)'
            cand --idle-timeout 'Abort when no bytes move for SECS seconds (0: never)'
            cand --events-fd 'Write the events to this open file descriptor instead of stdout (implies --events)'
            cand --events-interval 'Seconds between progress events while bytes move'
            cand --http 'Serve the paths over HTTP/1.1 to curl, wget or a browser (GET, HEAD, Range), with the token as `Authorization: Bearer TOKEN`; ends once every file was fetched whole'
            cand --keep-open 'With --http: keep serving until Ctrl-C, not only until every file was fetched once'
            cand -L 'Send what symlinks inside directories point to (by default they are skipped with a warning)'
            cand --follow-symlinks 'Send what symlinks inside directories point to (by default they are skipped with a warning)'
            cand --no-resume 'Send every file whole, even where the receiver holds a matching partial copy'
            cand --no-sparse 'Send holes of sparse files as zeros, as if the file were dense (it lands fully allocated)'
            cand --no-auth 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)'
            cand --raw 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication'
            cand --encrypt 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)'
            cand --json 'Print the report as one JSON object on stdout'
            cand -q 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --quiet 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --events 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'zcp;recv'= {
            cand --listen 'Address to listen on; port 0 picks a free port. The first line on stderr is always `listening on IP:PORT`, printed before the first connection is accepted'
            cand --connect 'Fetch from a sender that waits with `zcp send --listen` instead of listening'
            cand -o 'Where to write: a directory (entries keep their relative paths; a missing one is created when the sender offers a directory or several entries, or PATH ends in `/`), the path of the one file to write, or `-` for standard output'
            cand --output 'Where to write: a directory (entries keep their relative paths; a missing one is created when the sender offers a directory or several entries, or PATH ends in `/`), the path of the one file to write, or `-` for standard output'
            cand --method 'Which data path writes the bytes'
            cand --buffer-size 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)'
            cand --resume-wait 'Without --keep-open: how long to wait for a sender cut off mid-transfer to come back and resume (0: exit at once)'
            cand --max-conns 'With --keep-open: sessions served at once; the next sender is told "busy" (with --http: requests whose head arrived, at once; the next gets 503)'
            cand --max-size 'Refuse a session whose files add up to more than SIZE (e.g. 10G)'
            cand --token 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)'
            cand --token-file 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)'
            cand --connect-timeout 'Give up connecting after SECS seconds per attempt [default: 10]'
            cand --retry 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)'
            cand --idle-timeout 'Abort when no bytes move for SECS seconds (0: never)'
            cand --events-fd 'Write the events to this open file descriptor instead of stdout (implies --events)'
            cand --events-interval 'Seconds between progress events while bytes move'
            cand --http 'Accept uploads over HTTP/1.1 (`curl -T FILE http://HOST:PORT/`, PUT) with the token as `Authorization: Bearer TOKEN`; ends after one upload unless --keep-open'
            cand --force 'Replace files that already exist (without it, an existing file is refused)'
            cand --skip-existing 'Skip files whose size and mtime already match'
            cand --checksum 'Skip files whose size and content (xxh3-128) already match, whatever their mtime (as rsync --checksum does)'
            cand --mirror 'Remove what the sender no longer has: entries in the offered directories that the offer does not hold, once every offered entry landed'
            cand --fsync 'Make every file durable before its name appears: one sync for the whole session, then the renames, then the directories that gained names are synced'
            cand --keep-open 'Keep serving after the first session, several at once'
            cand --no-auth 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)'
            cand --raw 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication'
            cand --encrypt 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)'
            cand --json 'Print the report as one JSON object on stdout'
            cand -q 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --quiet 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --events 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'zcp;bench'= {
            cand --size 'Size of the temporary test file of random bytes, e.g. 256M, 1G, 4G [default: 1G]; with --files, the size of each file [default: 4K]'
            cand --files 'Send a tree of N files of --size each (500 to a directory) instead of one file; with --compare, against tar | nc'
            cand --rounds 'Rounds; each round runs every pair once, interleaved (A B C A B C …)'
            cand --dir 'Directory for the test file and the received copies (default: the system temp dir); repeat it to measure on several file systems in one run, rounds interleaved'
            cand --file 'Send this existing file instead of a temporary one (it is never modified)'
            cand --methods 'Sender:receiver method pairs to compare, comma-separated [default: sendfile:splice,splice:splice,buffered:buffered; with --files: auto:auto,sendfile:splice,buffered:buffered]'
            cand --against 'Also run the same pairs with another zcp binary (e.g. an older build), as rows named `PAIR @ LABEL`, interleaved with the others'
            cand --buffer-size 'Buffer of the buffered path, e.g. 32K, 1M'
            cand --star 'Send one file to N receivers three ways: N `zcp send` one after another, N at once, and one star (`--to` N times) [--size default: 256M]'
            cand --export-markdown 'Also write the results as a Markdown table to FILE'
            cand --export-svg 'Also draw the results as one SVG picture to FILE (for slides, READMEs, CI artifacts)'
            cand --from-json 'Measure nothing: read a report saved from `zcp bench --json` and print, export or draw it'
            cand --events-fd 'Write the events to this open file descriptor instead of stdout (implies --events)'
            cand --events-interval 'Seconds between progress events while bytes move'
            cand --compare 'Also run netcat, socat -b 131072, iperf3 (memory to memory) and curl when installed, and zcp with --raw at both ends (no checksum: its paths'' ceiling); with --files, tar | nc'
            cand --fsync 'Compare `zcp recv` with `zcp recv --fsync` (auto:auto) on the test file, or with --files on a tree'
            cand --sparse 'Send a sparse file (--size of data in 8 extents over 64 times that [default: 64M]), a dense file of --size, and the sparse one with --no-sparse; report allocated blocks'
            cand --encrypt 'Also run every pair with --encrypt (rows `PAIR --encrypt`); with --compare, also socat OPENSSL: with the same TLS 1.3 suite'
            cand --json 'Print the report as one JSON object on stdout'
            cand -q 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --quiet 'No progress bar and no summary line on stderr (errors are still printed)'
            cand --events 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'zcp;doctor'= {
            cand --json 'Print the findings as one JSON object on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'zcp;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'zcp;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'zcp;help'= {
            cand send 'Send files and directories to a `zcp recv` (or wait for one with --listen)'
            cand recv 'Receive files: listen for a sender (or fetch with --connect) and write what it sends'
            cand bench 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine'
            cand doctor 'Tell which data path zcp will take for these paths, and why'
            cand completions 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
            cand man 'Print the man page (roff) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'zcp;help;send'= {
        }
        &'zcp;help;recv'= {
        }
        &'zcp;help;bench'= {
        }
        &'zcp;help;doctor'= {
        }
        &'zcp;help;completions'= {
        }
        &'zcp;help;man'= {
        }
        &'zcp;help;help'= {
        }
    ]
    $completions[$command]
}
