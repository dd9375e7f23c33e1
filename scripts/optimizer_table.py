#!/usr/bin/python3
"""The optimizer comparison of docs/optimizers.md: each optimizer's mean training
step (over its schedule), energy and memory per chip against SGD-momentum's, for
networks on one config, as a markdown table.

Usage: scripts/optimizer_table.py [--lptsim BUILD/sim/lptsim] [--config FILE] [TRACE ...]
Runs `lptsim run` once per network and optimizer (each forks its schedule's
other steps and SGD-momentum's step beside it); prints the table on stdout.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OPTIMIZERS = [
    ("SGD-momentum", "sgd_momentum"),
    ("Adam", "adam"),
    ("K-FAC 10/100", {"name": "kfac", "factor_interval": 10, "inverse_interval": 100}),
    ("K-FAC 10/10", {"name": "kfac", "factor_interval": 10, "inverse_interval": 10}),
    ("K-FAC 1/1", {"name": "kfac", "factor_interval": 1, "inverse_interval": 1}),
    ("AdaHessian", "adahessian"),
    ("ESGD μ=8, λ=8, K=100", {"name": "esgd", "population": 8, "offspring": 8, "steps_per_generation": 100}),
]


def run(lptsim, config, trace, optimizer, out):
    args = [lptsim, "run", "--quiet", "--config", config, "--trace", trace, "--no-fidelity", "--out", out,
            "--set", "/precision/update/optimizer=" + json.dumps(optimizer)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1"))
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lptsim", default=os.path.join(REPO, "build", "sim", "lptsim"))
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "rapid-4core.json"))
    parser.add_argument("traces", nargs="*",
                        default=[os.path.join(REPO, "traces", t) for t in ("resnet50.json", "bert_base.json")])
    args = parser.parse_args()
    print("| network | optimizer | step, ms (mean) | × SGD time | energy/step, mJ | × SGD energy | memory/chip, GiB |"
          " per generation |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for trace in args.traces:
            sgd = None
            for label, optimizer in OPTIMIZERS:
                r = run(args.lptsim, args.config, trace, optimizer, os.path.join(tmp, "out"))
                o = r["optimizer"]
                clock = r["config"]["chip"]["clock_ghz"] * 1e9
                cycles, energy = o["mean_step"]["cycles"], o["mean_step"]["energy_pj"]
                if sgd is None:
                    sgd = (cycles, energy)
                generation = ""
                if o.get("generation"):
                    g = o["generation"][0]
                    generation = f"{g['seconds']:.1f} s, {g['energy_pj'] * 1e-12:.0f} J on one chip"
                print(f"| {r['workload']['network']} | {label} | {cycles / clock * 1e3:.1f} | "
                      f"{cycles / sgd[0]:.2f} | {energy * 1e-9:.0f} | {energy / sgd[1]:.2f} | "
                      f"{o['memory']['total_bytes'] / 2**30:.2f} | {generation} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
