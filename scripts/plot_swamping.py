#!/usr/bin/python3
"""Plot the swamping experiment: relative error of long sums vs their length, one line per curve.

Usage: /usr/bin/python3 scripts/plot_swamping.py swamping.csv swamping.png
(Debian's python3-matplotlib; the CSV comes from `lptsim numerics swamping`.)
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    curves = defaultdict(lambda: ([], []))
    trials = None
    with open(argv[1], newline="") as handle:
        for row in csv.DictReader(handle):
            n, error = curves[row["config"]]
            n.append(int(row["n"]))
            error.append(float(row["mean_relative_error"]))
            trials = row["trials"]
    if not curves:
        sys.stderr.write(f"{argv[1]}: no data rows\n")
        return 1
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (n, error) in curves.items():
        # An exact result has zero error, which a log axis cannot show: draw it at the floor.
        floor = 1e-12
        ax.loglog(n, [max(e, floor) for e in error], marker="o", markersize=3, label=name)
    ax.axhline(1e-12, color="gray", linewidth=0.5)
    ax.text(n[0], 1.6e-12, "exact (error 0)", fontsize=7, color="gray")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("length n of the sum")
    ax.set_ylabel(f"mean relative error vs FP64 ({trials} trials)")
    ax.set_title("Swamping: low-precision accumulation of long sums")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(argv[2], dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
