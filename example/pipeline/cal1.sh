#!/usr/bin/env bash
# cal1: "calibrate" one subband of the calibrator. The result is a file named after the subband.
set -euo pipefail
: "${SRMFILE:?no srm file}" "${OBSID:?no OBSID}" "${STARTSB:?no STARTSB}"
url=$(head -n 1 "$SRMFILE")
printf 'calibrated %s subband %s from %s\n' "$OBSID" "$STARTSB" "${url##*/}" > "cal1_SB${STARTSB}.txt"
