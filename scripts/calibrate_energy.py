#!/usr/bin/python3
"""Energy calibration report: a dense, compute-bound GEMM on the RaPiD-like chip
at RaPiD's two published operating points, side by side with the chip's
published efficiencies (docs/energy.md).

RaPiD (Agrawal et al., ISSCC 2021; Lee et al., JSSC 2022): about 1.9 TFLOPS/W
HFP8 at 1.6 GHz / 0.75 V; 3.5 TFLOPS/W HFP8 and 16.5 TOPS/W INT4 at
1.0 GHz / 0.55 V (JSSC: 3.58 and 16.9). Those are chip measurements, so the
comparison leaves DRAM out. The GEMM (4096 x 4096 x 4096, between two small
layers that may use other formats) runs on the chip with its memory system made
ideal, so that it is compute-bound in every format, as a peak-efficiency
measurement is; the report reads the GEMM layer's own energy.

Usage: calibrate_energy.py [LPTSIM] [--fit]
  --fit  also print the pipeline energies per PE cycle (energy-7nm.json,
         array.pipeline_pj_per_pe_cycle) that would meet the HFP8 figure at
         0.75 V and the INT4 figure at 0.55 V exactly.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (label, clock GHz, voltage, lptsim arguments, published figure, its source)
POINTS = [
    ("HFP8 training GEMM", 1.6, 0.75, ["--phases", "fwd"], 1.9, "ISSCC 2021, 1.6 GHz / 0.75 V"),
    ("HFP8 training GEMM", 1.0, 0.55, ["--phases", "fwd"], 3.5, "ISSCC 2021 (JSSC 2022: 3.58)"),
    ("INT4 inference GEMM", 1.0, 0.55, ["--mode", "inference", "--batch", "4"], 16.5, "ISSCC 2021 (JSSC 2022: 16.9)"),
]

TRACE = {
    "network": "dense-gemm",
    "source": "calibration: a 4096 x 4096 x 4096 GEMM between two small layers (first and last layers may use other formats)",
    "batch": 4,
    "layers": [
        {"name": "first", "type": "linear", "in_features": 64, "out_features": 4096, "tokens": 1024},
        {"name": "gemm", "type": "linear", "in_features": 4096, "out_features": 4096, "tokens": 1024},
        {"name": "last", "type": "linear", "in_features": 4096, "out_features": 64, "tokens": 1024},
    ],
}


def load_config():
    configs = os.path.join(SOURCE, "configs")
    with open(os.path.join(configs, "rapid-4core.json")) as f:
        config = json.load(f)
    with open(os.path.join(configs, "chip-rapid-ideal-memory.json")) as f:
        config["chip"] = json.load(f)
    with open(os.path.join(configs, config["chip"]["energy"])) as f:
        config["chip"]["energy"] = json.load(f)
    return config


def run_point(lptsim, config, clock, voltage, args, workdir, name):
    variant = copy.deepcopy(config)
    variant["chip"]["clock_ghz"] = clock
    variant["chip"]["voltage"] = voltage
    config_file = os.path.join(workdir, f"{name}.json")
    with open(config_file, "w") as f:
        json.dump(variant, f)
    trace_file = os.path.join(workdir, "gemm.json")
    out = os.path.join(workdir, name)
    env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
    subprocess.run([lptsim, "run", "--quiet", "--config", config_file, "--trace", trace_file, "--out", out] + args,
                   check=True, capture_output=True, env=env)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    return next(l for l in report["layers"] if l["layer"] == "gemm")


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    lptsim = args[0] if args else os.path.join(SOURCE, "build", "sim", "lptsim")
    config = load_config()
    rows, layers = [], []
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "gemm.json"), "w") as f:
            json.dump(TRACE, f)
        for i, (label, clock, voltage, run_args, published, source) in enumerate(POINTS):
            layer = run_point(lptsim, config, clock, voltage, run_args, workdir, f"point{i}")
            layers.append(layer)
            energy = layer["energy"]
            achieved = energy["chip_tflops_per_w"]
            rows.append(f"| {label} | {clock:.1f} GHz, {voltage:.2f} V | {100 * layer['mac_utilisation']:.1f}% | "
                        f"{energy['chip_pj'] / layer['macs']:.3f} | {achieved:.2f} | {published} ({source}) | "
                        f"{100 * (achieved / published - 1):+.0f}% |")
    print("Dense GEMM (4096^3) on chip-rapid-4core's compute with ideal memory; chip energy (no DRAM):\n")
    print("| GEMM | operating point | MAC utilisation | pJ/MAC | TFLOPS/W (TOPS/W) | RaPiD | difference |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nWhere the energy goes (pJ per MAC, chip):\n")
    components = [c for c in layers[0]["energy"]["dynamic_pj"] if c != "dram"]
    print("| GEMM, point | " + " | ".join(components) + " | leakage |")
    print("|---|" + "---|" * (len(components) + 1))
    for (label, clock, voltage, *_), layer in zip(POINTS, layers):
        e = layer["energy"]
        leakage = sum(v for c, v in e["leakage_pj"].items() if c != "dram")
        cells = [f"{e['dynamic_pj'][c] / layer['macs']:.4f}" for c in components]
        print(f"| {label}, {voltage:.2f} V | " + " | ".join(cells) + f" | {leakage / layer['macs']:.4f} |")
    if "--fit" in argv:
        table = config["chip"]["energy"]["array"]["pipeline_pj_per_pe_cycle"]
        for index, fmt in ((0, "hfp8_e4m3"), (2, "int4")):
            layer, published = layers[index], POINTS[index][4]
            e = layer["energy"]
            target = 2 * layer["macs"] / (published * 1e12) * 1e12  # pJ
            pipeline = e["dynamic_pj"]["array_pipeline"]
            fitted = table[fmt] * (pipeline + target - e["chip_pj"]) / pipeline
            print(f"\nfit: pipeline_pj_per_pe_cycle for {fmt}: {fitted:.3f} (now {table[fmt]})")


if __name__ == "__main__":
    main(sys.argv)
