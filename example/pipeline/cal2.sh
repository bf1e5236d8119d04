#!/usr/bin/env bash
# cal2: the calibration solutions, from every cal1 result (the lines of $SRMFILE are their locations).
set -euo pipefail
fetch() { case "$1" in file://*) cat "${1#file://}" ;; /*) cat "$1" ;; *) gfal-cat "$1" ;; esac; }
count=0
while IFS= read -r url || [ -n "$url" ]; do
    [ -n "$url" ] || continue
    fetch "$url" >> cal1-results.txt
    count=$((count + 1))
done < "$SRMFILE"
[ "$count" -gt 0 ] || { echo "no cal1 results listed in $SRMFILE" >&2; exit 2; }
{ echo "solutions of $OBSID from $count subbands"; sha256sum < cal1-results.txt | cut -c1-16; } > solutions.txt
rm cal1-results.txt  # every file left here is a result
