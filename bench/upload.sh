#!/usr/bin/env bash
# Clone and fetch: `forge serve` against `git http-backend` (lighttpd) on the same repository,
# measured by the peer harness (../shared/bench/run.sh) in one run.
#
#   bench/upload.sh [--reps N] [--ops LIST] [--no-repack] SOURCE_GIT_DIR [NAME]
#
# SOURCE_GIT_DIR is copied into git's project root as NAME.git and imported into a fresh
# forge data directory as bench/NAME; `forge repack` builds its clone pack unless
# --no-repack. Results: bench/results/results.tsv (run.sh's rows), bench/results/pack-bytes.tsv
# (exact pack bytes of a full clone and an incremental fetch) and a side-by-side table on stdout.
# Needs lighttpd (apt-get install lighttpd), python3 and /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
REPS=5
OPS=clone-full,clone-blobless,clone-depth1,fetch-incr,ls-remote,clone-concurrent
REPACK=1
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --no-repack) REPACK=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,12p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
NAME=${args[1]:-$(basename "${SRC%/.git}" .git)}
WORK=${BENCH_WORK:-/tmp/forge-bench}
GIT_PORT=${GIT_PORT:-18080}
FORGE_PORT=${FORGE_PORT:-18090}
OUT=$HERE/results
mkdir -p "$OUT"

cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
FORGE=$ROOT/target/release/forge
rm -rf "$WORK"
mkdir -p "$WORK"
export GITBENCH_ROOT=$WORK/gitroot
"$SHARED/repo-admin.sh" import "$SRC" "$NAME.git" >&2
"$FORGE" --data "$WORK/data" import "bench/$NAME" "$GITBENCH_ROOT/$NAME.git" >&2
if [[ $REPACK == 1 ]]; then
  "$FORGE" --data "$WORK/data" repack "bench/$NAME" >&2
fi

# Exact bytes of the pack a server sends (GIT_TRACE_PACKFILE dumps it): a full clone, and an
# incremental fetch of BRANCH from 200 first-parent commits back (as run.sh's fetch-incr).
pack_bytes() {  # LABEL URL
  local label=$1 url=$2 w=$WORK/packbytes branch old
  rm -rf "$w"; mkdir -p "$w"
  GIT_TRACE_PACKFILE=$w/full.pack git clone -q --bare "$url" "$w/full"
  branch=$(git -C "$w/full" symbolic-ref --short HEAD)
  old=$(git -C "$w/full" rev-parse "$branch~200")
  git init -q --bare "$w/seed"
  git -C "$w/seed" fetch -q --no-tags "file://$w/full" "+$old:refs/heads/$branch"
  GIT_TRACE_PACKFILE=$w/incr.pack git -C "$w/seed" fetch -q "$url" "+refs/heads/$branch:refs/heads/$branch"
  printf '%s\t%s\t%s\t%s\n' "$label" "$NAME" "$(stat -c %s "$w/full.pack")" "$(stat -c %s "$w/incr.pack")" \
    | tee -a "$OUT/pack-bytes.tsv"
  rm -rf "$w"
}
[[ -s $OUT/pack-bytes.tsv ]] || printf 'server\trepo\tfull_clone_bytes\tincremental_fetch_bytes\n' >"$OUT/pack-bytes.tsv"

FORGE_PID=
cleanup() {
  "$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >/dev/null 2>&1 || true
  [[ -n $FORGE_PID ]] && kill "$FORGE_PID" 2>/dev/null || true
}
trap cleanup EXIT

"$SHARED/serve-git-http-backend.sh" start --port "$GIT_PORT" --root "$GITBENCH_ROOT" >&2
"$SHARED/run.sh" --label git-http-backend --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --server-pid "$("$SHARED/serve-git-http-backend.sh" pid --port "$GIT_PORT")" \
  "http://127.0.0.1:$GIT_PORT/git" "$NAME.git"
pack_bytes git-http-backend "http://127.0.0.1:$GIT_PORT/git/$NAME.git"
"$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >&2

"$FORGE" --data "$WORK/data" serve --listen "127.0.0.1:$FORGE_PORT" 2>"$WORK/forge.log" &
FORGE_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$FORGE_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$SHARED/run.sh" --label forge --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --server-pid "$FORGE_PID" "http://127.0.0.1:$FORGE_PORT/bench" "$NAME.git"
pack_bytes forge "http://127.0.0.1:$FORGE_PORT/bench/$NAME.git"

"$SHARED/report.sh" "$OUT/results.tsv" git-http-backend forge
