#!/usr/bin/env bash
# The agents' interface under load: REST requests per second for cached reads (a commit
# by id, the same with If-None-Match, a ref, the caller itself) from keep-alive
# connections, the per-request authorization cost, and Server-Sent Events fan-out latency
# to many subscribers of one repository. One `forge serve` (release) on SOURCE imported.
#
#   bench/api.sh [--connections N] [--seconds S] [--subscribers N] SOURCE_GIT_DIR [NAME]
set -euo pipefail
CONNECTIONS=4
SECONDS_EACH=5
SUBSCRIBERS=100
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --subscribers) SUBSCRIBERS=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -ge 1 ]] || { sed -n '2,8p' "$0"; exit 2; }
SRC=$(cd "${args[0]}" && pwd)
NAME=${args[1]:-$(basename "${SRC%/.git}" .git)}
source "$(dirname "$0")/common.sh"
prepare_repositories
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --example rest_load --example sse_fanout
EXAMPLES=$ROOT/target/release/examples
"$FORGE" --data "$WORK/data" repo config "bench/$NAME" public false >/dev/null
start_forge --no-auto-repack
ADDR=127.0.0.1:$FORGE_PORT
HEAD=$(git --git-dir "$GITBENCH_ROOT/$NAME.git" rev-parse HEAD)

echo "# REST, $CONNECTIONS keep-alive connections, $SECONDS_EACH s each (private repository, token)"
load() { "$EXAMPLES/rest_load" "$ADDR" "$1" "$TOKEN" "$CONNECTIONS" "$SECONDS_EACH" "${2:-}"; }
ETAG=$(curl -fsi -H "Authorization: Bearer $TOKEN" "http://$ADDR/api/v1/repos/bench/$NAME/commits/$HEAD" |
  tr -d '\r' | sed -n 's/^etag: //Ip')
printf 'commit by id (200)\t'; load "/api/v1/repos/bench/$NAME/commits/$HEAD"
printf 'commit by id, If-None-Match (304)\t'; load "/api/v1/repos/bench/$NAME/commits/$HEAD" "$ETAG"
printf 'one ref (200)\t'; load "/api/v1/repos/bench/$NAME/refs/heads%2Fmaster"
printf 'the caller (200)\t'; load "/api/v1/user"
echo "# server CPU: $(ps -o cputime= -p "$FORGE_PID")"

echo "# authorization per request"
cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" --example auth_cost

echo "# SSE fan-out: $SUBSCRIBERS subscribers of bench/$NAME, 50 ref updates 50 ms apart"
TOKENS=$WORK/read-tokens
: >"$TOKENS"
for i in $(seq 0 $(((SUBSCRIBERS + 15) / 16 - 1))); do
  "$FORGE" --data "$WORK/data" identity add "reader$i" --kind human >/dev/null
  "$FORGE" --data "$WORK/data" --json token issue --identity "reader$i" --repo "bench/$NAME" --ops read --ttl 1d |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >>"$TOKENS"
done
"$EXAMPLES/sse_fanout" "$ADDR" "bench/$NAME" "$HEAD" "$TOKEN" "$TOKENS" "$SUBSCRIBERS" 50
