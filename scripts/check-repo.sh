#!/usr/bin/env bash
# Repository hygiene, run by CI before the tests: no tracked file over 5 MB (build outputs never
# enter git) and go.mod/go.sum exactly as `go mod tidy` leaves them.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=$((5 * 1024 * 1024))
big=0
while IFS= read -r -d '' f; do
  if [ -f "$f" ]; then
    size=$(stat -c %s "$f")
    if [ "$size" -gt "$limit" ]; then
      echo "tracked file over 5 MB: $f ($size bytes) — build outputs and data never go into git" >&2
      big=1
    fi
  fi
done < <(git ls-files -z)
[ "$big" = 0 ] || exit 1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp go.mod go.sum "$tmp/"
go mod tidy
if ! cmp -s go.mod "$tmp/go.mod" || ! cmp -s go.sum "$tmp/go.sum"; then
  echo "go.mod/go.sum are not tidy; run 'go mod tidy' and commit the result:" >&2
  diff -u "$tmp/go.mod" go.mod >&2 || true
  cp "$tmp/go.mod" "$tmp/go.sum" .
  exit 1
fi
