# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_zcp_global_optspecs
    string join \n h/help V/version
end

function __fish_zcp_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_zcp_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_zcp_using_subcommand
    set -l cmd (__fish_zcp_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c zcp -n "__fish_zcp_needs_command" -s h -l help -d 'Print help'
complete -c zcp -n "__fish_zcp_needs_command" -s V -l version -d 'Print version'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "send" -d 'Send files and directories to a `zcp recv` (or wait for one with --listen)'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "recv" -d 'Receive files: listen for a sender (or fetch with --connect) and write what it sends'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "bench" -d 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "doctor" -d 'Tell which data path zcp will take for these paths, and why'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "man" -d 'Print the man page (roff) on stdout'
complete -c zcp -n "__fish_zcp_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l to -d 'Send to this receiver too: repeat for several at once (then every positional is a path)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l listen -d 'Wait for a receiver to connect here (`zcp recv --connect`) instead of connecting to one; with --http, where to serve [default: 0.0.0.0:7878]' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l name -d 'Name to offer for standard input (`-`)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l exclude -d 'Leave out what matches GLOB below the named directories (gitignore\'s rules; repeatable)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l include -d 'Send what matches GLOB although an exclude matched it (repeatable; see --exclude)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l exclude-from -d 'Read exclude patterns from FILE, one a line, in .gitignore syntax (repeatable)' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand send" -l method -d 'Which data path moves the bytes' -r -f -a "auto\t'sendfile, falling back to splice, then buffered, saying why'
sendfile\t'sendfile(2) only: page cache to socket'
splice\t'splice(2) through a pipe only'
buffered\t'an explicit read/write loop through a buffer of --buffer-size'"
complete -c zcp -n "__fish_zcp_using_subcommand send" -l buffer-size -d 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l limit-rate -d 'Cap the sending rate, in bytes per second (e.g. 100M); stays zero-copy' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l token -d 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l token-file -d 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand send" -l connect-timeout -d 'Give up connecting after SECS seconds per attempt [default: 10]' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l retry -d 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l idle-timeout -d 'Abort when no bytes move for SECS seconds (0: never)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l events-fd -d 'Write the events to this open file descriptor instead of stdout (implies --events)' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l events-interval -d 'Seconds between progress events while bytes move' -r
complete -c zcp -n "__fish_zcp_using_subcommand send" -l http -d 'Serve the paths over HTTP/1.1 to curl, wget or a browser (GET, HEAD, Range), with the token as `Authorization: Bearer TOKEN`; ends once every file was fetched whole'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l keep-open -d 'With --http: keep serving until Ctrl-C, not only until every file was fetched once'
complete -c zcp -n "__fish_zcp_using_subcommand send" -s L -l follow-symlinks -d 'Send what symlinks inside directories point to (by default they are skipped with a warning)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l no-resume -d 'Send every file whole, even where the receiver holds a matching partial copy'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l no-sparse -d 'Send holes of sparse files as zeros, as if the file were dense (it lands fully allocated)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l no-auth -d 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l raw -d 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l encrypt -d 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l json -d 'Print the report as one JSON object on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand send" -s q -l quiet -d 'No progress bar and no summary line on stderr (errors are still printed)'
complete -c zcp -n "__fish_zcp_using_subcommand send" -l events -d 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l listen -d 'Address to listen on; port 0 picks a free port. The first line on stderr is always `listening on IP:PORT`, printed before the first connection is accepted' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l connect -d 'Fetch from a sender that waits with `zcp send --listen` instead of listening' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -s o -l output -d 'Where to write: a directory (entries keep their relative paths; a missing one is created when the sender offers a directory or several entries, or PATH ends in `/`), the path of the one file to write, or `-` for standard output' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l method -d 'Which data path writes the bytes' -r -f -a "auto\t'splice, falling back to buffered, saying why'
splice\t'splice(2) socket to pipe to file only'
buffered\t'an explicit read/write loop through a buffer of --buffer-size'"
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l buffer-size -d 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l resume-wait -d 'Without --keep-open: how long to wait for a sender cut off mid-transfer to come back and resume (0: exit at once)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l max-conns -d 'With --keep-open: sessions served at once; the next sender is told "busy" (with --http: requests whose head arrived, at once; the next gets 503)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l max-size -d 'Refuse a session whose files add up to more than SIZE (e.g. 10G)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l token -d 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l token-file -d 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l connect-timeout -d 'Give up connecting after SECS seconds per attempt [default: 10]' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l retry -d 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l idle-timeout -d 'Abort when no bytes move for SECS seconds (0: never)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l events-fd -d 'Write the events to this open file descriptor instead of stdout (implies --events)' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l events-interval -d 'Seconds between progress events while bytes move' -r
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l http -d 'Accept uploads over HTTP/1.1 (`curl -T FILE http://HOST:PORT/`, PUT) with the token as `Authorization: Bearer TOKEN`; ends after one upload unless --keep-open'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l force -d 'Replace files that already exist (without it, an existing file is refused)'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l skip-existing -d 'Skip files whose size and mtime already match'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l checksum -d 'Skip files whose size and content (xxh3-128) already match, whatever their mtime (as rsync --checksum does)'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l mirror -d 'Remove what the sender no longer has: entries in the offered directories that the offer does not hold, once every offered entry landed'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l fsync -d 'Make every file durable before its name appears: one sync for the whole session, then the renames, then the directories that gained names are synced'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l keep-open -d 'Keep serving after the first session, several at once'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l no-auth -d 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l raw -d 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l encrypt -d 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l json -d 'Print the report as one JSON object on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -s q -l quiet -d 'No progress bar and no summary line on stderr (errors are still printed)'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -l events -d 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand recv" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l size -d 'Size of the temporary test file of random bytes, e.g. 256M, 1G, 4G [default: 1G]; with --files, the size of each file [default: 4K]' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l files -d 'Send a tree of N files of --size each (500 to a directory) instead of one file; with --compare, against tar | nc' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l rounds -d 'Rounds; each round runs every pair once, interleaved (A B C A B C …)' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l dir -d 'Directory for the test file and the received copies (default: the system temp dir); repeat it to measure on several file systems in one run, rounds interleaved' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l file -d 'Send this existing file instead of a temporary one (it is never modified)' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l methods -d 'Sender:receiver method pairs to compare, comma-separated [default: sendfile:splice,splice:splice,buffered:buffered; with --files: auto:auto,sendfile:splice,buffered:buffered]' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l against -d 'Also run the same pairs with another zcp binary (e.g. an older build), as rows named `PAIR @ LABEL`, interleaved with the others' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l buffer-size -d 'Buffer of the buffered path, e.g. 32K, 1M' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l star -d 'Send one file to N receivers three ways: N `zcp send` one after another, N at once, and one star (`--to` N times) [--size default: 256M]' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l export-markdown -d 'Also write the results as a Markdown table to FILE' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l export-svg -d 'Also draw the results as one SVG picture to FILE (for slides, READMEs, CI artifacts)' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l from-json -d 'Measure nothing: read a report saved from `zcp bench --json` and print, export or draw it' -r -F
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l events-fd -d 'Write the events to this open file descriptor instead of stdout (implies --events)' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l events-interval -d 'Seconds between progress events while bytes move' -r
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l compare -d 'Also run netcat, socat -b 131072, iperf3 (memory to memory) and curl when installed, and zcp with --raw at both ends (no checksum: its paths\' ceiling); with --files, tar | nc'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l fsync -d 'Compare `zcp recv` with `zcp recv --fsync` (auto:auto) on the test file, or with --files on a tree'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l sparse -d 'Send a sparse file (--size of data in 8 extents over 64 times that [default: 64M]), a dense file of --size, and the sparse one with --no-sparse; report allocated blocks'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l encrypt -d 'Also run every pair with --encrypt (rows `PAIR --encrypt`); with --compare, also socat OPENSSL: with the same TLS 1.3 suite'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l json -d 'Print the report as one JSON object on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -s q -l quiet -d 'No progress bar and no summary line on stderr (errors are still printed)'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -l events -d 'Print events as they happen, one JSON object per line (NDJSON), on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c zcp -n "__fish_zcp_using_subcommand doctor" -l json -d 'Print the findings as one JSON object on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c zcp -n "__fish_zcp_using_subcommand completions" -s h -l help -d 'Print help'
complete -c zcp -n "__fish_zcp_using_subcommand man" -s h -l help -d 'Print help'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "send" -d 'Send files and directories to a `zcp recv` (or wait for one with --listen)'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "recv" -d 'Receive files: listen for a sender (or fetch with --connect) and write what it sends'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "bench" -d 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "doctor" -d 'Tell which data path zcp will take for these paths, and why'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "man" -d 'Print the man page (roff) on stdout'
complete -c zcp -n "__fish_zcp_using_subcommand help; and not __fish_seen_subcommand_from send recv bench doctor completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
