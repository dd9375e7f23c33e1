#!/usr/bin/python3
"""Plots of `lptsim report` (which runs this script; docs/sweeps.md, "Reports").

Usage: /usr/bin/python3 scripts/plot_report.py sweep DIR [--axis POINTER ...] [--metric POINTER ...] [--quiet]
       /usr/bin/python3 scripts/plot_report.py run DIR [--quiet]
sweep: reads DIR/results.csv and DIR/pareto.csv; writes DIR/vs_<axis>.{png,svg} (every metric
against the axis, one series per trace) and DIR/pareto.{png,svg} (the first two objectives,
the front highlighted). run: reads DIR/time_breakdown.csv; writes DIR/time_breakdown.{png,svg}.
Exits 3 when matplotlib cannot be imported (Debian: apt install python3-matplotlib).
"""
import argparse
import csv
import math
import os
import statistics
import sys
from collections import defaultdict

MISSING_MATPLOTLIB = 3
# More series than this in one panel are unreadable: the other axes are then aggregated.
MAX_SERIES = 8


def slug(pointer):
    return pointer.strip("/").replace("/", "_").replace("~1", "_").replace("~0", "~") or "root"


def number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def trace_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def save(fig, directory, stem, quiet):
    fig.tight_layout()
    for extension in ("png", "svg"):
        path = os.path.join(directory, f"{stem}.{extension}")
        fig.savefig(path, dpi=120)
        if not quiet:
            print(f"wrote {path}")


def log_scale_fits(values):
    return min(values) > 0 and max(values) / min(values) >= 16


def plot_metric_vs_axis(plt, rows, directory, axis, axes, metrics, quiet):
    """One panel per metric; one series per trace and setting of the other axes, or, when
    those are too many, the median over the other axes' points with their min-max band."""
    others = [a for a in axes if a != axis]
    groups = defaultdict(lambda: defaultdict(list))  # (trace, other settings) -> x -> rows
    for row in rows:
        groups[(row["trace"], tuple(row[a] for a in others))][number(row[axis])].append(row)
    aggregate = len(groups) > MAX_SERIES
    if aggregate:
        merged = defaultdict(lambda: defaultdict(list))
        for (trace, _), by_x in groups.items():
            for x, members in by_x.items():
                merged[(trace, ())][x].extend(members)
        groups = merged
    columns = min(3, len(metrics))
    lines = math.ceil(len(metrics) / columns)
    fig, panels = plt.subplots(lines, columns, figsize=(5 * columns, 3.6 * lines), squeeze=False)
    for panel, metric in zip(panels.flat, metrics):
        for (trace, setting), by_x in groups.items():
            xs, mids, lows, highs = [], [], [], []
            for x in sorted(by_x):
                values = [v for v in (number(r[metric]) for r in by_x[x]) if v is not None]
                if values:
                    xs.append(x)
                    mids.append(statistics.median(values))
                    lows.append(min(values))
                    highs.append(max(values))
            if not xs:
                continue
            label = trace_name(trace)
            if setting:
                label += ", " + ", ".join(f"{a.split('/')[-1]}={v}" for a, v in zip(others, setting))
            line, = panel.plot(xs, mids, marker="o", markersize=3, label=label)
            if aggregate:
                panel.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2)
        panel.set_xlabel(axis)
        panel.set_ylabel(metric.split("/")[-1])
        panel.set_title(metric, fontsize=8)
        panel.grid(True, alpha=0.3)
        if log_scale_fits([number(r[axis]) for r in rows]):
            panel.set_xscale("log", base=2)
    for panel in list(panels.flat)[len(metrics):]:
        panel.set_visible(False)
    handles, labels = panels.flat[0].get_legend_handles_labels()
    note = (f"median over the other axes' points ({', '.join(others)}); band: their min-max"
            if aggregate else "one series per trace and setting of the other axes")
    fig.suptitle(f"metrics vs {axis} ({note})", fontsize=9)
    if handles:
        fig.legend(handles, labels, loc="lower right", fontsize=7)
    save(fig, directory, f"vs_{slug(axis)}", quiet)
    plt.close(fig)


