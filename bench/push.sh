#!/usr/bin/env bash
# Push: `forge serve` against `git http-backend` (lighttpd) on the same repository, measured
# by the peer harness (../shared/bench/run.sh) in one run.
#
#   bench/push.sh [--reps N] SOURCE_GIT_DIR [NAME]
#
# SOURCE_GIT_DIR is copied into git's project root as NAME.git and imported into a fresh forge
# data directory as bench/NAME. Ops: push-mirror (the harness's bare clone, --mirror, into an
# empty repository; N empty targets per server) and push-1commit (one commit onto a scratch
# branch). Then push-1commit again as `forge+policy`: a rule on the scratch branch requires a
# PASSED test-result signed by the pusher's identity, and each push carries it
# (bench/attesting-git.sh signs the commit and adds `-o attest=…`, inside the measured time).
# Both servers run without background maintenance (git: receive.autogc false;
# forge: --no-auto-repack). Results: bench/results/results.tsv, bench/results/push-disk.tsv
# (bytes on disk of a pushed repository) and a side-by-side table on stdout.
# Needs lighttpd (apt-get install lighttpd), python3 and /usr/bin/time.
set -euo pipefail
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
OPS=push-mirror,push-1commit
source "$(dirname "$0")/common.sh"
prepare_repositories
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

start_git_http_backend
"$SHARED/run.sh" --label git-http-backend --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --push-empty "${targets[*]}" \
  --server-pid "$(git_http_backend_pid)" \
  "http://127.0.0.1:$GIT_PORT/git" "$NAME.git"
stop_git_http_backend
disk git-http-backend "$GITBENCH_ROOT/$NAME-empty1.git"

start_forge --no-auto-repack
"$SHARED/run.sh" --label forge --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --push-empty "${targets[*]}" \
  --server-pid "$FORGE_PID" "$FORGE_PUSH_URL" "$NAME.git"
disk forge "$(forge_repo_dir "bench/$NAME-empty1")"

kill "$FORGE_PID"; wait "$FORGE_PID" 2>/dev/null || true
"$FORGE" keygen --out "$WORK/bench.key" >"$WORK/bench.pub"
"$FORGE" --data "$WORK/data" identity key add bench "$(cat "$WORK/bench.pub")" >&2
"$FORGE" --data "$WORK/data" policy add "bench/$NAME" --ref refs/heads/bench-push-1commit \
  --require test-result --signers bench --result PASSED >&2
echo '{"result": "PASSED", "passedTests": ["bench"]}' >"$WORK/predicate.json"
start_forge --no-auto-repack
# The rule is in force: the same push without its attestation is refused.
if git -C "$GITBENCH_ROOT/$NAME.git" push -q "$FORGE_PUSH_URL/$NAME.git" HEAD:refs/heads/bench-push-1commit \
  2>"$WORK/refused.txt"; then
  echo "a push without an attestation landed: the policy is not in force" >&2; exit 1
fi
grep -q FORGE-P003 "$WORK/refused.txt" || { cat "$WORK/refused.txt" >&2; exit 1; }
GIT=$HERE/attesting-git.sh REAL_GIT=$(command -v git) FORGE=$FORGE ATTEST_KEY=$WORK/bench.key \
  ATTEST_PREDICATE=$WORK/predicate.json \
  "$SHARED/run.sh" --label forge+policy --reps "$REPS" --ops push-1commit --out "$OUT" \
  --server-pid "$FORGE_PID" "$FORGE_PUSH_URL" "$NAME.git"
awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  $c["server"] == "forge+policy" && $c["op"] == "push-1commit" { ok = $c["ok"]; reps = $c["reps"] }
  END { if (ok == "" || ok != reps) { print "forge+policy: " ok "/" reps " pushes landed" > "/dev/stderr"; exit 1 } }' \
  "$OUT/results.tsv"

"$SHARED/report.sh" "$OUT/results.tsv" git-http-backend forge forge+policy
