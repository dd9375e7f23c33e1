#!/usr/bin/python3
"""Property tests of the timing model over the shipped networks: more hardware
is never slower. Each shipped trace runs on the default config and on the same
chip with one resource doubled (scratchpad, DRAM bandwidth, ring bandwidth,
cores, SFU lanes, corelets); no variant may take more than 1% more cycles.

Usage: test_properties.py LPTSIM SOURCE_DIR TRACE
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

TOLERANCE = 1.01

VARIANTS = {
    "scratchpad x8": lambda c: c["core"]["scratchpad"].update(size_kib=8 * c["core"]["scratchpad"]["size_kib"]),
    "scratchpad x2": lambda c: c["core"]["scratchpad"].update(size_kib=2 * c["core"]["scratchpad"]["size_kib"]),
    "DRAM bandwidth x2": lambda c: c["dram"].update(gb_per_s_per_channel=2 * c["dram"]["gb_per_s_per_channel"]),
    "ring bandwidth x2": lambda c: c["interconnect"].update(link_bytes_per_cycle=2 * c["interconnect"]["link_bytes_per_cycle"]),
    "cores x2": lambda c: c.update(cores=2 * c["cores"]),
    "SFU lanes x2": lambda c: c["core"]["sfu"].update(lanes=2 * c["core"]["sfu"]["lanes"]),
    "corelets x2": lambda c: c["core"]["mac_array"].update(corelets=2 * c["core"]["mac_array"]["corelets"]),
}


def cycles(lptsim, config, trace, workdir, name):
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    out = os.path.join(workdir, name)
    env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
    subprocess.run([lptsim, "run", "--quiet", "--config", path, "--trace", trace, "--out", out],
                   check=True, capture_output=True, env=env, timeout=600)
    with open(os.path.join(out, "report.json")) as f:
        return json.load(f)["totals"]["cycles"]


def main(argv):
    lptsim, source, trace_name = argv[1], argv[2], argv[3]
    with open(os.path.join(source, "configs", "rapid-4core.json")) as f:
        config = json.load(f)
    with open(os.path.join(source, "configs", config["chip"])) as f:
        config["chip"] = json.load(f)
    with open(os.path.join(source, "configs", config["chip"]["energy"])) as f:
        config["chip"]["energy"] = json.load(f)
    trace = os.path.join(source, "traces", trace_name)
    failures = []
    with tempfile.TemporaryDirectory() as workdir:
        base = cycles(lptsim, config, trace, workdir, "base")
        for name, change in VARIANTS.items():
            variant = copy.deepcopy(config)
            change(variant["chip"])
            got = cycles(lptsim, variant, trace, workdir, name.replace(" ", "_"))
            verdict = "ok" if got <= base * TOLERANCE else "SLOWER"
            print(f"{verdict}: {trace_name} {name}: {got} cycles vs {base} ({got / base - 1:+.2%})")
            if verdict != "ok":
                failures.append(name)
    if failures:
        print(f"FAIL: more hardware made {trace_name} slower: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
