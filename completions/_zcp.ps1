
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'zcp' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'zcp'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'zcp' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files and directories to a `zcp recv` (or wait for one with --listen)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Receive files: listen for a sender (or fetch with --connect) and write what it sends')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Tell which data path zcp will take for these paths, and why')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'zcp;send' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Send to this receiver too: repeat for several at once (then every positional is a path)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Wait for a receiver to connect here (`zcp recv --connect`) instead of connecting to one; with --http, where to serve [default: 0.0.0.0:7878]')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Name to offer for standard input (`-`)')
            [CompletionResult]::new('--exclude', '--exclude', [CompletionResultType]::ParameterName, 'Leave out what matches GLOB below the named directories (gitignore''s rules; repeatable)')
            [CompletionResult]::new('--include', '--include', [CompletionResultType]::ParameterName, 'Send what matches GLOB although an exclude matched it (repeatable; see --exclude)')
            [CompletionResult]::new('--exclude-from', '--exclude-from', [CompletionResultType]::ParameterName, 'Read exclude patterns from FILE, one a line, in .gitignore syntax (repeatable)')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'Which data path moves the bytes')
            [CompletionResult]::new('--buffer-size', '--buffer-size', [CompletionResultType]::ParameterName, 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)')
            [CompletionResult]::new('--limit-rate', '--limit-rate', [CompletionResultType]::ParameterName, 'Cap the sending rate, in bytes per second (e.g. 100M); stays zero-copy')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after SECS seconds per attempt [default: 10]')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Abort when no bytes move for SECS seconds (0: never)')
            [CompletionResult]::new('--events-fd', '--events-fd', [CompletionResultType]::ParameterName, 'Write the events to this open file descriptor instead of stdout (implies --events)')
            [CompletionResult]::new('--events-interval', '--events-interval', [CompletionResultType]::ParameterName, 'Seconds between progress events while bytes move')
            [CompletionResult]::new('--http', '--http', [CompletionResultType]::ParameterName, 'Serve the paths over HTTP/1.1 to curl, wget or a browser (GET, HEAD, Range), with the token as `Authorization: Bearer TOKEN`; ends once every file was fetched whole')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'With --http: keep serving until Ctrl-C, not only until every file was fetched once')
            [CompletionResult]::new('-L', '-L ', [CompletionResultType]::ParameterName, 'Send what symlinks inside directories point to (by default they are skipped with a warning)')
            [CompletionResult]::new('--follow-symlinks', '--follow-symlinks', [CompletionResultType]::ParameterName, 'Send what symlinks inside directories point to (by default they are skipped with a warning)')
            [CompletionResult]::new('--no-resume', '--no-resume', [CompletionResultType]::ParameterName, 'Send every file whole, even where the receiver holds a matching partial copy')
            [CompletionResult]::new('--no-sparse', '--no-sparse', [CompletionResultType]::ParameterName, 'Send holes of sparse files as zeros, as if the file were dense (it lands fully allocated)')
            [CompletionResult]::new('--no-auth', '--no-auth', [CompletionResultType]::ParameterName, 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Print events as they happen, one JSON object per line (NDJSON), on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'zcp;recv' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on; port 0 picks a free port. The first line on stderr is always `listening on IP:PORT`, printed before the first connection is accepted')
            [CompletionResult]::new('--connect', '--connect', [CompletionResultType]::ParameterName, 'Fetch from a sender that waits with `zcp send --listen` instead of listening')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Where to write: a directory (entries keep their relative paths; a missing one is created when the sender offers a directory or several entries, or PATH ends in `/`), the path of the one file to write, or `-` for standard output')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Where to write: a directory (entries keep their relative paths; a missing one is created when the sender offers a directory or several entries, or PATH ends in `/`), the path of the one file to write, or `-` for standard output')
            [CompletionResult]::new('--method', '--method', [CompletionResultType]::ParameterName, 'Which data path writes the bytes')
            [CompletionResult]::new('--buffer-size', '--buffer-size', [CompletionResultType]::ParameterName, 'Buffer of the buffered path, e.g. 32K, 1M (at most 16M)')
            [CompletionResult]::new('--resume-wait', '--resume-wait', [CompletionResultType]::ParameterName, 'Without --keep-open: how long to wait for a sender cut off mid-transfer to come back and resume (0: exit at once)')
            [CompletionResult]::new('--max-conns', '--max-conns', [CompletionResultType]::ParameterName, 'With --keep-open: sessions served at once; the next sender is told "busy" (with --http: requests whose head arrived, at once; the next gets 503)')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Refuse a session whose files add up to more than SIZE (e.g. 10G)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The session token (prefer ZCP_TOKEN or --token-file: command lines show up in `ps`)')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the token from the first line of FILE (wins over --token and ZCP_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Give up connecting after SECS seconds per attempt [default: 10]')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'Retry a refused or timed-out connection N times, a second apart (for CI jobs where the other end starts a moment later)')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Abort when no bytes move for SECS seconds (0: never)')
            [CompletionResult]::new('--events-fd', '--events-fd', [CompletionResultType]::ParameterName, 'Write the events to this open file descriptor instead of stdout (implies --events)')
            [CompletionResult]::new('--events-interval', '--events-interval', [CompletionResultType]::ParameterName, 'Seconds between progress events while bytes move')
            [CompletionResult]::new('--http', '--http', [CompletionResultType]::ParameterName, 'Accept uploads over HTTP/1.1 (`curl -T FILE http://HOST:PORT/`, PUT) with the token as `Authorization: Bearer TOKEN`; ends after one upload unless --keep-open')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace files that already exist (without it, an existing file is refused)')
            [CompletionResult]::new('--skip-existing', '--skip-existing', [CompletionResultType]::ParameterName, 'Skip files whose size and mtime already match')
            [CompletionResult]::new('--checksum', '--checksum', [CompletionResultType]::ParameterName, 'Skip files whose size and content (xxh3-128) already match, whatever their mtime (as rsync --checksum does)')
            [CompletionResult]::new('--mirror', '--mirror', [CompletionResultType]::ParameterName, 'Remove what the sender no longer has: entries in the offered directories that the offer does not hold, once every offered entry landed')
            [CompletionResult]::new('--fsync', '--fsync', [CompletionResultType]::ParameterName, 'Make every file durable before its name appears: one sync for the whole session, then the renames, then the directories that gained names are synced')
            [CompletionResult]::new('--keep-open', '--keep-open', [CompletionResultType]::ParameterName, 'Keep serving after the first session, several at once')
            [CompletionResult]::new('--no-auth', '--no-auth', [CompletionResultType]::ParameterName, 'Turn authentication off on this end: anyone who can connect may write (wins over every token option)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Plain bytes, no protocol: interoperate with `nc`. No checksum, no authentication')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Encrypt the connection with TLS 1.3, keyed to the token; both ends must say it (kernel TLS keeps sendfile and splice where the kernel has it)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Print events as they happen, one JSON object per line (NDJSON), on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'zcp;bench' {
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Size of the temporary test file of random bytes, e.g. 256M, 1G, 4G [default: 1G]; with --files, the size of each file [default: 4K]')
            [CompletionResult]::new('--files', '--files', [CompletionResultType]::ParameterName, 'Send a tree of N files of --size each (500 to a directory) instead of one file; with --compare, against tar | nc')
            [CompletionResult]::new('--rounds', '--rounds', [CompletionResultType]::ParameterName, 'Rounds; each round runs every pair once, interleaved (A B C A B C …)')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Directory for the test file and the received copies (default: the system temp dir); repeat it to measure on several file systems in one run, rounds interleaved')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Send this existing file instead of a temporary one (it is never modified)')
            [CompletionResult]::new('--methods', '--methods', [CompletionResultType]::ParameterName, 'Sender:receiver method pairs to compare, comma-separated [default: sendfile:splice,splice:splice,buffered:buffered; with --files: auto:auto,sendfile:splice,buffered:buffered]')
            [CompletionResult]::new('--against', '--against', [CompletionResultType]::ParameterName, 'Also run the same pairs with another zcp binary (e.g. an older build), as rows named `PAIR @ LABEL`, interleaved with the others')
            [CompletionResult]::new('--buffer-size', '--buffer-size', [CompletionResultType]::ParameterName, 'Buffer of the buffered path, e.g. 32K, 1M')
            [CompletionResult]::new('--star', '--star', [CompletionResultType]::ParameterName, 'Send one file to N receivers three ways: N `zcp send` one after another, N at once, and one star (`--to` N times) [--size default: 256M]')
            [CompletionResult]::new('--export-markdown', '--export-markdown', [CompletionResultType]::ParameterName, 'Also write the results as a Markdown table to FILE')
            [CompletionResult]::new('--export-svg', '--export-svg', [CompletionResultType]::ParameterName, 'Also draw the results as one SVG picture to FILE (for slides, READMEs, CI artifacts)')
            [CompletionResult]::new('--from-json', '--from-json', [CompletionResultType]::ParameterName, 'Measure nothing: read a report saved from `zcp bench --json` and print, export or draw it')
            [CompletionResult]::new('--events-fd', '--events-fd', [CompletionResultType]::ParameterName, 'Write the events to this open file descriptor instead of stdout (implies --events)')
            [CompletionResult]::new('--events-interval', '--events-interval', [CompletionResultType]::ParameterName, 'Seconds between progress events while bytes move')
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'Also run netcat, socat -b 131072, iperf3 (memory to memory) and curl when installed, and zcp with --raw at both ends (no checksum: its paths'' ceiling); with --files, tar | nc')
            [CompletionResult]::new('--fsync', '--fsync', [CompletionResultType]::ParameterName, 'Compare `zcp recv` with `zcp recv --fsync` (auto:auto) on the test file, or with --files on a tree')
            [CompletionResult]::new('--sparse', '--sparse', [CompletionResultType]::ParameterName, 'Send a sparse file (--size of data in 8 extents over 64 times that [default: 64M]), a dense file of --size, and the sparse one with --no-sparse; report allocated blocks')
            [CompletionResult]::new('--encrypt', '--encrypt', [CompletionResultType]::ParameterName, 'Also run every pair with --encrypt (rows `PAIR --encrypt`); with --compare, also socat OPENSSL: with the same TLS 1.3 suite')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as one JSON object on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar and no summary line on stderr (errors are still printed)')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Print events as they happen, one JSON object per line (NDJSON), on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'zcp;doctor' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the findings as one JSON object on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'zcp;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'zcp;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'zcp;help' {
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send files and directories to a `zcp recv` (or wait for one with --listen)')
            [CompletionResult]::new('recv', 'recv', [CompletionResultType]::ParameterValue, 'Receive files: listen for a sender (or fetch with --connect) and write what it sends')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure zero-copy against buffered (and netcat, socat, iperf3) on this machine')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Tell which data path zcp will take for these paths, and why')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'zcp;help;send' {
            break
        }
        'zcp;help;recv' {
            break
        }
        'zcp;help;bench' {
            break
        }
        'zcp;help;doctor' {
            break
        }
        'zcp;help;completions' {
            break
        }
        'zcp;help;man' {
            break
        }
        'zcp;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
