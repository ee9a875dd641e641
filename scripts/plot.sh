#!/usr/bin/env bash
# Training curves of one or more runs (train loss and eval top-1 per epoch, one line per run) to a PNG,
# read from each run's summary.csv. Needs gnuplot (apt-get install gnuplot-nox).
# usage: scripts/plot.sh OUT.png RUN_DIR [RUN_DIR ...]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OUT.png RUN_DIR [RUN_DIR ...]" >&2; exit 64; }
command -v gnuplot >/dev/null || { echo "gnuplot not found: apt-get install -y gnuplot-nox" >&2; exit 66; }
png=$1; shift
loss="" top1=""
for d in "$@"; do
  [ -f "$d/summary.csv" ] || { echo "no $d/summary.csv" >&2; exit 66; }
  t=$(basename "$d")
  loss+="'$d/summary.csv' using 1:2 with linespoints title '$t', "
  top1+="'$d/summary.csv' using 1:5 with linespoints title '$t', "
done
gnuplot <<GP
set datafile separator ','
set terminal pngcairo size 1100,420 font ',10' noenhanced
set output '$png'
set multiplot layout 1,2
set key inside bottom left box opaque
set xlabel 'epoch'; set grid; set xtics 1
set title 'train loss'; set ylabel 'loss'; set key bottom left
plot ${loss%, }
set title 'eval top-1'; set ylabel 'top-1 (%)'; set key bottom right
plot ${top1%, }
unset multiplot
GP
echo "$png"
