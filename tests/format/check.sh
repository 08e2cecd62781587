#!/usr/bin/env bash
# The C sources must be formatted as .clang-format says (clang-format 14, Debian 12):
#   bash tests/format/check.sh        list the files that differ, exit 1 if any
#   bash tests/format/check.sh --fix  reformat them in place
# Checked: lib/ cli/ include/ tests/ docs/examples/ (every .c and .h known to git, or found
# on disk when the tree is not a git checkout). Exit 77 (skipped) without clang-format,
# unless CI=true.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

fmt=${CLANG_FORMAT:-clang-format}
if ! command -v "$fmt" >/dev/null 2>&1; then
    echo "clang-format not found (Debian: apt-get install clang-format)" >&2
    [[ ${CI:-false} == true ]] && exit 1
    exit 77
fi

dirs=(lib cli include tests docs/examples)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- "${dirs[@]/%//*.c}" "${dirs[@]/%//*.h}")
else
    mapfile -t files < <(find "${dirs[@]}" -name '*.[ch]' -not -path '*/node_modules/*' | sort)
fi
((${#files[@]} > 0)) || { echo "no C sources found" >&2; exit 1; }

if [[ ${1:-} == --fix ]]; then
    "$fmt" -i "${files[@]}"
    exit 0
fi

bad=0
for f in "${files[@]}"; do
    if ! "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f   (see: $fmt $f | diff $f -)"
        bad=1
    fi
done
if ((bad)); then
    echo "fix with: bash tests/format/check.sh --fix" >&2
    exit 1
fi
echo "${#files[@]} files formatted as .clang-format says"
