"""System tests of the shipped traces (issue 4).

  test_traces.py LPTSIM SOURCE_DIR generator MODEL
      The shipped traces/MODEL.json must equal what scripts/trace_from_torch.py
      writes for torchvision's MODEL (network, batch and every layer; the
      "source" line names the torchvision version and may differ). Exits 77,
      which ctest reports as skipped, when /usr/bin/python3 cannot import torch.
  test_traces.py LPTSIM SOURCE_DIR run TRACE
      traces/TRACE passes `lptsim validate` and `lptsim run` on the default
      config, and the report covers every layer of the trace.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77  # SKIP_RETURN_CODE in tests/system/CMakeLists.txt


def fail(message):
    print(f"FAIL: {message}")
    return 1


def check_generator(source, model):
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        print("SKIP: torch/torchvision not importable by this python3 "
              "(apt-get install python3-torch python3-torchvision to run this test)")
        return SKIP
    shipped_path = os.path.join(source, "traces", f"{model}.json")
    with open(shipped_path) as f:
        shipped = json.load(f)
    generator = os.path.join(source, "scripts", "trace_from_torch.py")
    result = subprocess.run([sys.executable, generator, "--model", model, "--batch", str(shipped["batch"])],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return fail(f"trace_from_torch.py failed:\n{result.stderr}")
    generated = json.loads(result.stdout)
    for key in ("network", "batch"):
        if generated[key] != shipped[key]:
            return fail(f"{key}: shipped {shipped[key]!r}, generated {generated[key]!r}")
    if len(generated["layers"]) != len(shipped["layers"]):
        return fail(f"{len(shipped['layers'])} layers shipped, {len(generated['layers'])} generated")
    for index, (want, got) in enumerate(zip(shipped["layers"], generated["layers"])):
        if want != got:
            return fail(f"layer {index} differs:\n  shipped   {json.dumps(want)}\n  generated {json.dumps(got)}")
    print(f"ok: traces/{model}.json matches the generator ({len(shipped['layers'])} layers)")
    return 0


def check_run(lptsim, source, trace_file):
    path = os.path.join(source, "traces", trace_file)
    validate = subprocess.run([lptsim, "validate", path], capture_output=True, text=True)
    if validate.returncode != 0 or "ok: " not in validate.stdout:
        return fail(f"lptsim validate {path}: exit {validate.returncode}\n{validate.stdout}{validate.stderr}")
    with open(path) as f:
        layers = len(json.load(f)["layers"])
    with tempfile.TemporaryDirectory() as out_dir:
        run = subprocess.run([lptsim, "run", "--trace", path, "--out", out_dir, "--quiet"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            return fail(f"lptsim run --trace {path}: exit {run.returncode}\n{run.stderr}")
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
    # The report has one entry per layer and phase with work.
    reported = len({entry["layer_index"] for entry in report["layers"]})
    if reported != layers:
        return fail(f"report covers {reported} layers, the trace has {layers}")
    if sum(entry["macs"] for entry in report["layers"]) <= 0:
        return fail("the report counts no MACs")
    print(f"ok: {trace_file} validates and runs on the default config ({layers} layers)")
    return 0


def main(argv):
    if len(argv) != 5 or argv[3] not in ("generator", "run"):
        print(__doc__)
        return 2
    lptsim, source, check, name = argv[1:]
    return check_generator(source, name) if check == "generator" else check_run(lptsim, source, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
