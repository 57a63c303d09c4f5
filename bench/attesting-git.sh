#!/usr/bin/env bash
# A git for ../shared/bench/run.sh (GIT=bench/attesting-git.sh) that attests what it pushes:
# `git [-C DIR] push … SRC:DST` signs a PASSED in-toto test-result for the commit SRC names
# (forge attest sign with $ATTEST_KEY) and passes it as `-o attest=<base64url envelope>`, as
# an agent that pushes and attests in one step does. Deletions and every other git command
# run unchanged. The signing is inside the measured wall time.
# env: REAL_GIT (default: git on PATH), FORGE, ATTEST_KEY, ATTEST_PREDICATE (a JSON file).
set -euo pipefail
real=${REAL_GIT:-$(command -v git)}
dir=. push=0 last=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    -C) dir=${args[i + 1]}; i=$((i + 1)) ;;
    push) push=1 ;;
  esac
  last=${args[i]}
done
src=${last%%:*}
if [[ $push == 0 || -z $src || $last != *:* ]]; then exec "$real" "$@"; fi
commit=$("$real" -C "$dir" rev-parse --verify "$src^{commit}")
envelope=$("$FORGE" attest sign --key "$ATTEST_KEY" --commit "$commit" \
  --predicate-type https://in-toto.io/attestation/test-result/v0.1 --predicate "$ATTEST_PREDICATE" |
  basenc --base64url -w0)
exec "$real" -c "push.pushOption=attest=$envelope" "$@"
