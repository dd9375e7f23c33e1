#!/usr/bin/python3
"""Plot each layer phase of an lptsim run against its roofline bound.

Usage: /usr/bin/python3 scripts/plot_roofline.py OUT_DIR/report.json roofline.png
(Debian's python3-matplotlib; report.json comes from `lptsim run --out OUT_DIR`.)

Left: simulated cycles against the bound the tool computed for the same layer
phase (the slowest of compute, DRAM, SFU and rounders at their peak rates; see
docs/architecture.md, "Roofline bound"), coloured by the limiting resource; a
point on the diagonal runs at its bound. Right: the classic roofline of the
GEMM layer phases, achieved TFLOPS against FLOPs per byte of their least DRAM
traffic, under the chip's compute and memory roofs.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"compute": "tab:blue", "dram": "tab:red", "sfu": "tab:green", "rounder": "tab:purple"}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as handle:
        report = json.load(handle)
    rows = [r for r in report["layers"] if r["cycles"] > 0 and r["bound"]["cycles"] > 0]
    if not rows:
        sys.stderr.write(f"{argv[1]}: no layer phase with a bound\n")
        return 1
    totals = report["totals"]
    clock_hz = report["config"]["chip"]["clock_ghz"] * 1e9
    name = f'{report["workload"]["network"]} (batch {report["workload"]["batch"]}) on {report["config"]["name"]}, fusion {report["config"]["fusion"]}'

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for limit, colour in COLOURS.items():
        chosen = [r for r in rows if r["bound"]["limited_by"] == limit]
        if chosen:
            left.scatter([r["bound"]["cycles"] for r in chosen], [r["cycles"] for r in chosen],
                         s=10, color=colour, label=f"{limit}-bound ({len(chosen)})")
    low = min(r["bound"]["cycles"] for r in rows)
    high = max(r["cycles"] for r in rows)
    for factor, style in ((1, "-"), (2, ":"), (4, ":")):
        left.plot([low, high / factor], [low * factor, high], "k" + style, linewidth=0.6)
    left.text(low, low * 4.4, "4x", fontsize=7)
    left.text(low, low * 2.2, "2x", fontsize=7)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("roofline bound (cycles)")
    left.set_ylabel("simulated (cycles)")
    left.set_title(f'step at {100 * totals["bound"]["fraction_achieved"]:.0f}% of its bound, '
                   f'{100 * totals["fraction_of_peak"]:.0f}% of peak', fontsize=9)
    left.legend(fontsize=7)

    peak = totals["peak_tflops"]
    bandwidth = next(r["bound"]["dram_bytes"] / r["bound"]["dram_cycles"] * clock_hz
                     for r in rows if r["bound"]["dram_cycles"] > 0)  # bytes per second
    gemms = [r for r in rows if r["macs"] > 0 and r["bound"]["dram_bytes"] > 0]
    if gemms:
        intensity = [2 * r["macs"] / r["bound"]["dram_bytes"] for r in gemms]
        achieved = [2 * r["macs"] / r["seconds"] / 1e12 for r in gemms]
        right.scatter(intensity, achieved, s=10, color=[COLOURS.get(r["bound"]["limited_by"], "gray") for r in gemms])
        xs = [min(intensity) / 2, max(intensity) * 2]
        ridge = peak * 1e12 / bandwidth
        roof_x = [xs[0], ridge, xs[1]] if xs[0] < ridge < xs[1] else xs
        right.plot(roof_x, [min(peak, x * bandwidth / 1e12) for x in roof_x], "k-", linewidth=0.8)
        right.set_xscale("log")
        right.set_yscale("log")
    right.set_xlabel("FLOPs per byte of least DRAM traffic")
    right.set_ylabel("achieved TFLOPS")
    right.set_title(f"GEMM layer phases under {peak:.1f} TFLOPS and {bandwidth / 1e9:.0f} GB/s", fontsize=9)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    fig.savefig(argv[2], dpi=120)
    print(f"wrote {argv[2]}: {len(rows)} layer phases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
