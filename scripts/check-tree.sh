#!/usr/bin/env bash
# The tree's hygiene, for make:
#   check-tree.sh tracked        no build output is tracked by git
#   check-tree.sh before FILE    record git status (make test's start)
#   check-tree.sh after FILE     fail if make test changed git status
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  tracked)
    bad=$(git ls-files -z | while IFS= read -r -d '' f; do
      [[ -f $f ]] || continue
      case $f in
        bin/*|*.test|web/dist/*|internal/lake/helper/hqd-job-exec) echo "$f"; continue ;;
        internal/web/dist/*) [[ $f == internal/web/dist/.keep ]] || echo "$f"; continue ;;
      esac
      # An executable or object file of any kind (ELF, Mach-O, PE).
      case $(head -c4 "$f" | od -An -tx1 | tr -d ' \n') in
        7f454c46|cffaedfe|cefaedfe|feedface|feedfacf|4d5a*) echo "$f" ;;
      esac
    done)
    if [[ -n $bad ]]; then
      echo "build output tracked by git (git rm --cached it; .gitignore and .dockerignore cover it):" >&2
      echo "$bad" >&2
      exit 1
    fi ;;
  before) git status --porcelain --untracked-files=all >"${2:?file}" ;;
  after)
    now=$(mktemp); trap 'rm -f "$now"' EXIT
    git status --porcelain --untracked-files=all >"$now"
    if ! diff -u "${2:?file}" "$now" >&2; then
      echo "make test changed the tree (above): tests must write to temporary or ignored paths" >&2
      exit 1
    fi
    rm -f "$2" ;;
  *) echo "usage: $0 tracked | before FILE | after FILE" >&2; exit 2 ;;
esac
