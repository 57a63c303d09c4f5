#!/usr/bin/env bash
# Exploration goals under load: claim + heartbeat + release round trips per second over
# keep-alive connections (one approach each), and a promotion's server-side merge end to
# end (REST request to the target moved: merge, new objects stored, one transaction) on a
# real history against `git merge-tree --write-tree` of the same commits (which writes its
# objects to the repository too). One `forge serve` (release) on SOURCE imported.
#
#   bench/goals.sh [--seconds S] [--runs N] SOURCE_GIT_DIR [NAME] [OURS:THEIRS ...]
set -euo pipefail
SECONDS_EACH=5
RUNS=5
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,8p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
NAME=${args[1]:-$(basename "${SRC%/.git}" .git)}
PAIRS=("${args[@]:2}")
source "$(dirname "$0")/common.sh"
prepare_repositories
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --example claim_load
start_forge --no-auto-repack
ADDR=127.0.0.1:$FORGE_PORT
API=http://$ADDR/api/v1/repos/bench/$NAME
GIT_DIR_BENCH=$GITBENCH_ROOT/$NAME.git
post() { curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "$API$1"; }
TARGET=$(git --git-dir "$GIT_DIR_BENCH" symbolic-ref --short HEAD)

echo "# claims: claim + heartbeat + release, $SECONDS_EACH s per row"
post /goals "{\"name\": \"load\", \"title\": \"claims under load\"}" >/dev/null
for n in 1 2 3 4 5 6 7 8; do post /goals/load/approaches "{\"name\": \"a$n\"}" >/dev/null; done
for list in a1 a1,a2,a3,a4 a1,a2,a3,a4,a5,a6,a7,a8; do
  "$ROOT/target/release/examples/claim_load" "$ADDR" "bench/$NAME" load "$TOKEN" "$list" "$SECONDS_EACH"
done
echo "# server CPU: $(ps -o cputime= -p "$FORGE_PID")"

ms() { python3 -c 'import sys; print(f"{(int(sys.argv[2]) - int(sys.argv[1])) / 1e6:.1f}")' "$1" "$2"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# promotion by merge, median of $RUNS: forge (REST, end to end) vs git merge-tree --write-tree"
printf 'pair\tmerge-tree\tforge promote\tratio\tforge answer\n'
run=0
for pair in "${PAIRS[@]}"; do
  ours=${pair%%:*} theirs=${pair#*:}
  ours_id=$(git --git-dir "$GIT_DIR_BENCH" rev-parse "$ours^{commit}")
  theirs_id=$(git --git-dir "$GIT_DIR_BENCH" rev-parse "$theirs^{commit}")
  git_times=()
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    git --git-dir "$GIT_DIR_BENCH" merge-tree --write-tree "$ours_id" "$theirs_id" >/dev/null || true
    t1=$(date +%s%N)
    git_times+=("$(ms "$t0" "$t1")")
  done
  forge_times=()
  answer=
  for _ in $(seq "$RUNS"); do
    run=$((run + 1))
    # The target at OURS, a goal whose approach starts at THEIRS; promote; put the target back.
    "$FORGE" --data "$WORK/data" ref set "bench/$NAME" "refs/heads/$TARGET" "$ours_id" >/dev/null
    post /goals "{\"name\": \"p$run\", \"title\": \"merge $pair\"}" >/dev/null
    post "/goals/p$run/approaches" "{\"name\": \"x\", \"base\": \"$theirs_id\"}" >/dev/null
    t0=$(date +%s%N)
    answer=$(curl -sS -o /dev/stdout -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' -d '{"approach": "x"}' "$API/goals/p$run/promote")
    t1=$(date +%s%N)
    forge_times+=("$(ms "$t0" "$t1")")
  done
  g=$(echo "${git_times[*]}" | median)
  f=$(echo "${forge_times[*]}" | median)
  short=$(python3 -c 'import json,sys; t=sys.argv[1]; b,c=t.rsplit(" ",1); d=json.loads(b); print(c, d.get("how") or d.get("error",{}).get("code"))' "$answer")
  printf '%s\t%s ms\t%s ms\t%s\t%s\n' "$pair" "$g" "$f" "$(python3 -c "print(f'{$f/$g:.2f}')")" "$short"
done
