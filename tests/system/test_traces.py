"""System tests of the shipped traces.

  test_traces.py LPTSIM SOURCE_DIR generator MODEL
      The shipped traces/MODEL.json must equal what scripts/trace_from_torch.py
      writes for torchvision's MODEL (network, batch and every layer; the
      "source" line names the torchvision version and may differ). Exits 77,
      which ctest reports as skipped, when /usr/bin/python3 cannot import torch.
  test_traces.py LPTSIM SOURCE_DIR run TRACE
      traces/TRACE passes `lptsim validate` and `lptsim run` on the default
      config, and the report covers every layer of the trace.
  test_traces.py LPTSIM SOURCE_DIR trace-info TRACE
      `lptsim trace-info` prints the published totals of resnet50/bert_base.
  test_traces.py LPTSIM SOURCE_DIR scalesim -
      SCALE-Sim CSVs run with `lptsim run --trace`, convert with
      `lptsim import-scalesim`, and bad rows are reported with their line.
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


def check_trace_info(lptsim, source, trace_file):
    path = os.path.join(source, "traces", trace_file)
    result = subprocess.run([lptsim, "trace-info", path, "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        return fail(f"lptsim trace-info {path}: exit {result.returncode}\n{result.stderr}")
    info = json.loads(result.stdout)
    # ResNet-50: 4,089,184,256 MACs per 224x224 image (4.1 G published) and
    # 25,557,032 parameters (25.6 M published); see tests/unit/trace_info_test.cpp.
    expected = {"resnet50.json": (4_089_184_256, 25_557_032), "bert_base.json": (11_174_215_680, 109_482_240)}
    fwd_per_sample = info["total"]["fwd_macs"] // info["batch"]
    if (fwd_per_sample, info["total"]["parameters"]) != expected[trace_file]:
        return fail(f"{trace_file}: fwd MACs/sample {fwd_per_sample}, parameters "
                    f"{info['total']['parameters']}; expected {expected[trace_file]}")
    table = subprocess.run([lptsim, "trace-info", path], capture_output=True, text=True)
    if table.returncode != 0 or f"parameters: {expected[trace_file][1]}" not in table.stdout:
        return fail(f"table output lacks the parameter total:\n{table.stdout}{table.stderr}")
    print(f"ok: trace-info {trace_file}")
    return 0


def check_scalesim(lptsim):
    """A SCALE-Sim topology runs directly and converts to a valid trace; a
    malformed row is reported with its line number."""
    with tempfile.TemporaryDirectory() as work:
        csv_path = os.path.join(work, "net.csv")
        with open(csv_path, "w") as f:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\nConv1,224,224,11,11,3,96,4,\nConv2_DP,27,27,5,5,96,1,1,\n"
                    "FC,1,1,1,1,96,10,1,\n")
        run = subprocess.run([lptsim, "run", "--trace", csv_path, "--out", os.path.join(work, "out"), "-q"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            return fail(f"run --trace net.csv: exit {run.returncode}\n{run.stderr}")
        trace_path = os.path.join(work, "net.json")
        converted = subprocess.run([lptsim, "import-scalesim", csv_path, "--out", trace_path],
                                   capture_output=True, text=True)
        validate = subprocess.run([lptsim, "validate", trace_path], capture_output=True, text=True)
        if converted.returncode != 0 or validate.returncode != 0:
            return fail(f"import-scalesim/validate failed:\n{converted.stderr}{validate.stderr}")
        with open(trace_path) as f:
            layers = json.load(f)["layers"]
        if [layer["type"] for layer in layers] != ["conv2d", "depthwise_conv2d", "conv2d"]:
            return fail(f"unexpected layer types {[layer['type'] for layer in layers]}")
        with open(csv_path, "a") as f:
            f.write("Bad,8,8,3,3,one,1,1,\n")
        bad = subprocess.run([lptsim, "run", "--trace", csv_path, "--out", os.path.join(work, "bad")],
                             capture_output=True, text=True)
        if bad.returncode != 2 or "line 5" not in bad.stderr or "net.csv" not in bad.stderr:
            return fail(f"malformed row: exit {bad.returncode}, stderr {bad.stderr!r}")
    print("ok: SCALE-Sim topology runs, converts and reports bad rows by line")
    return 0


def main(argv):
    checks = {"generator": lambda lptsim, source, name: check_generator(source, name),
              "run": check_run, "trace-info": check_trace_info,
              "scalesim": lambda lptsim, source, name: check_scalesim(lptsim)}
    if len(argv) != 5 or argv[3] not in checks:
        print(__doc__)
        return 2
    lptsim, source, check, name = argv[1:]
    return checks[check](lptsim, source, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
