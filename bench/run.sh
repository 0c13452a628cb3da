#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds wq_bench in a release configuration, runs it, and writes to bench/results/:
#   wq_bench.json  Google Benchmark's output (medians of 5 repetitions, run in random order)
#   report.txt     the ratios against each workload's baseline and the targets met or missed
#   ratios.png     the ratios as a bar chart
#   wq_scale.json, scale.txt, scale.png  the scaling curves (bench/wq_scale.cpp, scale.py)
# Installs the Debian packages it needs (as root). Extra arguments go to wq_bench, e.g.
#   bash bench/run.sh --benchmark_filter=burst
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
for pkg in cmake g++ make pkg-config libboost1.81-dev libbenchmark-dev libtbb-dev libuv1-dev \
           libthread-pool-dev libconcurrentqueue-dev python3 gnuplot-nox; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "bench/run.sh: installing: ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

build=build/bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DWQ_BUILD_BENCH=ON -DWQ_BUILD_TESTS=OFF \
      -DWQ_BUILD_SAMPLES=OFF
cmake --build "$build" -j 2 --target wq_bench wq_scale

out=bench/results
mkdir -p "$out"
# Repetitions run in random order, so that a system and its baseline see the same drift of
# the machine (a round trip is two thread wake-ups, whose cost moves by +-10% between runs).
"$build/bench/wq_bench" --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_display_aggregates_only=true \
    --benchmark_out="$out/wq_bench.json" --benchmark_out_format=json "$@"
python3 bench/report.py "$out/wq_bench.json" "$out/ratios.dat" | tee "$out/report.txt"
gnuplot -e "data='$out/ratios.dat'; out='$out/ratios.png'" bench/plot.gp
# The scaling curves: the same costs as the number of queues and armed items grows.
"$build/bench/wq_scale" --benchmark_out="$out/wq_scale.json" --benchmark_out_format=json \
    > /dev/null
python3 bench/scale.py "$out/wq_scale.json" "$out/scale" | tee "$out/scale.txt"
gnuplot -e "prefix='$out/scale'; out='$out/scale.png'" bench/scale.gp
echo "bench/run.sh: wrote $out/wq_bench.json, $out/report.txt, $out/ratios.png," \
     "$out/scale.txt, $out/scale.png"
