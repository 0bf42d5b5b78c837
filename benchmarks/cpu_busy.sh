#!/usr/bin/env bash
# How busy the cores are while a command runs: /proc/stat sampled every 5 s, the busy
# share (everything but idle and iowait) of each sample, then the mean.
#   bash benchmarks/cpu_busy.sh python -m pytest
set -uo pipefail
log="$(mktemp)"
(
    while true; do
        read -r _ a b c d e f g h _ < /proc/stat; t1=$((a+b+c+d+e+f+g+h)); i1=$((d+e))
        sleep 5
        read -r _ a b c d e f g h _ < /proc/stat; t2=$((a+b+c+d+e+f+g+h)); i2=$((d+e))
        echo $(( 100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1) )) >> "$log"
    done
) &
sampler=$!
"$@"
rc=$?
kill "$sampler"
awk '{s += $1; n++; if (min == "" || $1 < min) min = $1} END {
    printf "cores busy: mean %.1f%%, lowest %d%%, %d samples of 5 s\n", s / n, min, n}' "$log"
rm -f "$log"
exit $rc
