#!/usr/bin/env bash
# The demo job: check every URL of this token's chunk and write a manifest.
#
# For each line of $SRMFILE it checks that the URL is an srm/gsiftp URL of
# observation $OBSID with a subband number, and prints one manifest line:
#   <subband> <sha256 of the file name> <file name>
# It exits non-zero, naming the line, on the first URL that fails the check,
# so a bad chunk shows up as an errored token with the reason in stderr.log.
set -euo pipefail

: "${SRMFILE:?no srm file given}" "${OBSID:?no OBSID given}" "${STARTSB:?no STARTSB given}"
echo "# manifest of chunk SB${STARTSB} of ${OBSID} (${PIPELINE_STEP:-demo})"
count=0
while IFS= read -r url || [ -n "$url" ]; do
    [ -z "$url" ] && continue
    count=$((count + 1))
    case "$url" in
        srm://*/"$OBSID"_SB*|gsiftp://*/"$OBSID"_SB*|srm://*/*/"$OBSID"_SB*|gsiftp://*/*/"$OBSID"_SB*) ;;
        *) echo "line $count: not a URL of $OBSID with a subband: $url" >&2; exit 2 ;;
    esac
    name=${url##*/}
    subband=$(printf '%s\n' "$name" | sed -n 's/.*_SB\([0-9][0-9]*\).*/\1/p')
    [ -n "$subband" ] || { echo "line $count: no subband number in $name" >&2; exit 2; }
    printf '%s %s %s\n' "$subband" "$(printf '%s' "$name" | sha256sum | cut -d' ' -f1)" "$name"
done < "$SRMFILE"
[ "$count" -gt 0 ] || { echo "empty srm list" >&2; exit 2; }
echo "# $count files checked"
