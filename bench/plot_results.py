#!/usr/bin/env python3
"""Draws bench/results.png from the CSV that bench/torch_anchors.py writes (<csv>_torch.csv).

    python3 bench/plot_results.py out/anchors_torch.csv bench/results.png

One panel per workload and batch: median time of every implementation (log scale), the
memory floor as a line, each bar labelled with its milliseconds.
"""
import csv
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FLOOR_BYTES = {  # input + output bytes at batch 1 (fp32); weights are negligible
    "sub-sub-mish": 4 * (8 * 256 * 256 + 64 * 254 * 254),
    "mish-mish": 4 * (64 * 256 * 256 + 128 * 254 * 254),
}
BANDWIDTH = 3.8e12  # H200 device-to-device copy, bytes/s (DESIGN.md)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = list(csv.DictReader(open(src)))
    panels = OrderedDict()
    for r in rows:
        if not r["median_ms"]:
            continue
        panels.setdefault((r["workload"], int(r["batch"])), []).append(
            (r["impl"], float(r["median_ms"])))
    device = rows[0]["device"] if rows else "?"
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.8), squeeze=False)
    for ax, ((work, batch), items) in zip(axes[0], panels.items()):
        labels = [i[0].replace("torch ", "torch\n").replace("convfuse ", "convfuse\n")
                  for i in items]
        times = [i[1] for i in items]
        colors = ["#4c72b0" if i[0].startswith("convfuse") else "#999999" for i in items]
        bars = ax.bar(range(len(times)), times, color=colors)
        for b, t in zip(bars, times):
            ax.text(b.get_x() + b.get_width() / 2, t, f"{t:.2f}", ha="center", va="bottom",
                    fontsize=7)
        floor = FLOOR_BYTES[work] * batch / BANDWIDTH * 1e3
        ax.axhline(floor, color="#c44e52", ls="--", lw=1)
        ax.text(len(times) - 0.5, floor, f"floor {floor:.2f}", color="#c44e52", fontsize=7,
                ha="right", va="bottom")
        ax.set_yscale("log")
        ax.set_xticks(range(len(times)))
        ax.set_xticklabels(labels, rotation=90, fontsize=7)
        ax.set_title(f"{work}, batch {batch}", fontsize=9)
        ax.set_ylabel("median ms (log)")
    fig.suptitle(f"convfuse vs PyTorch on {device}", fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main()
