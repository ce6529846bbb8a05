#!/usr/bin/env python3
"""Hand-written SVG of qlc-bench results: effective weight GB/s per case against the measured
streaming read bandwidth (one dashed line per thread count).

usage: plot.py RESULTS.json OUT.svg [--groups dense,mlp,moe] [--max-m 16]
(RESULTS.json is what `qlc-bench --json=...` writes.)"""
import argparse
import json
import sys
from xml.sax.saxutils import escape

COLORS = {"eigen": "#888888", "Q4_0": "#1f77b4", "Q4_K": "#2ca02c", "AWQ": "#d62728",
          "AWQ-f32": "#ff9896", "GPTQ": "#9467bd", "GPTQ-f32": "#c5b0d5", "Q4_1": "#17becf",
          "Q5_0": "#bcbd22", "Q5_1": "#e377c2", "Q2_K": "#8c564b", "Q3_K": "#ff7f0e",
          "Q5_K": "#7f7f7f", "Q6_K": "#aec7e8", "Q8_0": "#98df8a"}
# The f32-activation variants of the other GGUF types share one light colour.
F32_OTHER = "#dddddd"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out")
    ap.add_argument("--groups", default="dense,mlp,moe")
    ap.add_argument("--max-m", type=int, default=16,
                    help="only cases with at most this many rows/tokens (decode: the bandwidth-bound ones)")
    a = ap.parse_args()
    data = json.load(open(a.results))
    groups = a.groups.split(",")
    rows = [r for r in data["results"] if r["group"] in groups and r["m"] <= a.max_m]
    order = {g: i for i, g in enumerate(groups)}
    rows.sort(key=lambda r: (order[r["group"]], r["shape"], r["m"], r["threads"], r["impl"]))
    bw = {int(k): v for k, v in data["bandwidth"].items()}
    if not rows:
        sys.exit("plot.py: no results to plot")

    left, right, top, rowh = 330, 40, 70, 16
    width = 1000
    plotw = width - left - right
    height = top + rowh * len(rows) + 76  # two legend rows
    vmax = max([r["gbs"] for r in rows] + list(bw.values())) * 1.08
    x = lambda v: left + plotw * v / vmax
    out = []
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'font-family="sans-serif" font-size="11">')
    out.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    m = data["machine"]
    out.append(f'<text x="{width/2}" y="20" text-anchor="middle" font-size="14">'
               f'qlc-bench: effective weight GB/s (quantized bytes read / time) vs streaming read '
               f'bandwidth</text>')
    out.append(f'<text x="{width/2}" y="38" text-anchor="middle" fill="#555">'
               f'{escape(m["cpu"])}, {m["threads"]} threads, host {escape(m["host"])}, '
               f'load average {escape(m["load_before"])} / {escape(m["load_after"])}</text>')
    # grid
    step = 2 if vmax < 30 else 5 if vmax < 80 else 10
    v = 0
    while v <= vmax:
        out.append(f'<line x1="{x(v):.1f}" y1="{top-6}" x2="{x(v):.1f}" y2="{top + rowh*len(rows)}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{x(v):.1f}" y="{top + rowh*len(rows) + 14}" text-anchor="middle">{v}</text>')
        v += step
    out.append(f'<text x="{left + plotw/2}" y="{top + rowh*len(rows) + 30}" text-anchor="middle">GB/s</text>')
    for i, r in enumerate(rows):
        y = top + i * rowh
        label = r["name"].replace("dense/", "").replace("/t", " t")
        out.append(f'<text x="{left-6}" y="{y + rowh*0.7:.1f}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y+2}" width="{max(0.5, x(r["gbs"]) - left):.1f}" '
                   f'height="{rowh-4}" fill="{COLORS.get(r["impl"], F32_OTHER)}"/>')
        pct = f' ({100*r["x_bw"]:.0f}%)' if r["x_bw"] else ""
        out.append(f'<text x="{x(r["gbs"]) + 3:.1f}" y="{y + rowh*0.7:.1f}" fill="#333">'
                   f'{r["gbs"]:.1f}{pct}</text>')
    for t, g in sorted(bw.items()):
        dash = "6,3" if t == 1 else "2,2"
        out.append(f'<line x1="{x(g):.1f}" y1="{top-8}" x2="{x(g):.1f}" y2="{top + rowh*len(rows)}" '
                   f'stroke="black" stroke-dasharray="{dash}"/>')
        out.append(f'<text x="{x(g):.1f}" y="{top-12 - (10 if t != 1 else 0)}" text-anchor="middle">'
                   f'bandwidth {t} thr: {g:.1f} GB/s</text>')
    lx, ly = left, height - 34
    for impl, c in list(COLORS.items()) + [("other -f32", F32_OTHER)]:
        if lx + 90 > width:
            lx, ly = left, ly + 16
        out.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{c}"/>')
        out.append(f'<text x="{lx+14}" y="{ly+9}">{impl}{" fp32" if impl == "eigen" else ""}</text>')
        lx += 90
    out.append("</svg>")
    open(a.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
