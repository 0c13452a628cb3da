#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Reads wq_bench's Google Benchmark JSON, prints each workload's ratios against its baseline
and whether issue 5's targets are met, and writes a gnuplot data file of the ratios.

usage: report.py RESULTS.json PLOT_DATA.dat
"""
import json
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    runs = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b["run_name"] if "run_name" in b else b["name"]
        name = name.split("/iterations:")[0].replace("/real_time", "")
        runs[name] = b
    return doc.get("context", {}), runs


def ns(b):
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["real_time"] * scale


def main():
    ctx, runs = load(sys.argv[1])
    rows = []  # (workload, system, value, unit, ratio vs baseline)
    checks = []

    def per_item(name, items):
        return ns(runs[name]) / items if name in runs else None

    def row(workload, system, value, unit, baseline_value):
        ratio = value / baseline_value if baseline_value else None
        rows.append((workload, system, value, unit, ratio))

    burst = {s: per_item(f"burst/{s}", 1_000_000)
             for s in ["wq", "asio_post", "tbb", "libuv", "stealing_pool", "naive"]}
    for s, v in burst.items():
        if v is not None:
            row("burst", s, v, "ns/item", burst["asio_post"])
    if burst["wq"] and burst["asio_post"]:
        speedup = burst["asio_post"] / burst["wq"]
        checks.append((f"burst: wq throughput {speedup:.2f}x asio_post (target >= 3.0x)",
                       speedup >= 3.0))
        others = [s for s in burst if s not in ("wq",) and burst[s]]
        ahead = all(burst["wq"] < burst[s] for s in others)
        slowest_rival = min(others, key=lambda s: burst[s])
        checks.append((f"burst: wq ahead of every baseline (fastest other: {slowest_rival} "
                       f"{burst[slowest_rival]:.1f} ns/item vs wq {burst['wq']:.1f})", ahead))

    if "burst_named/wq" in runs and burst["wq"]:
        named = per_item("burst_named/wq", 1_000_000)
        row("burst_named", "wq named (shared pool)", named, "ns/item", burst["wq"])
        r = named / burst["wq"]
        checks.append((f"burst_named: a named queue on the shared pool {r:.2f}x a queue owning "
                       f"its 2 threads (target <= 1.10x)", r <= 1.10))
    if "create/wq_named" in runs and "create/strand" in runs:
        c_wq, c_strand = ns(runs["create/wq_named"]), ns(runs["create/strand"])
        row("create", "wq named queue", c_wq, "ns/create+destroy", c_strand)
        row("create", "strand", c_strand, "ns/create+destroy", c_strand)
        checks.append((f"create: a named queue {c_wq / c_strand:.2f}x a strand "
                       f"({c_wq:.0f} vs {c_strand:.0f} ns; target <= 3x)", c_wq / c_strand <= 3.0))

    pp = {s: ns(runs[f"pingpong/{s}"]) for s in ["wq", "asio_post"] if f"pingpong/{s}" in runs}
    for s, v in pp.items():
        row("pingpong", s, v, "ns/round trip", pp.get("asio_post"))
    if len(pp) == 2:
        r = pp["wq"] / pp["asio_post"]
        checks.append((f"pingpong: wq latency {r:.2f}x asio_post (target <= 1.1x)", r <= 1.1))

    ppio = {s: ns(runs[f"pingpong_io/{s}"]) for s in ["wq", "asio_post"]
            if f"pingpong_io/{s}" in runs}
    for s, v in ppio.items():
        row("pingpong_io", s, v, "ns/round trip", ppio.get("asio_post"))
    if "io_work_edge/asio" in runs:
        edge = ns(runs["io_work_edge/asio"])
        rows.append(("io_edge", "asio work guard", edge, "ns/take+release", None))
        if len(ppio) == 2:
            share = edge / ppio["wq"]
            checks.append((f"pingpong_io: wq {ppio['wq'] / ppio['asio_post']:.2f}x asio_post on "
                           f"the app's io_context, of which the outstanding-work edges are "
                           f"{edge:.1f} ns ({100 * share:.2f}% of a round trip; target <= 5%)",
                           share <= 0.05))

    if "dedup/wq" in runs:
        d = ns(runs["dedup/wq"])
        row("dedup", "wq", d, "ns/call (median)", None)
        checks.append((f"dedup: {d:.1f} ns median (target <= 20 ns)", d <= 20.0))

    deb = {s: per_item(f"debounce/{s}", 1_000_000) for s in ["wq", "asio_timer"]}
    for s, v in deb.items():
        if v is not None:
            row("debounce", s, v, "ns/move", deb["asio_timer"])
    if deb["wq"] and deb["asio_timer"]:
        r = deb["asio_timer"] / deb["wq"]
        checks.append((f"debounce: wq {r:.1f}x cheaper than asio_timer (target >= 10x)", r >= 10))

    ac = {s: per_item(f"armcancel/{s}", 100_000) for s in ["wq", "asio_timer"]}
    for s, v in ac.items():
        if v is not None:
            row("armcancel", s, v, "ns/arm+cancel", ac["asio_timer"])
    if ac["wq"] and ac["asio_timer"]:
        r = ac["wq"] / ac["asio_timer"]
        checks.append((f"armcancel: wq {r:.2f}x asio_timer (target <= 1.0x)", r <= 1.0))

    for s in ["wq", "asio_timer"]:
        b = runs.get(f"lateness/{s}")
        if b:
            rows.append(("lateness", s + " p50", b["p50_us"] * 1e3, "ns late", None))
            rows.append(("lateness", s + " p99", b["p99_us"] * 1e3, "ns late", None))

    rss = {s: runs[f"rss/{s}"]["bytes_per_item"] for s in ["wq", "asio_timer"]
           if f"rss/{s}" in runs}
    for s, v in rss.items():
        row("rss", s, v, "bytes/armed item", rss.get("asio_timer"))
    if len(rss) == 2:
        r = rss["wq"] / rss["asio_timer"]
        checks.append((f"rss: wq {r:.2f}x asio_timer per armed item (target <= 0.67x)",
                       r <= 2 / 3))

    allocs = {n: b["allocs_per_op"] for n, b in runs.items()
              if n.endswith("/wq") and "allocs_per_op" in b}
    zero = all(v == 0 for v in allocs.values())
    checks.append(("allocations per op on wq's embedded-item benchmarks: " +
                   ", ".join(f"{n} {v:g}" for n, v in sorted(allocs.items())) +
                   " (target 0)", zero))

    print(f"machine: {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
          f"{ctx.get('date', '')}")
    print(f"{'workload':<10} {'system':<18} {'value':>14} {'unit':<18} {'vs baseline':>11}")
    for w, s, v, u, r in rows:
        rs = f"{r:.2f}x" if r is not None else "-"
        print(f"{w:<10} {s:<18} {v:>14.1f} {u:<18} {rs:>11}")
    print()
    met = 0
    for text, ok in checks:
        met += ok
        print(f"[{'met' if ok else 'MISSED'}] {text}")
    print(f"\n{met} of {len(checks)} targets met")

    with open(sys.argv[2], "w") as f:
        for w, s, v, u, r in rows:
            if r is not None:
                f.write(f'"{w}/{s}" {r:.6f}\n')


if __name__ == "__main__":
    main()
