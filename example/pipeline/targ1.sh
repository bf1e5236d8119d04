#!/usr/bin/env bash
# targ1: one target subband, with the calibrator's solutions applied. They are where $CAL_SOLUTIONS says.
set -euo pipefail
fetch() { case "$1" in file://*) cat "${1#file://}" ;; /*) cat "$1" ;; *) gfal-cat "$1" ;; esac; }
: "${CAL_SOLUTIONS:?no calibration solutions given}" "${STARTSB:?no STARTSB}"
solutions=$(fetch "$CAL_SOLUTIONS" | tail -n 1)
url=$(head -n 1 "$SRMFILE")
printf 'subband %s of %s (%s), calibrated with solutions %s\n' "$STARTSB" "$OBSID" "${url##*/}" "$solutions" \
    > "targ1_SB${STARTSB}.txt"
