#!/usr/bin/env bash
# Interleaved rounds (issue #15): a 4 GiB sparse file (64 MiB of data in 8 extents), a dense
# 64 MiB file, and the sparse file again with --no-sparse, each sent over loopback into
# WORKDIR; wall time from starting the sender until both ends exited.
# Prints name, seconds, allocated 512-byte blocks of the source and of the copy.
# usage: scripts/bench-sparse.sh ZCP ROUNDS WORKDIR
set -euo pipefail
zcp=$1; rounds=$2; work=$3
export ZCP_TOKEN=bench-token-0123456789
mkdir -p "$work"
if [ ! -f "$work/sparse.img" ]; then
  python3 - "$work" <<'PY'
import os, sys
w = sys.argv[1]
with open(os.path.join(w, "sparse.img"), "wb") as f:
    f.truncate(4 << 30)
    for i in range(8):
        f.seek(i * (512 << 20))
        f.write(os.urandom(8 << 20))
with open(os.path.join(w, "dense.img"), "wb") as f:
    f.write(os.urandom(64 << 20))
PY
fi
one() {
  local name=$1; shift
  local dst="$work/dst" log="$work/recv.log"
  rm -rf "$dst"; mkdir "$dst"; : > "$log"
  "$zcp" recv --listen 127.0.0.1:0 --output "$dst" --quiet 2> "$log" &
  local rpid=$!
  until grep -q '^listening on ' "$log"; do sleep 0.02; done
  local port; port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
  local t0; t0=$(date +%s.%N)
  "$zcp" send "$work/$name" "127.0.0.1:$port" --quiet "$@"
  wait "$rpid"
  local t1; t1=$(date +%s.%N)
  echo "$name${1:-} $(echo "$t1 - $t0" | bc) $(stat -c %b "$work/$name") $(stat -c %b "$dst/$name")"
}
for r in $(seq "$rounds"); do one sparse.img; one dense.img; one sparse.img --no-sparse; done
