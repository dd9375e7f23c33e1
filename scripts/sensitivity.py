#!/usr/bin/python3
"""Sensitivity of a training step to DRAM bandwidth, SFU width and fusion.

Usage: /usr/bin/python3 scripts/sensitivity.py [TRACE] [CONFIG]
  (defaults: traces/resnet50.json, configs/rapid-4core.json; needs build/sim/lptsim)

Runs the trace on the config's chip with DRAM bandwidth x0.5 / x1 / x2, SFU lanes
x1 / x2 / x4 and fusion none / full, and prints a Markdown table of % of peak,
% of the roofline bound and what bounds it (docs/validation.md shows its output).
"""
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    trace = argv[1] if len(argv) > 1 else os.path.join(REPO, "traces", "resnet50.json")
    config_file = argv[2] if len(argv) > 2 else os.path.join(REPO, "configs", "rapid-4core.json")
    lptsim = os.path.join(REPO, "build", "sim", "lptsim")
    with open(config_file) as f:
        config = json.load(f)
    base = os.path.dirname(config_file)
    if isinstance(config["chip"], str):
        with open(os.path.join(base, config["chip"])) as f:
            config["chip"] = json.load(f)
    if isinstance(config["chip"].get("energy"), str):  # relative to the chip file, next to the config
        with open(os.path.join(base, config["chip"]["energy"])) as f:
            config["chip"]["energy"] = json.load(f)
    chip = config["chip"]
    print(f"{os.path.basename(trace)} on {config['name']}: % of peak (% of roofline bound, its limit)\n")
    print("| fusion | DRAM bandwidth | SFU x1 | SFU x2 | SFU x4 |")
    print("|---|---|---|---|---|")
    env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
    with tempfile.TemporaryDirectory() as work:
        for fusion in ("none", "full"):
            for dram in (0.5, 1, 2):
                cells = []
                for sfu in (1, 2, 4):
                    variant = json.loads(json.dumps(config))
                    variant["chip"]["dram"]["gb_per_s_per_channel"] = chip["dram"]["gb_per_s_per_channel"] * dram
                    variant["chip"]["core"]["sfu"]["lanes"] = chip["core"]["sfu"]["lanes"] * sfu
                    path = os.path.join(work, "config.json")
                    with open(path, "w") as f:
                        json.dump(variant, f)
                    out = os.path.join(work, "out")
                    subprocess.run([lptsim, "run", "--quiet", "--config", path, "--trace", trace,
                                    "--fusion", fusion, "--out", out], check=True, capture_output=True, env=env)
                    with open(os.path.join(out, "report.json")) as f:
                        totals = json.load(f)["totals"]
                    cells.append(f"{100 * totals['fraction_of_peak']:.1f}% "
                                 f"({100 * totals['bound']['fraction_achieved']:.0f}%, {totals['bound']['limited_by']})")
                print(f"| {fusion} | x{dram:g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
