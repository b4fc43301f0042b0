#!/usr/bin/env bash
# Interleaved rounds (issue #15): zcp recv with and without --fsync, and a per-file fsync
# writer (python: write a temporary name, fsync, rename; fsync the directories) with and
# without its fsyncs, into WORKDIR (put it on the disk to measure). Wall time per run; the
# page cache is synced before each run. MODE tree: 10,000 files of 4 KiB; big: one 1 GiB file.
# usage: scripts/bench-fsync.sh ZCP ROUNDS WORKDIR tree|big
set -euo pipefail
zcp=$1; rounds=$2; work=$3; mode=$4
export ZCP_TOKEN=bench-token-0123456789
mkdir -p "$work"
src="$work/src"
if [ ! -d "$src" ]; then
  mkdir -p "$src"
  if [ "$mode" = tree ]; then
    python3 - "$src" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(10000):
    d = os.path.join(root, "t", "d%02d" % (i // 500))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
  else
    head -c 1G /dev/urandom > "$src/big.bin"
  fi
fi
one() { # $1 = label, rest = recv args
  local label=$1; shift
  local dst="$work/dst"; rm -rf "$dst"; mkdir "$dst"; sync
  local log="$work/recv.log"; : > "$log"
  "$zcp" recv --listen 127.0.0.1:0 --output "$dst" --quiet "$@" 2> "$log" &
  local rpid=$!
  until grep -q '^listening on ' "$log"; do sleep 0.02; done
  local port; port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
  local t0; t0=$(date +%s.%N)
  "$zcp" send "$src"/* "127.0.0.1:$port" --quiet
  wait "$rpid"
  local t1; t1=$(date +%s.%N)
  echo "$label $(echo "$t1 - $t0" | bc)"
}
perfile() { # $1 = 1 to fsync; per-file fsync: write each file to a temp name, fsync it, rename it, fsync dirs
  local dst="$work/dst"; rm -rf "$dst"; mkdir "$dst"; sync
  local t0; t0=$(date +%s.%N)
  python3 - "$src" "$dst" "$1" <<'PY'
import os, sys
src, dst, sync = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
dirs = set()
for root, ds, fs in os.walk(src):
    out = os.path.join(dst, os.path.relpath(root, src))
    os.makedirs(out, exist_ok=True)
    for name in fs:
        tmp = os.path.join(out, "." + name + ".part")
        with open(os.path.join(root, name), "rb") as i, open(tmp, "wb") as o:
            while True:
                b = i.read(1 << 20)
                if not b: break
                o.write(b)
            o.flush()
            if sync: os.fsync(o.fileno())
        os.rename(tmp, os.path.join(out, name))
    dirs.add(out)
for d in dirs if sync else []:
    fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)
PY
  local t1; t1=$(date +%s.%N)
  echo "python-perfile-fsync=$1 $(echo "$t1 - $t0" | bc)"
}
for r in $(seq "$rounds"); do
  one plain
  one fsync --fsync
  perfile 0
  perfile 1
done
