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
source "$(dirname "$0")/common.sh"
prepare_repositories
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

start_git_http_backend
"$SHARED/run.sh" --label git-http-backend --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --server-pid "$(git_http_backend_pid)" \
  "http://127.0.0.1:$GIT_PORT/git" "$NAME.git"
pack_bytes git-http-backend "http://127.0.0.1:$GIT_PORT/git/$NAME.git"
stop_git_http_backend

start_forge
"$SHARED/run.sh" --label forge --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --server-pid "$FORGE_PID" "http://127.0.0.1:$FORGE_PORT/bench" "$NAME.git"
pack_bytes forge "http://127.0.0.1:$FORGE_PORT/bench/$NAME.git"

"$SHARED/report.sh" "$OUT/results.tsv" git-http-backend forge
