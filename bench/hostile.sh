#!/usr/bin/env bash
# Hostile load: idle connections, stalled anonymous bodies and stalled pushes against one
# `forge serve`, while a normal client clones and pushes (bench/hostile.py does the work).
#
#   bench/hostile.sh [--reps N] [--loads JSON] SOURCE_GIT_DIR [-- SERVE_OPTIONS...]
#
# SOURCE_GIT_DIR is imported as bench/app; an agent `mallory` gets a token that may only
# write mallory/scratch. Reports, per load and N: the normal client's clone and 1-commit
# push (medians of N reps), the server's peak resident memory and peak open descriptors.
# Loopback only (hostile connections come from 127.0.0.2 and up); bounded in count and
# time. Results: bench/results/hostile.tsv and stdout.
set -euo pipefail
REPS=3
LOADS=
args=()
serve=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --loads) LOADS=$2; shift 2 ;;
    --) shift; serve=("$@"); break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,11p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
FORGE=$ROOT/target/release/forge
WORK=${BENCH_WORK:-/tmp/forge-hostile}
OUT=$HERE/results
PORT=${FORGE_PORT:-18095}
mkdir -p "$OUT"
cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
rm -rf "$WORK"
mkdir -p "$WORK"
D=$WORK/data
"$FORGE" --data "$D" import bench/app "$SRC" >/dev/null
"$FORGE" --data "$D" repack bench/app >/dev/null
"$FORGE" --data "$D" repo config bench/app public true >/dev/null
# Started once so that the admin identity exists, then for real.
"$FORGE" --data "$D" serve --listen "127.0.0.1:$PORT" "${serve[@]}" 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
token() { "$FORGE" --data "$D" --json token issue "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
"$FORGE" --data "$D" identity add mallory --kind agent --owner admin >/dev/null
"$FORGE" --data "$D" repo create mallory/scratch >/dev/null
TOKEN=$(token --identity admin --repo '*' --ops admin --ttl 1d)
AGENT=$(token --identity mallory --repo mallory/scratch --ops write --ttl 1d)
git clone -q "http://x:$TOKEN@127.0.0.1:$PORT/bench/app.git" "$WORK/work"
git -C "$WORK/work" config user.name bench
git -C "$WORK/work" config user.email bench@example.com
echo "load" > "$WORK/work/load.txt"
git -C "$WORK/work" add load.txt
git -C "$WORK/work" commit -qm load
{
  printf '# %s, %s, forge serve %s\n' "$(date -u +%F)" "$SRC" "${serve[*]:-(defaults)}"
  python3 "$HERE/hostile.py" "127.0.0.1:$PORT" "$PID" "$TOKEN" "$AGENT" "$WORK" "$REPS" ${LOADS:+"$LOADS"}
} | tee -a "$OUT/hostile.tsv"
