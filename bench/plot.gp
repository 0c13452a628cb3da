# SPDX-License-Identifier: BSL-1.0
# Renders bench/run.sh's ratio data as a bar chart (log scale; below 1 = better than baseline).
# usage: gnuplot -e "data='ratios.dat'; out='ratios.png'" bench/plot.gp
set terminal pngcairo size 1600,600 noenhanced
set output out
set title "wq_bench: each figure relative to its workload's baseline (see report.txt); lower is better"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set logscale y
set yrange [0.01:*]
set ylabel "ratio (log scale)"
set xtics rotate by -45 font ",9"
set grid ytics
unset key
plot data using 2:xtic(1) lc rgb "#3b6ea5", 1 with lines lc rgb "#aa3333" dt 2
