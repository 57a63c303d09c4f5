#!/usr/bin/env bash
# Import throughput and on-disk size of the native store, against git's own indexing of
# the same pack, on this machine, in one run.
#
#   bench/import.sh [--reps N] [--verify] GIT_DIR [LABEL]
#
# GIT_DIR is a repository with a single pack and no loose objects (`git repack -ad` makes
# one). For each of N repetitions (default 3) it times:
#   git index-pack  of a copy of that pack (what `git clone`/`fetch` costs git), and
#   forge import    of the repository into an empty data directory.
# It reports medians (wall, CPU = user+sys, peak RSS), objects/s and MiB/s, and the size of
# the data directory against the pack. --verify also exports the import back and checks
# with git that objects, refs and fsck agree with the source.
# Results are appended to bench/results/import.tsv; a Markdown row goes to stdout.
set -euo pipefail

reps=3
verify=0
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --verify) verify=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 2; }
src=$(cd "$1" && git rev-parse --absolute-git-dir)
label=${2:-$(basename "$(dirname "$src")")/$(basename "$src")}
here=$(cd "$(dirname "$0")/.." && pwd)

packs=("$src"/objects/pack/*.pack)
loose=$(git -C "$src" count-objects | awk '{print $1}')
if [ ${#packs[@]} -ne 1 ] || [ "$loose" != 0 ]; then
  echo "bench/import.sh: $src must have exactly one pack and no loose objects (git repack -ad)" >&2
  exit 2
fi
pack=${packs[0]}

forge=${FORGE_BIN:-}
if [ -z "$forge" ]; then
  (cd "$here" && cargo build --release --quiet)
  forge=$here/target/release/forge
fi

work=$(mktemp -d /tmp/forge-bench-import.XXXXXX)
trap 'rm -rf "$work"' EXIT
objects=$(git -C "$src" cat-file --batch-all-objects --batch-check='%(objectsize)' | awk '{n++; s+=$1} END {print n, s}')
object_count=${objects% *}
content_bytes=${objects#* }
pack_bytes=$(stat -c %s "$pack")

# Runs a command under /usr/bin/time; prints "wall cpu peak_rss_kib peak_anon_kib". Peak RSS
# counts mapped file pages too; anonymous memory is sampled from /proc every 20 ms.
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" &
  local timer=$! anon=0 a p
  while kill -0 "$timer" 2>/dev/null; do
    for p in $(pgrep -P "$timer"); do
      a=$(awk '/^RssAnon/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    done
    sleep 0.02
  done
  wait "$timer" || {
    echo "bench/import.sh: command failed: $*" >&2
    cat "$work/err" >&2
    exit 1
  }
  awk -v anon="$anon" '{printf "%s %.2f %s %s\n", $1, $2 + $3, $4, anon}' "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: >"$work/git" && : >"$work/forge"
for i in $(seq "$reps"); do
  rm -rf "$work/ip" && mkdir "$work/ip" && cp "$pack" "$work/ip/p.pack"
  git init -q --bare "$work/ip/repo.git"
  (cd "$work/ip/repo.git" && measure git index-pack -o "$work/ip/p.idx" "$work/ip/p.pack") >>"$work/git"
  rm -rf "$work/data"
  measure "$forge" --data "$work/data" --json import bench/repo "$src" >>"$work/forge"
done
data_bytes=$(du -sb "$work/data" | cut -f1)

col() { awk -v c="$2" '{print $c}' "$1" | median; }
git_wall=$(col "$work/git" 1); git_cpu=$(col "$work/git" 2); git_rss=$(col "$work/git" 3); git_anon=$(col "$work/git" 4)
f_wall=$(col "$work/forge" 1); f_cpu=$(col "$work/forge" 2); f_rss=$(col "$work/forge" 3); f_anon=$(col "$work/forge" 4)

if [ "$verify" = 1 ]; then
  "$forge" --data "$work/data" export bench/repo "$work/export.git" >/dev/null
  list() { git -C "$1" cat-file --batch-all-objects --batch-check; }
  cmp <(list "$src") <(list "$work/export.git") >/dev/null || { echo "export: objects differ" >&2; exit 1; }
  cmp <(git -C "$src" for-each-ref) <(git -C "$work/export.git" for-each-ref) >/dev/null || { echo "export: refs differ" >&2; exit 1; }
  git -C "$work/export.git" fsck --no-dangling --no-progress >/dev/null 2>"$work/fsck" || { cat "$work/fsck" >&2; exit 1; }
  "$forge" --data "$work/data" fsck >/dev/null || { echo "forge fsck failed" >&2; exit 1; }
  verified=yes
else
  verified=no
fi

mkdir -p "$here/bench/results"
tsv=$here/bench/results/import.tsv
[ -s "$tsv" ] || printf 'date\trepo\tobjects\tcontent_mib\tpack_mib\tgit_wall_s\tgit_cpu_s\tgit_rss_mib\tgit_anon_mib\tforge_wall_s\tforge_cpu_s\tforge_rss_mib\tforge_anon_mib\tdata_dir_mib\treps\tverified\n' >"$tsv"
awk -v d="$(date -u +%FT%TZ)" -v r="$label" -v o="$object_count" -v c="$content_bytes" -v p="$pack_bytes" \
    -v gw="$git_wall" -v gc="$git_cpu" -v gr="$git_rss" -v ga="$git_anon" -v fw="$f_wall" -v fc="$f_cpu" \
    -v fr="$f_rss" -v fa="$f_anon" -v db="$data_bytes" -v n="$reps" -v v="$verified" -v tsv="$tsv" 'BEGIN {
  M = 1048576
  printf "%s\t%s\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%s\n", d, r, o, c/M, p/M, gw, gc, gr/1024, ga/1024, fw, fc, fr/1024, fa/1024, db/M, n, v >> tsv
  printf "| %s | %d | %.1f | %.2f s | %.2f s | **%.2f** | %.2f / %.2f s | %.0f / %.0f MiB | %.0f obj/s, %.1f MiB/s packed, %.0f MiB/s content | %.1f MiB | **%.2f** | %s |\n", \
    r, o, p/M, gw, fw, fw/gw, gc, fc, ga/1024, fa/1024, o/fw, p/M/fw, c/M/fw, db/M, db/p, v
}'
