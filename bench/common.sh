# Shared by bench/upload.sh and bench/push.sh (sourced, not run): the same repository served
# by `git http-backend` (lighttpd) and by `forge serve`, one after the other.
#
# Expects SRC (a git directory) and NAME; sets HERE ROOT SHARED WORK OUT FORGE GIT_PORT
# FORGE_PORT and GITBENCH_ROOT (and, once the repositories are prepared, FORGE_PUSH_URL:
# the forge's base URL with a token that may push), and stops both servers on exit.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
WORK=${BENCH_WORK:-/tmp/forge-bench}
GIT_PORT=${GIT_PORT:-18080}
FORGE_PORT=${FORGE_PORT:-18090}
OUT=$HERE/results
# FORGE_BIN: another forge binary to measure (an older build, for a same-run comparison).
FORGE=${FORGE_BIN:-$ROOT/target/release/forge}
export GITBENCH_ROOT=$WORK/gitroot
FORGE_PID=

# Builds the forge and puts SRC into a fresh git project root (as NAME.git) and a fresh
# forge data directory (as bench/NAME).
prepare_repositories() {
  mkdir -p "$OUT"
  [[ -n ${FORGE_BIN:-} ]] || cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
  rm -rf "$WORK"
  mkdir -p "$WORK"
  "$SHARED/repo-admin.sh" import "$SRC" "$NAME.git" >&2
  "$FORGE" --data "$WORK/data" import "bench/$NAME" "$GITBENCH_ROOT/$NAME.git" >&2
  # Fetches are anonymous, as git http-backend's are; pushes carry a token.
  "$FORGE" --data "$WORK/data" repo config "bench/$NAME" public true >&2
  "$FORGE" --data "$WORK/data" identity add bench --kind human >&2
  TOKEN=$("$FORGE" --data "$WORK/data" --json token issue --identity bench --repo '*' --ops admin --ttl 1d |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  FORGE_PUSH_URL="http://x:$TOKEN@127.0.0.1:$FORGE_PORT/bench"
}

start_git_http_backend() {
  "$SHARED/serve-git-http-backend.sh" start --port "$GIT_PORT" --root "$GITBENCH_ROOT" >&2
}

git_http_backend_pid() {
  "$SHARED/serve-git-http-backend.sh" pid --port "$GIT_PORT"
}

stop_git_http_backend() {
  "$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >&2
}

# Starts `forge serve` with extra options and waits until it answers.
start_forge() {
  "$FORGE" --data "$WORK/data" serve --listen "127.0.0.1:$FORGE_PORT" "$@" 2>"$WORK/forge.log" &
  FORGE_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$FORGE_PORT/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
}

cleanup() {
  "$SHARED/serve-git-http-backend.sh" stop --port "$GIT_PORT" >/dev/null 2>&1 || true
  [[ -n $FORGE_PID ]] && kill "$FORGE_PID" 2>/dev/null || true
}
trap cleanup EXIT
