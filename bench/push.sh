#!/usr/bin/env bash
# Push: `forge serve` against `git http-backend` (lighttpd) on the same repository, measured
# by the peer harness (../shared/bench/run.sh) in one run.
#
#   bench/push.sh [--reps N] SOURCE_GIT_DIR [NAME]
#
# SOURCE_GIT_DIR is copied into git's project root as NAME.git and imported into a fresh forge
# data directory as bench/NAME. Ops: push-mirror (the harness's bare clone, --mirror, into an
# empty repository; N empty targets per server) and push-1commit (one commit onto a scratch
# branch). Both servers run without background maintenance (git: receive.autogc false;
# forge: --no-auto-repack). Results: bench/results/results.tsv, bench/results/push-disk.tsv
# (bytes on disk of a pushed repository) and a side-by-side table on stdout.
# Needs lighttpd (apt-get install lighttpd), python3 and /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
REPS=5
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,13p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
NAME=${args[1]:-$(basename "${SRC%/.git}" .git)}
WORK=${BENCH_WORK:-/tmp/forge-bench}
GIT_PORT=${GIT_PORT:-18080}
FORGE_PORT=${FORGE_PORT:-18090}
OUT=$HERE/results
OPS=push-mirror,push-1commit
mkdir -p "$OUT"

cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
FORGE=$ROOT/target/release/forge
rm -rf "$WORK"
mkdir -p "$WORK"
export GITBENCH_ROOT=$WORK/gitroot
"$SHARED/repo-admin.sh" import "$SRC" "$NAME.git" >&2
"$FORGE" --data "$WORK/data" import "bench/$NAME" "$GITBENCH_ROOT/$NAME.git" >&2
targets=()
for ((i = 1; i <= REPS; i++)); do
  targets+=("$NAME-empty$i.git")
  "$SHARED/repo-admin.sh" create-empty "$NAME-empty$i.git" >&2
  "$FORGE" --data "$WORK/data" repo create "bench/$NAME-empty$i" >&2
done

[[ -s $OUT/push-disk.tsv ]] || printf 'server\trepo\tbytes_on_disk_after_mirror_push\n' >"$OUT/push-disk.tsv"
disk() {  # LABEL DIR
  printf '%s\t%s\t%s\n' "$1" "$NAME" "$(du -sb "$2" | cut -f1)" | tee -a "$OUT/push-disk.tsv"
}
forge_repo_dir() {  # NAME -> the repository's directory in the data directory
  local id
  id=$("$FORGE" --data "$WORK/data" repo list --json |
    python3 -c "import json,sys; print(next(r['id'] for r in json.load(sys.stdin)['repos'] if r['name'] == sys.argv[1]))" "$1")
  echo "$WORK/data/repos/$id"
}

FORGE_PID=
cleanup() {
  "$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >/dev/null 2>&1 || true
  [[ -n $FORGE_PID ]] && kill "$FORGE_PID" 2>/dev/null || true
}
trap cleanup EXIT

"$SHARED/serve-git-http-backend.sh" start --port "$GIT_PORT" --root "$GITBENCH_ROOT" >&2
"$SHARED/run.sh" --label git-http-backend --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --push-empty "${targets[*]}" \
  --server-pid "$("$SHARED/serve-git-http-backend.sh" pid --port "$GIT_PORT")" \
  "http://127.0.0.1:$GIT_PORT/git" "$NAME.git"
"$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >&2
disk git-http-backend "$GITBENCH_ROOT/$NAME-empty1.git"

"$FORGE" --data "$WORK/data" serve --no-auto-repack --listen "127.0.0.1:$FORGE_PORT" 2>"$WORK/forge.log" &
FORGE_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$FORGE_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$SHARED/run.sh" --label forge --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --push-empty "${targets[*]}" \
  --server-pid "$FORGE_PID" "http://127.0.0.1:$FORGE_PORT/bench" "$NAME.git"
disk forge "$(forge_repo_dir "bench/$NAME-empty1")"

"$SHARED/report.sh" "$OUT/results.tsv" git-http-backend forge
