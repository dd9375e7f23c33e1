"""Tests of lptsim train-check: the short check reaches a stated accuracy for FP32 and HFP8,
its files hold what the summary says, and bad arguments are errors.

Usage: test_train_check.py LPTSIM_CLI SOURCE_DIR [TestClass ...], with PYTHONPATH at build/python.
Exits 77 (ctest: skipped) when NumPy, PyTorch or scikit-learn is missing.
"""

import csv
import os
import subprocess
import sys
import tempfile
import unittest

SKIP = 77  # SKIP_RETURN_CODE in tests/CMakeLists.txt
try:
    import numpy  # noqa: F401
    import sklearn  # noqa: F401
    import torch  # noqa: F401
except ImportError as e:
    print(f"skipped: {sys.executable} cannot import {e.name} (Debian's python3-numpy, python3-torch, "
          "python3-sklearn)")
    sys.exit(SKIP)

LPTSIM = SOURCE = None


def run(*args, expect=0):
    p = subprocess.run([LPTSIM, "train-check", *args], capture_output=True, text=True, timeout=900)
    if p.returncode != expect:
        raise AssertionError(f"lptsim train-check {' '.join(args)} exited {p.returncode}, expected {expect}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class Quick(unittest.TestCase):
    def test_fp32_and_hfp8_train_the_mlp(self):
        with tempfile.TemporaryDirectory() as out:
            p = run("--quick", "--out", out, "--quiet")
            with open(os.path.join(out, "summary.csv")) as f:
                summary = {r["variant"]: r for r in csv.DictReader(f)}
            # Three epochs of the MLP on the digits: FP32 reaches 90% and HFP8 stays within a point of it.
            self.assertGreater(float(summary["fp32"]["test_accuracy"]), 0.90)
            self.assertGreater(float(summary["hfp8"]["test_accuracy"]), 0.90)
            self.assertGreater(float(summary["hfp8"]["points_vs_fp32"]), -1.0)
            self.assertIn("claim (mlp): hfp8 within 1 point of fp32: holds", p.stdout)
            with open(os.path.join(out, "curves.csv")) as f:
                curves = list(csv.DictReader(f))
            self.assertEqual(len(curves), 2 * 4)  # two variants, the initial model and 3 epochs
            final = [r for r in curves if r["epoch"] == "3"]
            self.assertEqual({r["variant"]: float(r["test_accuracy"]) for r in final},
                             {v: float(s["test_accuracy"]) for v, s in summary.items()})
            # Training lowered the loss.
            losses = [float(r["train_loss"]) for r in curves if r["variant"] == "hfp8" and r["epoch"] != "0"]
            self.assertLess(losses[-1], losses[0])


class Arguments(unittest.TestCase):
    def test_bad_arguments_and_configs_are_errors(self):
        self.assertIn("unknown variant 'fp9'", run("--variants", "fp9", expect=2).stderr)
        self.assertIn("unknown model", run("--models", "rnn", expect=2).stderr)
        self.assertIn("--set needs --config", run("--set", "/x=1", expect=2).stderr)
        bad = run("--config", os.path.join(SOURCE, "configs", "tiny.json"), "--set", "/precision/fwd/a=fp7",
                  expect=2).stderr
        self.assertIn("lptsim train-check:", bad)
        self.assertIn("/precision/fwd/a", bad)


if __name__ == "__main__":
    LPTSIM, SOURCE = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]], verbosity=2)