def plot_pareto(plt, directory, quiet):
    path = os.path.join(directory, "pareto.csv")
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        objectives = [c for c in reader.fieldnames if c.endswith(":max") or c.endswith(":min")]
        rows = list(reader)
    if len(objectives) < 2:
        print(f"no Pareto plot: {len(objectives)} objective(s), a scatter needs two", file=sys.stderr)
        return
    x_name, y_name = objectives[:2]
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    fig, panels = plt.subplots(1, len(traces), figsize=(5.5 * len(traces), 4.5), squeeze=False)
    for panel, trace in zip(panels.flat, traces):
        points = [(number(r[x_name]), number(r[y_name]), r["on_front"] == "yes") for r in rows
                  if r["trace"] == trace and r["status"] == "ok"]
        points = [p for p in points if p[0] is not None and p[1] is not None]
        rest = [p for p in points if not p[2]]
        front = sorted(p for p in points if p[2])
        panel.scatter([p[0] for p in rest], [p[1] for p in rest], s=12, color="gray", label="dominated")
        panel.scatter([p[0] for p in front], [p[1] for p in front], s=30, color="tab:red", zorder=3,
                      label=f"on the front over {'all ' + str(len(objectives)) + ' objectives' if len(objectives) > 2 else 'both'}")
        if len(objectives) == 2 and front:
            panel.plot([p[0] for p in front], [p[1] for p in front], color="tab:red", linewidth=1)
        for name, setter in ((x_name, panel.set_xlabel), (y_name, panel.set_ylabel)):
            pointer, direction = name.rsplit(":", 1)
            setter(f"{pointer} ({'higher' if direction == 'max' else 'lower'} is better)", fontsize=8)
        panel.set_title(trace_name(trace))
        panel.grid(True, alpha=0.3)
        panel.legend(fontsize=7)
    save(fig, directory, "pareto", quiet)
    plt.close(fig)


def plot_sweep(plt, args):
    with open(os.path.join(args.dir, "results.csv"), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "ok"]
    metrics = [m for m in args.metric if any(number(r[m]) is not None for r in rows)]
    for axis in args.axis:
        values = {number(r[axis]) for r in rows}
        if None in values or len(values) < 2 or not metrics:
            continue  # a text axis (e.g. a fusion mode) or one value: no line to draw
        plot_metric_vs_axis(plt, rows, args.dir, axis, args.axis, metrics, args.quiet)
    plot_pareto(plt, args.dir, args.quiet)


def plot_run(plt, args):
    with open(os.path.join(args.dir, "time_breakdown.csv"), newline="") as handle:
        reader = csv.DictReader(handle)
        parts = [c for c in reader.fieldnames if c == "busy_cycles" or c.startswith("stall_")]
        rows = list(reader)
    groups = list(dict.fromkeys(r["by"] for r in rows))
    fig, panels = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4.5), squeeze=False)
    colors = plt.get_cmap("tab10")
    for panel, group in zip(panels.flat, groups):
        members = [r for r in rows if r["by"] == group]
        names = [r["name"] for r in members]
        bottom = [0.0] * len(members)
        for index, part in enumerate(parts):
            heights = [float(r[part]) for r in members]
            panel.bar(names, heights, bottom=bottom, color=colors(index), label=part)
            bottom = [b + h for b, h in zip(bottom, heights)]
        for x, (top, r) in enumerate(zip(bottom, members)):
            panel.text(x, top, f"{100 * float(r['share']):.0f}%", ha="center", va="bottom", fontsize=7)
        panel.set_title(f"time per {group.replace('_', ' ')}")
        panel.set_ylabel("cycles (mean over cores)")
        panel.tick_params(axis="x", labelrotation=45, labelsize=7)
        panel.grid(True, axis="y", alpha=0.3)
    panels.flat[0].legend(fontsize=7)
    fig.suptitle("where the run's time went: busy and stall cycles (% of the run above each bar)", fontsize=9)
    save(fig, args.dir, "time_breakdown", args.quiet)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["sweep", "run"])
    parser.add_argument("dir")
    parser.add_argument("--axis", action="append", default=[])
    parser.add_argument("--metric", action="append", default=[])
    parser.add_argument("--quiet", action="store_true", help="do not list the files written")
    args = parser.parse_args(argv[1:])
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot_report.py: cannot import matplotlib ({e})", file=sys.stderr)
        return MISSING_MATPLOTLIB
    (plot_sweep if args.kind == "sweep" else plot_run)(plt, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
