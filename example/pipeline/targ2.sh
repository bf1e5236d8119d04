#!/usr/bin/env bash
# targ2: a group of targ1 subbands combined into one (the lines of $SRMFILE are their locations).
set -euo pipefail
fetch() { case "$1" in file://*) cat "${1#file://}" ;; /*) cat "$1" ;; *) gfal-cat "$1" ;; esac; }
while IFS= read -r url || [ -n "$url" ]; do
    [ -n "$url" ] && fetch "$url" >> "group_SB${STARTSB}.txt"
done < "$SRMFILE"
[ -s "group_SB${STARTSB}.txt" ] || { echo "no targ1 results listed in $SRMFILE" >&2; exit 2; }
