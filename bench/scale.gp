# SPDX-License-Identifier: BSL-1.0
# Renders bench/scale.py's curves: ns per operation against the number of queues (left) and
# of armed items (middle), and lateness against timer density (right), log-log; wq solid, raw
# Asio dashed (dotted: Asio timers with their handlers on a thread pool, lateness only).
# usage: gnuplot -e "prefix='bench/results/scale'; out='scale.png'" bench/scale.gp
set terminal pngcairo size 1900,560 noenhanced
set output out
set multiplot layout 1,3
set logscale xy
set grid
set key top left font ",8"
set xlabel "queues"
set ylabel "ns per operation (log)"
set title "cost vs number of queues"
q = prefix."-queues.dat"
plot q using 1:2 with linespoints lw 2 lc rgb "#3b6ea5" title "create wq", \
     q using 1:3 with linespoints dt 2 lc rgb "#3b6ea5" title "create strand", \
     q using 1:6 with linespoints lw 2 lc rgb "#aa3333" title "round-robin item wq", \
     q using 1:7 with linespoints dt 2 lc rgb "#aa3333" title "round-robin item strand", \
     q using 1:8 with linespoints lw 2 lc rgb "#2a8a3a" title "cancel_work_sync (live)", \
     q using 1:9 with linespoints lw 1 lc rgb "#6abf6a" title "cancel_work_sync (destroyed)"
set xlabel "armed delayed items"
set title "cost vs number of armed items"
i = prefix."-items.dat"
plot i using 1:2 with linespoints lw 2 lc rgb "#3b6ea5" title "arm wq", \
     i using 1:3 with linespoints dt 2 lc rgb "#3b6ea5" title "arm asio", \
     i using 1:4 with linespoints lw 2 lc rgb "#aa3333" title "mod wq", \
     i using 1:5 with linespoints dt 2 lc rgb "#aa3333" title "mod asio (naive)", \
     i using 1:6 with linespoints dt 3 lc rgb "#aa3333" title "mod asio (lazy)", \
     i using 1:9 with linespoints lw 2 lc rgb "#2a8a3a" title "destroy wq (cancelled)", \
     i using 1:10 with linespoints dt 2 lc rgb "#2a8a3a" title "destroy asio", \
     i using 1:11 with linespoints lw 2 lc rgb "#7a3b9a" title "fire wq", \
     i using 1:12 with linespoints dt 2 lc rgb "#7a3b9a" title "fire asio"
set xlabel "delayed items due within 200 ms"
set ylabel "us late (log)"
set title "lateness vs timer density"
l = prefix."-lateness.dat"
plot l using 1:2 with linespoints lw 2 lc rgb "#3b6ea5" title "p50 wq", \
     l using 1:3 with linespoints dt 2 lc rgb "#3b6ea5" title "p50 asio", \
     l using 1:4 with linespoints lw 2 lc rgb "#aa3333" title "p99 wq", \
     l using 1:5 with linespoints dt 2 lc rgb "#aa3333" title "p99 asio", \
     l using 1:($6 > 0 ? $6 : NaN) with linespoints dt 3 lc rgb "#3b6ea5" title "p50 asio+pool", \
     l using 1:($7 > 0 ? $7 : NaN) with linespoints dt 3 lc rgb "#aa3333" title "p99 asio+pool"
unset multiplot
