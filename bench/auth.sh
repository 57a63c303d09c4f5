#!/usr/bin/env bash
# Tokens: what authorization costs a git client. The same repository served by one
# `forge serve`, cloned anonymously (the repository made public) and with a token (through
# git's credential helper, so git pays the 401 round trip a token in the URL costs), by the
# peer harness (../shared/bench/run.sh) in one run. Also prints the per-request cost
# (`cargo run --release --example auth_cost`).
#
#   bench/auth.sh [--reps N] SOURCE_GIT_DIR [NAME]
set -euo pipefail
REPS=5
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,9p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
NAME=${args[1]:-$(basename "${SRC%/.git}" .git)}
OPS=clone-full,clone-depth1,ls-remote
source "$(dirname "$0")/common.sh"
prepare_repositories
"$FORGE" --data "$WORK/data" repack "bench/$NAME" >&2

cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" --example auth_cost

start_forge --no-auto-repack
TOKEN=$("$FORGE" --data "$WORK/data" --json token issue --identity admin --repo "bench/$NAME" --ops read --ttl 1d |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$FORGE" --data "$WORK/data" repo config "bench/$NAME" public true >/dev/null
"$SHARED/run.sh" --label forge-anonymous --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --server-pid "$FORGE_PID" "http://127.0.0.1:$FORGE_PORT/bench" "$NAME.git"
"$FORGE" --data "$WORK/data" repo config "bench/$NAME" public false >/dev/null
"$SHARED/run.sh" --label forge-token --reps "$REPS" --ops "$OPS" --out "$OUT" \
  --user x --password "$TOKEN" \
  --server-pid "$FORGE_PID" "http://127.0.0.1:$FORGE_PORT/bench" "$NAME.git"
"$SHARED/report.sh" "$OUT/results.tsv" forge-anonymous forge-token
