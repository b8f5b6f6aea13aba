#!/usr/bin/env bash
# copy-shipped-rules.sh DIR: the shipped config and rules (the files git
# tracks under rules/) into DIR, so that an official's own unfinished rule
# in the working tree's rules/ never reaches the project's tests. Outside a
# git checkout (a tarball), every file under rules/.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
mkdir -p "$dir"
cp rulewatch.ron "$dir/"
if git ls-files --error-unmatch rulewatch.ron >/dev/null 2>&1; then
    git ls-files -z -- rules | while IFS= read -r -d '' f; do
        # A file deleted in the working tree is not there to copy.
        [ -f "$f" ] && cp --parents "$f" "$dir/"
    done
else
    cp -r rules "$dir/rules"
fi
